//! Property tests over everything the lab reads from users and from disk:
//! architecture JSON with any value in any field, IDX, CIFAR and image files
//! of random or cut-off bytes, run folders with truncated CSVs and JSON.
//! Each returns `Ok` or a clear error, never panics, and never sizes an
//! allocation past its stated limits. Case counts are fixed so CI stays
//! short (see `CASES`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use burn::prelude::*;
use depthlab::arch::{Architecture, MAX_PARAMS, MAX_VALUES_PER_EXAMPLE, Shape, known_kinds};
use depthlab::data::{cifar, decode_image_bytes, idx};
use depthlab::model::{Ctx, Network};
use depthlab::train::runfolder::RunFolder;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value};

mod common;

/// Cases per property: parsing is cheap and gets many; building and
/// running a network gets fewer.
const CASES: u32 = 1024;
const BUILD_CASES: u32 = 128;

/// `DEPTHLAB_PROPERTY_SCALE=N` runs N times as many cases (for a long
/// local search; CI runs the counts above).
fn config(cases: u32) -> Config {
    let scale = std::env::var("DEPTHLAB_PROPERTY_SCALE").ok().and_then(|s| s.parse::<u32>().ok()).unwrap_or(1).max(1);
    // No regression files are written: a failure prints its minimal case.
    Config { cases: cases * scale, failure_persistence: None, ..Config::default() }
}

// ---------------------------------------------------------------------------
// Architecture JSON

/// The fields each block kind takes, as its JSON spells them.
const KIND_FIELDS: [(&str, &[&str]); 15] = [
    ("conv", &["filters", "kernel", "stride"]),
    ("dense", &["units"]),
    ("residual", &["filters", "stride", "bottleneck", "preactivation", "shortcut", "survival", "branch_layers"]),
    ("residual_dense", &["units", "branch_layers", "preactivation", "shortcut", "survival"]),
    ("highway", &["kernel", "carry", "gate_bias"]),
    ("highway_dense", &["carry", "gate_bias"]),
    ("fractal", &["columns", "filters", "local_drop", "global_ratio"]),
    ("dense_block", &["layers", "growth_rate", "bottleneck"]),
    ("transition", &["compression"]),
    ("max_pool", &["size", "stride"]),
    ("avg_pool", &["size", "stride"]),
    ("global_avg_pool", &[]),
    ("norm_act", &[]),
    ("dropout", &["p"]),
    ("classifier", &[]),
];
const COMMON_FIELDS: [&str; 4] = ["repeat", "activation", "norm", "init"];

/// Numbers from the useful to the absurd: small sizes most often, then
/// sizes that overflow, negatives and fractions.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => (0u64..=6).prop_map(Value::from),
        2 => (0u64..=300).prop_map(Value::from),
        1 => prop::sample::select(vec![1u64 << 31, 1 << 32, (1 << 62) + 1, u64::MAX, 1_000_000_000, 65_537, 100_000, 10_001])
            .prop_map(Value::from),
        1 => (-1000i64..0).prop_map(Value::from),
        2 => prop::sample::select(vec![-1e30, -1.5, -0.0, 0.0, 1e-9, 0.25, 0.5, 0.9, 1.0, 1.5, 7.0, 1e30, f64::MAX]).prop_map(Value::from),
    ]
}

/// Any JSON value a field might hold, numbers most often.
fn field_value() -> impl Strategy<Value = Value> {
    let words = vec![
        "",
        "A",
        "B",
        "C",
        "none",
        "relu",
        "tanh",
        "sigmoid",
        "linear",
        "batchnorm",
        "he",
        "xavier",
        "standard",
        "coupled",
        "independent",
        "x",
    ];
    prop_oneof![
        10 => number(),
        2 => prop::sample::select(words).prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => Just(Value::Array(vec![Value::from(1)])),
    ]
}

/// One block: a kind (rarely an unknown one), each of its fields present or
/// not with any value, the common fields likewise, rarely a stray field.
fn block() -> impl Strategy<Value = Value> {
    let kinds = prop_oneof![20 => 0..KIND_FIELDS.len(), 1 => Just(usize::MAX)];
    (
        kinds,
        prop::collection::vec(prop::option::weighted(0.6, field_value()), 7),
        prop::collection::vec(prop::option::weighted(0.2, field_value()), 4),
        prop::option::weighted(0.03, field_value()),
    )
        .prop_map(|(kind, own, common, stray)| {
            let mut object = Map::new();
            let fields: &[&str] = match KIND_FIELDS.get(kind) {
                Some((tag, fields)) => {
                    object.insert("kind".into(), Value::from(*tag));
                    fields
                }
                None => {
                    object.insert("kind".into(), Value::from("wormhole"));
                    &[]
                }
            };
            for (name, value) in fields.iter().zip(own) {
                if let Some(v) = value {
                    object.insert((*name).into(), v);
                }
            }
            for (name, value) in COMMON_FIELDS.iter().zip(common) {
                if let Some(v) = value {
                    object.insert((*name).into(), v);
                }
            }
            if let Some(v) = stray {
                object.insert("colour".into(), v);
            }
            Value::Object(object)
        })
}

