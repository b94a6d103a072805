//! Short background jobs (file dialogs, reading and writing files, loading a
//! classifier) so the frame never waits on a disk or a dialog. Each job
//! sends one result back and wakes the UI.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};

use crate::arch::Architecture;
use crate::classify::{ModelInput, Prediction};
use crate::train::runfolder::RunFolder;

/// A file dialog that answers "nothing" sooner than this was never shown
/// (no desktop file-dialog service): the lab asks for a typed path, or
/// keeps its own suggestion, instead.
pub const NO_DIALOG_WITHIN: std::time::Duration = std::time::Duration::from_millis(400);

/// What a file dialog was opened for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    OpenArchitecture,
    SaveArchitecture,
    Image,
    RunFolder,
    DataFolder,
    /// A CSV file to train on.
    DataTable,
    OpenLab,
    SaveLab,
}

/// The result of a background job.
pub enum TaskResult {
    Info(String),
    Error(String),
    ArchitectureLoaded(PathBuf, Architecture),
    /// Run folders found under the runs folder (with their saved names).
    RunsFound(Vec<(RunFolder, Option<String>)>),
    RunLoaded(RunFolder, Option<String>),
    /// Every step's "look for" text with its figures filled.
    LessonFigures(Vec<crate::lesson::figures::Filled>),
    /// A lab file read, its run folders opened.
    LabOpened(Box<super::lab::OpenedLab>),
    Classified {
        run_dir: PathBuf,
        image: PathBuf,
        input: ModelInput,
        predictions: Vec<Prediction>,
    },
    /// A file dialog's answer, and how long it was open (an instant
    /// "nothing" means no dialog could be shown).
    Picked(Pick, Option<PathBuf>, std::time::Duration),
    /// Classifying failed: why (the panel says so and stops waiting).
    ClassifyFailed(String),
    /// A followed sweep folder read again: its rows, or why it cannot be read.
    SweepCollected(PathBuf, Result<Vec<crate::experiment::SweepRow>, crate::experiment::SweepFileError>),
    /// An analysis of the Why tab ended for one side: its result, or why
    /// not (cancelled, or failed).
    Analysis {
        side: usize,
        label: String,
        result: Result<super::why::AnalysisResult, crate::analysis::AnalysisError>,
    },
    Compute {
        adapter: String,
        reason: String,
        gpu: bool,
    },
}

/// Runs jobs on named threads and collects their results.
pub struct Tasks {
    tx: Sender<TaskResult>,
    rx: Receiver<TaskResult>,
    wake: Arc<dyn Fn() + Send + Sync>,
    running: Arc<std::sync::atomic::AtomicUsize>,
}

impl Tasks {
    pub fn new(wake: Arc<dyn Fn() + Send + Sync>) -> Tasks {
        let (tx, rx) = mpsc::channel();
        Tasks { tx, rx, wake, running: Default::default() }
    }

    /// Runs `job` on its own thread.
    pub fn spawn(&self, name: &str, job: impl FnOnce() -> TaskResult + Send + 'static) {
        let tx = self.tx.clone();
        let running = self.running.clone();
        let wake = self.wake.clone();
        running.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let spawned = std::thread::Builder::new().name(format!("depthlab-{name}")).spawn(move || {
            let result = job();
            running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            // The receiver lives as long as the app; a send after exit is moot.
            if tx.send(result).is_ok() {
                wake();
            }
        });
        if let Err(e) = spawned {
            self.running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            if self.tx.send(TaskResult::Error(format!("cannot start a background job: {e}"))).is_ok() {
                (self.wake)();
            }
        }
    }

    /// A sender for results produced outside `spawn` (screenshot callbacks).
    pub fn sender(&self) -> Sender<TaskResult> {
        self.tx.clone()
    }

    /// Results that arrived since the last frame.
    pub fn drain(&self) -> Vec<TaskResult> {
        self.rx.try_iter().collect()
    }

    /// Whether a job is still running (tests wait on this).
    pub fn busy(&self) -> bool {
        self.running.load(std::sync::atomic::Ordering::SeqCst) > 0
    }
}
