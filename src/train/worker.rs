//! The worker: a named thread that owns model, optimiser and data, runs the
//! training loop (forward → backward → probes → optimiser step), writes the
//! run folder, and talks to the UI through typed commands and events.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError, TrySendError};
use std::time::Instant;

use burn::prelude::*;

use super::config::TrainConfig;
use super::evaluate::{CALIBRATION_BATCHES, evaluate, recalibrate_batch_norm};
use super::events::{Command, Event, GradientSnapshot, ProbeSnapshot, RunStatus, Started, StepMetrics, Summary};
use super::runfolder::{DatasetInfo, RunWriter, TRAIN_FORMAT_VERSION, TrainRecord};
use super::step::Stepper;
use crate::arch::Architecture;
use crate::backend;
use crate::data::{BatchOrder, Dataset};
use crate::model::Network;
use crate::util::rng::Rng;

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
}

impl EventSender {
    pub fn new(tx: SyncSender<Event>, wake: Option<Arc<dyn Fn() + Send + Sync>>) -> Self {
        Self { tx, wake, dropped: Arc::new(AtomicUsize::new(0)) }
    }

    /// Events that must arrive (start, evaluations, the end).
    pub fn send(&self, event: Event) {
        // A closed channel means nobody listens any more; the run folder
        // still records everything.
        if self.tx.send(event).is_ok() {
            self.wake();
        }
    }

    /// Events that may be dropped when the UI is behind.
    pub fn send_droppable(&self, event: Event) {
        match self.tx.try_send(event) {
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
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Summary::failed(format!("internal error: {message}"))
        }
    }
}

/// Mean loss and accuracy of the batches of one epoch.
#[derive(Default)]
struct EpochMeans {
    loss_sum: f64,
    accuracy_sum: f64,
    count: usize,
}

impl EpochMeans {
    fn add(&mut self, loss: f32, accuracy: f32) {
        self.loss_sum += f64::from(loss);
        self.accuracy_sum += f64::from(accuracy);
        self.count += 1;
    }

    fn means(&self) -> Option<(f32, f32)> {
        (self.count > 0).then(|| ((self.loss_sum / self.count as f64) as f32, (self.accuracy_sum / self.count as f64) as f32))
    }
}

struct Trainer;

impl Trainer {
    fn run(request: RunRequest, commands: &Receiver<Command>, events: &EventSender) -> Summary {
        let started = Instant::now();
        let mut summary = match Self::run_inner(request, commands, events, started) {
            Ok(summary) => summary,
            Err(reason) => Summary::failed(reason),
        };
        summary.wall_secs = started.elapsed().as_secs_f64();
        summary
    }

