//! The typed messages between the UI (or the command line) and the worker
//! that owns the tensors: what to train, the commands, the events, and the
//! bounded channel that carries them.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};

use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use crate::arch::Architecture;
use crate::backend::Backend;
use crate::data::Dataset;

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

/// Room for this many events before per-step events are dropped (the run
/// folder keeps everything; the UI only needs to keep up).
pub(super) const EVENT_CAPACITY: usize = 1024;

/// What to train.
#[derive(Clone, Debug)]
pub struct RunRequest {
    pub arch: Architecture,
    pub config: TrainConfig,
    /// Already-loaded data (the GUI and sweeps share one copy); otherwise
    /// `config.data` is loaded by the worker.
    pub data: Option<Arc<Dataset>>,
    /// Where to write the run folder (none: nothing is written).
    pub out: Option<PathBuf>,
    /// Start from these weights (a saved `model.bpk` of the same architecture).
    pub init_weights: Option<PathBuf>,
}

/// What a worker calls after each message it sends (the GUI repaints).
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// The sending end of a worker's bounded channel of `T`: it never blocks the
/// worker for long, and messages that may be dropped are dropped when the
/// receiver falls behind (the run folder keeps everything).
pub struct Outbox<T> {
    tx: SyncSender<T>,
    wake: Option<Wake>,
    dropped: Arc<AtomicUsize>,
}

impl<T> Clone for Outbox<T> {
    fn clone(&self) -> Self {
        Outbox { tx: self.tx.clone(), wake: self.wake.clone(), dropped: self.dropped.clone() }
    }
}

impl<T> Outbox<T> {
    pub fn new(tx: SyncSender<T>, wake: Option<Wake>) -> Self {
        Outbox { tx, wake, dropped: Arc::new(AtomicUsize::new(0)) }
    }

    /// Messages that must arrive (start, evaluations, the end).
    pub fn send(&self, message: T) {
        // A closed channel means nobody listens any more; the run folder
        // still records everything.
        if self.tx.send(message).is_ok() {
            self.wake();
        }
    }

    /// Messages that may be dropped when the receiver is behind.
    pub fn send_droppable(&self, message: T) {
        match self.tx.try_send(message) {
            Ok(()) => self.wake(),
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                self.wake();
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// How many droppable messages were dropped so far.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::Relaxed)
    }

    fn wake(&self) {
        if let Some(wake) = &self.wake {
            wake();
        }
    }
}

/// Where a training run's events go: the run knows only [`Event`]; what
/// carries them is the caller's (a channel of events for one run, or a
/// sweep's channel, which wraps each event with the index of its run).
trait EventSink: Send + Sync {
    fn send(&self, event: Event, droppable: bool);
    fn dropped(&self) -> usize;
}

/// An outbox of `T` and how an event becomes a `T`.
struct Wrapped<T, F> {
    outbox: Outbox<T>,
    wrap: F,
}

impl<T: Send, F: Fn(Event) -> T + Send + Sync> EventSink for Wrapped<T, F> {
    fn send(&self, event: Event, droppable: bool) {
        let message = (self.wrap)(event);
        if droppable {
            self.outbox.send_droppable(message);
        } else {
            self.outbox.send(message);
        }
    }

    fn dropped(&self) -> usize {
        self.outbox.dropped()
    }
}

/// Sends a run's events without ever blocking the worker for long: step,
/// gradient and probe events are dropped when the UI falls behind.
#[derive(Clone)]
pub struct EventSender {
    sink: Arc<dyn EventSink>,
}

impl EventSender {
    /// Events sent into an outbox of `T`, each wrapped by `wrap` (a sweep
    /// tags them with the run they belong to).
    pub fn wrapping<T: Send + 'static>(outbox: Outbox<T>, wrap: impl Fn(Event) -> T + Send + Sync + 'static) -> Self {
        EventSender { sink: Arc::new(Wrapped { outbox, wrap }) }
    }

    /// Events that must arrive (start, evaluations, the end).
    pub fn send(&self, event: Event) {
        self.sink.send(event, false);
    }

    /// Events that may be dropped when the UI is behind.
    pub fn send_droppable(&self, event: Event) {
        self.sink.send(event, true);
    }

    /// How many droppable events were dropped so far.
    pub fn dropped(&self) -> usize {
        self.sink.dropped()
    }
}

impl From<Outbox<Event>> for EventSender {
    fn from(outbox: Outbox<Event>) -> Self {
        Self::wrapping(outbox, |event| event)
    }
}

/// A bounded event channel and its sender.
pub fn event_channel(wake: Option<Wake>) -> (EventSender, Receiver<Event>) {
    let (tx, rx) = mpsc::sync_channel(EVENT_CAPACITY);
    (EventSender::from(Outbox::new(tx, wake)), rx)
}
