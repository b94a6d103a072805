//! 2-D data: training on a generated plane data set draws the decision
//! boundary, `classify --point` classifies points, and what cannot apply
//! to points (an image, the PyTorch export's image reader) or to the
//! options (no points, negative noise, one class) is refused in words.

mod common;

use common::{assert_refused, depthlab, stderr, stdout};

#[test]
fn a_net_trained_on_a_spiral_draws_its_boundary_and_classifies_points() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("spiral");
    let args =
        ["train", "--arch", "plain-mlp-8", "--data", "spiral:n=600,seed=3", "--backend", "cpu", "--epochs", "40", "--batch-size", "32"];
    let output = depthlab(&[&args[..], &["--out", run.to_str().unwrap()]].concat());
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("decision boundary:"), "{}", stderr(&output));
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert!(summary["final_test_accuracy"].as_f64().unwrap() > 0.9, "a spiral is learnable: {summary}");
    let boundary = image::open(run.join("boundary.png")).expect("boundary.png is an image").to_rgb8();
    let colours: std::collections::HashSet<_> = boundary.pixels().map(|p| p.0).collect();
    assert!(colours.len() > 4, "regions, points and axes: {} colours", colours.len());
    let train: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("train.json")).unwrap()).unwrap();
    assert_eq!(train["dataset"]["spec"], "spiral:n=600,noise=0.1,classes=2,seed=3");
    assert_eq!(train["dataset"]["train_examples"], 600);

    // Points near each arm's end belong to different classes; the JSON
    // names the point.
    let classify = |point: &str| {
        let out = depthlab(&["classify", "--run", run.to_str().unwrap(), &format!("--point={point}"), "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(json["point"], point);
        let p = json["predictions"][0]["probability"].as_f64().unwrap();
        assert!((0.5..=1.0).contains(&p), "{json}");
        json["predictions"][0]["class"].as_str().unwrap().to_string()
    };
    let _ = classify("0.5,-1.5");
    let _ = classify("-2.9,2.9");
    assert_refused(&depthlab(&["classify", "--run", run.to_str().unwrap(), "--point", "nan,1"]), 2, &["two finite numbers"]);
    assert_refused(&depthlab(&["classify", "--run", run.to_str().unwrap(), "--point", "1"]), 2, &["two finite numbers"]);
    let image = concat!(env!("CARGO_MANIFEST_DIR"), "/screenshots/builder.png");
    assert_refused(&depthlab(&["classify", "--run", run.to_str().unwrap(), "--image", image]), 2, &["points of the plane", "--point"]);
    let out = dir.path().join("export");
    assert_refused(
        &depthlab(&["export", "--run", run.to_str().unwrap(), "--out", out.to_str().unwrap()]),
        2,
        &["points of the plane", "safetensors"],
    );
    assert!(
        depthlab(&["export", "--run", run.to_str().unwrap(), "--format", "safetensors", "--out", out.to_str().unwrap()]).status.success()
    );

    // A net trained on images draws no boundary, and refuses a point.
    let digits = dir.path().join("digits");
    common::trained_run(&digits);
    assert!(!digits.join("boundary.png").exists(), "no boundary for images");
    assert_refused(&depthlab(&["classify", "--run", digits.to_str().unwrap(), "--point", "1,2"]), 2, &["trained on images"]);
}

#[test]
fn bad_plane_options_are_refused_in_words() {
    let dir = tempfile::tempdir().unwrap();
    for (data, words) in [
        ("spiral:n=0", "n must be 1 to"),
        ("moons:noise=-1", "noise must be 0 to 10"),
        ("spiral:classes=1", "classes must be 2 to 10"),
        ("blobs:classes=1000000", "classes must be 2 to 10"),
        ("circles:classes=3", "only spiral and blobs"),
        ("xor:wobble=2", "unknown option"),
    ] {
        let out = dir.path().join("run");
        let output = depthlab(&["train", "--arch", "plain-mlp-8", "--data", data, "--backend", "cpu", "--out", out.to_str().unwrap()]);
        assert_refused(&output, 2, &[words]);
        assert!(!out.join("train.json").exists(), "{data}: nothing written");
    }
}
