//! Training settings: optimiser, learning-rate schedule, budget, seed. Saved
//! as `train.json` in every run folder so a run can be reproduced from it.

use serde::{Deserialize, Serialize};

use crate::arch::LayerOverrides;
use crate::backend::BackendChoice;
use crate::data::DataSpec;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// SGD with momentum (He et al.'s choice for CIFAR).
    #[default]
    Sgd,
    Adam,
}

/// How the learning rate changes over the run (a factor on the base rate).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Schedule {
    #[default]
    Constant,
    /// Divide by 10 at each milestone, given as fractions of the run (He et
    /// al. divide at 50 % and 75 % of training: `[0.5, 0.75]`).
    Step { milestones: Vec<f64> },
    /// Cosine decay from the base rate to zero.
    Cosine,
}

/// A `--schedule` that does not read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("'{0}': milestones are fractions of the run, like 0.5,0.75")]
    NotFractions(String),
    #[error("'{0}': milestones must be between 0 and 1 (fractions of the run)")]
    OutOfRange(String),
    #[error("'{0}' is not a schedule: constant, cosine, step or step:0.5,0.75")]
    Unknown(String),
}

/// Training settings that make no sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("batch size must be at least 1")]
    BatchSize,
    #[error("give at least 1 epoch or a number of steps")]
    NoLength,
    #[error("max steps must be at least 1 (0 steps would save an untrained model)")]
    MaxSteps,
    #[error("learning rate must be a positive number, not {0}")]
    LearningRate(f64),
    #[error("momentum must be in [0, 1), not {0}")]
    Momentum(f64),
    #[error("weight decay must be 0 or more, not {0}")]
    WeightDecay(f64),
    #[error(transparent)]
    Threads(#[from] crate::util::threads::ThreadsError),
}

impl Schedule {
    /// Parses `constant`, `cosine` or `step` / `step:0.5,0.75`.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        match text.split_once(':') {
            None if text == "constant" => Ok(Schedule::Constant),
            None if text == "cosine" => Ok(Schedule::Cosine),
            None if text == "step" => Ok(Schedule::Step { milestones: vec![0.5, 0.75] }),
            Some(("step", list)) => {
                let milestones: Result<Vec<f64>, _> = list.split(',').map(|m| m.trim().parse::<f64>()).collect();
                let milestones = milestones.map_err(|_| ScheduleError::NotFractions(list.to_string()))?;
                if milestones.iter().any(|m| !(0.0..=1.0).contains(m)) {
                    return Err(ScheduleError::OutOfRange(list.to_string()));
                }
                Ok(Schedule::Step { milestones })
            }
            _ => Err(ScheduleError::Unknown(text.to_string())),
        }
    }

    /// The factor on the base rate at `step` of `total` (warm-up excluded).
    pub fn factor(&self, step: usize, total: usize) -> f64 {
        let progress = step as f64 / total.max(1) as f64;
        match self {
            Schedule::Constant => 1.0,
            Schedule::Step { milestones } => 0.1f64.powi(milestones.iter().filter(|&&m| progress >= m).count() as i32),
            Schedule::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos()),
        }
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Constant => write!(f, "constant"),
            Schedule::Cosine => write!(f, "cosine"),
            Schedule::Step { milestones } => {
                write!(f, "step:{}", milestones.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(","))
            }
        }
    }
}

/// Everything that decides a training run besides the architecture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    pub data: DataSpec,
    pub backend: BackendChoice,
    pub epochs: usize,
    /// Stop after this many steps even if epochs remain.
    pub max_steps: Option<usize>,
    pub batch_size: usize,
    pub optimizer: OptimizerKind,
    /// Base learning rate.
    pub lr: f64,
    /// SGD momentum (0 for plain SGD).
    pub momentum: f64,
    pub nesterov: bool,
    /// L2 weight decay (coupled, as in He et al.'s 1e-4).
    pub weight_decay: f64,
    pub schedule: Schedule,
    /// Linear warm-up from 0 over this many steps.
    pub warmup_steps: usize,
    pub seed: u64,
    /// Gradient probe every N steps (0: never).
    pub probe_every: usize,
    /// Pad-4 crop + flip augmentation; `None` follows the dataset's default.
    pub augment: Option<bool>,
    /// Use at most this many training / test examples (quick runs).
    pub train_limit: Option<usize>,
    pub test_limit: Option<usize>,
    /// Layer flags applied to the architecture.
    pub overrides: LayerOverrides,
    /// CPU threads the run computes on (`None`: every core). Results do
    /// not depend on it.
    pub threads: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            data: DataSpec::FashionMini,
            backend: BackendChoice::Auto,
            epochs: 5,
            max_steps: None,
            batch_size: 64,
            optimizer: OptimizerKind::Sgd,
            lr: 0.05,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 1e-4,
            schedule: Schedule::Constant,
            warmup_steps: 0,
            seed: 1,
            probe_every: 10,
            augment: None,
            train_limit: None,
            test_limit: None,
            overrides: LayerOverrides::default(),
            threads: None,
        }
    }
}

