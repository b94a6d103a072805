//! The papers' key experiments at lab scale, each one command
//! (`depthlab reproduce NAME`), each writing its figure (PNG, drawn by
//! depthlab), its numbers (CSV) and a short summary (Markdown) into
//! `OUT/NAME/`, with the runs it trained under `OUT/NAME/runs/`.

mod branch_length;
mod degradation;
mod fractal;
mod glorot;
mod highway;
mod landscape;
mod lesion;
mod paths;
mod stochastic_depth;
mod thousand_layers;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::arch::{Architecture, LayerOverrides};
use crate::backend::{self, BackendChoice};
use crate::data::{DataSpec, Dataset};
use crate::model::Network;
use crate::train::events::{Evaluation, Event, GradientSnapshot, StepMetrics};
use crate::train::step::Stepper;
use crate::train::{RunRequest, RunStatus, Summary, TrainConfig};
use crate::util::fsio::FileError;

/// The reproductions, by name.
pub const NAMES: [&str; 10] =
    ["glorot", "highway", "degradation", "stochastic-depth", "fractal", "branch-length", "lesion", "paths", "landscape", "thousand-layers"];

/// Settings common to every reproduction.
#[derive(Clone, Debug)]
pub struct Options {
    pub out: PathBuf,
    pub data: DataSpec,
    pub backend: BackendChoice,
    /// Fewer depths and steps: a check that everything runs, not a result.
    pub quick: bool,
    /// Read back a run already in its folder that finished with exactly
    /// the architecture and settings it would get, instead of training it
    /// again (for long reproductions: a run added, a figure redrawn).
    pub reuse: bool,
}

