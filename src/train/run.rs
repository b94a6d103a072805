//! One training run from start to end on the calling thread: preparing data,
//! model and run folder; the loop of steps and epoch-end evaluations; and a
//! summary that says truthfully how it ended.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Instant;

use burn::prelude::*;

use super::config::TrainConfig;
use super::evaluate::{CALIBRATION_BATCHES, evaluate, recalibrate_batch_norm};
use super::events::{
    BOUNDARY_EVERY, BOUNDARY_GRID, BoundarySnapshot, Command, Event, GradientSnapshot, ProbeSnapshot, RunStatus, Started, StepMetrics,
    Summary,
};
use super::events::{EventSender, RunRequest};
use super::runfolder::{DatasetInfo, RunWriter, TRAIN_FORMAT_VERSION, TrainRecord};
use super::step::Stepper;
use crate::backend;
use crate::data::{BatchOrder, Dataset};
use crate::model::Network;
use crate::util::rng::Rng;

/// A run has diverged when its training loss stays above this many times
/// its starting level — the first step's loss, or the loss of a uniform
/// guess over the classes if that is higher — for [`DIVERGENCE_STEPS`]
/// steps in a row, or when it ends having learned nothing (a final training
/// loss no better than [`CHANCE_SHARE`] of a uniform guess's) with a test
/// loss above this many times that level (its outputs on test images blew
/// up: a net stuck at chance with running batch-norm statistics far off);
/// also when a training or test loss is not finite. A net that learned
/// keeps its weights whatever its test loss: a deep plain net's running
/// statistics lag its first steps.
pub const DIVERGENCE_FACTOR: f32 = 10.0;
/// Steps in a row above [`DIVERGENCE_FACTOR`] × the starting level that
/// call a run diverged.
pub const DIVERGENCE_STEPS: usize = 5;
/// A final training loss at or above this share of `ln(classes)` has
/// learned nothing (for the test-loss part of the rule).
pub const CHANCE_SHARE: f32 = 0.95;

/// Watches the training loss for the divergence rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DivergenceWatch {
    /// `DIVERGENCE_FACTOR ×` the starting level, once the first loss is seen.
    limit: Option<f32>,
    /// The starting level the limit is a multiple of.
    start: f32,
    /// Steps in a row above the limit.
    above: usize,
    /// The loss of a uniform guess, `ln(classes)`.
    chance: f32,
}

impl DivergenceWatch {
    pub fn new(classes: usize) -> Self {
        Self { limit: None, start: 0.0, above: 0, chance: (classes.max(2) as f32).ln() }
    }

    /// Records a finite training loss; returns why the run diverged once
    /// the rule says it has.
    pub fn observe(&mut self, loss: f32) -> Option<String> {
        let Some(limit) = self.limit else {
            self.start = loss.max(self.chance);
            self.limit = Some(DIVERGENCE_FACTOR * self.start);
            return None;
        };
        self.above = if loss > limit { self.above + 1 } else { 0 };
        (self.above >= DIVERGENCE_STEPS).then(|| {
            format!(
                "the training loss stayed above {limit:.4} ({DIVERGENCE_FACTOR}x its starting level {:.4}) for {DIVERGENCE_STEPS} steps in a row (last {loss:.4})",
                self.start
            )
        })
    }

