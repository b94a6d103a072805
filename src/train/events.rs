//! The typed messages between the UI (or the command line) and the worker
//! that owns the tensors.

use serde::{Deserialize, Serialize};

use crate::backend::Backend;

/// UI → worker.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Pause,
    Resume,
    Stop,
    /// A new base learning rate (the schedule still applies on top of it).
    SetLr(f64),
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Still training (only in summaries written mid-run).
    Running,
    Completed,
    Stopped,
    Diverged,
    Failed,
    /// The process writing the run ended without finishing it (killed or
    /// crashed): its summary still says running and nobody holds the
    /// folder's lock. Never written, only read.
    Interrupted,
    /// A planned sweep run whose folder does not exist yet (`sweep.csv`
    /// only).
    Pending,
    /// A planned sweep run whose folder exists but does not read as a run
    /// (`sweep --collect` only; resuming sets such a folder aside and
    /// trains the run again).
    Unreadable,
}

impl RunStatus {
    /// Whether the run ended by itself or was stopped (its results are final).
    pub fn is_finished(self) -> bool {
        matches!(self, RunStatus::Completed | RunStatus::Stopped | RunStatus::Diverged | RunStatus::Failed)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Stopped => "stopped",
            RunStatus::Diverged => "diverged",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Pending => "pending",
            RunStatus::Unreadable => "unreadable",
        })
    }
}

/// What to try when a run diverged, in one sentence (the window and the
/// command line both say it).
/// What a Stop or an interrupt says of the step under way, given the mean
/// step time so far (`None` before the first step ends): on a slow adapter
/// "after this step" can mean minutes, and the message says so; quick
/// steps need no word.
pub fn step_wait(mean_step_secs: Option<f64>) -> String {
    match mean_step_secs {
        None => " (the first step is still running; on a GPU adapter it also compiles the kernels, minutes on a software one)".into(),
        Some(secs) if secs >= 2.0 => format!(" (steps take about {} here)", crate::util::format_secs(secs)),
        Some(_) => String::new(),
    }
}

pub const DIVERGED_ADVICE: &str = "Try a lower learning rate, a learning-rate warm-up, or, for a deep residual net, \
     a residual init that starts every branch at zero (zero or skipinit).";

/// Sent once the model is built and training is about to begin.
#[derive(Clone, Debug, PartialEq)]
pub struct Started {
    pub backend: Backend,
    pub adapter: String,
    /// Why this backend (e.g. the fallback to the CPU).
    pub backend_reason: String,
    pub fell_back: bool,
    pub depth: usize,
    pub params: usize,
    pub steps_per_epoch: usize,
    pub total_steps: usize,
    /// Names of the probe layers (blocks with weights), in order.
    pub layer_names: Vec<String>,
    pub class_names: Vec<String>,
    pub run_dir: Option<std::path::PathBuf>,
}

/// One training step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    pub step: usize,
    pub epoch: usize,
    pub loss: f32,
    pub accuracy: f32,
    pub lr: f64,
    pub images_per_sec: f32,
    pub elapsed_secs: f64,
    /// A hash of the batch's example indices: twin runs show the same values.
    pub batch_digest: u64,
}

/// One evaluation on the test split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub step: usize,
    pub epoch: usize,
    pub loss: f32,
    pub accuracy: f32,
    pub per_class_accuracy: Vec<f32>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<u32>>,
    pub elapsed_secs: f64,
}

/// Gradient norms at one probe step, one entry per probe layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GradientSnapshot {
    pub step: usize,
    /// L2 norm of the layer's weight gradients.
    pub weight: Vec<f32>,
    /// L2 norm of the gradient of the loss with respect to the layer's output.
    pub output: Vec<f32>,
}

/// Architecture-specific probe values at one step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeSnapshot {
    pub step: usize,
    pub values: Vec<ProbeValue>,
}

/// The class a net trained on 2-D data predicts over the plane at one
/// step: a `size × size` grid, row by row from the top
/// ([`crate::data::plane::grid`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoundarySnapshot {
    pub step: usize,
    pub size: usize,
    pub classes: Vec<u8>,
}

/// Cells per side of the live decision boundary.
pub const BOUNDARY_GRID: usize = 64;

/// Steps between two live decision boundaries.
pub const BOUNDARY_EVERY: usize = 10;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeValue {
    /// Probe layer index (blocks with weights), 0-based.
    pub layer: usize,
    /// `transform_gate_mean`, `dropped`, `global_column` or `paths_kept`.
    pub name: String,
    pub value: f32,
}

/// What `summary.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub status: RunStatus,
    /// Why the run stopped, diverged or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub steps: usize,
    pub epochs: f64,
    /// Mean over the last epoch's training batches.
    pub final_train_loss: Option<f32>,
    pub final_train_accuracy: Option<f32>,
    pub final_test_loss: Option<f32>,
    pub final_test_accuracy: Option<f32>,
    pub params: usize,
    pub depth: usize,
    pub images_per_sec: Option<f32>,
    pub wall_secs: f64,
    pub backend: Option<Backend>,
    #[serde(default)]
    pub adapter: String,
    /// First probe layer's output-gradient norm at the last probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_layer_output_grad_norm: Option<f32>,
    /// SHA-256 (hex) of `model.bpk` as it was saved; runs saved before
    /// depthlab recorded it have none, and their weights load unchecked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_sha256: Option<String>,
    /// SHA-256 of the weights being renamed into place: set only while a
    /// save is under way, so a kill between the rename and the next summary
    /// leaves a folder whose weights still verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saving_model_sha256: Option<String>,
}

impl Summary {
    pub fn failed(reason: String) -> Summary {
        Summary {
            status: RunStatus::Failed,
            reason: Some(reason),
            steps: 0,
            epochs: 0.0,
            final_train_loss: None,
            final_train_accuracy: None,
            final_test_loss: None,
            final_test_accuracy: None,
            params: 0,
            depth: 0,
            images_per_sec: None,
            wall_secs: 0.0,
            backend: None,
            adapter: String::new(),
            first_layer_output_grad_norm: None,
            model_sha256: None,
            saving_model_sha256: None,
        }
    }
}

/// Worker → UI.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Loading data and building the model (may take a moment).
    Preparing(String),
    Started(Box<Started>),
    Step(StepMetrics),
    Evaluation(Box<Evaluation>),
    Gradients(GradientSnapshot),
    Probes(ProbeSnapshot),
    /// The decision boundary (runs on 2-D data, every [`BOUNDARY_EVERY`] steps).
    Boundary(BoundarySnapshot),
    Paused {
        step: usize,
    },
    Resumed {
        step: usize,
    },
    LrChanged {
        lr: f64,
    },
    Finished(Box<Summary>),
}
