//! The depth sweep: one run per (family, depth, seed), twins adjacent and
//! sharing seed and batch order, each in its own run folder, with a row per
//! run in `sweep.csv`:
//! `family,depth,seed,params,final_train_loss,final_train_error,final_test_error,first_layer_output_grad_norm,status`.
//! Here: the sweep's settings, plan, rows and their limits; running it is
//! `runner.rs`'s.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::files;
use crate::arch::Shape;
use crate::arch::presets::Family;
use crate::train::{RunStatus, Summary, TrainConfig};

pub const SWEEP_HEADER: &str =
    "family,depth,seed,params,final_train_loss,final_train_error,final_test_error,first_layer_output_grad_norm,status";

/// Most seeds per (family, depth).
pub const MAX_SEEDS: usize = 1000;
/// Most depths in one sweep.
pub const MAX_DEPTHS: usize = 64;
/// Most runs one sweep plans (families × depths × seeds).
pub const MAX_RUNS: usize = 10_000;

/// The deepest depth a sweep may ask for: the deepest preset of any family.
pub fn max_depth() -> usize {
    Family::ALL.iter().map(|f| f.max_depth()).max().unwrap_or(1)
}

/// A sweep's settings out of their stated limits.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SweepInputError {
    #[error("'{0}' is not a depth: depths are whole numbers like 8,20,32")]
    NotADepth(String),
    #[error("depth {text} is out of range: depths are 1 to {max} (the deepest preset)")]
    DepthOutOfRange { text: String, max: usize },
    #[error("{0} depths: a sweep takes 1 to {MAX_DEPTHS}")]
    DepthCount(usize),
    #[error("a sweep needs at least one family")]
    NoFamily,
    #[error("--seeds must be 1 to {MAX_SEEDS}, not {0}")]
    Seeds(usize),
    #[error("{runs} runs ({families} families x {depths} depths x {seeds} seeds): a sweep plans at most {MAX_RUNS}")]
    TooManyRuns { runs: usize, families: usize, depths: usize, seeds: usize },
    #[error("{seeds} seeds from seed {first} go past the largest seed, {}", u64::MAX)]
    SeedOverflow { first: u64, seeds: usize },
    #[error("'{0}' is not a family ({families})", families = Family::ALL.iter().map(|f| f.prefix()).collect::<Vec<_>>().join(", "))]
    NotAFamily(String),
}

/// Why a sweep could not be planned, started or carried on.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Input(#[from] SweepInputError),
    #[error(transparent)]
    Preset(#[from] crate::arch::presets::PresetError),
    /// A family's net that does not fit the data.
    #[error("{name} is invalid for {input} input: {errors}")]
    Invalid { name: String, input: Shape, errors: String },
    #[error(transparent)]
    Config(#[from] crate::train::config::ConfigError),
    #[error(transparent)]
    Threads(#[from] crate::util::threads::ThreadsError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Folder(#[from] files::SweepFileError),
    #[error(transparent)]
    File(#[from] crate::util::fsio::FileError),
    /// A family in `sweep.json` that this depthlab does not know.
    #[error("'{0}' is not a family")]
    UnknownFamily(String),
    #[error("cannot start a sweep thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Parses `8,20,32` into depths, each 1 to [`max_depth`], at most
/// [`MAX_DEPTHS`] of them; nothing is allocated for a list past the limit.
pub fn parse_depths(list: &str) -> Result<Vec<usize>, SweepInputError> {
    let count = list.split(',').count();
    if count > MAX_DEPTHS {
        return Err(SweepInputError::DepthCount(count));
    }
    let max = max_depth();
    list.split(',')
        .map(|d| {
            let d = d.trim();
            if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
                return Err(SweepInputError::NotADepth(d.to_string()));
            }
            match d.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(SweepInputError::DepthOutOfRange { text: d.to_string(), max }),
            }
        })
        .collect()
}

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

impl SweepConfig {
    /// Checks the counts against their limits before anything is planned.
    pub fn check(&self) -> Result<(), SweepInputError> {
        if self.families.is_empty() {
            return Err(SweepInputError::NoFamily);
        }
        if self.depths.is_empty() || self.depths.len() > MAX_DEPTHS {
            return Err(SweepInputError::DepthCount(self.depths.len()));
        }
        let max = max_depth();
        if let Some(d) = self.depths.iter().find(|d| !(1..=max).contains(*d)) {
            return Err(SweepInputError::DepthOutOfRange { text: d.to_string(), max });
        }
        if !(1..=MAX_SEEDS).contains(&self.seeds) {
            return Err(SweepInputError::Seeds(self.seeds));
        }
        let (families, depths, seeds) = (self.families.len(), self.depths.len(), self.seeds);
        let runs = families.saturating_mul(depths).saturating_mul(seeds);
        if runs > MAX_RUNS {
            return Err(SweepInputError::TooManyRuns { runs, families, depths, seeds });
        }
        if self.train.seed.checked_add(seeds as u64 - 1).is_none() {
            return Err(SweepInputError::SeedOverflow { first: self.train.seed, seeds });
        }
        Ok(())
    }
}

/// The runs of a sweep and what was merged on the way.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepPlan {
    pub runs: Vec<PlannedRun>,
    /// Requested depths that round to a depth already planned, or far from
    /// any preset of a family, in words.
    pub notices: Vec<String>,
}

/// Plans a sweep for examples of shape `input` and `classes` classes: for
/// each depth, each family, each seed, the family's valid depth nearest to
/// the one asked for. Depths that round to the same preset run once.
pub fn plan(config: &SweepConfig, input: Shape, classes: usize) -> Result<SweepPlan, SweepError> {
    config.check()?;
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
            let got = family.depth_of(size);
            if got.abs_diff(asked) * 4 > asked {
                notices.push(format!(
                    "{}: no preset near depth {asked}; {} (depth {got}) is the nearest it offers",
                    family.prefix(),
                    family.name(size)
                ));
            }
            let arch = family.build(size, input)?;
            let analysis = arch.analyse(input, classes);
            if !analysis.is_valid() {
                let errors: Vec<String> = analysis.errors.iter().map(|e| e.to_string()).collect();
                return Err(SweepError::Invalid { name: arch.name, input, errors: errors.join("; ") });
            }
            for s in 0..config.seeds {
                // check() keeps the last seed within u64.
                let seed = config.train.seed.wrapping_add(s as u64);
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
pub fn parse_families(list: &str) -> Result<Vec<Family>, SweepInputError> {
    list.split(',')
        .map(|name| {
            let name = name.trim();
            Family::from_prefix(name).ok_or_else(|| SweepInputError::NotAFamily(name.to_string()))
        })
        .collect()
}
