//! Sweeps beyond one process: planned for other machines and collected,
//! resumed, refused when they would overwrite, merged when depths coincide;
//! run folders listed with a true status.

use std::path::Path;

use serde_json::Value;

mod common;

use common::{assert_refused, depthlab, stderr, stdout};

const QUICK: [&str; 10] = ["--data", "digits", "--backend", "cpu", "--max-steps", "8", "--batch-size", "64", "--probe-every", "4"];

fn sweep(extra: &[&str]) -> std::process::Output {
    let mut args = vec!["sweep", "--families", "plain,resnet", "--depths", "8,14"];
    args.extend(QUICK);
    args.extend(extra);
    depthlab(&args)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `--plan` trains nothing and writes jobs any executor can run; run in
/// reverse order two at a time and collected, they give the sweep.csv that
/// `sweep` itself writes.
#[test]
fn a_planned_sweep_run_by_xargs_collects_to_the_same_csv() {
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path().join("here");
    let output = sweep(&["--out", here.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));

    let planned = dir.path().join("planned");
    let output = sweep(&["--out", planned.to_str().unwrap(), "--plan"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let jobs = read(&planned.join("jobs.txt"));
    assert_eq!(jobs.lines().count(), 4);
    assert!(jobs.lines().all(|l| l.contains(" train --arch ") && l.contains("--seed 1")), "{jobs}");
    assert!(read(&planned.join("sweep.sbatch")).contains("#SBATCH --array=0-3"));
    let pending = read(&planned.join("sweep.csv"));
    assert_eq!(pending.lines().filter(|l| l.ends_with(",pending")).count(), 4, "{pending}");
    assert!(!planned.join("plain-8-s1").exists(), "--plan trains nothing");

    let reversed: String = jobs.lines().rev().map(|l| format!("{l}\n")).collect();
    let mut xargs = std::process::Command::new("xargs")
        .args(["-P", "2", "-I", "CMD", "bash", "-c", "CMD"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(xargs.stdin.as_mut().unwrap(), reversed.as_bytes()).unwrap();
    drop(xargs.stdin.take());
    assert!(xargs.wait().unwrap().success());

    let output = depthlab(&["sweep", "--collect", planned.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("4 runs: 4 completed"), "{}", stderr(&output));
    assert_eq!(read(&planned.join("sweep.csv")), read(&here.join("sweep.csv")));
    assert!(planned.join("sweep.png").is_file());

    // A run folder that no longer reads is listed as unreadable, with why,
    // never as pending (its run did start).
    std::fs::write(planned.join("plain-8-s1").join("train.json"), "{").unwrap();
    let output = depthlab(&["sweep", "--collect", planned.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("3 completed, 1 unreadable") || stderr(&output).contains("1 unreadable, 3 completed"),
        "{}",
        stderr(&output)
    );
    assert!(stderr(&output).contains("warning: unreadable run folder:") && stderr(&output).contains("train.json"), "{}", stderr(&output));
    let csv = read(&planned.join("sweep.csv"));
    assert!(csv.lines().any(|l| l.starts_with("plain,8,1,") && l.ends_with(",unreadable")), "{csv}");
    assert!(!csv.contains(",pending"), "{csv}");
}

/// Plans the 2 x 2 sweep in `out` and runs its first job by hand (from
/// jobs.txt): that run's weights and when they were written.
fn plan_and_run_the_first_job(out: &Path) -> (std::path::PathBuf, std::time::SystemTime) {
    let output = sweep(&["--out", out.to_str().unwrap(), "--plan"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let first = read(&out.join("jobs.txt")).lines().next().unwrap().to_string();
    assert!(std::process::Command::new("bash").args(["-c", &first]).output().unwrap().status.success());
    let weights = out.join("plain-8-s1").join("model.bpk");
    let before = std::fs::metadata(&weights).unwrap().modified().unwrap();
    (weights, before)
}

/// A sweep folder is not overwritten; `--resume` keeps what finished and
/// runs the rest; a resumed sweep with other settings is refused.
#[test]
fn a_sweep_resumes_keeping_its_finished_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let out_s = out.to_str().unwrap();
    let (weights, before) = plan_and_run_the_first_job(&out);

    let output = sweep(&["--out", out_s]);
    assert_refused(&output, 2, &["already holds a sweep", "--resume"]);
    let output =
        depthlab(&["sweep", "--families", "plain", "--depths", "8", "--data", "digits", "--backend", "cpu", "--out", out_s, "--resume"]);
    assert_refused(&output, 2, &["other settings"]);

    let output = sweep(&["--out", out_s, "--resume"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(std::fs::metadata(&weights).unwrap().modified().unwrap(), before, "the finished run was kept");
    let csv = read(&out.join("sweep.csv"));
    assert_eq!(csv.lines().filter(|l| l.ends_with(",completed")).count(), 4, "{csv}");
}

/// A plan cut short can be planned again: `--plan` on the folder advises
/// `--resume`, and `--plan --resume` writes jobs for the runs that have not
/// finished only, keeping the finished ones.
#[test]
fn a_plan_is_planned_again_for_the_runs_left() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let out_s = out.to_str().unwrap();
    let (weights, before) = plan_and_run_the_first_job(&out);

    let output = sweep(&["--out", out_s, "--plan"]);
    assert_refused(&output, 2, &["already holds a sweep", "--resume"]);
    let output = sweep(&["--out", out_s, "--plan", "--resume"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("planned 3 runs"), "{}", stderr(&output));
    let jobs = read(&out.join("jobs.txt"));
    assert_eq!(jobs.lines().count(), 3, "{jobs}");
    assert!(!jobs.contains("plain-8-s1"), "{jobs}");
    assert!(read(&out.join("sweep.sbatch")).contains("#SBATCH --array=0-2"));
    assert_eq!(std::fs::metadata(&weights).unwrap().modified().unwrap(), before, "the finished run was kept");

    for line in jobs.lines() {
        assert!(std::process::Command::new("bash").args(["-c", line]).output().unwrap().status.success(), "{line}");
    }
    let output = sweep(&["--out", out_s, "--plan", "--resume"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("nothing to plan"), "{}", stderr(&output));
}

/// Resuming never deletes a finished run it cannot read: a run whose
/// summary.json was damaged is set aside whole (weights and all) and
/// trained again in a fresh folder.
#[test]
fn resuming_sets_an_unreadable_run_aside_instead_of_deleting_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let out_s = out.to_str().unwrap();
    let mut args = vec!["sweep", "--families", "plain", "--depths", "8"];
    args.extend(QUICK);
    args.extend(["--out", out_s]);
    let output = depthlab(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = out.join("plain-8-s1");
    let weights = std::fs::read(run.join("model.bpk")).unwrap();
    std::fs::write(run.join("summary.json"), r#"{"status": "completed", "steps": 3"#).unwrap();

    args.push("--resume");
    let output = depthlab(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    let aside = out.join("plain-8-s1.unreadable-1");
    assert!(stderr(&output).contains("plain-8-s1.unreadable-1"), "{}", stderr(&output));
    assert_eq!(std::fs::read(aside.join("model.bpk")).unwrap(), weights, "the unreadable run's weights are kept");
    assert!(read(&aside.join("metrics.csv")).lines().count() > 1);
    let csv = read(&out.join("sweep.csv"));
    assert_eq!(csv.lines().filter(|l| l.ends_with(",completed")).count(), 1, "{csv}");
    assert!(run.join("model.bpk").is_file(), "the run trained again");
}

/// Depths that give the same net run once, with a notice; no row with
/// depth 0.
#[test]
fn depths_that_round_together_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let mut args = vec!["sweep", "--families", "plain,resnet", "--depths", "7,8"];
    args.extend(QUICK);
    args.extend(["--out", out.to_str().unwrap()]);
    let output = depthlab(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("plain: depth 8 gives plain-8 as depth 7 does; it runs once"), "{}", stderr(&output));
    let csv = read(&out.join("sweep.csv"));
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows.iter().all(|r| r.starts_with("plain,8,") || r.starts_with("resnet,8,")), "{csv}");
}

/// `runs` lists every run folder with a true status: a killed run is
/// interrupted, a broken folder is listed with its error.
#[cfg(unix)]
#[test]
fn runs_lists_folders_with_their_true_status() {
    let dir = tempfile::tempdir().unwrap();
    common::trained_run(&dir.path().join("done"));
    let killed = dir.path().join("nested").join("killed");
    let mut child = common::start_training(&killed, "1000");
    common::wait_for_rows(&killed, 80, true);
    child.kill().unwrap();
    child.wait().unwrap();
    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("train.json"), "{").unwrap();

    let output = depthlab(&["runs", dir.path().to_str().unwrap(), "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let rows: Vec<Value> = serde_json::from_str(&stdout(&output)).unwrap();
    let status = |name: &str| rows.iter().find(|r| r["dir"].as_str().unwrap().ends_with(name)).map(|r| r["status"].clone());
    assert_eq!(status("done"), Some(Value::from("completed")));
    assert_eq!(status("killed"), Some(Value::from("interrupted")));
    assert_eq!(status("broken"), Some(Value::from("unreadable")));
    let table = stdout(&depthlab(&["runs", dir.path().to_str().unwrap()]));
    assert!(table.contains("nested/killed") && table.contains("interrupted"), "{table}");
    assert_refused(&depthlab(&["runs", "/nonexistent/runs"]), 2, &["no such folder"]);

    // --csv: one tidy CSV that Python's csv module reads, a row per run
    // folder, the settings beside the final metrics.
    let csv = depthlab(&["runs", dir.path().to_str().unwrap(), "--csv"]);
    assert!(csv.status.success(), "{}", stderr(&csv));
    let check = r#"
import csv, sys
rows = list(csv.DictReader(sys.stdin))
assert len(rows) == 3, rows
by = {r["dir"].rsplit("/", 1)[1]: r for r in rows}
assert by["done"]["status"] == "completed" and by["done"]["arch"] == "plain-8", by["done"]
assert float(by["done"]["final_test_accuracy"]) > 0 and by["done"]["max_steps"] == "4", by["done"]
assert by["done"]["backend"] == "cpu" and by["done"]["dataset"] == "digits" and by["done"]["lr"] == "0.05", by["done"]
assert by["killed"]["status"] == "interrupted" and by["killed"]["arch"] == "resnet-8", by["killed"]
assert by["broken"]["status"] == "unreadable" and by["broken"]["error"], by["broken"]
print("ok")
"#;
    let mut python = std::process::Command::new("python3")
        .args(["-c", check])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    std::io::Write::write_all(python.stdin.as_mut().unwrap(), &csv.stdout).unwrap();
    let read = python.wait_with_output().unwrap();
    assert!(read.status.success(), "Python's csv module disagrees: {}\n{}", String::from_utf8_lossy(&read.stderr), stdout(&csv));
    assert_refused(&depthlab(&["runs", dir.path().to_str().unwrap(), "--csv", "--json"]), 2, &["cannot be used with"]);
}

/// A folder holding a run is refused unless `--overwrite`, which replaces it.
#[test]
fn train_overwrites_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let train = |extra: &[&str]| {
        let mut args =
            vec!["train", "--arch", "plain-8", "--data", "digits", "--backend", "cpu", "--max-steps", "3", "--out", run.to_str().unwrap()];
        args.extend(extra);
        depthlab(&args)
    };
    assert!(train(&[]).status.success());
    assert_refused(&train(&[]), 1, &["already holds a run", "--overwrite"]);
    let output = train(&["--overwrite", "--seed", "5"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let record: Value = serde_json::from_str(&read(&run.join("train.json"))).unwrap();
    assert_eq!(record["config"]["seed"], Value::from(5));
}

/// Two runs at once give the rows one at a time gives.
#[test]
fn two_jobs_give_the_same_sweep_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let csv = |jobs: &str| {
        let out = dir.path().join(format!("jobs-{jobs}"));
        let output = sweep(&["--out", out.to_str().unwrap(), "--jobs", jobs]);
        assert!(output.status.success(), "{}", stderr(&output));
        read(&out.join("sweep.csv"))
    };
    let one = csv("1");
    assert_eq!(one.lines().filter(|l| l.ends_with(",completed")).count(), 4, "{one}");
    assert_eq!(csv("2"), one);
}

/// Ctrl-C stops every run in progress of a sweep with --jobs 2: each is
/// saved as stopped, the rest stay pending, exit 130.
#[cfg(unix)]
#[test]
fn ctrl_c_stops_every_run_of_a_concurrent_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_depthlab"))
        .args([
            "sweep",
            "--families",
            "plain,resnet",
            "--depths",
            "8,14",
            "--data",
            "digits",
            "--backend",
            "cpu",
            "--epochs",
            "1000",
            "--jobs",
            "2",
        ])
        .args(["--batch-size", "32", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for run in ["plain-8-s1", "resnet-8-s1"] {
        common::wait_for_rows(&out.join(run), 20, false);
    }
    common::signal(&child, libc::SIGINT);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    let csv = read(&out.join("sweep.csv"));
    assert_eq!(csv.lines().filter(|l| l.ends_with(",stopped")).count(), 2, "{csv}");
    assert_eq!(csv.lines().filter(|l| l.ends_with(",pending")).count(), 2, "{csv}");
    for run in ["plain-8-s1", "resnet-8-s1"] {
        assert!(out.join(run).join("model.bpk").is_file(), "{run} saved its weights");
    }
}