/// A network: blocks, usually ending in a classifier, sometimes with
/// stochastic depth of any survival.
fn architecture() -> impl Strategy<Value = Value> {
    (prop::collection::vec(block(), 0..7), any::<bool>(), prop::option::weighted(0.15, field_value())).prop_map(
        |(mut blocks, classifier, survival)| {
            if classifier {
                blocks.push(serde_json::json!({"kind": "classifier"}));
            }
            let mut object = Map::new();
            object.insert("name".into(), Value::from("random"));
            object.insert("blocks".into(), Value::Array(blocks));
            if let Some(s) = survival {
                object.insert("stochastic_depth".into(), serde_json::json!({ "final_survival": s }));
            }
            Value::Object(object)
        },
    )
}

const INPUTS: [Shape; 4] = [
    Shape::Map { channels: 1, height: 8, width: 8 },
    Shape::Map { channels: 3, height: 32, width: 32 },
    Shape::Map { channels: 1, height: 28, width: 28 },
    Shape::Flat { features: 64 },
];

#[test]
fn the_generator_knows_every_block_kind() {
    let mut ours: Vec<&str> = KIND_FIELDS.iter().map(|(tag, _)| *tag).collect();
    let mut theirs = known_kinds();
    ours.sort_unstable();
    theirs.sort_unstable();
    assert_eq!(ours, theirs, "update KIND_FIELDS when a block kind is added");
}

/// Any architecture JSON: reading and analysing it give `Ok` or errors
/// that name a block or the network, never a panic; a valid one stays
/// inside the stated limits (parameters, values per example).
#[test]
fn any_architecture_json_reads_and_analyses_without_panicking() {
    let mut runner = TestRunner::new(config(CASES));
    let valid = std::cell::Cell::new(0usize);
    runner
        .run(&(architecture(), 0..INPUTS.len(), 0usize..12), |(json, input, classes)| {
            let text = json.to_string();
            let arch = match Architecture::from_json(&text) {
                Ok(a) => a,
                Err(e) => {
                    prop_assert!(!e.to_string().is_empty());
                    return Ok(());
                }
            };
            // Written and read again, it is the same architecture.
            prop_assert_eq!(&Architecture::from_json(&arch.to_json()).map_err(|e| TestCaseError::fail(e.to_string()))?, &arch);
            let analysis = arch.analyse(INPUTS[input], classes);
            for error in &analysis.errors {
                prop_assert!(!error.to_string().is_empty());
            }
            if analysis.is_valid() {
                valid.set(valid.get() + 1);
                prop_assert!(analysis.params <= MAX_PARAMS, "{} parameters", analysis.params);
                for instance in &analysis.instances {
                    prop_assert!(instance.output.numel() <= MAX_VALUES_PER_EXAMPLE, "{:?}", instance.output);
                }
            }
            Ok(())
        })
        .unwrap();
    let valid = valid.get();
    let cases = runner.config().cases as usize;
    eprintln!("{cases} architectures, {valid} of them valid");
    assert!(valid > cases / 50, "the generator should make some valid networks ({valid})");
}

/// A valid architecture of modest size builds with exactly the parameters
/// the analysis counted and gives finite logits of the right shape.
#[test]
fn any_valid_architecture_builds_as_analysed_and_runs() {
    let device = Device::flex();
    let mut runner = TestRunner::new(config(BUILD_CASES * 16));
    let built = std::cell::Cell::new(0u32);
    let cap = runner.config().cases / 16;
    runner
        .run(&(architecture(), 0..3usize, 1usize..12), |(json, input, classes)| {
            let Ok(arch) = Architecture::from_json(&json.to_string()) else {
                return Ok(());
            };
            let shape = INPUTS[input];
            let analysis = arch.analyse(shape, classes);
            let values: usize = analysis.instances.iter().map(|i| i.output.numel()).sum();
            if !analysis.is_valid() || analysis.params > 300_000 || values > 400_000 || built.get() >= cap {
                return Ok(());
            }
            built.set(built.get() + 1);
            let net = Network::build(&arch, shape, classes, &device, 7).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(net.num_trainable(), analysis.params);
            let dims = shape.dims();
            let x = Tensor::<4>::ones([2, dims[0], dims[1], dims[2]], &device);
            let logits = net.forward(x, &mut Ctx::eval());
            prop_assert_eq!(logits.dims(), [2, classes]);
            let values = logits.into_data().try_to_vec::<f32>().map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert!(values.iter().all(|v| !v.is_nan()), "{:?}", values);
            Ok(())
        })
        .unwrap();
    let built = built.get();
    eprintln!("{built} random valid networks built and run");
    assert!(built >= cap / 8, "too few networks were small enough to build ({built})");
}

