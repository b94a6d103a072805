//! Bad input and faults, as a careful user meets them: every case ends in a
//! clear error or a truthful run folder, never a panic, an abort or a
//! silent wrong result.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use depthlab::train::RunStatus;
use depthlab::train::runfolder::RunFolder;
use serde_json::Value;

mod common;

use common::{assert_refused, depthlab, signal, start_training, stderr, trained_run, wait_for_rows};

const QUICK: [&str; 6] = ["--data", "digits", "--backend", "cpu", "--max-steps", "3"];

fn train(extra: &[&str]) -> std::process::Output {
    let mut args = vec!["train"];
    args.extend(QUICK);
    args.extend(extra);
    depthlab(&args)
}

fn write(path: &Path, text: &str) -> String {
    std::fs::write(path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn absurd_sizes_are_refused_with_the_limit_before_anything_is_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let arch = |name: &str, blocks: &str| write(&dir.path().join(name), &format!(r#"{{"name":"{name}","blocks":[{blocks}]}}"#));
    let cases = [
        (arch("kernel.json", r#"{"kind":"conv","filters":16,"kernel":4611686018427387905},{"kind":"classifier"}"#), "kernel"),
        (
            arch("bottleneck.json", r#"{"kind":"residual","filters":4611686018427387904,"bottleneck":true},{"kind":"classifier"}"#),
            "filters",
        ),
        (arch("filters.json", r#"{"kind":"conv","filters":1000000000},{"kind":"classifier"}"#), "filters"),
        (arch("units.json", r#"{"kind":"dense","units":1000000000},{"kind":"classifier"}"#), "units"),
        (arch("repeat.json", r#"{"kind":"dense","units":300,"repeat":100000},{"kind":"classifier"}"#), "repeat"),
        (
            arch("wide.json", r#"{"kind":"dense","units":60000},{"kind":"dense","units":60000},{"kind":"classifier"}"#),
            "more than the limit",
        ),
    ];
    for (path, word) in &cases {
        // inspect: exit 2, the block and the limit named, no wrapped counts.
        let output = depthlab(&["inspect", path, "--input", "1x28x28"]);
        assert_refused(&output, 2, &[word, "limit"]);
        // train: refused the same way, before any allocation.
        let output = train(&["--arch", path]);
        assert_refused(&output, 2, &[word]);
    }
    // The stride that shrinks the map is blamed, not the block after it.
    let stride = arch(
        "stride.json",
        r#"{"kind":"conv","filters":8},{"kind":"conv","filters":8,"stride":1000},{"kind":"residual","filters":8,"stride":2},{"kind":"classifier"}"#,
    );
    let output = depthlab(&["inspect", &stride, "--input", "1x28x28"]);
    assert_refused(&output, 2, &["block 2", "stride 1000 is larger than its 28x28 input"]);
    assert!(!stderr(&output).contains("block 3"), "{}", stderr(&output));
    // The block with a billion filters is blamed, not the next one's shortcut.
    let wide = arch("blame.json", r#"{"kind":"conv","filters":1000000000},{"kind":"residual","filters":16},{"kind":"classifier"}"#);
    let output = depthlab(&["inspect", &wide, "--input", "1x28x28"]);
    assert_refused(&output, 2, &["block 1", "filters 1000000000 is more than the limit of 65536"]);
    // An image folder resized to 20000x20000 is refused with the limit.
    let output = depthlab(&["train", "--arch", "plain-8", "--data", "folder:/nonexistent@3x20000x20000", "--max-steps", "1"]);
    assert_refused(&output, 2, &["20000x20000", "at most 1024x1024"]);
}

#[test]
fn an_idx_header_that_would_wrap_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // n = 4, h = w = 2^31: n·h·w wraps to 0 in 64 bits.
    let mut images = vec![0, 0, 8, 3];
    for d in [4u32, 1 << 31, 1 << 31] {
        images.extend(d.to_be_bytes());
    }
    let mut labels = vec![0, 0, 8, 1];
    labels.extend(4u32.to_be_bytes());
    labels.extend([0, 1, 2, 3]);
    for split in ["train", "t10k"] {
        std::fs::write(dir.path().join(format!("{split}-images-idx3-ubyte")), &images).unwrap();
        std::fs::write(dir.path().join(format!("{split}-labels-idx1-ubyte")), &labels).unwrap();
    }
    let spec = format!("mnist:{}", dir.path().display());
    let output = depthlab(&["train", "--arch", "plain-8", "--data", &spec, "--max-steps", "1"]);
    assert_refused(&output, 2, &["train-images-idx3-ubyte", "more than can be addressed"]);
}

#[test]
fn settings_that_make_no_sense_are_refused_with_words() {
    let output = depthlab(&["train", "--arch", "plain-8", "--data", "digits", "--max-steps", "0"]);
    assert_refused(&output, 2, &["max steps must be at least 1"]);
    let output = train(&["--arch", "plain-8", "--lr", "-1"]);
    assert_refused(&output, 2, &["learning rate must be a positive number, not -1"]);
    let output = train(&["--arch", "plain-8", "--momentum", "-0.5"]);
    assert_refused(&output, 2, &["momentum"]);
    let output = depthlab(&["bench", "--batch-size", "0", "--archs", "plain-20", "--steps", "1"]);
    assert_refused(&output, 2, &["--batch-size must be at least 1"]);
    let output = depthlab(&["bench", "--archs", "junk", "--steps", "1", "--warmup", "0"]);
    assert_refused(&output, 1, &["'junk' is not a preset", "1 of the configurations failed"]);
}

#[test]
fn stochastic_depth_survival_outside_zero_to_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for value in ["-5", "7", "0"] {
        let path = write(
            &dir.path().join(format!("sd{value}.json")),
            &format!(
                r#"{{"name":"sd","stochastic_depth":{{"final_survival":{value}}},"blocks":[{{"kind":"conv","filters":8}},{{"kind":"residual","filters":8}},{{"kind":"classifier"}}]}}"#
            ),
        );
        let output = depthlab(&["inspect", &path]);
        assert_refused(&output, 2, &["final_survival must be in (0, 1]", value]);
    }
}

#[test]
fn an_architecture_file_with_a_byte_order_mark_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir.path().join("bom.json"),
        "\u{feff}{\"name\":\"bom\",\"blocks\":[{\"kind\":\"dense\",\"units\":8},{\"kind\":\"classifier\"}]}",
    );
    let output = depthlab(&["inspect", &path, "--input", "1x8x8"]);
    assert!(output.status.success(), "{}", stderr(&output));
}

/// Epochs are 0-based everywhere: training rows, test rows and the terminal.
#[test]
fn epochs_are_counted_one_way_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let output = depthlab(&[
        "train",
        "--arch",
        "plain-8",
        "--data",
        "digits",
        "--backend",
        "cpu",
        "--epochs",
        "2",
        "--batch-size",
        "256",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("epoch 0 test") && text.contains("epoch 1 test") && !text.contains("epoch 2 test"), "{text}");
    let folder = RunFolder::open(&run).unwrap();
    let train_epochs: Vec<usize> = folder.metrics.iter().filter(|m| !m.test).map(|m| m.epoch).collect();
    let test_epochs: Vec<usize> = folder.metrics.iter().filter(|m| m.test).map(|m| m.epoch).collect();
    assert_eq!(test_epochs, vec![0, 1]);
    assert_eq!(train_epochs.iter().max(), Some(&1));

    // A folder of the first format (test rows counted epochs completed)
    // reads with the same numbering.
    let train_json = run.join("train.json");
    let mut record: Value = serde_json::from_str(&std::fs::read_to_string(&train_json).unwrap()).unwrap();
    record["format_version"] = Value::from(1);
    std::fs::write(&train_json, record.to_string()).unwrap();
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let old: String = metrics
        .lines()
        .map(|l| {
            let mut f: Vec<String> = l.split(',').map(str::to_string).collect();
            if f[2] == "test" {
                f[1] = (f[1].parse::<usize>().unwrap() + 1).to_string();
            }
            f.join(",") + "\n"
        })
        .collect();
    std::fs::write(run.join("metrics.csv"), old).unwrap();
    let folder = RunFolder::open(&run).unwrap();
    assert_eq!(folder.metrics.iter().filter(|m| m.test).map(|m| m.epoch).collect::<Vec<_>>(), vec![0, 1]);
}

#[test]
fn classify_refuses_a_run_whose_normalisation_is_broken() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(&dir.path().join("run"));
    let image = dir.path().join("digit.png");
    image::GrayImage::from_fn(8, 8, |x, y| image::Luma([((x * 31 + y * 17) % 256) as u8])).save(&image).unwrap();
    let train_json = run.join("train.json");
    let original: Value = serde_json::from_str(&std::fs::read_to_string(&train_json).unwrap()).unwrap();
    for (mean, std, word) in [
        (serde_json::json!([]), serde_json::json!([]), "0 means"),
        (serde_json::json!([0.5]), serde_json::json!([0.0]), "standard deviation of 0"),
    ] {
        let mut record = original.clone();
        record["dataset"]["normalization"] = serde_json::json!({ "mean": mean, "std": std });
        std::fs::write(&train_json, record.to_string()).unwrap();
        let output = depthlab(&["classify", "--run", run.to_str().unwrap(), "--image", image.to_str().unwrap()]);
        assert_refused(&output, 1, &["train.json", word]);
    }
}

#[test]
fn a_truncated_jpeg_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(&dir.path().join("run"));
    let full = dir.path().join("full.jpg");
    image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, ((x + y) * 2) as u8])).save(&full).unwrap();
    let bytes = std::fs::read(&full).unwrap();
    let half = dir.path().join("half.jpg");
    std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    let output = depthlab(&["classify", "--run", run.to_str().unwrap(), "--image", full.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = depthlab(&["classify", "--run", run.to_str().unwrap(), "--image", half.to_str().unwrap()]);
    // An image that does not decode is bad input (2), as every data file is.
    assert_refused(&output, 2, &["half.jpg", "truncated"]);
    // An image past the size limit is refused, giving the limit.
    let wide = dir.path().join("wide.png");
    image::GrayImage::new(17_000, 1).save(&wide).unwrap();
    let output = depthlab(&["classify", "--run", run.to_str().unwrap(), "--image", wide.to_str().unwrap()]);
    assert_refused(&output, 2, &["wide.png", "too large", "at most 16384 pixels a side"]);
}

/// Ctrl-C acts like the window's Stop: the step ends, the weights are
/// saved, the summary says stopped, the CSVs are whole, exit 130 within 3 s.
#[cfg(unix)]
#[test]
fn ctrl_c_stops_the_run_and_saves_it() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let mut child = start_training(&run, "1000");
        wait_for_rows(&run, 10, false);
        let sent = Instant::now();
        signal(&child, sig);
        let status = child.wait().unwrap();
        let took = sent.elapsed();
        let mut text = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut text).unwrap();
        assert_eq!(status.code(), Some(130), "signal {sig}: {text}");
        assert!(took < Duration::from_secs(3), "signal {sig}: took {took:?}");
        let folder = RunFolder::open(&run).expect("the folder reads");
        assert_eq!(folder.status, RunStatus::Stopped, "signal {sig}");
        let summary = folder.summary.as_ref().unwrap();
        assert!(summary.steps >= 9, "{summary:?}");
        assert_eq!(folder.metrics.iter().filter(|m| !m.test).count(), summary.steps, "every step has its row");
        assert!(folder.warnings.is_empty(), "{:?}", folder.warnings);
        folder.load_network(&burn::prelude::Device::flex()).expect("the weights were saved");
    }
}

/// A second writer of the same folder fails at once and names the first;
/// when the first is killed, its folder reads as interrupted.
#[cfg(unix)]
#[test]
fn one_writer_per_folder_and_a_killed_writer_reads_as_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut child = start_training(&run, "1000");
    wait_for_rows(&run, 80, true);
    let output = depthlab(&["train", "--arch", "plain-8", "--data", "digits", "--backend", "cpu", "--out", run.to_str().unwrap()]);
    assert_refused(&output, 1, &[&format!("process {}", child.id()), "is writing a run"]);
    let text = String::from_utf8_lossy(&output.stderr);
    let error = text.lines().find(|l| l.starts_with("error:")).unwrap_or_default();
    assert_eq!(error.matches(run.to_str().unwrap()).count(), 1, "the error names the folder once: {text}");
    assert_eq!(RunFolder::open(&run).unwrap().status, RunStatus::Running);
    child.kill().unwrap();
    child.wait().unwrap();
    let folder = RunFolder::open(&run).unwrap();
    assert_eq!(folder.status, RunStatus::Interrupted);
    let output = depthlab(&["classify", "--run", run.to_str().unwrap(), "--image", "assets/samples/sneaker.png"]);
    assert!(stderr(&output).contains("was interrupted"), "{}", stderr(&output));
}

/// A model that cannot be saved (here: a file-size limit) ends the run as
/// failed with the steps that ran, a summary that says so, and no scratch
/// file left behind.
#[cfg(unix)]
#[test]
fn a_failed_save_is_reported_truthfully() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let bin = env!("CARGO_BIN_EXE_depthlab");
    // 64 KiB is enough for the CSVs and not for the weights; SIGXFSZ is
    // ignored so that the write fails with an error instead of a kill.
    let script = format!(
        "trap '' XFSZ; ulimit -f 64; exec {bin} train --arch resnet-8 --data digits --backend cpu --max-steps 6 --batch-size 32 --out {}",
        run.display()
    );
    let output = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert_refused(&output, 1, &["saving the weights failed"]);
    assert!(stderr(&output).contains("failed: 6 steps"), "{}", stderr(&output));
    let folder = RunFolder::open(&run).unwrap();
    let summary = folder.summary.expect("summary.json records the failure");
    assert_eq!((summary.status, summary.steps), (RunStatus::Failed, 6));
    let leftovers: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn rows_with_the_wrong_number_of_columns_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(&dir.path().join("run"));
    let path = run.join("metrics.csv");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("7,0,train,0.5\nnot,a,row\n");
    std::fs::write(&path, text).unwrap();
    let folder = RunFolder::open(&run).unwrap();
    assert!(folder.warnings.iter().any(|w| w.contains("metrics.csv") && w.contains("skipped 2 row")), "{:?}", folder.warnings);
}

/// A gradient snapshot cut short (some of its layers' rows missing) is
/// skipped with a warning, not drawn with layers missing.
#[test]
fn a_gradient_snapshot_cut_short_is_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let output = train(&["--arch", "resnet-8", "--probe-every", "1", "--out", run.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let whole = RunFolder::open(&run).unwrap();
    let layers = whole.gradients.iter().map(|g| g.layer_index + 1).max().unwrap();
    assert!(layers > 2 && whole.gradients.len() >= 2 * layers, "{} rows of {layers} layers", whole.gradients.len());
    let path = run.join("gradients.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let cut: String = lines[..lines.len() - 2].iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, cut).unwrap();
    let folder = RunFolder::open(&run).unwrap();
    assert_eq!(folder.gradients.len(), whole.gradients.len() - layers);
    assert!(folder.warnings.iter().any(|w| w.contains("gradients.csv") && w.contains("last snapshot")), "{:?}", folder.warnings);
}

/// A damaged field in a run's CSVs (a number that is not one) skips that
/// row with a warning; the run still reads, lists as completed and its
/// weights still classify.
#[test]
fn a_damaged_csv_row_is_skipped_and_the_weights_stay_usable() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(&dir.path().join("run"));
    for (file, column) in [("metrics.csv", 3), ("gradients.csv", 4)] {
        let path = run.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let mut fields: Vec<&str> = lines[2].split(',').collect();
        fields[column] = "not-a-number";
        lines[2] = fields.join(",");
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    }
    let folder = RunFolder::open(&run).expect("the run still reads");
    assert_eq!(folder.status, RunStatus::Completed);
    assert_eq!(folder.metrics.len(), 4 + 1 - 1, "one training row skipped of 4 plus the test row");
    assert!(folder.warnings.iter().any(|w| w.contains("metrics.csv") && w.contains("skipped 1 row")), "{:?}", folder.warnings);
    assert!(folder.warnings.iter().any(|w| w.contains("gradients.csv")), "{:?}", folder.warnings);
    let image = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/samples/sneaker.png");
    let output = depthlab(&["classify", "--run", run.to_str().unwrap(), "--image", image]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("not-a-number"), "the warning names the field: {}", stderr(&output));
}

/// Under an address-space limit (`ulimit -v`, 4 GB), networks whose
/// training would not fit are refused in words before anything is
/// allocated, where the first failed allocation used to abort the process:
/// 400 million parameters in two dense layers, and a residual block
/// repeated 10,000 times. A network that fits trains under the same limit.
#[cfg(unix)]
#[test]
fn runs_that_cannot_fit_the_memory_limit_are_refused_before_they_start() {
    let dir = tempfile::tempdir().unwrap();
    let wide = write(
        &dir.path().join("wide.json"),
        r#"{"name": "wide", "blocks": [{"kind": "dense", "units": 20000}, {"kind": "dense", "units": 20000}, {"kind": "classifier"}]}"#,
    );
    let repeated = write(
        &dir.path().join("repeated.json"),
        r#"{"name": "repeated", "blocks": [{"kind": "conv", "filters": 16}, {"kind": "residual", "filters": 16, "repeat": 10000}, {"kind": "classifier"}]}"#,
    );
    let limited = |arch: &str, out: &Path| {
        let command = format!(
            "ulimit -v 4000000 && exec '{}' train --arch '{arch}' --data digits --max-steps 2 --backend cpu --out '{}'",
            env!("CARGO_BIN_EXE_depthlab"),
            out.display()
        );
        Command::new("bash").args(["-c", &command]).output().unwrap()
    };
    for arch in [&wide, &repeated] {
        let output = limited(arch, &dir.path().join("big"));
        assert_refused(&output, 1, &["needs about", "GiB", "this process can have only", "smaller batch size"]);
    }
    let output = limited("resnet-8", &dir.path().join("small"));
    assert!(output.status.success(), "resnet-8 fits in 4 GB: {}", stderr(&output));
}

/// Images far larger than any net the lab offers expects (2000 × 2000 in
/// an MNIST folder): the pre-flight counts the activations of the input
/// size read from the files' headers and refuses in words, under a 6 GB
/// address-space limit, where it used to abort in the first step.
#[cfg(unix)]
#[test]
fn huge_images_are_refused_before_the_first_step() {
    let dir = tempfile::tempdir().unwrap();
    let idx = |name: &str, n: u32, side: u32| {
        let mut images = vec![0, 0, 8, 3];
        for v in [n, side, side] {
            images.extend(v.to_be_bytes());
        }
        images.extend(std::iter::repeat_n(7u8, (n * side * side) as usize));
        std::fs::write(dir.path().join(format!("{name}-images-idx3-ubyte")), images).unwrap();
        let mut labels = vec![0, 0, 8, 1];
        labels.extend(n.to_be_bytes());
        labels.extend((0..n).map(|i| (i % 10) as u8));
        std::fs::write(dir.path().join(format!("{name}-labels-idx1-ubyte")), labels).unwrap();
    };
    idx("train", 4, 2000);
    idx("t10k", 2, 2000);
    let command = format!(
        "ulimit -v 6000000 && exec '{}' train --arch resnet-8 --data 'mnist:{}' --max-steps 2 --backend cpu --out '{}'",
        env!("CARGO_BIN_EXE_depthlab"),
        dir.path().display(),
        dir.path().join("run").display()
    );
    let output = Command::new("bash").args(["-c", &command]).output().unwrap();
    assert_refused(&output, 1, &["needs about", "GiB", "this process can have only", "smaller batch size"]);
}
