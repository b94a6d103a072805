//! Every count a user types is bounded, and every Slurm value checked,
//! before any work: a clear refusal (exit 2, the limit on stderr, no panic)
//! or a job of bounded size. Analyses expected to run long say how long and
//! wait for `--yes`. A closed stdout pipe ends a command quietly.
//!
//! Each command runs under a deadline, so a count that would hang fails
//! the test instead of stalling it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

mod common;

use common::{assert_refused, stderr, stdout, train_on_digits};

/// Runs the binary with `args`, killed (and the test failed) after 30 s.
fn run(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_depthlab"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the depthlab binary runs");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("depthlab {args:?} ran past 30 s: a count is not bounded");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A clear refusal (exit 2, every word on stderr, no panic, no abort), or
/// else a success.
fn refused_or_ran(output: &Output, words: &[&str]) -> bool {
    let text = stderr(output);
    assert!(!text.contains("internal error") && !text.contains("panicked"), "{text}");
    match output.status.code() {
        Some(0) => false,
        Some(2) => {
            for word in words {
                assert!(text.contains(word), "'{word}' missing from: {text}");
            }
            true
        }
        other => panic!("exit {other:?} (neither done nor a clear refusal): {text}"),
    }
}

fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

/// resnet-8, 25 steps on the digits, once for the file.
fn small_run() -> &'static str {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| train_on_digits("resnet-8", &scratch().join("resnet-8"), &["--max-steps", "25"])).to_str().unwrap()
}

/// resnet-110 after one step: every evaluation of it is slow.
fn deep_run() -> &'static str {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| train_on_digits("resnet-110", &scratch().join("resnet-110"), &["--max-steps", "1", "--residual-init", "zero"]))
        .to_str()
        .unwrap()
}

/// A fresh folder for a planned sweep.
fn fresh(name: &str) -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    scratch().join(format!("{name}-{n}")).display().to_string()
}

/// `sweep --plan` of resnet at `depths` on the digits into a fresh folder,
/// `extra` added.
fn plan_depths(depths: &str, extra: &[&str]) -> (Output, PathBuf) {
    let out = fresh("plan");
    let depths = format!("--depths={depths}");
    let mut args = vec!["sweep", "--families", "resnet", &depths, "--data", "digits", "--max-steps", "2", "--plan"];
    args.extend_from_slice(extra);
    args.extend(["--out", &out]);
    (run(&args), PathBuf::from(out))
}

fn plan(extra: &[&str]) -> (Output, PathBuf) {
    plan_depths("8", extra)
}

/// Values for a count: in range, zero, negative, fractional, not a number,
/// huge, past u64, with line breaks.
const ODD_COUNTS: &[&str] = &[
    "0",
    "-1",
    "-0",
    "1.5",
    "1e3",
    "",
    " ",
    "abc",
    "0x10",
    "+1",
    "10001",
    "1000000",
    "1000000000000",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "1\n2",
    "3\nrm -rf /",
];

#[test]
fn lesion_draws_past_the_limit_are_refused_before_any_work() {
    for draws in ["1000000000000", "1000000", "10001"] {
        assert_refused(&run(&["lesion", "--run", small_run(), "--draws", draws]), 2, &["--draws must be 1 to 10000"]);
    }
}

#[test]
fn a_long_lesion_study_or_landscape_says_how_long_and_waits_for_yes() {
    let words = ["would take about", "hours", "--yes"];
    assert_refused(&run(&["lesion", "--run", deep_run(), "--draws", "10000"]), 2, &words);
    assert_refused(&run(&["landscape", "--run", deep_run(), "--grid", "201", "--line-points", "0"]), 2, &words);
}

#[test]
fn paths_through_a_thousand_layers_with_many_samples_says_how_long_and_waits_for_yes() {
    let output = run(&["paths", "--arch", "resnet-1202", "--data", "digits", "--samples", "10000", "--batch-size", "2"]);
    assert_refused(&output, 2, &["would take about", "days", "samples", "--yes"]);
}

