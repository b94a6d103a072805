//! Faults at the worst moments: a bug inside a training step or a command,
//! a kill while the weights are being saved, kills and interrupts at random
//! moments. Every run folder left behind reads back, with a status that is
//! true, and weights that load whenever they are there.

#![cfg(unix)]

use std::path::Path;
use std::time::{Duration, Instant};

use depthlab::train::RunStatus;
use depthlab::train::runfolder::RunFolder;

mod common;

use common::{assert_refused, depthlab, read_stderr, signal, training};

fn scratch_files(run: &Path) -> Vec<String> {
    std::fs::read_dir(run)
        .map(|entries| entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.contains(".tmp")).collect())
        .unwrap_or_default()
}

#[test]
fn a_bug_in_a_step_ends_the_run_as_failed_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let output = training(&run, "1").env("DEPTHLAB_FAULT", "panic:step").output().unwrap();
    assert_refused(&output, 1, &["internal error", "fault injected at 'step'"]);
    let text = common::stderr(&output);
    assert!(!text.contains("RUST_BACKTRACE"), "{text}");
    let folder = RunFolder::open(&run).expect("the folder of a run that hit a bug reads");
    assert_eq!(folder.status, RunStatus::Failed);
    let summary = folder.summary.unwrap();
    assert!(summary.reason.as_deref().unwrap_or("").contains("fault injected at 'step'"), "{summary:?}");
    assert_eq!(summary.steps, 0);
}

#[test]
fn a_bug_in_a_command_exits_1_with_one_line() {
    let output = common::depthlab_with_env(&["presets"], "DEPTHLAB_FAULT", "panic:command");
    assert_refused(&output, 1, &["internal error", "fault injected at 'command'"]);
    assert!(!common::stderr(&output).contains("RUST_BACKTRACE"));
    // Unset, the same command works.
    assert!(depthlab(&["presets"]).status.success());
}

/// A kill while the weights are being written (the scratch file is there,
/// the rename has not happened) leaves a folder that reads as interrupted;
/// reading it clears the scratch file.
#[test]
fn a_kill_during_the_model_save_leaves_a_folder_that_reads() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut child = training(&run, "3").env("DEPTHLAB_FAULT", "stall:save").spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    // The weights' scratch file is whole and waits for its rename.
    let saving = || scratch_files(&run).iter().any(|name| name.starts_with(".model-") && name.ends_with(".tmp.bpk"));
    while !saving() {
        assert!(Instant::now() < deadline, "the run never began a save");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(saving(), "the kill came during the save");
    let folder = RunFolder::open(&run).expect("the folder reads");
    assert_eq!(folder.status, RunStatus::Interrupted);
    assert!(scratch_files(&run).is_empty(), "scratch files left: {:?}", scratch_files(&run));
    // The first epoch's rows are all there: every step and its test row.
    let steps = folder.metrics.iter().filter(|m| !m.test).count();
    assert!(steps > 0 && folder.metrics.iter().any(|m| m.test), "{:?}", folder.metrics);
    let error = folder.load_network(&burn::prelude::Device::flex()).unwrap_err().to_string();
    assert!(error.contains("saved no weights"), "{error}");
}

/// xorshift64*, so the moments are random but the same on every run of the
/// test (the seed is printed when it fails).
struct Moments(u64);

impl Moments {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % below
    }
}

/// Kills (SIGKILL) and interrupts (SIGINT, SIGTERM) at random moments of a
/// two-epoch run: while it loads, trains, evaluates, saves and finishes.
#[test]
fn faults_at_random_moments_leave_truthful_folders() {
    let seed = std::env::var("DEPTHLAB_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_1234_u64);
    let mut moments = Moments(seed);
    let trials = 20;
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    // How long a whole run takes here, so the moments spread over all of it.
    let whole = {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let output = training(&dir.path().join("run"), "2").output().unwrap();
        assert!(output.status.success(), "{}", common::stderr(&output));
        started.elapsed().as_millis() as u64
    };
    for trial in 0..trials {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let delay = Duration::from_millis(moments.next(whole));
        let sig = [libc::SIGKILL, libc::SIGKILL, libc::SIGINT, libc::SIGTERM][moments.next(4) as usize];
        let context = format!("seed {seed:#x} trial {trial}: signal {sig} after {delay:?}");
        let mut child = training(&run, "2").spawn().unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            signal(&child, sig);
        }
        let status = child.wait().unwrap();
        let text = read_stderr(&mut child);
        if !run.join("train.json").exists() {
            // Ended before the folder was begun: nothing to read.
            *seen.entry("before the folder".into()).or_default() += 1;
            continue;
        }
        let folder = RunFolder::open(&run).unwrap_or_else(|e| panic!("{context}: the folder does not read: {e}\n{text}"));
        assert!(scratch_files(&run).is_empty(), "{context}: scratch files left");
        assert!(folder.warnings.is_empty(), "{context}: {:?}", folder.warnings);
        match (status.code(), folder.status) {
            // Finished before the signal.
            (Some(0), RunStatus::Completed) => {}
            // Interrupted: stopped and saved.
            (Some(130), RunStatus::Stopped) => {}
            // The signal came as the finished run was exiting.
            (Some(130), RunStatus::Completed) => {}
            // Killed: interrupted, or completed when the kill came after the
            // final summary was written.
            (None, RunStatus::Interrupted | RunStatus::Completed) => {}
            other => panic!("{context}: exit {:?} with the folder saying {:?}\n{text}", other.0, other.1),
        }
        if let Some(summary) = &folder.summary
            && summary.status != RunStatus::Running
        {
            let rows = folder.metrics.iter().filter(|m| !m.test).count();
            assert_eq!(rows, summary.steps, "{context}: every step has its row");
        }
        let has_weights = run.join("model.bpk").exists();
        if matches!(folder.status, RunStatus::Completed | RunStatus::Stopped) {
            assert!(has_weights, "{context}: a {:?} run without weights", folder.status);
        }
        if has_weights {
            folder.load_network(&burn::prelude::Device::flex()).unwrap_or_else(|e| panic!("{context}: the weights do not load: {e}"));
        }
        *seen.entry(format!("{:?}", folder.status)).or_default() += 1;
    }
    eprintln!("faults at random moments of a {whole} ms run (seed {seed:#x}, {trials} trials): {seen:?}");
    assert!(seen.len() >= 2, "the moments should land in different places: {seen:?}");
}