/// Why a reproduction did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ReproduceError {
    #[error("'{0}' is not a reproduction ({names})", names = NAMES.join(", "))]
    Unknown(String),
    /// One of its runs failed: its label and the run's reason.
    #[error("{label}: {reason}")]
    RunFailed { label: String, reason: String },
    #[error("no probe readings")]
    NoProbeReadings,
    #[error("no seeds")]
    NoSeeds,
    /// The logits could not be read back from the device.
    #[error("{0:?}")]
    Logits(burn::tensor::TensorReadError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Preset(#[from] crate::arch::presets::PresetError),
    #[error(transparent)]
    Backend(#[from] backend::BackendError),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error(transparent)]
    RunFolder(#[from] crate::train::runfolder::RunFolderError),
    #[error(transparent)]
    Analysis(#[from] crate::analysis::AnalysisError),
    #[error(transparent)]
    ReadBack(#[from] crate::train::evaluate::ReadBackError),
    #[error(transparent)]
    LandscapeFigure(#[from] crate::report::analysis::LandscapeFigureError),
}

/// What a reproduction produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub name: String,
    pub dir: PathBuf,
    /// Markdown: what was run, what it shows, the numbers.
    pub summary: String,
}

/// Runs one reproduction by name.
pub fn run(name: &str, options: &Options, log: &dyn Fn(&str)) -> Result<Outcome, ReproduceError> {
    let dir = options.out.join(name);
    std::fs::create_dir_all(&dir).map_err(FileError::io(&dir))?;
    let data = Arc::new(Dataset::load(&options.data)?);
    let ctx = Context { dir: dir.clone(), data, options: options.clone(), log };
    let summary = match name {
        "glorot" => glorot::run(&ctx)?,
        "highway" => highway::run(&ctx)?,
        "degradation" => degradation::run(&ctx)?,
        "stochastic-depth" => stochastic_depth::run(&ctx)?,
        "fractal" => fractal::run(&ctx)?,
        "lesion" => lesion::run(&ctx)?,
        "paths" => paths::run(&ctx)?,
        "landscape" => landscape::run(&ctx)?,
        "branch-length" => branch_length::run(&ctx)?,
        "thousand-layers" => thousand_layers::run(&ctx)?,
        other => return Err(ReproduceError::Unknown(other.to_string())),
    };
    // (The message names the folder, as it always has.)
    crate::util::fsio::write_atomic(&dir.join("summary.md"), summary.as_bytes()).map_err(FileError::io(&dir))?;
    Ok(Outcome { name: name.to_string(), dir, summary })
}

/// What every experiment works with.
struct Context<'a> {
    dir: PathBuf,
    data: Arc<Dataset>,
    options: Options,
    log: &'a dyn Fn(&str),
}

/// A finished training run and everything it reported.
struct Trained {
    dir: PathBuf,
    summary: Summary,
    steps: Vec<StepMetrics>,
    gradients: Vec<GradientSnapshot>,
    evaluations: Vec<Evaluation>,
    probes: Vec<crate::train::events::ProbeSnapshot>,
}

impl Trained {
    /// A finished run in `dir` trained from `arch` with `config`, read back
    /// (its steps, evaluations, gradients and probes from the run folder's
    /// files); `None` when there is none, it did not finish, or anything
    /// about it differs.
    fn read_back(dir: &Path, arch: &Architecture, config: &TrainConfig) -> Option<Trained> {
        let folder = crate::train::RunFolder::open(dir).ok()?;
        let mut trained_arch = arch.clone();
        trained_arch.apply_overrides(&config.overrides);
        let finished = matches!(folder.status, RunStatus::Completed | RunStatus::Diverged | RunStatus::Stopped);
        if !finished || folder.arch != trained_arch || folder.record.config != *config || !folder.warnings.is_empty() {
            return None;
        }
        let (steps, evaluations) = (folder.steps(), folder.evaluations());
        let (gradients, probes) = (folder.gradient_snapshots(), folder.probe_snapshots());
        Some(Trained { dir: dir.to_path_buf(), summary: folder.summary?, steps, gradients, evaluations, probes })
    }
}

impl Context<'_> {
    fn config(&self, config: TrainConfig) -> TrainConfig {
        TrainConfig { data: self.options.data.clone(), backend: self.options.backend, ..config }
    }

    /// Trains `arch` to the end, into `runs/LABEL` (replacing an earlier
    /// run there, or, with `reuse`, reading it back when it finished with
    /// the same architecture and settings).
    fn train(&self, label: &str, arch: Architecture, config: TrainConfig) -> Result<Trained, ReproduceError> {
        let dir = self.dir.join("runs").join(label);
        if self.options.reuse
            && let Some(trained) = Trained::read_back(&dir, &arch, &self.config(config.clone()))
        {
            (self.log)(&format!("reusing {label} ({}): {}", arch.name, trained.summary.status));
            return Ok(trained);
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(FileError::io(&dir))?;
        }
        (self.log)(&format!("training {label} ({})", arch.name));
        let request =
            RunRequest { arch, config: self.config(config), data: Some(self.data.clone()), out: Some(dir.clone()), init_weights: None };
        let handle = crate::train::spawn(request, None)?;
        let mut trained = Trained {
            dir,
            summary: Summary::failed("no summary".into()),
            steps: Vec::new(),
            gradients: Vec::new(),
            evaluations: Vec::new(),
            probes: Vec::new(),
        };
        for event in handle.events.iter() {
            match event {
                Event::Step(s) => trained.steps.push(s),
                Event::Gradients(g) => trained.gradients.push(g),
                Event::Evaluation(e) => trained.evaluations.push(*e),
                Event::Probes(p) => trained.probes.push(p),
                Event::Finished(s) => trained.summary = *s,
                _ => {}
            }
        }
        handle.join();
        if trained.summary.status == RunStatus::Failed {
            return Err(ReproduceError::RunFailed { label: label.to_string(), reason: trained.summary.reason.clone().unwrap_or_default() });
        }
        (self.log)(&format!(
            "  {}: train loss {} error {}, test error {}, {:.0} s",
            trained.summary.status,
            fmt(trained.summary.final_train_loss, 4),
            pct(trained.summary.final_train_accuracy.map(|a| 1.0 - a)),
            pct(trained.summary.final_test_accuracy.map(|a| 1.0 - a)),
            trained.summary.wall_secs
        ));
        Ok(trained)
    }

    /// Output-gradient norm per probe layer at initialisation, the geometric
    /// mean over `batches` batches (no weight changes: learning rate 0).
    fn initial_output_gradients(
        &self,
        arch: &Architecture,
        overrides: &LayerOverrides,
        seed: u64,
        batches: usize,
    ) -> Result<Vec<f64>, ReproduceError> {
        let mut arch = arch.clone();
        arch.apply_overrides(overrides);
        let compute = backend::select(self.options.backend)?;
        let device = compute.device.clone().autodiff();
        let data = &self.data;
        let net = Network::build(&arch, data.shape(), data.classes(), &device, seed)?;
        let config = TrainConfig { momentum: 0.0, weight_decay: 0.0, ..TrainConfig::default() };
        let mut stepper = Stepper::new(net, &config, &device, seed);
        let mut order = crate::data::BatchOrder::new(seed, data.train.len()).next_epoch();
        order.truncate(batches * 128);
        let mut log_sum: Vec<f64> = Vec::new();
        for chunk in order.chunks(128) {
            let batch = data.batch(&data.train, chunk, None);
            let out = stepper.step(batch.images, batch.labels, [batch.size, data.channels, data.height, data.width], 0.0, true)?;
            let readings = out.probe.ok_or(ReproduceError::NoProbeReadings)?;
            if log_sum.is_empty() {
                log_sum = vec![0.0; readings.output.len()];
            }
            for (s, v) in log_sum.iter_mut().zip(&readings.output) {
                *s += f64::from(*v).max(1e-300).ln();
            }
        }
        let n = order.len().div_ceil(128).max(1) as f64;
        Ok(log_sum.into_iter().map(|s| (s / n).exp()).collect())
    }

    fn write_csv(&self, name: &str, header: &str, rows: &[String]) -> Result<(), FileError> {
        let path = self.dir.join(name);
        let mut text = format!("{header}\n");
        for row in rows {
            text.push_str(row);
            text.push('\n');
        }
        crate::util::fsio::write_atomic(&path, text.as_bytes()).map_err(FileError::io(&path))
    }
}

/// He et al.'s CIFAR recipe at lab scale: SGD with momentum 0.9, weight
/// decay 1e-4, learning rate 0.05 divided by 10 at 50 % and 75 % of training.
fn he_recipe(epochs: usize, max_steps: Option<usize>, probe_every: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        max_steps,
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 1e-4,
        schedule: crate::train::Schedule::Step { milestones: vec![0.5, 0.75] },
        probe_every,
        ..TrainConfig::default()
    }
}

fn pct(v: Option<f32>) -> String {
    v.map_or("-".into(), |x| format!("{:.2}%", x * 100.0))
}

fn fmt(v: Option<f32>, digits: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.digits$}"))
}

/// Relative path of `path` from `base`, for links in summaries.
fn relative(path: &Path, base: &Path) -> String {
    path.strip_prefix(base).unwrap_or(path).display().to_string()
}
