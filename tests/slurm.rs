//! A planned sweep through a real Slurm: a one-node cluster on this machine
//! (scripts/slurm_local.sh), the sweep's job array submitted with `sbatch`,
//! collected into four completed rows.
//!
//! Slurm needs root and Debian's `slurm-wlm` and `munge`; `.ci/run`
//! installs them and sets `DEPTHLAB_REQUIRE_SLURM=1`, so that in CI a
//! cluster that cannot start fails the test. Elsewhere the test says it
//! skipped and why.

use std::path::Path;
use std::process::Command;

mod common;

use common::{depthlab, stderr};

fn script() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm_local.sh").display().to_string()
}

/// Stops the cluster whose files are in this folder, however the test ends.
struct Cluster(std::path::PathBuf);

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").env("DEPTHLAB_SLURM_DIR", &self.0).status();
    }
}

#[test]
fn a_planned_sweep_runs_as_a_slurm_job_array() {
    let required = std::env::var_os("DEPTHLAB_REQUIRE_SLURM").is_some();
    let state = tempfile::tempdir().unwrap();
    let start = Command::new(script()).arg("start").env("DEPTHLAB_SLURM_DIR", state.path()).output().unwrap();
    if !start.status.success() {
        let why = String::from_utf8_lossy(&start.stderr).into_owned();
        assert!(!required, "DEPTHLAB_REQUIRE_SLURM is set but the cluster did not start: {why}");
        eprintln!("skipped: no one-node Slurm here ({}); .ci/run installs one", why.trim());
        return;
    }
    let _cluster = Cluster(state.path().to_path_buf());
    let conf = String::from_utf8_lossy(&start.stdout).trim().to_string();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let output = depthlab(&[
        "sweep",
        "--families",
        "plain,resnet",
        "--depths",
        "8,14",
        "--data",
        "digits",
        "--backend",
        "cpu",
        "--max-steps",
        "8",
        "--out",
        out.to_str().unwrap(),
        "--plan",
        "--slurm-cpus",
        "1",
        "--slurm-time",
        "00:10:00",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let submit = Command::new("sbatch").arg("--wait").arg(out.join("sweep.sbatch")).env("SLURM_CONF", &conf).output().unwrap();
    let logs: String = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("slurm-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        submit.status.success(),
        "sbatch: {}{}\n{logs}",
        String::from_utf8_lossy(&submit.stdout),
        String::from_utf8_lossy(&submit.stderr)
    );

    let output = depthlab(&["sweep", "--collect", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().filter(|l| l.ends_with(",completed")).count(), 4, "{csv}\n{logs}");
}