/// A full disk (`DEPTHLAB_FAULT=full:write`: every file written whole fails
/// as ENOSPC does) never costs what was there: `train --overwrite` puts the
/// finished run it was to replace back, and `landscape --out` and `lesion
/// --out` leave the results already in their folder untouched, with no
/// scratch file behind.
#[test]
fn a_full_disk_keeps_what_was_there() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    common::trained_run(&run);
    let model = std::fs::read(run.join("model.bpk")).unwrap();
    let summary = std::fs::read(run.join("summary.json")).unwrap();
    let r = run.to_str().unwrap();
    let args = ["train", "--arch", "resnet-8", "--data", "digits", "--max-steps", "3", "--backend", "cpu", "--overwrite", "--out", r];
    let output = common::depthlab_with_env(&args, "DEPTHLAB_FAULT", "full:write");
    assert!(!output.status.success(), "the new run cannot be written");
    assert!(common::stderr(&output).contains("is back in"), "{}", common::stderr(&output));
    assert_eq!(std::fs::read(run.join("model.bpk")).unwrap(), model, "the old weights are back");
    assert_eq!(std::fs::read(run.join("summary.json")).unwrap(), summary);
    assert!(!run.join(".replaced").exists());
    let folder = RunFolder::open(&run).expect("the old run reads");
    assert_eq!(folder.status, RunStatus::Completed);
    assert!(scratch_files(&run).is_empty(), "{:?}", scratch_files(&run));
    // With room, the overwrite replaces it.
    assert!(depthlab(&args).status.success());
    assert_ne!(std::fs::read(run.join("model.bpk")).unwrap(), model);
    assert!(!run.join(".replaced").exists());

    for (command, file, extra) in [
        ("landscape", "landscape.json", ["--grid", "3", "--subset", "50"]),
        ("lesion", "lesion.json", ["--draws", "1", "--test-examples", "50"]),
    ] {
        let out = dir.path().join(command);
        let out_s = out.to_str().unwrap();
        let args = [&[command, "--run", r, "--out", out_s][..], &extra[..]].concat();
        let first = depthlab(&args);
        assert!(first.status.success(), "{command}: {}", common::stderr(&first));
        let good = std::fs::read(out.join(file)).unwrap();
        assert!(!good.is_empty());
        let full = common::depthlab_with_env(&args, "DEPTHLAB_FAULT", "full:write");
        assert!(!full.status.success() && common::stderr(&full).contains("no space left"), "{command}: {}", common::stderr(&full));
        assert_eq!(std::fs::read(out.join(file)).unwrap(), good, "{command}: {file} untouched");
        assert!(scratch_files(&out).is_empty(), "{command}: {:?}", scratch_files(&out));
    }
}

