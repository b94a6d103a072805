//! The depth sweep: one run per (family, depth, seed), twins adjacent and
//! sharing seed and batch order, each in its own run folder, with a row per
//! run in `sweep.csv`:
//! `family,depth,seed,params,final_train_loss,final_train_error,final_test_error,first_layer_output_grad_norm,status`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use serde::{Deserialize, Serialize};

use crate::arch::presets::Family;
use crate::data::Dataset;
use crate::train::events::{Command, Event};
use crate::train::worker::{EventSender, RunHandle, RunRequest, spawn_worker};
use crate::train::{RunStatus, TrainConfig, train};

pub const SWEEP_HEADER: &str =
    "family,depth,seed,params,final_train_loss,final_train_error,final_test_error,first_layer_output_grad_norm,status";

/// What to sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepConfig {
    pub families: Vec<Family>,
    /// Requested depths; each family uses its valid depth nearest to each.
    pub depths: Vec<usize>,
    /// Number of seeds per (family, depth): `train.seed`, `train.seed + 1`, …
    pub seeds: usize,
    /// Settings of every run (its `seed` is the first seed).
    pub train: TrainConfig,
    pub out: PathBuf,
}

/// One finished run of a sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepRow {
    pub family: String,
    pub depth: usize,
    pub seed: u64,
    pub params: usize,
    pub final_train_loss: Option<f32>,
    pub final_train_error: Option<f32>,
    pub final_test_error: Option<f32>,
    pub first_layer_output_grad_norm: Option<f32>,
    pub status: RunStatus,
    pub run_dir: PathBuf,
}

impl SweepRow {
    pub fn csv(&self) -> String {
        let opt = |v: Option<f32>| v.map(|x| x.to_string()).unwrap_or_default();
        format!(
            "{},{},{},{},{},{},{},{},{}",
            self.family,
            self.depth,
            self.seed,
            self.params,
            opt(self.final_train_loss),
            opt(self.final_train_error),
            opt(self.final_test_error),
            opt(self.first_layer_output_grad_norm),
            self.status
        )
    }
}

/// Parses `plain,resnet,highway` into families.
pub fn parse_families(list: &str) -> Result<Vec<Family>, String> {
    list.split(',')
        .map(|name| {
            let name = name.trim();
            Family::from_prefix(name).ok_or_else(|| {
                format!("'{name}' is not a family ({})", Family::ALL.iter().map(|f| f.prefix()).collect::<Vec<_>>().join(", "))
            })
        })
        .collect()
}

/// The runs of a sweep, in order: for each depth, each family, each seed.
fn plan(config: &SweepConfig) -> Vec<(Family, usize, u64)> {
    let mut runs = Vec::new();
    for &depth in &config.depths {
        for &family in &config.families {
            for s in 0..config.seeds.max(1) {
                runs.push((family, depth, config.train.seed + s as u64));
            }
        }
    }
    runs
}

/// Runs a sweep on the calling thread; returns its rows. A stop command
/// ends the current run and the sweep.
pub fn run_sweep(
    config: &SweepConfig,
    data: Option<Arc<Dataset>>,
    commands: &Receiver<Command>,
    events: &EventSender,
) -> Result<Vec<SweepRow>, String> {
    if config.families.is_empty() || config.depths.is_empty() {
        return Err("a sweep needs at least one family and one depth".into());
    }
    config.train.check()?;
    if config.out.join("sweep.csv").exists() {
        return Err(format!("{}: already holds a sweep; choose another output folder", config.out.display()));
    }
    std::fs::create_dir_all(&config.out).map_err(|e| format!("{}: {e}", config.out.display()))?;
    let data = match data {
        Some(d) => d,
        None => {
            events.send(Event::Preparing("loading data".into()));
            Arc::new(Dataset::load(&config.train.data).map_err(|e| e.to_string())?)
        }
    };
    let csv_path = config.out.join("sweep.csv");
    let mut csv = std::fs::File::create(&csv_path).map_err(|e| format!("{}: {e}", csv_path.display()))?;
    writeln!(csv, "{SWEEP_HEADER}").map_err(|e| format!("{}: {e}", csv_path.display()))?;
    let runs = plan(config);
    let mut rows = Vec::new();
    let mut stopped = false;
    for (index, &(family, depth, seed)) in runs.iter().enumerate() {
        let size = family.size_for_depth(depth);
        let arch = family.build(size, data.shape())?;
        let run_dir = config.out.join(format!("{}-s{seed}", arch.name));
        events.send(Event::SweepRun { index, total: runs.len(), label: format!("{} seed {seed}", arch.name) });
        let request = RunRequest {
            arch,
            config: TrainConfig { seed, ..config.train.clone() },
            data: Some(data.clone()),
            out: Some(run_dir.clone()),
            init_weights: None,
        };
        let summary = train(request, commands, events);
        let row = SweepRow {
            family: family.prefix().to_string(),
            depth: summary.depth,
            seed,
            params: summary.params,
            final_train_loss: summary.final_train_loss,
            final_train_error: summary.final_train_accuracy.map(|a| 1.0 - a),
            final_test_error: summary.final_test_accuracy.map(|a| 1.0 - a),
            first_layer_output_grad_norm: summary.first_layer_output_grad_norm,
            status: summary.status,
            run_dir,
        };
        writeln!(csv, "{}", row.csv()).and_then(|_| csv.flush()).map_err(|e| format!("{}: {e}", csv_path.display()))?;
        events.send(Event::Finished(Box::new(summary.clone())));
        events.send(Event::SweepRow(row.clone()));
        rows.push(row);
        if summary.status == RunStatus::Stopped {
            stopped = true;
            break;
        }
    }
    events.send(Event::SweepFinished { stopped });
    Ok(rows)
}

/// Starts a sweep on a worker thread.
pub fn spawn_sweep(
    config: SweepConfig,
    data: Option<Arc<Dataset>>,
    wake: Option<Arc<dyn Fn() + Send + Sync>>,
) -> std::io::Result<RunHandle> {
    spawn_worker("depthlab-sweep", config.train.threads, wake, move |commands, events| {
        if let Err(reason) = run_sweep(&config, data, &commands, &events) {
            events.send(Event::Finished(Box::new(crate::train::Summary::failed(reason))));
            events.send(Event::SweepFinished { stopped: true });
        }
    })
}
