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
    pub fn new(tx: SyncSender<Event>, wake: Option<Wake>) -> Self {
        Self::wrapping(Outbox::new(tx, wake), |event| event)
    }

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
    (EventSender::new(tx, wake), rx)
}

/// A job on its own thread (a training run, whose messages are [`Event`]s,
/// or a sweep). Dropping the handle stops the job and joins the thread.
pub struct RunHandle<T = Event> {
    commands: Sender<Command>,
    pub events: Receiver<T>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<T> RunHandle<T> {
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

impl<T> Drop for RunHandle<T> {
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
/// channel of its messages; `wake` is called after each one (the GUI repaints). The
/// job's tensor work runs on its own pool of `threads` compute threads
/// (every core when `None`), so concurrent jobs do not share one pool.
pub fn spawn_worker<T, F>(name: &str, threads: Option<usize>, wake: Option<Wake>, job: F) -> std::io::Result<RunHandle<T>>
where
    T: Send + 'static,
    F: FnOnce(Receiver<Command>, Outbox<T>) + Send + 'static,
{
    let (command_tx, command_rx) = mpsc::channel();
    let (tx, event_rx) = mpsc::sync_channel(EVENT_CAPACITY);
    let events = Outbox::new(tx, wake);
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
pub fn spawn(request: RunRequest, wake: Option<Wake>) -> std::io::Result<RunHandle> {
    spawn_worker("depthlab-train", request.config.threads, wake, move |commands, outbox| {
        let events = EventSender::from(outbox);
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