// ---------------------------------------------------------------------------
// Data files

/// An IDX file of `dims`, with its data.
fn idx_file(magic: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 8, magic];
    for d in dims {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend(data);
    bytes
}

/// Headers of any sizes (0, small, huge, ones whose product wraps), data
/// whole or cut at any byte, random bytes in any place: a split or an error.
#[test]
fn idx_files_of_any_bytes_read_or_fail_clearly() {
    let dims = prop_oneof![4 => 0u32..6, 1 => prop::sample::select(vec![1u32 << 31, u32::MAX, 1 << 16, 65_537])];
    let strategy = (
        prop::collection::vec(dims, 3),
        0usize..12,
        any::<u64>(),
        prop_oneof![Just(None), (0usize..400).prop_map(Some)],
        prop::collection::vec((0usize..400, any::<u8>()), 0..4),
        0usize..12,
    );
    let mut runner = TestRunner::new(config(CASES));
    runner
        .run(&strategy, |(dims, labels_n, seed, cut, flips, classes)| {
            let (n, h, w) = (dims[0] as usize, dims[1] as usize, dims[2] as usize);
            // Data for the header when it is small enough to make, else a few bytes.
            let size = n.checked_mul(h).and_then(|v| v.checked_mul(w)).filter(|&s| s <= 4096).unwrap_or(seed as usize % 64);
            let data: Vec<u8> = (0..size).map(|i| (seed as usize).wrapping_add(i * 31) as u8).collect();
            let mut images = idx_file(3, &dims, &data);
            let label_data: Vec<u8> = (0..labels_n).map(|i| (i % 11) as u8).collect();
            let mut labels = idx_file(1, &[labels_n as u32], &label_data);
            if let Some(cut) = cut {
                images.truncate(cut.min(images.len()));
            }
            for (at, byte) in flips {
                if let Some(b) = images.get_mut(at) {
                    *b = byte;
                } else {
                    let i = at % labels.len();
                    labels[i] = byte;
                }
            }
            match idx::split_from(("images".into(), images.clone()), ("labels".into(), labels), classes) {
                Ok((split, h, w)) => {
                    prop_assert_eq!(split.images.len(), split.labels.len() * h * w);
                    prop_assert!(split.labels.iter().all(|&l| usize::from(l) < classes));
                }
                Err(e) => prop_assert!(e.to_string().contains("images") || e.to_string().contains("labels"), "{}", e),
            }
            Ok(())
        })
        .unwrap();
}

/// CIFAR batches of any length and content: whole records read, anything
/// else is refused naming the file.
#[test]
fn cifar_batches_of_any_bytes_read_or_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data_batch_1.bin");
    let record = 1 + 3 * 32 * 32;
    let strategy = (prop_oneof![Just(0usize), Just(record), Just(2 * record), 0usize..3 * record + 5], any::<u64>());
    let mut runner = TestRunner::new(config(CASES / 4));
    runner
        .run(&strategy, |(len, seed)| {
            let bytes: Vec<u8> =
                (0..len).map(|i| ((seed as usize).wrapping_mul(i + 1) >> 3) as u8 % if seed % 2 == 0 { 10 } else { 255 }).collect();
            std::fs::write(&path, &bytes).unwrap();
            let mut split = depthlab::data::Split::default();
            match cifar::read_batch(&path, &mut split) {
                Ok(()) => {
                    prop_assert_eq!(split.labels.len() * record, len);
                    prop_assert!(split.labels.iter().all(|&l| l < 10));
                }
                Err(e) => prop_assert!(e.to_string().contains("data_batch_1.bin"), "{}", e),
            }
            Ok(())
        })
        .unwrap();
}

/// Small real images of each format the lab reads.
fn sample_images() -> Vec<(&'static str, Vec<u8>)> {
    let image = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(23, 17, |x, y| {
        image::Rgb([(x * 11) as u8, (y * 15) as u8, ((x * y) % 256) as u8])
    }));
    [
        ("png", image::ImageFormat::Png),
        ("jpeg", image::ImageFormat::Jpeg),
        ("bmp", image::ImageFormat::Bmp),
        ("gif", image::ImageFormat::Gif),
    ]
    .into_iter()
    .map(|(name, format)| {
        let mut bytes = std::io::Cursor::new(Vec::new());
        image.write_to(&mut bytes, format).unwrap();
        (name, bytes.into_inner())
    })
    .collect()
}