    /// Why a run that ends with test loss `loss` and training loss `train`
    /// diverged, if it did.
    pub fn final_test_loss(&self, loss: f32, train: f32) -> Option<String> {
        let limit = self.limit?;
        (loss > limit && train >= CHANCE_SHARE * self.chance).then(|| {
            format!(
                "it ended with a test loss of {loss:.4}, above {limit:.4} ({DIVERGENCE_FACTOR}x its starting level {:.4}), having learned nothing \
                 (training loss {train:.4}; a uniform guess gives {:.4}): its outputs on test images blew up",
                self.start, self.chance
            )
        })
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

/// Why a run could not start, or failed while it trained (its summary's
/// reason, in words).
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Config(#[from] super::config::ConfigError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error("the dataset has no training or no test examples")]
    NoExamples,
    #[error(transparent)]
    Backend(#[from] backend::BackendError),
    #[error(transparent)]
    Memory(#[from] super::memory::TooLittleMemory),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error(transparent)]
    RunFolder(#[from] super::runfolder::RunFolderError),
    #[error("saving the weights failed: {0}")]
    SaveWeights(#[source] super::runfolder::RunFolderError),
    #[error(transparent)]
    ReadBack(#[from] super::evaluate::ReadBackError),
    /// A bug in a step (a panic), caught.
    #[error("internal error: {0}")]
    Internal(String),
}

pub(super) struct Trainer;

impl Trainer {
    pub(super) fn run(request: RunRequest, commands: &Receiver<Command>, events: &EventSender) -> Summary {
        let started = Instant::now();
        let mut summary = match Run::prepare(request, events, started) {
            Ok(mut run) => {
                // A bug in a step still ends the run truthfully: failed,
                // with its message, in the summary and the run folder.
                let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run.train(commands, events)))
                    .unwrap_or_else(|panic| Err(TrainError::Internal(crate::util::fault::panic_message(panic.as_ref()))));
                run.finish(ended, events)
            }
            Err(reason) => Summary::failed(reason.to_string()),
        };
        summary.wall_secs = started.elapsed().as_secs_f64();
        summary
    }
}

/// How the training loop ended: a status and, when there is one, why.
type Ending = (RunStatus, Option<String>);

/// A run in progress: everything the training loop reads and updates.
struct Run {
    config: TrainConfig,
    data: Arc<Dataset>,
    compute: backend::Compute,
    /// The autodiff device (training) and the plain one (evaluation).
    device: Device,
    inner: Device,
    stepper: Stepper,
    writer: Option<RunWriter>,
    order: BatchOrder,
    augment: bool,
    augment_rng: Rng,
    batch_size: usize,
    total_steps: usize,
    base_lr: f64,
    /// Smoothed images per second, for progress.
    speed: Option<f32>,
    /// Loss and accuracy means of the epoch in progress.
    means: EpochMeans,
    watch: DivergenceWatch,
    tally: Tally,
}

/// The run's data: `data` when the caller loaded it, else the dataset the
/// settings name, cut to `--train-examples` / `--test-examples`; refused
/// when a split is empty.
fn load_data(config: &TrainConfig, data: Option<Arc<Dataset>>) -> Result<Arc<Dataset>, TrainError> {
    let data = match data {
        Some(d) => d,
        None => Arc::new(Dataset::load(&config.data)?),
    };
    let data = match (config.train_limit, config.test_limit) {
        (None, None) => data,
        (train, test) => Arc::new(data.truncated(train.unwrap_or(usize::MAX), test.unwrap_or(usize::MAX))),
    };
    if data.train.is_empty() || data.test.is_empty() {
        return Err(TrainError::NoExamples);
    }
    Ok(data)
}

/// What `train.json` records of a run: its settings, its data, the backend.
fn train_record(config: &TrainConfig, data: &Dataset, compute: &backend::Compute, augment: bool) -> TrainRecord {
    TrainRecord {
        format_version: TRAIN_FORMAT_VERSION,
        config: config.clone(),
        dataset: DatasetInfo {
            spec: data.spec.to_string(),
            input: data.shape(),
            class_names: data.class_names.clone(),
            normalization: data.normalization.clone(),
            train_examples: data.train.len(),
            test_examples: data.test.len(),
            augment,
            features: data.features.clone(),
        },
        backend: compute.backend,
        adapter: compute.adapter.clone(),
        started_unix_secs: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
    }
}

impl Run {
    /// Loads the data, builds the model, opens the run folder and announces
    /// the run. Nothing is written before the settings are known to work.
    fn prepare(request: RunRequest, events: &EventSender, started: Instant) -> Result<Run, TrainError> {
        let RunRequest { mut arch, config, data, out, init_weights } = request;
        config.check()?;
        events.send(Event::Preparing("loading data".into()));
        let data = load_data(&config, data)?;
        arch.apply_overrides(&config.overrides);
        let n_train = data.train.len();
        let batch_size = config.batch_size.min(n_train);
        let compute = backend::select(config.backend)?;
        if compute.backend == backend::Backend::Cpu {
            super::memory::check(&arch.analyse(data.shape(), data.classes()), batch_size, config.optimizer)?;
        }
        events.send(Event::Preparing("building the model".into()));
        let device = compute.device.clone().autodiff();
        device.seed(config.seed);
        let mut net = Network::build(&arch, data.shape(), data.classes(), &device, config.seed)?;
        if let Some(path) = &init_weights {
            net = net.load(path)?;
        }
        let augment = config.augment.unwrap_or(data.augment_by_default);
        let steps_per_epoch = (n_train / batch_size).max(1);
        let total_steps = match config.max_steps {
            Some(max) if config.epochs == 0 => max,
            Some(max) => max.min(config.epochs * steps_per_epoch),
            None => config.epochs * steps_per_epoch,
        };
        let layer_names = net.meta.probe_layer_names();
        let writer = match &out {
            Some(dir) => {
                let record = train_record(&config, &data, &compute, augment);
                Some(RunWriter::create(dir, &arch, &record, layer_names.clone())?)
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
            layer_names,
            class_names: data.class_names.clone(),
            run_dir: out.clone(),
        })));
        Ok(Run {
            watch: DivergenceWatch::new(data.classes()),
            order: BatchOrder::new(config.seed, n_train),
            augment_rng: Rng::stream(config.seed, "augment"),
            stepper: Stepper::new(net, &config, &device, config.seed),
            base_lr: config.lr,
            inner: compute.device.clone(),
            device,
            compute,
            config,
            data,
            writer,
            augment,
            batch_size,
            total_steps,
            speed: None,
            means: EpochMeans::default(),
            tally: Tally {
                started,
                paused: std::time::Duration::ZERO,
                step: 0,
                steps_per_epoch,
                timed_images: 0,
                timed_secs: 0.0,
                train: None,
                test: None,
                tested_at: None,
                first_output_grad: None,
            },
        })
    }

    /// The training loop: epochs of steps, each epoch ending in an
    /// evaluation, a checkpoint and a running summary. Returns how it ended;
    /// an error (a file that cannot be written) ends it as failed.
    fn train(&mut self, commands: &Receiver<Command>, events: &EventSender) -> Result<Ending, TrainError> {
        for epoch in 0.. {
            if self.tally.step >= self.total_steps {
                break;
            }
            self.means = EpochMeans::default();
            let indices = self.order.next_epoch();
            for batch_indices in indices.chunks_exact(self.batch_size).take(self.tally.steps_per_epoch) {
                if self.tally.step >= self.total_steps {
                    return Ok((RunStatus::Completed, None));
                }
                if let Some(ending) = self.obey(commands, events) {
                    return Ok(ending);
                }
                if let Some(ending) = self.step(epoch, batch_indices, events)? {
                    return Ok(ending);
                }
            }
            if let Some(m) = self.means.means() {
                self.tally.train = Some(m);
            }
            // End of an epoch: evaluate, checkpoint, write a running summary.
            if let Some(ending) = self.evaluate(events)? {
                return Ok(ending);
            }
            if let Some(writer) = &mut self.writer {
                writer.save_model(self.stepper.net()).map_err(TrainError::SaveWeights)?;
                let running = self.tally.summary(RunStatus::Running, None, self.stepper.net(), &self.compute);
                writer.summary(&running)?;
            }
        }
        Ok((RunStatus::Completed, None))
    }

    /// Applies the commands waiting (stop, pause until resumed, learning
    /// rate); returns an ending when the run must stop.
    fn obey(&mut self, commands: &Receiver<Command>, events: &EventSender) -> Option<Ending> {
        let step = self.tally.step;
        let stopped = || Some((RunStatus::Stopped, Some(format!("stopped by the user at step {step}"))));
        loop {
            let command = match commands.try_recv() {
                Ok(c) => c,
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Disconnected) => Command::Stop,
            };
            match command {
                Command::Stop => return stopped(),
                Command::SetLr(lr) if lr.is_finite() && lr > 0.0 => {
                    self.base_lr = lr;
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
                                self.base_lr = lr;
                                events.send(Event::LrChanged { lr });
                            }
                            Ok(Command::Stop) | Err(_) => return stopped(),
                            Ok(_) => {}
                        }
                    }
                    // Paused time is not training time.
                    self.tally.paused += pause_started.elapsed();
                    events.send(Event::Resumed { step });
                }
            }
        }
    }

    /// One training step on `batch_indices`, recorded; returns an ending
    /// when the loss diverged.
    fn step(&mut self, epoch: usize, batch_indices: &[usize], events: &EventSender) -> Result<Option<Ending>, TrainError> {
        let step = self.tally.step;
        crate::util::fault::point("step");
        let config = &self.config;
        let lr = config.lr_at(self.base_lr, step, self.total_steps);
        let probe = config.probe_every > 0 && step % config.probe_every == 0;
        let step_started = Instant::now();
        let data = &self.data;
        let batch = data.batch(&data.train, batch_indices, if self.augment { Some(&mut self.augment_rng) } else { None });
        let size = batch.size;
        let out = self.stepper.step(batch.images, batch.labels, [size, data.channels, data.height, data.width], lr, probe)?;
        let loss = out.loss;
        let accuracy = out.correct / size as f32;
        let elapsed_secs = self.tally.elapsed();
        let diverged = !loss.is_finite();
        let runaway = if diverged { None } else { self.watch.observe(loss) };
        if !diverged {
            let step_secs = step_started.elapsed().as_secs_f64();
            // The first step includes one-off set-up (and shader compilation on wgpu).
            if step > 0 {
                self.tally.timed_images += size;
                self.tally.timed_secs += step_secs;
            }
            let instant = (size as f64 / step_secs.max(1e-9)) as f32;
            self.speed = Some(self.speed.map_or(instant, |s| 0.8 * s + 0.2 * instant));
            self.means.add(loss, accuracy);
        }
        let metrics = StepMetrics {
            step,
            epoch,
            loss,
            accuracy,
            lr,
            images_per_sec: self.speed.unwrap_or(0.0),
            elapsed_secs,
            batch_digest: digest(batch_indices),
        };
        if let Some(writer) = &mut self.writer {
            writer.metric(step, epoch, "train", loss, accuracy, lr, elapsed_secs)?;
        }
        if diverged {
            // Not droppable: the step that diverged must reach the lab.
            events.send(Event::Step(metrics));
            return Ok(Some((RunStatus::Diverged, Some(format!("the loss became {loss} at step {step} (learning rate {lr})")))));
        }
        events.send_droppable(Event::Step(metrics));
        if let Some(readings) = out.probe {
            self.tally.first_output_grad = readings.output.first().copied();
            let snapshot = GradientSnapshot { step, weight: readings.weight, output: readings.output };
            if let Some(writer) = &mut self.writer {
                writer.gradients(&snapshot)?;
            }
            events.send_droppable(Event::Gradients(snapshot));
            if !readings.values.is_empty() {
                let probes = ProbeSnapshot { step, values: readings.values };
                if let Some(writer) = &mut self.writer {
                    writer.probes(&probes)?;
                }
                events.send_droppable(Event::Probes(probes));
            }
        }
        if step % BOUNDARY_EVERY == 0 && matches!(self.data.spec, crate::data::DataSpec::Plane(_)) {
            let points = crate::data::plane::grid(BOUNDARY_GRID);
            let net = self.stepper.net().valid();
            let classes = super::evaluate::classes_of_points(&net, &self.inner, &self.data.normalization, &points)?;
            let classes = classes.into_iter().map(|c| c.min(usize::from(u8::MAX)) as u8).collect();
            events.send_droppable(Event::Boundary(BoundarySnapshot { step, size: BOUNDARY_GRID, classes }));
        }
        self.tally.step += 1;
        Ok(runaway.map(|reason| (RunStatus::Diverged, Some(format!("{reason}, at step {step} (learning rate {lr})")))))
    }

    /// Evaluates the current weights on the test split; returns an ending
    /// when the test loss is not finite (the weights or the batch-norm
    /// statistics no longer are).
    fn evaluate(&mut self, events: &EventSender) -> Result<Option<Ending>, TrainError> {
        let lr = self.config.lr_at(self.base_lr, self.tally.step, self.total_steps);
        let devices = [&self.device, &self.inner];
        let (loss, accuracy) = evaluate_and_record(self.stepper.net(), &self.data, devices, &self.tally, lr, &mut self.writer, events)?;
        self.tally.tested_at = Some(self.tally.step);
        if !loss.is_finite() {
            // No score from outputs that are not numbers.
            self.tally.test = Some((loss, f32::NAN));
            let reason = format!(
                "the test loss became {loss} after step {}: the weights or batch-norm statistics are no longer finite",
                self.tally.step
            );
            return Ok(Some((RunStatus::Diverged, Some(reason))));
        }
        self.tally.test = Some((loss, accuracy));
        Ok(None)
    }

    /// Ends the run however the loop ended: a last evaluation and the
    /// weights when it trained, and a summary that says what happened, also
    /// when saving failed (with the steps that did run).
    fn finish(mut self, ended: Result<Ending, TrainError>, events: &EventSender) -> Summary {
        let (mut status, mut reason) = ended.unwrap_or_else(|e| (RunStatus::Failed, Some(e.to_string())));
        // A run cut short before a whole epoch reports the means of its partial epoch.
        if self.tally.train.is_none() {
            self.tally.train = self.means.means();
        }
        if matches!(status, RunStatus::Completed | RunStatus::Stopped) {
            // The summary's test figures are those of the final weights.
            let mut saved = Ok(None);
            if self.tally.tested_at != Some(self.tally.step) {
                saved = self.evaluate(events);
            }
            if status == RunStatus::Completed
                && let (Ok(None), Some((loss, _)), Some((train, _))) = (&saved, self.tally.test, self.tally.train)
                && let Some(reason) = self.watch.final_test_loss(loss, train)
            {
                saved = Ok(Some((RunStatus::Diverged, Some(reason))));
            }
            match saved {
                // Weights that give no finite loss are not saved over the
                // last good checkpoint.
                Ok(Some(ending)) => (status, reason) = ending,
                Ok(None) => {
                    if let Some(writer) = &mut self.writer
                        && let Err(e) = writer.save_model(self.stepper.net())
                    {
                        status = RunStatus::Failed;
                        reason = Some(format!("saving the weights failed: {e}"));
                    }
                }
                Err(e) => {
                    status = RunStatus::Failed;
                    reason = Some(e.to_string());
                }
            }
        }
        let mut summary = self.tally.summary(status, reason, self.stepper.net(), &self.compute);
        if let Some(writer) = &mut self.writer
            && let Err(e) = writer.summary(&summary)
        {
            summary.status = RunStatus::Failed;
            let before = summary.reason.take().map(|r| format!("{r}; ")).unwrap_or_default();
            summary.reason = Some(format!("{before}writing the summary failed: {e}"));
        }
        summary
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
    /// Test loss and accuracy of the last evaluation, and the step it was at.
    test: Option<(f32, f32)>,
    tested_at: Option<usize>,
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
            // The writer records the checksum of the weights it saved.
            model_sha256: None,
            saving_model_sha256: None,
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
) -> Result<(f32, f32), TrainError> {
    // The 0-based epoch this evaluation closes (the one the last step
    // belonged to), as in the training rows.
    let epoch = tally.step.saturating_sub(1) / tally.steps_per_epoch.max(1);
    if net.has_drop_path() {
        // Drop-path trains a mixture of sub-networks, and the batch-norm
        // statistics average over all of them; the whole net evaluated with
        // them was measured 28 points worse than with its own (fashion-mini,
        // fractal-3: 47.9 % against 19.4 % test error).
        recalibrate_batch_norm(net, data, train_device, None, CALIBRATION_BATCHES, tally.step as u64);
    }
    let mut evaluation = evaluate(&net.valid(), data, device, tally.step, epoch, tally.elapsed());
    if !evaluation.loss.is_finite() {
        // An argmax over outputs that are not numbers is no accuracy.
        evaluation.accuracy = f32::NAN;
    }
    if let Some(writer) = writer {
        writer.metric(tally.step, epoch, "test", evaluation.loss, evaluation.accuracy, lr, evaluation.elapsed_secs)?;
    }
    let result = (evaluation.loss, evaluation.accuracy);
    events.send(Event::Evaluation(Box::new(evaluation)));
    Ok(result)
}

/// FNV-1a over the example indices of a batch.
fn digest(indices: &[usize]) -> u64 {
    indices.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &i| (h ^ i as u64).wrapping_mul(0x0100_0000_01b3))
}
