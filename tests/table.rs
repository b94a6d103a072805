//! Tabular data: a CSV written from the digits set trains, `classify --row`
//! and the exported `predict.py --row` agree on a row, and what cannot
//! apply to a table (an image, a row of the wrong length) is refused in
//! words.
//!
//! The PyTorch half needs the cached Python environment
//! (`scripts/torch_venv.sh`); without it the test fails and says so.

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use common::{assert_refused, depthlab, stderr, stdout, torch_python};
use depthlab::data::{DataSpec, Dataset};

/// The digits' training split as a CSV: the label first (so `label=digit`
/// chooses it), then 64 pixel columns as numbers with decimals. Returns
/// the rows as text, without the label.
fn write_digits_csv(path: &Path) -> Vec<String> {
    let digits = Dataset::load(&DataSpec::Digits).unwrap();
    let mut text = String::from("digit");
    for p in 0..64 {
        write!(text, ",\"pixel {p}\"").unwrap();
    }
    text.push('\n');
    let mut rows = Vec::new();
    for (pixels, label) in digits.train.images.chunks_exact(64).zip(&digits.train.labels) {
        let row: Vec<String> = pixels.iter().map(|&b| format!("{:.3}", f32::from(b) / 17.0)).collect();
        writeln!(text, "{label},{}", row.join(",")).unwrap();
        rows.push(row.join(","));
    }
    std::fs::write(path, text).unwrap();
    rows
}

fn json(output: &std::process::Output, what: &str) -> serde_json::Value {
    assert!(output.status.success(), "{what}: {}", stderr(output));
    serde_json::from_str(&stdout(output)).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", stdout(output)))
}

#[test]
fn a_table_trains_and_the_lab_and_predict_py_agree_on_a_row() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("digits.csv");
    let rows = write_digits_csv(&csv);
    let run = dir.path().join("run");
    let data = format!("csv:{},label=digit", csv.display());
    let output = depthlab(&[
        "train",
        "--arch",
        "plain-mlp-4",
        "--data",
        &data,
        "--backend",
        "cpu",
        "--epochs",
        "6",
        "--batch-size",
        "32",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert!(summary["final_test_accuracy"].as_f64().unwrap() > 0.85, "digits as a table are learnable: {summary}");
    let train: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("train.json")).unwrap()).unwrap();
    let dataset = &train["dataset"];
    assert_eq!(dataset["input"]["channels"], 64, "{dataset}");
    // Every fifth row is held out for testing.
    assert_eq!(dataset["test_examples"].as_u64().unwrap() as usize, rows.len() / 5);
    assert_eq!(dataset["features"]["label"], "digit");
    assert_eq!(dataset["features"]["names"][3], "pixel 3");
    assert_eq!(dataset["class_names"][9], "9");

    let r = run.to_str().unwrap();
    let lab = |row: &str| json(&depthlab(&["classify", "--run", r, "--row", row, "--json"]), row);
    let exported = dir.path().join("export");
    let output = depthlab(&["export", "--run", r, "--format", "pytorch", "--out", exported.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let python = torch_python("torch, numpy, PIL, safetensors");
    let predict =
        |row: &str| json(&Command::new(&python).arg(exported.join("predict.py")).args(["--row", row, "--json"]).output().unwrap(), row);
    // A held-out row, a training row, and one beyond the training range.
    let beyond = rows[0].split(',').map(|v| format!("{}", v.parse::<f32>().unwrap() * 1.5 + 0.25)).collect::<Vec<_>>().join(",");
    for row in [&rows[4], &rows[7], &beyond] {
        let (a, b) = (lab(row), predict(row));
        assert_eq!(a["row"], row.as_str());
        assert_eq!(b["row"], row.as_str());
        let (a, b) = (a["predictions"].as_array().unwrap(), b["predictions"].as_array().unwrap());
        assert_eq!(a.len(), 5);
        assert_eq!(b.len(), 5);
        for (x, y) in a.iter().zip(b) {
            let (p, q) = (x["probability"].as_f64().unwrap(), y["probability"].as_f64().unwrap());
            assert!((p - q).abs() <= 1e-4, "{row}: lab {x}, PyTorch {y}");
            assert!(x["index"] == y["index"] || (p - q).abs() < 1e-6, "{row}: lab {x}, PyTorch {y}");
        }
    }

    // Inputs of the wrong kind, in words, exit 2.
    assert_refused(&depthlab(&["classify", "--run", r, "--row", "1,2"]), 2, &["2 values for 64 features", "label column 'digit'"]);
    assert_refused(&depthlab(&["classify", "--run", r, "--row", &rows[0].replacen("0.000", "NA", 1)]), 2, &["missing value 'NA'"]);
    let image = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/samples/bag.png");
    assert_refused(&depthlab(&["classify", "--run", r, "--image", image]), 2, &["rows of a table", "--row"]);
    assert_refused(&depthlab(&["classify", "--run", r, "--point", "1,2"]), 2, &["rows of a table"]);
    let output = Command::new(&python).arg(exported.join("predict.py")).arg(image).output().unwrap();
    assert!(!output.status.success() && stderr(&output).contains("trained on a table"), "{}", stderr(&output));
    let digits = dir.path().join("images");
    common::trained_run(&digits);
    assert_refused(&depthlab(&["classify", "--run", digits.to_str().unwrap(), "--row", "1,2"]), 2, &["trained on images"]);
}

#[test]
fn bad_tables_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let good = "a,b,label\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n9,9,x\n";
    let cases = [
        (format!("csv:{}", write("missing.csv", "a,b,label\n1,,x\n3,4,y\n5,6,x\n7,8,y\n9,9,x\n")), "line 2, column 'b': missing value"),
        (format!("csv:{}", write("words.csv", "a,b,label\n1,two,x\n3,4,y\n5,6,x\n7,8,y\n9,9,x\n")), "'two' is not a number"),
        (format!("csv:{}", write("one.csv", "a,label\n1,x\n2,x\n3,x\n4,x\n5,x\n")), "a classifier needs at least 2"),
        (format!("csv:{}", write("header.csv", "a,b,label\n")), "a header and no data rows"),
        (format!("csv:{}", write("empty.csv", "")), "the file is empty"),
        (format!("csv:{},test={}", write("good.csv", good), write("unseen.csv", "a,b,label\n1,2,z\n")), "the label 'z' never appears"),
        (format!("csv:{},label=colour", write("good2.csv", good)), "no column named 'colour'"),
        (format!("csv:{}", dir.path().join("absent.csv").display()), "cannot open"),
        ("csv:".to_string(), "needs a file"),
    ];
    for (data, words) in cases {
        let out = dir.path().join("run");
        let output = depthlab(&["train", "--arch", "plain-mlp-4", "--data", &data, "--backend", "cpu", "--out", out.to_str().unwrap()]);
        // A malformed `--data` and a file that cannot be read as data are
        // both bad input (2), as every data file is.
        assert_refused(&output, 2, &[words]);
        assert!(!out.join("train.json").exists(), "{data}: nothing written");
    }
}
