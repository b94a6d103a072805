//! Helpers shared by the command-line test files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the real binary with `args`.
pub fn depthlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_depthlab")).args(args).output().expect("the depthlab binary runs")
}

/// Runs the real binary with `args` and one environment variable set.
pub fn depthlab_with_env(args: &[&str], key: &str, value: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_depthlab")).args(args).env(key, value).output().expect("the depthlab binary runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts a clear refusal: the exit status, a message containing every
/// one of `words`, and no panic.
pub fn assert_refused(output: &Output, code: i32, words: &[&str]) {
    let text = stderr(output);
    assert_eq!(output.status.code(), Some(code), "exit status; stderr: {text}");
    assert!(!text.contains("panicked"), "a panic reached the user: {text}");
    for word in words {
        assert!(text.contains(word), "'{word}' missing from: {text}");
    }
}

/// Trains `arch` on the embedded digits on the CPU into `run`, with
/// `flags` added; fails the test, naming the net, if training fails.
pub fn train_on_digits(arch: &str, run: &Path, flags: &[&str]) -> std::path::PathBuf {
    let mut args = vec!["train", "--arch", arch, "--data", "digits", "--backend", "cpu"];
    args.extend_from_slice(flags);
    args.extend(["--out", run.to_str().unwrap()]);
    let output = depthlab(&args);
    assert!(output.status.success(), "training {arch}: {}", stderr(&output));
    run.to_path_buf()
}

/// A finished 4-step plain-8 run on the digits in `run` (returned).
pub fn trained_run(run: &Path) -> std::path::PathBuf {
    train_on_digits("plain-8", run, &["--max-steps", "4"])
}

/// A resnet-8 run on the digits writing to `run`, stderr piped.
pub fn training(run: &Path, epochs: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_depthlab"));
    command
        .args(["train", "--arch", "resnet-8", "--data", "digits", "--epochs", epochs, "--batch-size", "32", "--backend", "cpu", "--out"])
        .arg(run)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Starts [`training`].
pub fn start_training(run: &Path, epochs: &str) -> std::process::Child {
    training(run, epochs).spawn().unwrap()
}

/// Everything the child wrote to its piped stderr.
pub fn read_stderr(child: &mut std::process::Child) -> String {
    let mut text = String::new();
    if let Some(pipe) = child.stderr.as_mut() {
        std::io::Read::read_to_string(pipe, &mut text).unwrap();
    }
    text
}

/// Waits until metrics.csv has more than `rows` lines (and the weights
/// were saved once, when `with_model`).
pub fn wait_for_rows(run: &Path, rows: usize, with_model: bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let lines = std::fs::read_to_string(run.join("metrics.csv")).map(|t| t.lines().count()).unwrap_or(0);
        if lines > rows && (!with_model || run.join("model.bpk").exists()) {
            return;
        }
        assert!(Instant::now() < deadline, "the run did not get going");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
pub fn signal(child: &std::process::Child, signal: i32) {
    // SAFETY: kill(2) on the pid of a child this test started and has not
    // yet waited for.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
}

/// The cached Python environment (`scripts/torch_venv.sh`, in
/// `~/.cache/depthlab/torch-venv`; `DEPTHLAB_TORCH_PYTHON` points
/// elsewhere), made or completed when it cannot import `modules`
/// (comma-separated). Fails the test, saying how to set it up, when it
/// still cannot.
pub fn torch_python(modules: &str) -> PathBuf {
    let python = match std::env::var_os("DEPTHLAB_TORCH_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/depthlab/torch-venv/bin/python"),
    };
    let import = format!("import {modules}");
    let has_modules = |python: &Path| Command::new(python).args(["-c", &import]).output().is_ok_and(|o| o.status.success());
    if !has_modules(&python) && std::env::var_os("DEPTHLAB_TORCH_PYTHON").is_none() {
        // The cached environment is missing or incomplete: the helper makes
        // or completes it (once; later runs find it), so `cargo test` alone
        // sets up what it needs.
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/torch_venv.sh");
        let status = Command::new("bash").arg(script).status();
        assert!(status.is_ok_and(|s| s.success()), "{script} could not complete the Python environment");
    }
    assert!(
        has_modules(&python),
        "this test needs a Python that can `{import}`, and {} cannot.\n\
         Install it with `scripts/torch_venv.sh` (a virtual environment in ~/.cache/depthlab/torch-venv: \
         python3 -m venv, then pip install torch numpy pillow safetensors tensorboard), or set DEPTHLAB_TORCH_PYTHON \
         to a Python that has them.",
        python.display()
    );
    python
}
