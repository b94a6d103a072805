//! `depthlab export`: every family, trained for a few steps on the digits,
//! exported to PyTorch; the exported `predict.py` must give the top-5 that
//! `depthlab classify` gives, probabilities within 1e-4.
//!
//! Needs a Python with torch, numpy, pillow and safetensors:
//! `scripts/torch_venv.sh` makes one in `~/.cache/depthlab/torch-venv`
//! (`DEPTHLAB_TORCH_PYTHON` points elsewhere). Without it the test fails
//! and says so.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{assert_refused, depthlab, stderr, stdout, torch_python, train_on_digits, trained_run};
use serde_json::Value;

const TOLERANCE: f64 = 1e-4;
const MIXED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/export_mixed.json");
/// Residual branches of 1 and 3 layers, conv and dense.
const BRANCHES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/export_branches.json");
/// Residual branches started at zero: zero-γ, SkipInit and Fixup blocks.
const INITS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/export_inits.json");

fn train(arch: &str, run: &Path) {
    train_on_digits(arch, run, &["--epochs", "1", "--max-steps", "4", "--batch-size", "32"]);
}

fn export(run: &Path, out: &Path) {
    let output = depthlab(&["export", "--run", run.to_str().unwrap(), "--format", "pytorch", "--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "exporting {}: {}", run.display(), stderr(&output));
}

/// The `predictions` of a `--json` output: (index, class, probability).
fn predictions(output: &Output, what: &str) -> Vec<(u64, String, f64)> {
    assert!(output.status.success(), "{what} failed: {}", stderr(output));
    let json: Value = serde_json::from_str(&stdout(output)).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", stdout(output)));
    json["predictions"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no predictions list: {json}"))
        .iter()
        .map(|p| (p["index"].as_u64().unwrap(), p["class"].as_str().unwrap().to_string(), p["probability"].as_f64().unwrap()))
        .collect()
}

/// Classifies `image` with the lab and with the export; returns the
/// largest probability difference after checking the top-5 agree.
fn compare(python: &Path, run: &Path, out: &Path, image: &Path) -> f64 {
    let what = format!("{} on {}", run.display(), image.display());
    let lab = predictions(&depthlab(&["classify", "--run", run.to_str().unwrap(), "--image", image.to_str().unwrap(), "--json"]), &what);
    let exported = predictions(&Command::new(python).arg(out.join("predict.py")).arg(image).arg("--json").output().unwrap(), &what);
    assert_eq!(lab.len(), 5, "{what}: the lab's top 5");
    assert_eq!(exported.len(), 5, "{what}: predict.py's top 5");
    let mut max_difference: f64 = 0.0;
    for (rank, (l, e)) in lab.iter().zip(&exported).enumerate() {
        let difference = (l.2 - e.2).abs();
        max_difference = max_difference.max(difference);
        assert!(difference <= TOLERANCE, "{what}: rank {}: lab {l:?}, PyTorch {e:?}", rank + 1);
        // Two classes whose probabilities tie may come in either order.
        assert!(l.0 == e.0 || difference < 1e-6, "{what}: rank {}: lab {l:?}, PyTorch {e:?}", rank + 1);
        assert!(l.0 != e.0 || l.1 == e.1, "{what}: class names differ: {l:?} {e:?}");
    }
    max_difference
}

/// Test images: an 8x8 grey pattern at the digits' input size, a 20x13 RGB
/// image (resized and made grey like the lab does), a 19x11 16-bit grey
/// image, and a 28x28 sample.
fn images(dir: &Path) -> Vec<PathBuf> {
    let grey = image::GrayImage::from_fn(8, 8, |x, y| image::Luma([((x * 37 + y * 91 + x * y * 13) % 256) as u8]));
    let grey_path = dir.join("pattern-8x8.png");
    grey.save(&grey_path).unwrap();
    let rgb = image::RgbImage::from_fn(20, 13, |x, y| image::Rgb([(x * 12) as u8, (y * 19) as u8, ((x * y * 7) % 256) as u8]));
    let rgb_path = dir.join("colour-20x13.png");
    rgb.save(&rgb_path).unwrap();
    // 16 bits a pixel: resized at 16 bits, then made bytes, as the lab does.
    let deep = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(19, 11, |x, y| {
        image::Luma([((x * 3001 + y * 1777 + x * y * 131) % 65536) as u16])
    });
    let deep_path = dir.join("grey16-19x11.png");
    deep.save(&deep_path).unwrap();
    vec![grey_path, rgb_path, deep_path, PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/samples/bag.png"))]
}

#[test]
fn every_family_exported_to_pytorch_predicts_what_the_lab_predicts() {
    let python = torch_python("torch, numpy, PIL, safetensors");
    let dir = tempfile::tempdir().unwrap();
    let images = images(dir.path());
    let archs = [
        "plain-8",
        "resnet-8",
        "preact-resnet-8",
        "resnet-sd-8",
        "highway-8",
        "highway-mlp-4",
        "plain-mlp-3",
        "resnet-mlp-6",
        "fractal-2",
        "densenet-10",
        "densenet-bc-10",
        MIXED,
        BRANCHES,
        INITS,
    ];
    let mut max_difference: f64 = 0.0;
    for (i, arch) in archs.iter().enumerate() {
        let run = dir.path().join(format!("run-{i}"));
        let out = dir.path().join(format!("export-{i}"));
        if *arch == INITS {
            // Its classifier starts at zero (Fixup): enough steps for the
            // predictions to leave the uniform guess, so that every branch
            // and scalar shows in them.
            train_on_digits(arch, &run, &["--epochs", "3", "--max-steps", "80", "--batch-size", "32"]);
        } else {
            train(arch, &run);
        }
        export(&run, &out);
        // The mixed network (options A, B, C, both carries, …) and the one
        // of branch lengths see every image; each family one of them.
        let chosen: Vec<&PathBuf> =
            if [MIXED, BRANCHES, INITS].contains(arch) { images.iter().collect() } else { vec![&images[i % images.len()]] };
        for image in chosen {
            let difference = compare(&python, &run, &out, image);
            eprintln!("{arch}: {}: max probability difference {difference:.2e}", image.file_name().unwrap().to_string_lossy());
            max_difference = max_difference.max(difference);
        }
    }
    eprintln!("{} architectures agree; max probability difference {max_difference:.2e}", archs.len());
}

#[test]
fn the_safetensors_format_writes_the_weights_alone() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(&dir.path().join("run"));
    let out = dir.path().join("weights");
    let output = depthlab(&["export", "--run", run.to_str().unwrap(), "--format", "safetensors", "--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let names: Vec<String> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, vec!["weights.safetensors".to_string()]);
}

#[test]
fn bad_input_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(&dir.path().join("run"));
    let run_arg = run.to_str().unwrap();
    let out = dir.path().join("out");
    let out_arg = out.to_str().unwrap();

    let missing = dir.path().join("no-such-run");
    let output = depthlab(&["export", "--run", missing.to_str().unwrap(), "--out", out_arg]);
    assert_refused(&output, 2, &["no-such-run", "no such run folder"]);

    let output = depthlab(&["export", "--run", run_arg, "--format", "onnx", "--out", out_arg]);
    assert_refused(&output, 2, &["onnx", "pytorch", "safetensors"]);

    // A run that saved no weights (it diverged in its first epoch).
    let unsaved = dir.path().join("unsaved");
    std::fs::create_dir(&unsaved).unwrap();
    for name in ["arch.json", "train.json", "metrics.csv"] {
        std::fs::copy(run.join(name), unsaved.join(name)).unwrap();
    }
    let summary = std::fs::read_to_string(run.join("summary.json")).unwrap().replace("\"completed\"", "\"diverged\"");
    std::fs::write(unsaved.join("summary.json"), summary).unwrap();
    let output = depthlab(&["export", "--run", unsaved.to_str().unwrap(), "--out", out_arg]);
    assert_refused(&output, 2, &["model.bpk", "saved no weights", "diverged"]);
    assert!(!out.exists(), "a refused export writes nothing");

    // An output folder that holds files is kept unless --overwrite.
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let output = depthlab(&["export", "--run", run_arg, "--out", out_arg]);
    assert_refused(&output, 2, &["notes.txt", "--overwrite"]);
    assert!(!out.join("model.py").exists());
    let output = depthlab(&["export", "--run", run_arg, "--out", out_arg, "--overwrite"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(out.join("model.py").exists() && out.join("notes.txt").exists());
    // Weights alone over a PyTorch export replace the whole set: the old
    // code, which would load them as another network, goes.
    let output = depthlab(&["export", "--run", run_arg, "--out", out_arg, "--format", "safetensors", "--overwrite"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("removed") && stderr(&output).contains("model.py"), "{}", stderr(&output));
    for name in ["model.py", "predict.py", "README.md"] {
        assert!(!out.join(name).exists(), "{name} of the earlier export");
    }
    assert!(out.join("weights.safetensors").exists() && out.join("notes.txt").exists());

    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let output = depthlab(&["export", "--run", run_arg, "--out", file.to_str().unwrap()]);
    assert_refused(&output, 2, &["a-file", "not a folder"]);
}
