//! The worker: a named thread that owns model, optimiser and data, runs the
//! training loop (forward → backward → probes → optimiser step), writes the
//! run folder, and talks to the UI through typed commands and events.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};

use super::config::TrainConfig;
use super::events::{Command, Event, Summary};
use super::run::Trainer;
use crate::arch::Architecture;
use crate::data::Dataset;

/// Room for this many events before per-step events are dropped (the run
/// folder keeps everything; the UI only needs to keep up).
const EVENT_CAPACITY: usize = 1024;

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

/// Sends events to the UI without ever blocking the worker for long: step,
/// gradient and probe events are dropped when the UI falls behind.
#[derive(Clone)]
pub struct EventSender {
    tx: SyncSender<Event>,
    wake: Option<Arc<dyn Fn() + Send + Sync>>,
    dropped: Arc<AtomicUsize>,
    /// Set for one of several runs sharing the channel: its events arrive
    /// as `Event::InRun` with this index.
    lane: Option<usize>,
}

impl EventSender {
    pub fn new(tx: SyncSender<Event>, wake: Option<Arc<dyn Fn() + Send + Sync>>) -> Self {
        Self { tx, wake, dropped: Arc::new(AtomicUsize::new(0)), lane: None }
    }

    /// A sender for run `index` of several running at once on this channel.
    pub fn lane(&self, index: usize) -> EventSender {
        EventSender { lane: Some(index), ..self.clone() }
    }

    fn tagged(&self, event: Event) -> Event {
        match self.lane {
            Some(run) => Event::InRun { run, event: Box::new(event) },
            None => event,
        }
    }

    /// Events that must arrive (start, evaluations, the end).
    pub fn send(&self, event: Event) {
        // A closed channel means nobody listens any more; the run folder
        // still records everything.
        if self.tx.send(self.tagged(event)).is_ok() {
            self.wake();
        }
    }

    /// Events that may be dropped when the UI is behind.
    pub fn send_droppable(&self, event: Event) {
        match self.tx.try_send(self.tagged(event)) {
            Ok(()) => self.wake(),
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                self.wake();
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// How many droppable events were dropped so far.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::Relaxed)
    }

    fn wake(&self) {
        if let Some(wake) = &self.wake {
            wake();
        }
    }
}

/// A bounded event channel and its sender.
pub fn event_channel(wake: Option<Arc<dyn Fn() + Send + Sync>>) -> (EventSender, Receiver<Event>) {
    let (tx, rx) = mpsc::sync_channel(EVENT_CAPACITY);
    (EventSender::new(tx, wake), rx)
}

/// A training run on its own thread. Dropping the handle stops the run and
/// joins the thread.
pub struct RunHandle {
    commands: Sender<Command>,
    pub events: Receiver<Event>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunHandle {
    pub fn send(&self, command: Command) {
        // The worker only hangs up when the run is over, when commands no
        // longer matter.
        if self.commands.send(command).is_err() {
            log_debug("command sent to a finished run");
        }
    }

    /// A sender of commands to this run, for another thread (a signal
    /// handler) to use.
    pub fn commander(&self) -> Sender<Command> {
        self.commands.clone()
    }

    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Waits for the thread to end.
    pub fn join(mut self) {
        self.join_thread();
    }

    fn join_thread(&mut self) {
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            log_debug("the training thread panicked");
        }
    }
}

impl Drop for RunHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            // Ignored when the run already ended.
            if self.commands.send(Command::Stop).is_err() {
                log_debug("run already over");
            }
            self.join_thread();
        }
    }
}

fn log_debug(message: &str) {
    if std::env::var_os("DEPTHLAB_DEBUG").is_some() {
        eprintln!("depthlab: {message}");
    }
}

/// Starts `job` on a named thread with a command channel and a bounded
/// event channel; `wake` is called after each event (the GUI repaints). The
/// job's tensor work runs on its own pool of `threads` compute threads
/// (every core when `None`), so concurrent jobs do not share one pool.
pub fn spawn_worker<F>(name: &str, threads: Option<usize>, wake: Option<Arc<dyn Fn() + Send + Sync>>, job: F) -> std::io::Result<RunHandle>
where
    F: FnOnce(Receiver<Command>, EventSender) + Send + 'static,
{
    let (command_tx, command_rx) = mpsc::channel();
    let (events, event_rx) = event_channel(wake);
    let compute = format!("{name}-compute");
    let thread = std::thread::Builder::new().name(name.to_string()).spawn(move || match crate::util::threads::pool(threads, &compute) {
        Ok(pool) => pool.install(move || job(command_rx, events)),
        Err(reason) => {
            // The settings were checked before, so only the OS refusing
            // threads lands here: run on the shared pool instead.
            eprintln!("depthlab: {reason}; computing on the default threads");
            job(command_rx, events)
        }
    })?;
    Ok(RunHandle { commands: command_tx, events: event_rx, thread: Some(thread) })
}

/// Starts one training run on a worker thread.
pub fn spawn(request: RunRequest, wake: Option<Arc<dyn Fn() + Send + Sync>>) -> std::io::Result<RunHandle> {
    spawn_worker("depthlab-train", request.config.threads, wake, move |commands, events| {
        let summary = train(request, &commands, &events);
        events.send(Event::Finished(Box::new(summary)));
    })
}

/// Runs training to the end on the calling thread, catching panics so a bug
/// becomes a failed run rather than a silent dead thread.
pub fn train(request: RunRequest, commands: &Receiver<Command>, events: &EventSender) -> Summary {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Trainer::run(request, commands, events)));
    match result {
        Ok(summary) => summary,
        Err(panic) => Summary::failed(format!("internal error: {}", crate::util::fault::panic_message(panic.as_ref()))),
    }
}