#[test]
fn seeds_past_the_limit_are_refused_before_planning() {
    let (output, out) = plan(&["--seeds", "1000000000"]);
    assert_refused(&output, 2, &["--seeds must be 1 to 1000"]);
    assert!(!out.exists(), "nothing planned");
    let out = fresh("runs");
    let all = "plain,resnet,highway,fractal,densenet,plain-mlp,highway-mlp,resnet-sd,preact-resnet,densenet-bc";
    let output = run(&["sweep", "--families", all, "--depths", "8,20,32", "--seeds", "1000", "--data", "digits", "--plan", "--out", &out]);
    assert_refused(&output, 2, &["30000 runs", "at most 10000"]);
    let output = run(&[
        "sweep",
        "--families",
        "resnet",
        "--depths",
        "8",
        "--seeds",
        "2",
        "--seed",
        "18446744073709551615",
        "--data",
        "digits",
        "--plan",
        "--out",
        &out,
    ]);
    assert_refused(&output, 2, &["go past the largest seed"]);
}

#[test]
fn depths_are_parsed_without_overflow_and_past_the_deepest_preset_refused() {
    for depth in ["18446744073709551615", "18446744073709551616", "100000", "1203", "0"] {
        let (output, out) = plan_depths(depth, &[]);
        assert_refused(&output, 2, &["--depths", depth, "depths are 1 to 1202"]);
        assert!(!out.exists(), "{depth}: nothing planned");
    }
    let (output, _) = plan_depths(&vec!["8"; 65].join(","), &[]);
    assert_refused(&output, 2, &["65 depths", "1 to 64"]);
}

#[test]
fn a_depth_far_from_any_preset_of_a_family_is_announced() {
    let out = fresh("far");
    let output = run(&["sweep", "--families", "fractal,resnet", "--depths", "1000", "--data", "digits", "--plan", "--out", &out]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("fractal: no preset near depth 1000; fractal-5 (depth 81) is the nearest it offers"),
        "{}",
        stderr(&output)
    );
    assert!(!stderr(&output).contains("resnet: no preset near"), "resnet-998 is near: {}", stderr(&output));
}

#[test]
fn slurm_values_that_could_end_an_sbatch_line_are_refused() {
    for flag in ["--slurm-time", "--slurm-partition", "--slurm-mem"] {
        for value in ["01:00:00\nrm -rf /", "4G\nrm -rf /", "gpu\nrm -rf /", "$(reboot)", "a b", "x;y"] {
            let (output, out) = plan(&[flag, value]);
            assert_refused(&output, 2, &[flag, "give "]);
            assert!(!out.join("sweep.sbatch").exists(), "{flag} {value:?}: no script written");
        }
    }
    let out = format!("{}\nrm -rf {}", fresh("folder"), scratch().display());
    let output = run(&["sweep", "--families", "resnet", "--depths", "8", "--data", "digits", "--plan", "--out", &out]);
    assert_refused(&output, 2, &["control character", "#SBATCH"]);
}

#[test]
fn landscape_grids_are_odd_and_the_centre_is_the_trained_weights() {
    for grid in ["2", "4", "20", "200"] {
        assert_refused(&run(&["landscape", "--run", small_run(), "--grid", grid]), 2, &["--grid must be odd", "centre"]);
    }
    let centre = |grid: &str| {
        let output = run(&["landscape", "--run", small_run(), "--grid", grid, "--subset", "50", "--line-points", "0", "--json"]);
        assert!(output.status.success(), "{}", stderr(&output));
        let v: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
        let middle = v["loss"].as_array().unwrap().len() / 2;
        assert_eq!(v["loss"][middle][middle], v["centre_loss"], "grid {grid}");
        assert_eq!(v["alphas"][middle], serde_json::json!(0.0));
        v["centre_loss"].as_f64().unwrap()
    };
    let one = centre("1");
    assert_eq!(centre("3"), one);
    assert_eq!(centre("5"), one);
}

#[cfg(unix)]
#[test]
fn a_closed_stdout_pipe_ends_a_command_quietly() {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: a fresh pipe; each end is owned once below.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read_end);
    let empty = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_depthlab"))
        .args(["runs", empty.path().to_str().unwrap(), "--json"])
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut text).unwrap();
    let status = child.wait().unwrap();
    assert!(!text.contains("error"), "{text}");
    assert!(status.success() || std::os::unix::process::ExitStatusExt::signal(&status) == Some(libc::SIGPIPE), "{status:?}: {text}");
}

