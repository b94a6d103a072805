//! Weights are verified when they are used: `model.bpk` against the SHA-256
//! `summary.json` recorded when it was saved, the normalisation in
//! `train.json` against overflow, and the logits against NaN, so a damaged
//! run is refused instead of giving changed results.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_refused, depthlab, stderr, stdout, trained_run};
use depthlab::train::runfolder::file_sha256;
use serde_json::Value;

fn digit_image(dir: &Path) -> PathBuf {
    let image = dir.join("digit.png");
    image::GrayImage::from_fn(8, 8, |x, y| image::Luma([((x * 31 + y * 17) % 256) as u8])).save(&image).unwrap();
    image
}

/// `classify`, `lesion` and `landscape` of `run`, kept small.
fn uses(run: &Path, image: &Path) -> [(Vec<String>, i32); 3] {
    let run = run.to_str().unwrap();
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    [
        (args(&["classify", "--run", run, "--image", image.to_str().unwrap()]), 1),
        (args(&["lesion", "--run", run, "--draws", "1", "--test-examples", "20"]), 2),
        (args(&["landscape", "--run", run, "--grid", "1", "--subset", "20", "--line-points", "1"]), 2),
    ]
}

fn run_args(args: &[String]) -> std::process::Output {
    depthlab(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Each of `uses` is refused with its exit code and `words`, and prints no
/// result.
fn assert_each_refused(uses: impl IntoIterator<Item = (Vec<String>, i32)>, words: &[&str]) {
    for (args, code) in uses {
        let output = run_args(&args);
        assert_refused(&output, code, words);
        assert!(stdout(&output).is_empty(), "{}: printed a result: {}", args[0], stdout(&output));
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Overwrites `len` bytes of `path` at `at` with 0xFF.
fn overwrite(path: &Path, at: usize, len: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at..at + len].fill(0xFF);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn the_summary_records_the_sha256_of_the_saved_weights() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(&dir.path().join("run"));
    let summary = read_json(&run.join("summary.json"));
    let recorded = summary["model_sha256"].as_str().expect("model_sha256 in summary.json");
    assert_eq!(recorded, file_sha256(&run.join("model.bpk")).unwrap());
    assert_eq!(recorded.len(), 64);
    assert!(summary.get("saving_model_sha256").is_none(), "{summary}");
}

#[test]
fn weights_changed_after_the_save_are_refused_by_every_use() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(&dir.path().join("run"));
    let image = digit_image(dir.path());
    let model = run.join("model.bpk");
    let size = std::fs::metadata(&model).unwrap().len() as usize;
    overwrite(&model, size / 2, 4);
    assert_each_refused(uses(&run, &image), &["model.bpk", "does not match the checksum recorded when it was saved", "damaged"]);
    let out = dir.path().join("export");
    let output = depthlab(&["export", "--run", run.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(!output.status.success(), "export: {}", stdout(&output));
    assert!(stderr(&output).contains("does not match the checksum"), "{}", stderr(&output));
}

#[test]
fn normalisation_that_overflows_is_refused_naming_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(&dir.path().join("run"));
    let image = digit_image(dir.path());
    let train_json = run.join("train.json");
    let original = read_json(&train_json);
    let good_mean = original["dataset"]["normalization"]["mean"].clone();
    let good_std = original["dataset"]["normalization"]["std"].clone();
    // A deviation below f32's smallest normal number is 0 to the lab's
    // arithmetic (it flushes subnormals), so it is refused as one.
    for (mean, std, words) in
        [(serde_json::json!([3e38]), good_std, "infinities"), (good_mean, serde_json::json!([1e-45]), "must be positive")]
    {
        let mut record = original.clone();
        record["dataset"]["normalization"] = serde_json::json!({ "mean": mean, "std": std });
        std::fs::write(&train_json, record.to_string()).unwrap();
        assert_each_refused(uses(&run, &image), &["train.json", "dataset.normalization", words]);
    }
}

/// A run saved before the checksum was recorded loads unchecked; weights
/// that give NaN logits are still refused, never scored.
#[test]
fn a_run_without_a_checksum_still_classifies_and_nan_logits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(&dir.path().join("run"));
    let image = digit_image(dir.path());
    let summary_path = run.join("summary.json");
    let mut summary = read_json(&summary_path);
    summary.as_object_mut().unwrap().remove("model_sha256");
    std::fs::write(&summary_path, summary.to_string()).unwrap();
    let output = depthlab(&["classify", "--run", run.to_str().unwrap(), "--image", image.to_str().unwrap(), "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let v: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert!(v["predictions"].as_array().unwrap().iter().all(|p| p["probability"].as_f64().is_some()), "{v}");
    // Every weight after the first quarter of the file NaN (0xFF bytes).
    let model = run.join("model.bpk");
    let size = std::fs::metadata(&model).unwrap().len() as usize;
    overwrite(&model, size / 4, size - size / 4);
    let [classify, lesion, _] = uses(&run, &image);
    assert_each_refused([classify, lesion], &["logits", "not a finite number"]);
}