/// A small tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// `None` where mounting is not allowed (not root, or in a container
    /// without the capability): the write-limit test above covers it there.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", dir.to_str()?])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }

    /// Fills the disk up, leaving about `left` bytes free.
    fn fill(&self, left: u64) {
        let free = statvfs_free(&self.0);
        let filler = free.saturating_sub(left);
        std::fs::write(self.0.join("filler"), vec![0u8; filler as usize]).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn statvfs_free(dir: &Path) -> u64 {
    let out = std::process::Command::new("df").args(["-B1", "--output=avail"]).arg(dir).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().nth(1).and_then(|l| l.trim().parse().ok()).unwrap_or(0)
}

/// A real full disk, not a simulated one: a 4 MB tmpfs holding a finished
/// run and its landscape, filled up to its last few kilobytes. Overwriting
/// the run and writing the landscape again both fail in words, and what
/// was there is still there, whole, with no scratch file left.
#[test]
fn a_real_full_disk_keeps_what_was_there() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(&dir.path().join("disk"), "4m") else {
        eprintln!("skipped: a tmpfs cannot be mounted here (a_full_disk_keeps_what_was_there simulates it)");
        return;
    };
    let run = disk.0.join("run");
    let r = run.to_str().unwrap();
    let args = ["train", "--arch", "resnet-8", "--data", "digits", "--max-steps", "3", "--backend", "cpu", "--out", r];
    let first = depthlab(&args);
    assert!(first.status.success(), "{}", common::stderr(&first));
    let out = disk.0.join("landscape");
    let out_s = out.to_str().unwrap();
    let landscape = ["landscape", "--run", r, "--out", out_s, "--grid", "3", "--subset", "50"];
    assert!(depthlab(&landscape).status.success());
    let (model, summary) = (std::fs::read(run.join("model.bpk")).unwrap(), std::fs::read(run.join("summary.json")).unwrap());
    let good = std::fs::read(out.join("landscape.json")).unwrap();
    disk.fill(16 * 1024);

    let overwrite = [&args[..], &["--overwrite"]].concat();
    let full = depthlab(&overwrite);
    let text = common::stderr(&full);
    assert!(!full.status.success(), "nothing fits: {text}");
    assert!(text.contains("No space left") || text.contains("no space left"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert_eq!(std::fs::read(run.join("model.bpk")).unwrap(), model, "the old weights are back: {text}");
    assert_eq!(std::fs::read(run.join("summary.json")).unwrap(), summary);
    assert_eq!(RunFolder::open(&run).expect("the old run reads").status, RunStatus::Completed);
    assert!(scratch_files(&run).is_empty(), "{:?}", scratch_files(&run));

    let again = depthlab(&landscape);
    assert!(!again.status.success(), "{}", common::stderr(&again));
    assert_eq!(std::fs::read(out.join("landscape.json")).unwrap(), good, "landscape.json untouched");
    assert!(scratch_files(&out).is_empty(), "{:?}", scratch_files(&out));
}

/// Waits until `dir` holds a scratch file (a write stalled between its
/// scratch file and the rename).
fn wait_for_scratch(dir: &Path, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while scratch_files(dir).is_empty() {
        if child.try_wait().unwrap().is_some() {
            let mut text = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut text).unwrap();
            panic!("the command ended before writing in {} ({:?}): {text}", dir.display(), child.try_wait());
        }
        assert!(Instant::now() < deadline, "no scratch file appeared in {}", dir.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGKILL, SIGTERM or SIGINT while an analysis or an export is writing its
/// output (after the scratch file, before the rename) never loses the
/// output already there, and the next command clears the scratch file the
/// dead one left.
#[test]
fn a_signal_in_the_middle_of_writing_an_analysis_or_export_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    common::trained_run(&run);
    let r = run.to_str().unwrap();
    let landscape = dir.path().join("landscape");
    let export = dir.path().join("export");
    let l = landscape.to_str().unwrap();
    let e = export.to_str().unwrap();
    let jobs: [(&Path, &str, Vec<&str>); 3] = [
        (&landscape, "landscape.json", vec!["landscape", "--run", r, "--grid", "3", "--subset", "50", "--line-points", "2", "--out", l]),
        (&landscape, "lesion.json", vec!["lesion", "--run", r, "--draws", "1", "--test-examples", "50", "--out", l]),
        (&export, "weights.safetensors", vec!["export", "--run", r, "--format", "safetensors", "--overwrite", "--out", e]),
    ];
    for (sig, (out, file, args)) in [libc::SIGKILL, libc::SIGTERM, libc::SIGINT].into_iter().zip(jobs.iter().cycle().take(3)) {
        let first = depthlab(args);
        assert!(first.status.success(), "{args:?}: {}", common::stderr(&first));
        let good = std::fs::read(out.join(file)).unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_depthlab"))
            .args(args)
            .env("DEPTHLAB_FAULT", "stall:written")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_scratch(out, &mut child);
        signal(&child, sig);
        let status = child.wait().unwrap();
        assert!(!status.success(), "{args:?} ended by signal {sig}");
        assert_eq!(std::fs::read(out.join(file)).unwrap(), good, "{args:?}, signal {sig}: {file} as it was");
        assert!(!scratch_files(out).is_empty(), "the dead process's scratch file is there");
        let again = depthlab(args);
        assert!(again.status.success(), "{args:?} after signal {sig}: {}", common::stderr(&again));
        assert!(scratch_files(out).is_empty(), "{args:?}: {:?} left after the next command", scratch_files(out));
        assert!(!std::fs::read(out.join(file)).unwrap().is_empty());
    }
}
