//! The exit status says what kind of error ended a command (README, "Exit
//! status 2 means bad input (a message says what), 3 a run that diverged, 1
//! a run or file that failed"): each case here runs the real binary and
//! checks the status and the message together. None of them trains.

use std::path::Path;

mod common;

use common::{assert_refused, depthlab};

/// Writes `text` to `dir/name` and returns the path as a string.
fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// `train` of a small net on `data` into `dir/run`, which must stay unwritten.
fn train_on(dir: &Path, data: &str, arch: &str) -> std::process::Output {
    let out = dir.join("run");
    let output =
        depthlab(&["train", "--arch", arch, "--data", data, "--backend", "cpu", "--max-steps", "1", "--out", out.to_str().unwrap()]);
    assert!(!out.join("train.json").exists(), "{data}: nothing is written for a refused run");
    output
}

#[test]
fn an_unknown_arch_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let output = train_on(dir.path(), "digits", "no-such-net");
    assert_refused(&output, 2, &["'no-such-net' is not a preset (families: plain-N, resnet-N", "try `depthlab presets`"]);
    let output = depthlab(&["inspect", "resnet-21"]);
    assert_refused(&output, 2, &["resnet-21 is not a valid resnet preset (depth 6n+2)"]);
}

/// A data file that cannot be read as data is bad input (2), whichever
/// command reads it, through the data error's own kind.
#[test]
fn a_malformed_data_file_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let nan = write(dir.path(), "nan.csv", "a,b,label\n1,2,x\n3,nan,y\n5,6,x\n7,8,y\n9,9,x\n");
    let truncated = write(dir.path(), "truncated.csv", "a,b,label\n1,2,x\n3,4,y\n5,6");
    let cases = [
        (format!("csv:{nan}"), "nan.csv: line 3, column 'b': missing value 'nan' (fill or drop the row: every feature needs a number)"),
        (format!("csv:{truncated}"), "truncated.csv: line 4: 2 cells where the header names 3 columns"),
        (format!("csv:{}", dir.path().join("absent.csv").display()), "absent.csv: cannot open"),
        (format!("mnist:{}", dir.path().join("absent").display()), "absent: no such folder"),
    ];
    for (data, words) in &cases {
        assert_refused(&train_on(dir.path(), data, "plain-mlp-4"), 2, &[words]);
    }
    // The same file, read by a sweep (run here or planned) and by an analysis.
    let (data, words) = &cases[0];
    for plan in [false, true] {
        let out = dir.path().join(format!("sweep-{plan}"));
        let mut args = vec!["sweep", "--families", "plain-mlp", "--depths", "4", "--data", data, "--out", out.to_str().unwrap()];
        if plan {
            args.push("--plan");
        }
        assert_refused(&depthlab(&args), 2, &[words]);
        assert!(!out.join("sweep.json").exists(), "nothing planned");
    }
    assert_refused(&depthlab(&["paths", "--arch", "resnet-mlp-4", "--data", data]), 2, &[words]);
    // A `--data` that names no data set is a usage error, also 2.
    assert_refused(&train_on(dir.path(), "imagenet", "plain-8"), 2, &["'imagenet' is not a dataset"]);
}

/// A missing run folder: `classify` fails (1), as it does for a run folder
/// that does not read; `export` and the analyses refuse their input (2).
#[test]
fn a_missing_run_folder_keeps_each_commands_status() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-run");
    let run = missing.to_str().unwrap();
    let image = write(dir.path(), "x.png", "not read");
    assert_refused(&depthlab(&["classify", "--run", run, "--image", &image]), 1, &["no-such-run: no such run folder"]);
    let out = dir.path().join("exported");
    assert_refused(&depthlab(&["export", "--run", run, "--out", out.to_str().unwrap()]), 2, &["no-such-run: no such run folder"]);
    assert!(!out.exists(), "nothing exported");
    assert_refused(&depthlab(&["lesion", "--run", run]), 2, &["no-such-run: no such run folder"]);
    assert_refused(&depthlab(&["runs", run]), 2, &["no-such-run: no such folder"]);
}

#[test]
fn counts_past_their_bounds_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let sweep = |flags: &[&str]| {
        let mut args = vec!["sweep", "--data", "digits", "--out", out.to_str().unwrap()];
        args.extend_from_slice(flags);
        depthlab(&args)
    };
    assert_refused(&sweep(&["--depths", "0"]), 2, &["--depths: depth 0 is out of range: depths are 1 to 1202 (the deepest preset)"]);
    assert_refused(&sweep(&["--depths", "99999999999999999999"]), 2, &["depth 99999999999999999999 is out of range"]);
    assert_refused(&sweep(&["--seeds", "5000"]), 2, &["--seeds must be 1 to 1000, not 5000"]);
    assert_refused(&sweep(&["--families", "plain,nope"]), 2, &["'nope' is not a family (plain, resnet"]);
    assert!(!out.exists(), "nothing written");
    let output = depthlab(&["train", "--arch", "plain-8", "--data", "digits", "--threads", "0"]);
    assert_refused(&output, 2, &["threads must be at least 1"]);
    let output = depthlab(&["bench", "--threads", "2000", "--archs", "plain-20"]);
    assert_refused(&output, 2, &["2000 threads is more than the limit of 1024"]);
}
