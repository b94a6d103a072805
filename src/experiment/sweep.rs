//! The depth sweep: one run per (family, depth, seed), twins adjacent and
//! sharing seed and batch order, each in its own run folder, with a row per
//! run in `sweep.csv`:
//! `family,depth,seed,params,final_train_loss,final_train_error,final_test_error,first_layer_output_grad_norm,status`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use serde::{Deserialize, Serialize};

use super::files::{self, SweepFile};
use super::runner;
use crate::arch::Shape;
use crate::arch::presets::Family;
use crate::data::Dataset;
use crate::train::events::{Command, Event};
use crate::train::worker::{EventSender, RunHandle, RunRequest, spawn_worker};
use crate::train::{RunStatus, Summary, TrainConfig};

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
    /// Finish the sweep already in `out` (same settings): finished runs are
    /// kept, the others run. Without it, a folder holding a sweep is refused.
    pub resume: bool,
    /// Runs at once (each on its share of the cores); 0 picks the default
    /// for this machine (`default_jobs`).
    pub jobs: usize,
}

/// One run of a sweep, as planned before anything trains.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedRun {
    /// The family's prefix (`plain`, `resnet`, …).
    pub family: String,
    /// The family's size number and the preset it names (`resnet-20`).
    pub size: usize,
    pub arch: String,
    /// Weight layers on the longest path, and trainable parameters.
    pub depth: usize,
    pub params: usize,
    pub seed: u64,
    /// The run folder, relative to the sweep folder.
    pub dir: String,
}

/// The runs of a sweep and what was merged on the way.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepPlan {
    pub runs: Vec<PlannedRun>,
    /// Requested depths that round to a depth already planned, in words.
    pub notices: Vec<String>,
}

/// Plans a sweep for examples of shape `input` and `classes` classes: for
/// each depth, each family, each seed, the family's valid depth nearest to
/// the one asked for. Depths that round to the same preset run once.
pub fn plan(config: &SweepConfig, input: Shape, classes: usize) -> Result<SweepPlan, String> {
    if config.families.is_empty() || config.depths.is_empty() {
        return Err("a sweep needs at least one family and one depth".into());
    }
    let mut runs: Vec<PlannedRun> = Vec::new();
    let mut notices = Vec::new();
    let mut first_asked: Vec<(Family, usize, usize)> = Vec::new();
    for &asked in &config.depths {
        for &family in &config.families {
            let size = family.size_for_depth(asked);
            if let Some(&(_, _, earlier)) = first_asked.iter().find(|(f, s, _)| *f == family && *s == size) {
                notices.push(format!(
                    "{}: depth {asked} gives {} as depth {earlier} does; it runs once",
                    family.prefix(),
                    family.name(size)
                ));
                continue;
            }
            first_asked.push((family, size, asked));
            let arch = family.build(size, input)?;
            let analysis = arch.analyse(input, classes);
            if !analysis.is_valid() {
                let errors: Vec<String> = analysis.errors.iter().map(|e| e.to_string()).collect();
                return Err(format!("{} is invalid for {input} input: {}", arch.name, errors.join("; ")));
            }
            for s in 0..config.seeds.max(1) {
                let seed = config.train.seed + s as u64;
                runs.push(PlannedRun {
                    family: family.prefix().to_string(),
                    size,
                    arch: arch.name.clone(),
                    depth: analysis.depth,
                    params: analysis.params,
                    seed,
                    dir: format!("{}-s{seed}", arch.name),
                });
            }
        }
    }
    // Twins stay adjacent: for each depth, each family in turn.
    Ok(SweepPlan { runs, notices })
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
    /// The row of a planned run from its folder's summary (or pending when
    /// there is no folder yet).
    pub fn of(run: &PlannedRun, status: RunStatus, summary: Option<&Summary>, sweep_dir: &Path) -> SweepRow {
        SweepRow {
            family: run.family.clone(),
            depth: run.depth,
            seed: run.seed,
            params: run.params,
            final_train_loss: summary.and_then(|s| s.final_train_loss),
            final_train_error: summary.and_then(|s| s.final_train_accuracy).map(|a| 1.0 - a),
            final_test_error: summary.and_then(|s| s.final_test_accuracy).map(|a| 1.0 - a),
            first_layer_output_grad_norm: summary.and_then(|s| s.first_layer_output_grad_norm),
            status,
            run_dir: sweep_dir.join(&run.dir),
        }
    }

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

/// Runs a sweep from the calling thread (its runs one after another, or up
/// to `config.jobs` at once); returns its rows. A stop command ends the
/// runs in progress and the sweep.
pub fn run_sweep(
    config: &SweepConfig,
    data: Option<Arc<Dataset>>,
    commands: &Receiver<Command>,
    events: &EventSender,
) -> Result<Vec<SweepRow>, String> {
    config.train.check()?;
    crate::util::threads::check(config.train.threads)?;
    let data = match data {
        Some(d) => d,
        None => {
            events.send(Event::Preparing("loading data".into()));
            Arc::new(Dataset::load(&config.train.data).map_err(|e| e.to_string())?)
        }
    };
    let plan = plan(config, data.shape(), data.classes())?;
    for notice in &plan.notices {
        events.send(Event::Preparing(format!("note: {notice}")));
    }
    let file = SweepFile::new(config, &plan);
    files::begin(&config.out, &file, config.resume)?;
    let rows = files::rows_so_far(&config.out, &file)?;
    files::write_csv(&config.out, &rows)?;
    for row in rows.iter().filter(|r| r.status != RunStatus::Pending) {
        // Kept from before (resume): finished, or another process is on it.
        events.send(Event::SweepRow(row.clone()));
    }
    let sweep = runner::Sweep { config, file: &file, data, rows: std::sync::Mutex::new(rows) };
    let stopped = sweep.run(commands, events)?;
    events.send(Event::SweepFinished { stopped });
    let rows = sweep.rows.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(rows.into_iter().filter(|r| r.status != RunStatus::Pending).collect())
}

/// The request that trains planned run `run` of a sweep.
pub(super) fn request(run: &PlannedRun, config: &SweepConfig, data: &Arc<Dataset>, threads: Option<usize>) -> Result<RunRequest, String> {
    let family = Family::from_prefix(&run.family).ok_or_else(|| format!("'{}' is not a family", run.family))?;
    Ok(RunRequest {
        arch: family.build(run.size, data.shape())?,
        config: TrainConfig { seed: run.seed, threads, ..config.train.clone() },
        data: Some(data.clone()),
        out: Some(config.out.join(&run.dir)),
        init_weights: None,
    })
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
