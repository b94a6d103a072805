//! TensorBoard event files: the `tensorboard` package's own reader
//! (`EventAccumulator`) opens a run's event file, and its scalars are the
//! rows of `metrics.csv` and `gradients.csv`, bit for bit as float32; the
//! hyperparameters and the run's end are there for the hparams plugin.
//!
//! Needs the cached Python environment with `tensorboard`
//! (`scripts/torch_venv.sh`); without it the test fails and says so.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{stderr, torch_python, train_on_digits};

const READER: &str = r#"
import csv, glob, struct, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

run = sys.argv[1]
files = glob.glob(run + "/events.out.tfevents.*")
assert len(files) == 1, f"one event file, found {files}"
ea = EventAccumulator(files[0], size_guidance={"scalars": 0, "tensors": 0})
ea.Reload()
f32 = lambda v: struct.unpack("f", struct.pack("f", float(v)))[0]

rows = list(csv.DictReader(open(run + "/metrics.csv")))
for split in ("train", "test"):
    want = [(int(r["step"]), f32(r["loss"]), f32(r["accuracy"])) for r in rows if r["split"] == split]
    loss = [(s.step, s.value) for s in ea.Scalars(f"{split}/loss")]
    accuracy = [(s.step, s.value) for s in ea.Scalars(f"{split}/accuracy")]
    assert [(s, l) for s, l, _ in want] == loss, f"{split}/loss: {loss[:3]} vs metrics.csv {want[:3]}"
    assert [(s, a) for s, _, a in want] == accuracy, f"{split}/accuracy"
    assert len(want) > 0, split
lr = [(s.step, s.value) for s in ea.Scalars("lr")]
assert lr == [(int(r["step"]), f32(r["lr"])) for r in rows if r["split"] == "train"], "lr"

grads = list(csv.DictReader(open(run + "/gradients.csv")))
# Tags "gradient/output/<index> <layer name>", the index zero-padded.
tags = {int(t.split("/")[2].split(" ")[0]): t for t in ea.Tags()["scalars"] if t.startswith("gradient/output/")}
layers = {int(r["layer_index"]) for r in grads}
assert set(tags) == layers, f"output-gradient tags for layers {sorted(tags)}, gradients.csv has {sorted(layers)}"
for r in grads:
    tag = tags[int(r["layer_index"])]
    assert tag.endswith(r["layer_name"].replace("/", " of ")), f"{tag} names {r['layer_name']}"
    got = {s.step: s.value for s in ea.Scalars(tag)}
    assert got[int(r["step"])] == f32(r["output_grad_norm"]), f"{tag} at step {r['step']}"
    weight = {s.step: s.value for s in ea.Scalars(tag.replace("/output/", "/weight/"))}
    assert weight[int(r["step"])] == f32(r["weight_grad_norm"]), f"weight gradient of {tag}"

start = plugin_data_pb2.HParamsPluginData.FromString(ea.SummaryMetadata("_hparams_/session_start_info").plugin_data.content)
hp = start.session_start_info.hparams
assert hp["arch"].string_value == sys.argv[2], hp["arch"]
assert hp["lr"].number_value == float(sys.argv[3]), hp["lr"]
assert hp["batch_size"].number_value == 16, hp["batch_size"]
end = plugin_data_pb2.HParamsPluginData.FromString(ea.SummaryMetadata("_hparams_/session_end_info").plugin_data.content)
assert end.session_end_info.status == 1, end
print(f"{len(rows)} metric rows, {len(grads)} gradient rows, {len(hp)} hyperparameters: all read back")
"#;

fn read_back(python: &Path, run: &Path, arch: &str, lr: &str) {
    let output = Command::new(python).args(["-c", READER]).arg(run).args([arch, lr]).output().expect("python runs");
    eprintln!("{}", String::from_utf8_lossy(&output.stdout));
    assert!(
        output.status.success(),
        "TensorBoard's reader disagrees with the run's CSVs: {}{}",
        String::from_utf8_lossy(&output.stdout),
        stderr(&output)
    );
}

fn event_files(run: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(run)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("events.out.tfevents."))
        .collect()
}

#[test]
fn tensorboard_reads_what_the_run_folder_says() {
    let python = torch_python("tensorboard");
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let flags = ["--max-steps", "12", "--batch-size", "16", "--probe-every", "5", "--lr", "0.03", "--test-examples", "64"];
    train_on_digits("resnet-8", &run, &flags);
    read_back(&python, &run, "resnet-8", "0.03");

    // --overwrite replaces the event file with the new run's, no second one.
    let first = event_files(&run);
    let mut flags = flags.to_vec();
    flags.push("--overwrite");
    train_on_digits("plain-8", &run, &flags);
    let second = event_files(&run);
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(first, second, "the overwritten run's event file is gone");
    read_back(&python, &run, "plain-8", "0.03");
}
