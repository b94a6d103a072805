//! The analyses of why shortcuts work, as the command line runs them:
//! `depthlab lesion`, `depthlab paths`, `depthlab landscape`. Everything on
//! the embedded 8x8 digits with tiny budgets.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

mod common;

use common::{assert_refused, depthlab, stderr, stdout, train_on_digits};

/// resnet-14 and plain-14 trained the same way (3 epochs on the digits,
/// same seed), once for the whole file, under the target's scratch folder.
fn trained_pair() -> &'static (PathBuf, PathBuf) {
    static PAIR: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("analysis-runs");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        let train = |arch: &str| train_on_digits(arch, &dir.join(arch), &["--epochs", "3", "--seed", "1"]);
        (train("resnet-14"), train("plain-14"))
    })
}

fn json(args: &[&str]) -> Value {
    let output = depthlab(args);
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    serde_json::from_str(&stdout(&output)).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout(&output)))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 }
}

fn median_rise(report: &Value) -> f64 {
    let base = report["baseline_test_error"].as_f64().unwrap();
    median(report["blocks"].as_array().unwrap().iter().filter_map(|b| b["test_error"].as_f64()).map(|e| e - base).collect())
}

#[test]
fn removing_one_block_hurts_a_resnet_far_less_than_its_plain_twin() {
    let (resnet, plain) = trained_pair();
    let out = tempfile::tempdir().unwrap();
    let r = json(&["lesion", "--run", resnet.to_str().unwrap(), "--json", "--draws", "2", "--out", out.path().to_str().unwrap()]);
    let p = json(&["lesion", "--run", plain.to_str().unwrap(), "--json", "--draws", "2"]);
    // resnet-14: 6 residual blocks, all removable; stem and classifier kept.
    let blocks = r["blocks"].as_array().unwrap();
    assert_eq!(blocks.iter().filter(|b| b["test_error"].is_number()).count(), 6);
    assert!(blocks.iter().any(|b| b["skipped"].as_str().is_some_and(|s| s.contains("classifier"))));
    assert_eq!(r["random"].as_array().unwrap().len(), 6);
    assert_eq!(r["random"][5]["k"], 6);
    // plain-14: the two stride-2 blocks change the shape and stay.
    assert_eq!(p["blocks"].as_array().unwrap().iter().filter(|b| b["test_error"].is_number()).count(), 4);
    let (rise_resnet, rise_plain) = (median_rise(&r), median_rise(&p));
    eprintln!("median rise in test error: resnet-14 {rise_resnet:.4}, plain-14 {rise_plain:.4}");
    assert!(rise_plain > 0.2, "removing a plain block should ruin plain-14: {rise_plain}");
    assert!(rise_resnet < 0.5 * rise_plain, "resnet {rise_resnet} vs plain {rise_plain}");
    for file in ["lesion.json", "lesion.csv", "lesion.png"] {
        assert!(out.path().join(file).is_file(), "{file}");
    }
    let csv = std::fs::read_to_string(out.path().join("lesion.csv")).unwrap();
    assert!(csv.starts_with("kind,index,name,k,test_error,std,draws,skipped\nbaseline,"), "{csv}");
    // A bounded test set, and the text report.
    let output = depthlab(&["lesion", "--run", resnet.to_str().unwrap(), "--test-examples", "50", "--draws", "1"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("on 50 test images"), "{}", stdout(&output));
}

#[test]
fn paths_on_resnet_56_count_binomially_and_the_gradient_per_path_falls_with_length() {
    let v = json(&["paths", "--arch", "resnet-56", "--data", "digits", "--samples", "2", "--batch-size", "16", "--json"]);
    assert_eq!(v["blocks"], 27);
    let lengths = v["lengths"].as_array().unwrap();
    assert_eq!(lengths.len(), 28);
    let mut c = 1.0f64;
    for (k, l) in lengths.iter().enumerate() {
        assert_eq!(l["length"], k);
        assert!((l["count"].as_f64().unwrap() - c).abs() < 1e-6 * c, "C(27, {k})");
        c = c * (27 - k) as f64 / (k + 1) as f64;
        let (g, t) = (l["grad_per_path"].as_f64().unwrap(), l["total"].as_f64().unwrap());
        assert!(g.is_finite() && g > 0.0, "length {k}: {g}");
        assert!((t - g * l["count"].as_f64().unwrap()).abs() <= 1e-9 * t.abs().max(1e-300));
    }
    // Falling with length: the mean log gradient of each third of the
    // lengths is below the previous third's, and the longest path carries
    // orders of magnitude less than the shortest.
    let logs: Vec<f64> = lengths.iter().map(|l| l["grad_per_path"].as_f64().unwrap().ln()).collect();
    let third = |i: usize| logs[i * 9..(i + 1) * 9].iter().sum::<f64>() / 9.0;
    assert!(third(0) > third(1) && third(1) > third(2), "{logs:?}");
    assert!(logs[27] < logs[0] - 3.0 * std::f64::consts::LN_10, "{logs:?}");
}

#[test]
fn landscape_of_a_trained_net_is_finite_with_the_trained_point_below_the_corners() {
    let (resnet, _) = trained_pair();
    let out = tempfile::tempdir().unwrap();
    let run = resnet.to_str().unwrap();
    let v = json(&[
        "landscape",
        "--run",
        run,
        "--grid",
        "5",
        "--subset",
        "100",
        "--line-points",
        "3",
        "--json",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(v["alphas"], serde_json::json!([-1.0, -0.5, 0.0, 0.5, 1.0]));
    let loss: Vec<Vec<f64>> = serde_json::from_value(v["loss"].clone()).unwrap();
    assert_eq!(loss.len(), 5);
    assert!(loss.iter().flatten().all(|l| l.is_finite() && *l >= 0.0), "{loss:?}");
    let corners = (loss[0][0] + loss[0][4] + loss[4][0] + loss[4][4]) / 4.0;
    assert!(loss[2][2] < corners, "centre {} vs corners {corners}", loss[2][2]);
    assert_eq!(v["centre_loss"].as_f64().unwrap(), loss[2][2]);
    let line: Vec<f64> = serde_json::from_value(v["interpolation"]["loss"].clone()).unwrap();
    assert_eq!(v["interpolation"]["t"], serde_json::json!([0.0, 0.5, 1.0]));
    assert!(line[2] < line[0], "training lowered the loss along the line: {line:?}");
    // One convention for batch norm on the plane and the line: the line's
    // end is the trained network, so its loss is the plane's centre.
    assert_eq!(line[2], v["centre_loss"].as_f64().unwrap(), "one trained loss, not two");
    for file in ["landscape.json", "landscape.csv", "interpolation.csv", "landscape.png"] {
        assert!(out.path().join(file).is_file(), "{file}");
    }
}

fn without_weights(run: &Path, dir: &Path) -> PathBuf {
    let copy = dir.join("no-weights");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(run).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "model.bpk" && entry.path().is_file() {
            std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
    }
    copy
}

#[test]
fn bad_input_is_refused_with_exit_2_and_a_clear_message() {
    let (resnet, _) = trained_pair();
    let dir = tempfile::tempdir().unwrap();
    let run = resnet.to_str().unwrap();
    let missing = dir.path().join("nothing-here");
    let missing = missing.to_str().unwrap();
    let bare = without_weights(resnet, dir.path());
    let bare = bare.to_str().unwrap();
    for command in [&["lesion", "--run"][..], &["paths", "--run"], &["landscape", "--run"]] {
        let mut args = command.to_vec();
        args.push(missing);
        assert_refused(&depthlab(&args), 2, &["no such run folder"]);
        let mut args = command.to_vec();
        args.push(bare);
        assert_refused(&depthlab(&args), 2, &["model.bpk", "no weights"]);
    }
    assert_refused(&depthlab(&["landscape", "--run", run, "--grid", "0"]), 2, &["--grid must be 1 to"]);
    assert_refused(&depthlab(&["landscape", "--run", run, "--grid", "100000"]), 2, &["--grid must be 1 to"]);
    assert_refused(&depthlab(&["landscape", "--run", run, "--subset", "0"]), 2, &["--subset must be 1 to"]);
    assert_refused(&depthlab(&["landscape", "--run", run, "--subset", "99999999"]), 2, &["--subset must be 1 to"]);
    assert_refused(&depthlab(&["lesion", "--run", run, "--test-examples", "0"]), 2, &["--test-examples"]);
    assert_refused(&depthlab(&["lesion", "--run", run, "--draws", "0"]), 2, &["--draws"]);
    assert_refused(&depthlab(&["paths", "--run", run, "--samples", "0"]), 2, &["--samples must be 1 to"]);
    assert_refused(&depthlab(&["paths", "--run", run, "--samples", "99999999"]), 2, &["--samples must be 1 to"]);
    assert_refused(&depthlab(&["paths", "--arch", "plain-20", "--data", "digits"]), 2, &["no residual blocks"]);
    assert_refused(&depthlab(&["paths", "--arch", "no-such-net", "--data", "digits"]), 2, &["not a preset"]);
    assert_refused(&depthlab(&["paths"]), 2, &["--arch"]);
}

/// A run trained on its first N examples (`--train-examples`) is analysed
/// on those N: the landscape's subset is drawn from them, and asking for
/// more is refused with the run's count.
#[test]
fn the_landscape_uses_the_examples_the_run_trained_on() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    train_on_digits("plain-8", &run, &["--max-steps", "3", "--train-examples", "40"]);
    let r = run.to_str().unwrap();
    let refused = depthlab(&["landscape", "--run", r, "--grid", "3", "--subset", "41", "--line-points", "0"]);
    assert_refused(&refused, 2, &["--subset must be 1 to 40 (the run's training images)"]);
    let v = json(&["landscape", "--run", r, "--grid", "3", "--subset", "40", "--line-points", "0", "--json"]);
    assert_eq!(v["subset"], 40);
}