/// The lower-case word serde writes for a unit enum value (`sgd`, `relu`).
fn word<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

impl TrainConfig {
    /// The `depthlab train` flags that give exactly these settings, every
    /// one spelled out (defaults change between versions; a planned job
    /// must not). Numbers print in their shortest exact form.
    pub fn to_args(&self) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        let mut flag = |name: &str, value: String| {
            args.push(format!("--{name}"));
            if !value.is_empty() {
                args.push(value);
            }
        };
        flag("data", self.data.to_string());
        flag("backend", word(&self.backend));
        flag("epochs", self.epochs.to_string());
        if let Some(max) = self.max_steps {
            flag("max-steps", max.to_string());
        }
        flag("batch-size", self.batch_size.to_string());
        flag("optimizer", word(&self.optimizer));
        flag("lr", self.lr.to_string());
        flag("momentum", self.momentum.to_string());
        if self.nesterov {
            flag("nesterov", String::new());
        }
        flag("weight-decay", self.weight_decay.to_string());
        flag("schedule", self.schedule.to_string());
        flag("warmup-steps", self.warmup_steps.to_string());
        flag("seed", self.seed.to_string());
        flag("probe-every", self.probe_every.to_string());
        match self.augment {
            Some(true) => flag("augment", String::new()),
            Some(false) => flag("no-augment", String::new()),
            None => {}
        }
        if let Some(n) = self.train_limit {
            flag("train-examples", n.to_string());
        }
        if let Some(n) = self.test_limit {
            flag("test-examples", n.to_string());
        }
        if let Some(n) = self.threads {
            flag("threads", n.to_string());
        }
        if let Some(a) = self.overrides.activation {
            flag("activation", word(&a));
        }
        if let Some(i) = self.overrides.init {
            flag("init", word(&i));
        }
        if let Some(n) = self.overrides.norm {
            flag("norm", word(&n));
        }
        if let Some(r) = self.overrides.residual_init {
            flag("residual-init", r.word().to_string());
        }
        args
    }

    /// Problems with the settings themselves, in words.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.batch_size == 0 {
            return Err(ConfigError::BatchSize);
        }
        if self.epochs == 0 && self.max_steps.is_none() {
            return Err(ConfigError::NoLength);
        }
        if self.max_steps == Some(0) {
            return Err(ConfigError::MaxSteps);
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(ConfigError::LearningRate(self.lr));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(ConfigError::Momentum(self.momentum));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(ConfigError::WeightDecay(self.weight_decay));
        }
        Ok(crate::util::threads::check(self.threads)?)
    }

    /// The learning rate at `step` of `total` for base rate `base`.
    pub fn lr_at(&self, base: f64, step: usize, total: usize) -> f64 {
        let warm = if self.warmup_steps > 0 && step < self.warmup_steps { (step + 1) as f64 / self.warmup_steps as f64 } else { 1.0 };
        base * warm * self.schedule.factor(step, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_their_rules() {
        let step = Schedule::parse("step:0.5,0.75").unwrap();
        assert_eq!(step.factor(0, 100), 1.0);
        assert!((step.factor(50, 100) - 0.1).abs() < 1e-12);
        assert!((step.factor(80, 100) - 0.01).abs() < 1e-12);
        let cosine = Schedule::Cosine;
        assert!((cosine.factor(0, 100) - 1.0).abs() < 1e-12);
        assert!((cosine.factor(50, 100) - 0.5).abs() < 1e-12);
        assert!(cosine.factor(100, 100).abs() < 1e-12);
        assert!(Schedule::parse("step:2").is_err());
        assert!(Schedule::parse("warm").is_err());
        let config = TrainConfig { warmup_steps: 4, ..Default::default() };
        assert!((config.lr_at(0.1, 0, 100) - 0.025).abs() < 1e-12);
        assert!((config.lr_at(0.1, 10, 100) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn train_config_round_trips_through_json() {
        let config = TrainConfig { schedule: Schedule::Step { milestones: vec![0.5] }, max_steps: Some(7), ..Default::default() };
        let text = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<TrainConfig>(&text).unwrap(), config);
        assert!(TrainConfig { lr: -1.0, ..Default::default() }.check().is_err());
    }
}
