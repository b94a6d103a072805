//! The worker: a named thread that owns model, optimiser and data, runs the
//! training loop (forward → backward → probes → optimiser step), writes the
//! run folder, and talks to the UI through typed commands and events.

use std::sync::mpsc::{self, Receiver, Sender};

use super::events::{Command, EVENT_CAPACITY, Event, EventSender, Outbox, RunRequest, Summary, Wake};
use super::run::Trainer;

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
        Ok(pool) => crate::kernels::team::install(&pool, move || job(command_rx, events)),
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