/// Images cut at any byte, with bytes changed anywhere, or random: decoded
/// or refused with words, never a panic; a cut JPEG is always refused.
#[test]
fn images_of_any_bytes_decode_or_fail_clearly() {
    let samples = sample_images();
    let strategy = (
        0..samples.len() + 1,
        any::<prop::sample::Index>(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        any::<bool>(),
    );
    let mut runner = TestRunner::new(config(CASES));
    let cut_jpegs = std::cell::Cell::new(0);
    runner
        .run(&strategy, |(which, cut, changes, truncate)| {
            let (name, mut bytes) = match samples.get(which) {
                Some((name, bytes)) => (*name, bytes.clone()),
                None => ("random", (0..cut.index(2000)).map(|i| (i * 7919 % 251) as u8).collect()),
            };
            let whole = bytes.len();
            if truncate && !bytes.is_empty() {
                bytes.truncate(cut.index(bytes.len()));
            }
            for (at, byte) in &changes {
                if !bytes.is_empty() {
                    let i = at.index(bytes.len());
                    bytes[i] = *byte;
                }
            }
            match decode_image_bytes(&bytes) {
                Ok(image) => {
                    prop_assert!(image.width() > 0 && image.height() > 0);
                    // A JPEG cut before its end is refused, not filled in.
                    if name == "jpeg" && bytes.len() < whole && changes.is_empty() {
                        prop_assert!(false, "a JPEG cut to {} of {whole} bytes decoded", bytes.len());
                    }
                }
                Err(e) => {
                    prop_assert!(!e.to_string().is_empty());
                    if name == "jpeg" && bytes.len() < whole {
                        cut_jpegs.set(cut_jpegs.get() + 1);
                    }
                }
            }
            Ok(())
        })
        .unwrap();
    assert!(cut_jpegs.get() > 0, "the cases should include cut JPEGs");
}

// ---------------------------------------------------------------------------
// Run folders

/// A small finished run, made once for every case.
fn finished_run() -> &'static Path {
    static RUN: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let output = common::depthlab(&[
            "train",
            "--arch",
            "resnet-8",
            "--data",
            "digits",
            "--backend",
            "cpu",
            "--epochs",
            "2",
            "--batch-size",
            "128",
            "--probe-every",
            "1",
            "--out",
            run.to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{}", common::stderr(&output));
        (dir, run)
    })
    .1
}

const RUN_FILES: [&str; 6] = ["arch.json", "train.json", "summary.json", "metrics.csv", "gradients.csv", "probes.csv"];

/// A run folder with any of its files cut at any byte (as a kill or a full
/// disk leaves them) or with a byte changed: it reads, or the error names
/// the file; what it reads of a CSV is a prefix of the whole.
#[test]
fn run_folders_with_cut_or_changed_files_read_or_fail_clearly() {
    let source = finished_run();
    let whole = RunFolder::open(source).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let strategy = (0..RUN_FILES.len(), any::<prop::sample::Index>(), prop::option::of((any::<prop::sample::Index>(), any::<u8>())));
    let mut runner = TestRunner::new(config(CASES / 2));
    let case = std::cell::Cell::new(0);
    runner
        .run(&strategy, |(file, cut, change)| {
            case.set(case.get() + 1);
            let run = scratch.path().join(format!("case-{}", case.get()));
            std::fs::create_dir(&run).unwrap();
            for name in RUN_FILES {
                std::fs::copy(source.join(name), run.join(name)).unwrap();
            }
            let target = run.join(RUN_FILES[file]);
            let mut bytes = std::fs::read(&target).unwrap();
            match change {
                None => bytes.truncate(cut.index(bytes.len() + 1)),
                Some((at, byte)) => {
                    let i = at.index(bytes.len());
                    bytes[i] = byte;
                }
            }
            std::fs::write(&target, &bytes).unwrap();
            match RunFolder::open(&run) {
                Ok(folder) => {
                    if change.is_none() {
                        prop_assert!(whole.metrics.starts_with(&folder.metrics), "{} metrics rows are not a prefix", folder.metrics.len());
                        prop_assert!(whole.gradients.starts_with(&folder.gradients));
                    }
                }
                Err(e) => prop_assert!(e.to_string().contains(RUN_FILES[file]), "the error should name {}: {}", RUN_FILES[file], e),
            }
            std::fs::remove_dir_all(&run).unwrap();
            Ok(())
        })
        .unwrap();
}