#[test]
fn a_training_run_whose_output_pipe_closes_still_finishes_and_saves() {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: a fresh pipe; each end is owned once below.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read_end);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // Like `depthlab train … 2>&1 | head -1` once head has gone.
    let status = Command::new(env!("CARGO_BIN_EXE_depthlab"))
        .args(["train", "--arch", "plain-8", "--data", "digits", "--backend", "cpu", "--max-steps", "6", "--out"])
        .arg(&out)
        .stdout(Stdio::from(write_end.try_clone().unwrap()))
        .stderr(Stdio::from(write_end))
        .status()
        .unwrap();
    assert!(status.success(), "{status:?}");
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(summary.contains("\"completed\""), "{summary}");
    assert!(out.join("model.bpk").is_file());
}

// ---------------------------------------------------------------------------
// Every value of every count

#[test]
fn any_seeds_or_depths_plan_a_bounded_sweep_or_are_refused() {
    for value in ODD_COUNTS.iter().chain(&["1", "3"]) {
        let (output, out) = plan(&[&format!("--seeds={value}")]);
        if !refused_or_ran(&output, &["--seeds"]) {
            let jobs = std::fs::read_to_string(out.join("jobs.txt")).unwrap();
            assert!((1..=1000).contains(&jobs.lines().count()), "--seeds {value:?}: {} runs", jobs.lines().count());
        }
    }
    for value in ODD_COUNTS.iter().chain(&["1", "8,20", "1202", " 14 ", "8,,20", "8,-1", "20\n"]) {
        let out = fresh("depths");
        let depths = format!("--depths={value}");
        let args = ["sweep", "--families", "resnet,fractal", &depths, "--data", "digits", "--plan", "--out", &out];
        let output = run(&args);
        if !refused_or_ran(&output, &["--depths"]) {
            let jobs = std::fs::read_to_string(Path::new(&out).join("jobs.txt")).unwrap();
            assert!((1..=4).contains(&jobs.lines().count()), "--depths {value:?}: {jobs}");
        }
    }
}

#[test]
fn any_draws_samples_or_grid_run_a_small_analysis_or_are_refused() {
    let run_dir = small_run();
    for value in ODD_COUNTS.iter().chain(&["1", "2"]) {
        let draws = format!("--draws={value}");
        refused_or_ran(&run(&["lesion", "--run", run_dir, &draws, "--test-examples", "20", "--json"]), &["--draws"]);
        let samples = format!("--samples={value}");
        refused_or_ran(&run(&["paths", "--run", run_dir, &samples, "--batch-size", "2", "--json"]), &["--samples"]);
        let batch = format!("--batch-size={value}");
        refused_or_ran(&run(&["paths", "--run", run_dir, "--samples", "1", &batch, "--json"]), &["--batch-size"]);
    }
    for value in ODD_COUNTS.iter().chain(&["1", "3", "2", "202", "203"]) {
        let grid = format!("--grid={value}");
        let output = run(&["landscape", "--run", run_dir, &grid, "--subset", "20", "--line-points", "0", "--json"]);
        if !refused_or_ran(&output, &["--grid"]) {
            let v: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
            let side = v["alphas"].as_array().unwrap().len();
            assert!(side % 2 == 1 && side <= 201, "--grid {value:?}: {side}");
        }
    }
}

#[test]
fn any_slurm_value_is_written_on_its_own_sbatch_line_or_refused() {
    let long = "1".repeat(1000);
    let values = [
        "01:00:00",
        "30",
        "2-00:00:00",
        "UNLIMITED",
        "gpu",
        "gpu,cpu",
        "4G",
        "500m",
        "0",
        "",
        " ",
        "\n",
        "a\nb",
        "01:00:00\nrm -rf /",
        "01:00:00\r\nrm -rf /",
        "$(id)",
        "`id`",
        "a;b",
        "a&b",
        "a|b",
        "a b",
        "'",
        "\"",
        "#",
        "\\",
        "gpu,",
        "-1",
        "4GB",
        &long,
    ];
    for flag in ["--slurm-time", "--slurm-partition", "--slurm-mem"] {
        for value in values {
            let (output, out) = plan(&[&format!("{flag}={value}")]);
            if refused_or_ran(&output, &[flag]) {
                continue;
            }
            let script = std::fs::read_to_string(out.join("sweep.sbatch")).unwrap();
            let known = ["#", "set -euo pipefail", "line=$(sed -n ", "exec bash -c \"$line\""];
            assert!(script.lines().all(|l| known.iter().any(|k| l.starts_with(k))), "{flag} {value:?}:\n{script}");
            let line = format!("#SBATCH --{}={value}\n", flag.trim_start_matches("--slurm-"));
            assert!(script.contains(&line), "{flag} {value:?}:\n{script}");
        }
    }
}
