//! The command line as other tools use it: its output formats, exit codes
//! and run folders.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use depthlab::train::RunStatus;
use depthlab::train::runfolder::RunFolder;
use serde_json::Value;

mod common;

use common::{depthlab, stderr, stdout};

#[test]
fn presets_lists_every_family_with_paper_counts() {
    let output = depthlab(&["presets", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let list: Vec<Value> = serde_json::from_str(&stdout(&output)).unwrap();
    let find = |name: &str| list.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{name} listed"));
    assert_eq!(find("resnet-20")["params"], 269_722);
    assert_eq!(find("resnet-1202")["depth"], 1202);
    assert_eq!(find("plain-56")["params"], find("resnet-56")["params"]);
    for family in ["plain-", "resnet-", "preact-resnet-", "resnet-sd-", "highway-", "plain-mlp-", "highway-mlp-", "fractal-", "densenet-"] {
        assert!(list.iter().any(|p| p["name"].as_str().unwrap().starts_with(family)), "{family}");
    }
    let table = stdout(&depthlab(&["presets"]));
    assert!(table.contains("resnet-110") && table.contains("1.73M"), "{table}");
}

#[test]
fn inspect_json_follows_the_contract() {
    let output = depthlab(&["inspect", "resnet-56", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let v: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(v["name"], "resnet-56");
    assert_eq!(v["depth"], 56);
    assert_eq!(v["params"], 853_018);
    assert_eq!(v["input"], serde_json::json!([3, 32, 32]));
    assert_eq!(v["output"], serde_json::json!([10]));
    assert_eq!(v["errors"], serde_json::json!([]));
    let blocks = v["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["index"], 1);
    assert_eq!(blocks[0]["kind"], "conv");
    assert_eq!(blocks[2]["output_shape"], serde_json::json!([32, 16, 16]));
    let total: u64 = blocks.iter().map(|b| b["params"].as_u64().unwrap()).sum();
    assert_eq!(total, 853_018);

    // Layer flags: without BN every conv gets a bias instead of gamma and beta.
    let v: Value =
        serde_json::from_str(&stdout(&depthlab(&["inspect", "plain-20", "--norm", "none", "--activation", "sigmoid", "--json"]))).unwrap();
    assert!(v["params"].as_u64().unwrap() < 269_722);
    assert!(v["name"].as_str().unwrap().contains("sigmoid"));
}

#[test]
fn an_invalid_architecture_exits_2_with_its_errors() {
    let output = depthlab(&["inspect", "resnet-20", "--input", "3x2x2", "--json"]);
    assert_eq!(output.status.code(), Some(2));
    let v: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors[0]["block"], 4);
    assert!(errors[0]["message"].as_str().unwrap().contains("stride 2 on a 1x1 feature map"), "{errors:?}");
    assert!(stderr(&output).contains("block 4 (residual)"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.json");
    std::fs::write(&file, r#"{"blocks": [{"kind": "conv", "filters": 8},"#).unwrap();
    let output = depthlab(&["inspect", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("ends early"), "{}", stderr(&output));

    let output = depthlab(&["inspect", "resnet-21"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("not a valid resnet preset"), "{}", stderr(&output));
}

fn write_digit_png(path: &Path) {
    let data = depthlab::data::Dataset::load(&depthlab::data::DataSpec::Digits).unwrap();
    let pixels = data.test.images[3 * 64..4 * 64].to_vec();
    let image = image::GrayImage::from_raw(8, 8, pixels).unwrap();
    image::imageops::resize(&image, 64, 64, image::imageops::FilterType::Nearest).save(path).unwrap();
}

#[test]
fn train_writes_a_run_folder_that_classify_uses() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let output = depthlab(&[
        "train",
        "--arch",
        "resnet-8",
        "--data",
        "digits",
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--backend",
        "cpu",
        "--probe-every",
        "5",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    for file in ["arch.json", "train.json", "metrics.csv", "gradients.csv", "probes.csv", "summary.json", "model.bpk"] {
        assert!(run.join(file).is_file(), "{file}");
    }
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(metrics.starts_with("step,epoch,split,loss,accuracy,lr,elapsed_secs\n"));
    let gradients = std::fs::read_to_string(run.join("gradients.csv")).unwrap();
    assert!(gradients.starts_with("step,layer_index,layer_name,weight_grad_norm,output_grad_norm\n"));
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["status"], "completed");
    assert!(summary["final_test_accuracy"].as_f64().unwrap() > 0.8, "{summary}");
    for key in ["final_train_loss", "final_train_accuracy", "final_test_loss", "params", "depth", "images_per_sec", "wall_secs", "backend"]
    {
        assert!(!summary[key].is_null(), "{key}");
    }
    assert!(summary["wall_secs"].as_f64().unwrap() > 0.0);

    let png = dir.path().join("digit.png");
    write_digit_png(&png);
    let output = depthlab(&["classify", "--run", run.to_str().unwrap(), "--image", png.to_str().unwrap(), "--top", "3", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let v: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let predictions = v["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 3);
    let p: Vec<f64> = predictions.iter().map(|p| p["probability"].as_f64().unwrap()).collect();
    assert!(p[0] >= p[1] && p[1] >= p[2] && p[0] <= 1.0);
    assert_eq!(v["input"], serde_json::json!([1, 8, 8]));
    let table = stdout(&depthlab(&["classify", "--run", run.to_str().unwrap(), "--image", png.to_str().unwrap()]));
    assert_eq!(table.lines().filter(|l| l.contains('%')).count(), 5, "{table}");

    let corrupt = dir.path().join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR broken").unwrap();
    let output = depthlab(&["classify", "--run", run.to_str().unwrap(), "--image", corrupt.to_str().unwrap()]);
    // An image that does not decode is bad input, as every data file is.
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("corrupt.png: cannot decode the image"), "{}", stderr(&output));
}

#[test]
fn a_killed_run_leaves_a_folder_that_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut child = Command::new(env!("CARGO_BIN_EXE_depthlab"))
        .args([
            "train",
            "--arch",
            "resnet-8",
            "--data",
            "digits",
            "--epochs",
            "1000",
            "--batch-size",
            "32",
            "--backend",
            "cpu",
            "--probe-every",
            "1",
            "--out",
        ])
        .arg(&run)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it mid-run, after an epoch has ended (weights saved) and well into the next.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let rows = std::fs::read_to_string(run.join("metrics.csv")).map(|t| t.lines().count()).unwrap_or(0);
        // Lines, not records: the header and a half-written last line count here.
        if rows > 73 && run.join("model.bpk").exists() {
            break;
        }
        assert!(Instant::now() < deadline, "the run did not get going");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let folder = RunFolder::open(&run).expect("the folder reads");
    assert!(folder.metrics.len() > 70);
    assert!(!folder.gradients.is_empty());
    // The summary written at the end of the first epoch says the run was
    // going, and nobody holds the folder's lock: it reads as interrupted.
    assert_eq!(folder.summary.as_ref().unwrap().status, RunStatus::Running);
    assert_eq!(folder.status, RunStatus::Interrupted);
    // And its weights load.
    folder.load_network(&burn::prelude::Device::flex()).unwrap();
}

#[test]
fn sweep_writes_one_run_per_combination_and_a_csv() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let output = depthlab(&[
        "sweep",
        "--families",
        "plain,resnet",
        "--depths",
        "8",
        "--seeds",
        "2",
        "--data",
        "digits",
        "--max-steps",
        "8",
        "--batch-size",
        "32",
        "--backend",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "family,depth,seed,params,final_train_loss,final_train_error,final_test_error,first_layer_output_grad_norm,status"
    );
    assert_eq!(lines.len(), 5);
    assert!(lines[1].starts_with("plain,8,1,") && lines[2].starts_with("plain,8,2,") && lines[3].starts_with("resnet,8,1,"), "{csv}");
    assert!(lines[1..].iter().all(|l| l.ends_with(",completed")));
    for name in ["plain-8-s1", "plain-8-s2", "resnet-8-s1", "resnet-8-s2"] {
        assert!(out.join(name).join("summary.json").is_file(), "{name}");
    }
}

/// The embedded data is enough to learn Fashion-MNIST well: a small residual
/// net passes 80 % test accuracy within 5 epochs on the CPU.
#[test]
fn a_small_resnet_reaches_80_percent_on_fashion_mini_in_5_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let output = depthlab(&[
        "train",
        "--arch",
        "resnet-8",
        "--epochs",
        "5",
        "--schedule",
        "cosine",
        "--lr",
        "0.1",
        "--backend",
        "cpu",
        "--probe-every",
        "20",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let accuracy = summary["final_test_accuracy"].as_f64().unwrap();
    eprintln!("resnet-8 on fashion-mini, 5 epochs: test accuracy {accuracy:.4} in {:.1} s", summary["wall_secs"].as_f64().unwrap());
    assert!(accuracy >= 0.80, "{summary}");
}

#[test]
fn every_reproduction_regenerates_its_figure_and_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let output = depthlab(&["reproduce", "all", "--quick", "--backend", "cpu", "--out", out]);
    assert!(output.status.success(), "{}", stderr(&output));
    for (name, csv) in [
        ("glorot", "output_gradients.csv"),
        ("highway", "results.csv"),
        ("degradation", "results.csv"),
        ("stochastic-depth", "first_layer_gradient.csv"),
        ("fractal", "results.csv"),
        ("branch-length", "results.csv"),
        ("lesion", "lesion.csv"),
        ("paths", "paths.csv"),
        ("landscape", "interpolation.csv"),
        ("thousand-layers", "curves.csv"),
    ] {
        let folder = dir.path().join(name);
        let png = std::fs::read(folder.join("figure.png")).unwrap_or_else(|e| panic!("{name}: figure.png: {e}"));
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "{name}: a real PNG");
        let image = image::load_from_memory(&png).unwrap();
        assert!(image.width() > 500 && image.height() > 300, "{name}: {}x{}", image.width(), image.height());
        let rows = std::fs::read_to_string(folder.join(csv)).unwrap_or_else(|e| panic!("{name}: {csv}: {e}"));
        assert!(rows.lines().count() > 2, "{name}: {csv} has rows");
        let summary = std::fs::read_to_string(folder.join("summary.md")).unwrap();
        assert!(summary.contains("![figure](figure.png)") && summary.contains("|---"), "{name}: {summary}");
    }
    // The figures' numbers are the experiments' own: the Glorot factor for
    // tanh with the standard init is 1/√3 per layer.
    let glorot = std::fs::read_to_string(dir.path().join("glorot/summary.md")).unwrap();
    let row = glorot.lines().find(|l| l.starts_with("| tanh standard")).unwrap();
    let first: f64 = row.split('|').nth(2).unwrap().trim().parse().unwrap();
    assert!((first - 1.0 / 3f64.sqrt()).abs() < 0.02, "{row}");
}

/// `reproduce --reuse` reads back the runs that finished with the same
/// settings and trains only what is missing; the figures' numbers are the
/// same (training is seeded).
#[test]
fn a_reproduction_reuses_its_finished_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let reproduce = |extra: &[&str]| {
        let mut args = vec!["reproduce", "thousand-layers", "--quick", "--backend", "cpu", "--out", out];
        args.extend_from_slice(extra);
        let output = depthlab(&args);
        assert!(output.status.success(), "{}", stderr(&output));
        (stderr(&output), std::fs::read_to_string(dir.path().join("thousand-layers/curves.csv")).unwrap())
    };
    let (_, first) = reproduce(&[]);
    std::fs::remove_dir_all(dir.path().join("thousand-layers/runs/resnet-56-zero")).unwrap();
    let (log, again) = reproduce(&["--reuse"]);
    assert_eq!(log.matches("reusing ").count(), 4, "{log}");
    assert!(log.contains("training resnet-56-zero"), "{log}");
    assert_eq!(first, again);
}

/// `--residual-init`: where it applies, what it adds, and the clear
/// refusals (no residual block, Fixup with batch norm or pre-activation,
/// an unknown name).
#[test]
fn residual_init_is_a_flag_with_clear_refusals() {
    let params = |args: &[&str]| {
        let output = depthlab(args);
        assert!(output.status.success(), "{}", stderr(&output));
        let v: Value = serde_json::from_str(&stdout(&output)).unwrap();
        v["params"].as_u64().unwrap()
    };
    let base = params(&["inspect", "resnet-20", "--json"]);
    assert_eq!(params(&["inspect", "resnet-20", "--json", "--residual-init", "zero"]), base);
    // SkipInit: one α per residual block.
    assert_eq!(params(&["inspect", "resnet-20", "--json", "--residual-init", "skipinit"]), base + 9);
    // Fixup: 5 scalars per block instead of the branch convolutions' biases.
    let plain_no_bn = params(&["inspect", "resnet-20", "--json", "--norm", "none"]);
    let fixup = params(&["inspect", "resnet-20", "--json", "--norm", "none", "--residual-init", "fixup"]);
    assert_eq!(fixup, plain_no_bn + 9 * 5 - (16 * 2 * 3 + 32 * 2 * 3 + 64 * 2 * 3));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--data", "digits", "--backend", "cpu", "--max-steps", "2", "--out", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        depthlab(&args)
    };
    common::assert_refused(&train(&["--arch", "plain-8", "--residual-init", "zero"]), 2, &["--residual-init zero", "no residual block"]);
    common::assert_refused(&train(&["--arch", "resnet-8", "--residual-init", "fixup"]), 2, &["Fixup", "--norm none"]);
    common::assert_refused(
        &train(&["--arch", "preact-resnet-8", "--norm", "none", "--residual-init", "fixup"]),
        2,
        &["post-activation", "skipinit"],
    );
    common::assert_refused(&train(&["--arch", "resnet-8", "--residual-init", "ones"]), 2, &["default, zero, skipinit or fixup"]);
    assert!(!out.exists(), "nothing is written for a refused run");
    // Accepted: the run folder's arch.json carries the field on every residual block.
    let output = train(&["--arch", "resnet-8", "--residual-init", "skipinit"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let arch: Value = serde_json::from_str(&std::fs::read_to_string(out.join("arch.json")).unwrap()).unwrap();
    let residual: Vec<&Value> = arch["blocks"].as_array().unwrap().iter().filter(|b| b["kind"] == "residual").collect();
    assert!(!residual.is_empty() && residual.iter().all(|b| b["residual_init"] == "skipinit"), "{arch}");
}

/// A run that diverges ends as `diverged`, exits 3 and says what to try.
#[test]
fn a_diverged_run_exits_3_and_says_what_to_try() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let output = common::training(&run, "1").args(["--norm", "none", "--lr", "10", "--max-steps", "40"]).output().unwrap();
    common::assert_refused(&output, 3, &["diverged", "lower learning rate", "residual init"]);
    let folder = RunFolder::open(&run).unwrap();
    assert_eq!(folder.summary.unwrap().status, RunStatus::Diverged);
}

#[test]
fn backend_cuda_without_it_is_refused_clearly_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let output = depthlab(&[
        "train",
        "--arch",
        "plain-8",
        "--data",
        "digits",
        "--max-steps",
        "2",
        "--backend",
        "cuda",
        "--out",
        run.to_str().unwrap(),
    ]);
    match depthlab::backend::select(depthlab::backend::BackendChoice::Cuda) {
        Ok(_) => assert!(output.status.success(), "CUDA is here and the run should train: {}", stderr(&output)),
        Err(reason) => {
            assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
            let text = stderr(&output);
            assert!(text.contains("--backend cuda") && text.contains(&reason.to_string()), "{text}");
            assert_eq!(text.lines().count(), 1, "one line, the reason: {text}");
            assert!(!run.exists(), "nothing written");
        }
    }
    // auto never fails for want of CUDA: it trains on whatever there is.
    let output = depthlab(&[
        "train",
        "--arch",
        "plain-8",
        "--data",
        "digits",
        "--max-steps",
        "2",
        "--backend",
        "auto",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stderr(&output).contains("cuda"), "{}", stderr(&output));
}

/// The lab's CPU kernels sum in an order fixed by the shapes, so the number
/// of compute threads changes the speed, not the numbers.
#[test]
fn threads_change_the_speed_and_not_the_losses() {
    let dir = tempfile::tempdir().unwrap();
    let losses = |threads: &str| {
        let run = dir.path().join(format!("run-{threads}"));
        let output = depthlab(&[
            "train",
            "--arch",
            "resnet-8",
            "--data",
            "digits",
            "--max-steps",
            "6",
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--backend",
            "cpu",
            "--threads",
            threads,
            "--out",
            run.to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        let train: Value = serde_json::from_str(&std::fs::read_to_string(run.join("train.json")).unwrap()).unwrap();
        assert_eq!(train["config"]["threads"], threads.parse::<u64>().unwrap(), "{train}");
        std::fs::read_to_string(run.join("metrics.csv"))
            .unwrap()
            .lines()
            .filter(|l| l.contains(",train,"))
            .map(|l| l.split(',').nth(3).unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let one = losses("1");
    assert_eq!(one.len(), 6, "{one:?}");
    assert_eq!(one, losses("3"));
    let output = depthlab(&["train", "--arch", "resnet-8", "--data", "digits", "--max-steps", "2", "--threads", "0"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("threads must be at least 1"), "{}", stderr(&output));
}

/// Without a session's runtime folder (a cron job, ssh without a login
/// session), listing the GPU adapters prints no libwayland "error:" line
/// about XDG_RUNTIME_DIR: nothing failed, and the run says where it trains.
#[test]
fn the_adapter_probe_is_quiet_without_a_login_session() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_depthlab"))
        .args(["train", "--arch", "plain-8", "--data", "digits", "--max-steps", "1", "--backend", "auto", "--out"])
        .arg(&out)
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("NODEVICE_SELECT")
        .output()
        .unwrap();
    let text = stderr(&output);
    assert!(output.status.success(), "{text}");
    assert!(!text.contains("XDG_RUNTIME_DIR"), "{text}");
    assert!(text.contains("training on"), "{text}");
}