    fn run_inner(request: RunRequest, commands: &Receiver<Command>, events: &EventSender, started: Instant) -> Result<Summary, String> {
        let RunRequest { mut arch, config, data, out, init_weights } = request;
        config.check()?;
        events.send(Event::Preparing("loading data".into()));
        let data = match data {
            Some(d) => d,
            None => Arc::new(Dataset::load(&config.data).map_err(|e| e.to_string())?),
        };
        let data = match (config.train_limit, config.test_limit) {
            (None, None) => data,
            (train, test) => Arc::new(data.truncated(train.unwrap_or(usize::MAX), test.unwrap_or(usize::MAX))),
        };
        if data.train.is_empty() || data.test.is_empty() {
            return Err("the dataset has no training or no test examples".into());
        }
        arch.apply_overrides(&config.overrides);
        events.send(Event::Preparing("building the model".into()));
        let compute = backend::select(config.backend)?;
        let device = compute.device.clone().autodiff();
        device.seed(config.seed);
        let mut net = Network::build(&arch, data.shape(), data.classes(), &device, config.seed).map_err(|e| e.to_string())?;
        if let Some(path) = &init_weights {
            net = net.load(path).map_err(|e| e.to_string())?;
        }
        let augment = config.augment.unwrap_or(data.augment_by_default);
        let n_train = data.train.len();
        let batch_size = config.batch_size.min(n_train);
        let steps_per_epoch = (n_train / batch_size).max(1);
        let total_steps = match config.max_steps {
            Some(max) if config.epochs == 0 => max,
            Some(max) => max.min(config.epochs * steps_per_epoch),
            None => config.epochs * steps_per_epoch,
        };
        let layer_names = net.meta.probe_layer_names();
        let mut writer = match &out {
            Some(dir) => {
                let record = TrainRecord {
                    format_version: TRAIN_FORMAT_VERSION,
                    config: config.clone(),
                    dataset: DatasetInfo {
                        spec: data.spec.to_string(),
                        input: data.shape(),
                        class_names: data.class_names.clone(),
                        normalization: data.normalization.clone(),
                        train_examples: n_train,
                        test_examples: data.test.len(),
                        augment,
                    },
                    backend: compute.backend,
                    adapter: compute.adapter.clone(),
                    started_unix_secs: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
                };
                Some(RunWriter::create(dir, &arch, &record, layer_names.clone()).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        events.send(Event::Started(Box::new(Started {
            backend: compute.backend,
            adapter: compute.adapter.clone(),
            backend_reason: compute.reason.clone(),
            fell_back: compute.fell_back,
            depth: net.meta.depth,
            params: net.meta.params,
            steps_per_epoch,
            total_steps,
            layer_names: layer_names.clone(),
            class_names: data.class_names.clone(),
            run_dir: out.clone(),
        })));

        let mut order = BatchOrder::new(config.seed, n_train);
        let mut augment_rng = Rng::stream(config.seed, "augment");
        let mut stepper = Stepper::new(net, &config, &device, config.seed);
        let (c, h, w) = (data.channels, data.height, data.width);
        let mut base_lr = config.lr;
        let mut status = RunStatus::Completed;
        let mut reason = None;
        let mut speed: Option<f32> = None;
        let inner = compute.device.clone();
        let mut means = EpochMeans::default();
        let mut tally = Tally {
            started,
            paused: std::time::Duration::ZERO,
            step: 0,
            steps_per_epoch,
            timed_images: 0,
            timed_secs: 0.0,
            train: None,
            test: None,
            first_output_grad: None,
        };

        'epochs: for epoch in 0.. {
            if tally.step >= total_steps {
                break;
            }
            means = EpochMeans::default();
            let indices = order.next_epoch();
            for batch_indices in indices.chunks_exact(batch_size).take(steps_per_epoch) {
                if tally.step >= total_steps {
                    break 'epochs;
                }
                let step = tally.step;
                // Commands: stop, pause (blocking until resume), learning rate.
                loop {
                    let command = match commands.try_recv() {
                        Ok(c) => c,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => Command::Stop,
                    };
                    match command {
                        Command::Stop => {
                            status = RunStatus::Stopped;
                            reason = Some(format!("stopped by the user at step {step}"));
                            break 'epochs;
                        }
                        Command::SetLr(lr) if lr.is_finite() && lr > 0.0 => {
                            base_lr = lr;
                            events.send(Event::LrChanged { lr });
                        }
                        Command::SetLr(_) | Command::Resume => {}
                        Command::Pause => {
                            events.send(Event::Paused { step });
                            let pause_started = Instant::now();
                            loop {
                                match commands.recv() {
                                    Ok(Command::Resume) => break,
                                    Ok(Command::SetLr(lr)) if lr.is_finite() && lr > 0.0 => {
                                        base_lr = lr;
                                        events.send(Event::LrChanged { lr });
                                    }
                                    Ok(Command::Stop) | Err(_) => {
                                        status = RunStatus::Stopped;
                                        reason = Some(format!("stopped by the user at step {step}"));
                                        break 'epochs;
                                    }
                                    Ok(_) => {}
                                }
                            }
                            // Paused time is not training time.
                            tally.paused += pause_started.elapsed();
                            events.send(Event::Resumed { step });
                        }
                    }
                }

                let lr = config.lr_at(base_lr, step, total_steps);
                let probe = config.probe_every > 0 && step % config.probe_every == 0;
                let step_started = Instant::now();
                let batch = data.batch(&data.train, batch_indices, if augment { Some(&mut augment_rng) } else { None });
                let size = batch.size;
                let out = stepper.step(batch.images, batch.labels, [size, c, h, w], lr, probe)?;
                let loss_value = out.loss;
                let accuracy = out.correct / size as f32;
                let elapsed_secs = tally.elapsed();
                let diverged = !loss_value.is_finite();
                if !diverged {
                    let step_secs = step_started.elapsed().as_secs_f64();
                    // The first step includes one-off set-up (and shader compilation on wgpu).
                    if step > 0 {
                        tally.timed_images += size;
                        tally.timed_secs += step_secs;
                    }
                    let instant = (size as f64 / step_secs.max(1e-9)) as f32;
                    speed = Some(match speed {
                        Some(s) => 0.8 * s + 0.2 * instant,
                        None => instant,
                    });
                    means.add(loss_value, accuracy);
                }
                let metrics = StepMetrics {
                    step,
                    epoch,
                    loss: loss_value,
                    accuracy,
                    lr,
                    images_per_sec: speed.unwrap_or(0.0),
                    elapsed_secs,
                    batch_digest: digest(batch_indices),
                };
                if let Some(writer) = &mut writer {
                    writer.metric(step, epoch, "train", loss_value, accuracy, lr, elapsed_secs).map_err(|e| e.to_string())?;
                }
                if diverged {
                    status = RunStatus::Diverged;
                    reason = Some(format!("the loss became {loss_value} at step {step} (learning rate {lr})"));
                    // Not droppable: the step that diverged must reach the lab.
                    events.send(Event::Step(metrics));
                    break 'epochs;
                }
                events.send_droppable(Event::Step(metrics));

                if let Some(readings) = out.probe {
                    tally.first_output_grad = readings.output.first().copied();
                    let snapshot = GradientSnapshot { step, weight: readings.weight, output: readings.output };
                    let probe_values = readings.values;
                    if let Some(writer) = &mut writer {
                        writer.gradients(&snapshot).map_err(|e| e.to_string())?;
                    }
                    events.send_droppable(Event::Gradients(snapshot));
                    if !probe_values.is_empty() {
                        let probes = ProbeSnapshot { step, values: probe_values };
                        if let Some(writer) = &mut writer {
                            writer.probes(&probes).map_err(|e| e.to_string())?;
                        }
                        events.send_droppable(Event::Probes(probes));
                    }
                }
                tally.step += 1;
            }
            if let Some(m) = means.means() {
                tally.train = Some(m);
            }
            // End of an epoch: evaluate, checkpoint, write a running summary.
            let lr = config.lr_at(base_lr, tally.step, total_steps);
            tally.test = Some(evaluate_and_record(stepper.net(), &data, [&device, &inner], &tally, lr, &mut writer, events)?);
            if let Some(writer) = &writer {
                writer.save_model(stepper.net()).map_err(|e| e.to_string())?;
                writer.summary(&tally.summary(RunStatus::Running, None, stepper.net(), &compute)).map_err(|e| e.to_string())?;
            }
        }
        // A run cut short before a whole epoch reports the means of its partial epoch.
        if tally.train.is_none() {
            tally.train = means.means();
        }
        if status != RunStatus::Diverged {
            let stopped_mid_epoch = status == RunStatus::Stopped && tally.step > 0;
            if stopped_mid_epoch || tally.test.is_none() {
                let lr = config.lr_at(base_lr, tally.step, total_steps);
                tally.test = Some(evaluate_and_record(stepper.net(), &data, [&device, &inner], &tally, lr, &mut writer, events)?);
            }
            if let Some(writer) = &writer {
                writer.save_model(stepper.net()).map_err(|e| e.to_string())?;
            }
        }
        let summary = tally.summary(status, reason, stepper.net(), &compute);
        if let Some(writer) = &writer {
            writer.summary(&summary).map_err(|e| e.to_string())?;
        }
        Ok(summary)
    }
}

/// What a run has measured so far, for its summary.
struct Tally {
    started: Instant,
    /// Time spent paused (not training time).
    paused: std::time::Duration,
    step: usize,
    steps_per_epoch: usize,
    /// Images and seconds of timed steps (the first step, with its one-off
    /// set-up, is not timed).
    timed_images: usize,
    timed_secs: f64,
    /// Mean training loss and accuracy of the last whole epoch.
    train: Option<(f32, f32)>,
    /// Test loss and accuracy of the last evaluation.
    test: Option<(f32, f32)>,
    first_output_grad: Option<f32>,
}

impl Tally {
    /// Seconds of training so far, pauses excluded.
    fn elapsed(&self) -> f64 {
        self.started.elapsed().saturating_sub(self.paused).as_secs_f64()
    }

    fn summary(&self, status: RunStatus, reason: Option<String>, net: &Network, compute: &backend::Compute) -> Summary {
        Summary {
            status,
            reason,
            steps: self.step,
            epochs: self.step as f64 / self.steps_per_epoch.max(1) as f64,
            final_train_loss: self.train.map(|t| t.0),
            final_train_accuracy: self.train.map(|t| t.1),
            final_test_loss: self.test.map(|t| t.0),
            final_test_accuracy: self.test.map(|t| t.1),
            params: net.meta.params,
            depth: net.meta.depth,
            images_per_sec: (self.timed_secs > 0.0).then(|| (self.timed_images as f64 / self.timed_secs) as f32),
            wall_secs: self.started.elapsed().as_secs_f64(),
            backend: Some(compute.backend),
            adapter: compute.adapter.clone(),
            first_layer_output_grad_norm: self.first_output_grad,
        }
    }
}

/// Evaluates on the test split, logs the result and sends it; returns the
/// test loss and accuracy.
fn evaluate_and_record(
    net: &Network,
    data: &Dataset,
    [train_device, device]: [&Device; 2],
    tally: &Tally,
    lr: f64,
    writer: &mut Option<RunWriter>,
    events: &EventSender,
) -> Result<(f32, f32), String> {
    let epoch = tally.step / tally.steps_per_epoch.max(1);
    if net.has_drop_path() {
        // Drop-path trains a mixture of sub-networks, and the batch-norm
        // statistics average over all of them; the whole net evaluated with
        // them was measured 28 points worse than with its own (fashion-mini,
        // fractal-3: 47.9 % against 19.4 % test error).
        recalibrate_batch_norm(net, data, train_device, None, CALIBRATION_BATCHES, tally.step as u64);
    }
    let evaluation = evaluate(&net.valid(), data, device, tally.step, epoch, tally.elapsed());
    if let Some(writer) = writer {
        writer
            .metric(tally.step, epoch, "test", evaluation.loss, evaluation.accuracy, lr, evaluation.elapsed_secs)
            .map_err(|e| e.to_string())?;
    }
    let result = (evaluation.loss, evaluation.accuracy);
    events.send(Event::Evaluation(Box::new(evaluation)));
    Ok(result)
}

/// FNV-1a over the example indices of a batch.
fn digest(indices: &[usize]) -> u64 {
    indices.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &i| (h ^ i as u64).wrapping_mul(0x0100_0000_01b3))
}
