//! Lessons are tested like code: every built-in lesson played without the
//! window (`depthlab lesson run NAME --json`), every figure its steps quote
//! given from the lesson's own runs. Wall times per step are the report's
//! (scripts/lessons.sh quotes them), not asserted here.

mod common;

use common::{assert_refused, depthlab, stdout};

fn names() -> Vec<String> {
    let out = depthlab(&["lesson", "list", "--json"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    list.as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn every_built_in_lesson_plays_and_gives_every_figure_it_quotes() {
    let names = names();
    assert!(names.len() >= 5, "{names:?}");
    let dir = tempfile::tempdir().unwrap();
    for name in names {
        let out_dir = dir.path().join(&name);
        let out = depthlab(&["lesson", "run", &name, "--json", "--out", out_dir.to_str().unwrap()]);
        assert!(out.status.success(), "{name}: {}", common::stderr(&out));
        let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        let steps = report["steps"].as_array().unwrap();
        assert!(!steps.is_empty());
        for step in steps {
            let look_for = &step["look_for"];
            assert!(look_for["missing"].as_array().unwrap().is_empty(), "{name}: {step}");
            let text = look_for["text"].as_str().unwrap();
            assert!(!text.contains('{'), "{name}: every placeholder filled: {text}");
            for (key, value) in look_for["figures"].as_object().unwrap() {
                let value = value.as_str().unwrap();
                assert!(text.contains(value), "{name}: {key} = {value} quoted");
                assert!(!value.contains("NaN") && !value.contains("inf"), "{name}: {key} = {value}");
            }
            assert!(step["wall_secs"].as_f64().unwrap() > 0.0);
            eprintln!("{name} step {}: {:.1} s", step["step"], step["wall_secs"].as_f64().unwrap());
        }
        assert!(out_dir.join("lesson.json").is_file());
    }
}

#[test]
fn lessons_that_cannot_be_played_are_refused_in_words() {
    let dir = tempfile::tempdir().unwrap();
    assert_refused(&depthlab(&["lesson", "run", "no-such-lesson"]), 2, &["no lesson named 'no-such-lesson'", "vanishing-gradients"]);
    let file = dir.path().join("l.depthlab");
    std::fs::write(&file, r#"{"format": "depthlab-lab"}"#).unwrap();
    assert_refused(&depthlab(&["lesson", "run", file.to_str().unwrap()]), 2, &["without a lesson"]);
    std::fs::write(&file, "{\"lesson\": {\"name\": \"x\"").unwrap();
    assert_refused(&depthlab(&["lesson", "run", file.to_str().unwrap()]), 2, &["not a lesson"]);
    let quoting_too_early = r#"{"lesson": {"name": "x", "title": "t", "summary": "s", "steps": [
        {"title": "a", "text": "b", "look_for": "{plain.test_accuracy}", "question": "q", "answer": "a"}]}}"#;
    std::fs::write(&file, quoting_too_early).unwrap();
    assert_refused(&depthlab(&["lesson", "run", file.to_str().unwrap()]), 2, &["step 1 quotes", "plain.test_accuracy"]);
    let bad_preset = r#"{"lesson": {"name": "x", "title": "t", "summary": "s", "steps": [
        {"title": "a", "text": "b", "action": {"do": "train", "runs": [{"name": "p", "arch": "plain-7"}]}, "question": "q", "answer": "a"}]}}"#;
    std::fs::write(&file, bad_preset).unwrap();
    let out_dir = dir.path().join("out");
    assert_refused(&depthlab(&["lesson", "run", file.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]), 1, &["step 1", "plain-7"]);
    // A lab file named on the command line that is not there.
    assert_refused(&depthlab(&["open", dir.path().join("none.depthlab").to_str().unwrap()]), 1, &["cannot read lab file"]);
    assert_refused(&depthlab(&["trian"]), 2, &["'trian' is neither a command nor a lab file"]);
    std::fs::write(&file, "[]").unwrap();
    assert_refused(&depthlab(&[file.to_str().unwrap()]), 2, &["is not a lab file"]);
    // A pipe or a folder is refused at once, never read (a pipe would block).
    let fifo = dir.path().join("pipe.depthlab");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    assert_refused(&depthlab(&["open", fifo.to_str().unwrap()]), 2, &["is not a file"]);
    assert_refused(&depthlab(&["open", dir.path().to_str().unwrap()]), 2, &["is not a file"]);
}
