//! `depthlab train`, with a progress line on stderr; the training flags and
//! the Ctrl-C handling `sweep` shares.

use super::say;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::time::Instant;

use clap::Args;

use super::{CliError, LayerFlags};
use crate::arch::resolve;
use crate::backend::BackendChoice;
use crate::data::{DataSpec, Dataset};
use crate::train::events::Event;
use crate::train::{OptimizerKind, RunRequest, RunStatus, Schedule, Summary, TrainConfig, spawn};

/// Flags shared by `train` and `sweep`.
#[derive(Args, Debug, Clone)]
pub struct TrainingFlags {
    /// fashion-mini (embedded), digits (embedded 8x8), mnist:DIR, fashion-mnist[:DIR], cifar10:DIR, folder:DIR[@CxHxW], csv:FILE[,label=COLUMN][,test=FILE] (a header row, numeric features, a label column), 2-D points: spiral, moons, circles, xor, blobs, checkerboard[:n=1000,noise=0.1,classes=2,seed=1].
    #[arg(long, default_value = "fashion-mini")]
    pub data: String,
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    /// Stop after this many steps.
    #[arg(long)]
    pub max_steps: Option<usize>,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    #[arg(long, value_enum, default_value_t = OptimizerKind::Sgd)]
    pub optimizer: OptimizerKind,
    /// Base learning rate.
    #[arg(long, default_value_t = 0.05, allow_negative_numbers = true)]
    pub lr: f64,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9, allow_negative_numbers = true)]
    pub momentum: f64,
    /// Nesterov momentum.
    #[arg(long)]
    pub nesterov: bool,
    #[arg(long, default_value_t = 1e-4, allow_negative_numbers = true)]
    pub weight_decay: f64,
    /// constant, cosine, step (÷10 at 50 % and 75 %) or step:F1,F2,…
    #[arg(long, default_value = "constant")]
    pub schedule: String,
    /// Linear learning-rate warm-up over this many steps.
    #[arg(long, default_value_t = 0)]
    pub warmup_steps: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Gradient probe every N steps (0: never).
    #[arg(long, default_value_t = 10)]
    pub probe_every: usize,
    /// Pad-4 random crop + horizontal flip (default: on for CIFAR-10 and image folders).
    #[arg(long, overrides_with = "no_augment")]
    pub augment: bool,
    #[arg(long)]
    pub no_augment: bool,
    /// Use only the first N training examples.
    #[arg(long)]
    pub train_examples: Option<usize>,
    /// Use only the first N test examples.
    #[arg(long)]
    pub test_examples: Option<usize>,
    /// CPU threads each run computes on (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub layers: LayerFlags,
}

impl TrainingFlags {
    pub fn config(&self) -> Result<TrainConfig, CliError> {
        let data = self.data.parse::<DataSpec>().map_err(|e| CliError::new(2, e))?;
        let schedule = Schedule::parse(&self.schedule).map_err(|e| CliError::new(2, e))?;
        let augment = if self.augment {
            Some(true)
        } else if self.no_augment {
            Some(false)
        } else {
            None
        };
        let config = TrainConfig {
            data,
            backend: self.backend,
            epochs: self.epochs,
            max_steps: self.max_steps,
            batch_size: self.batch_size,
            optimizer: self.optimizer,
            lr: self.lr,
            momentum: self.momentum,
            nesterov: self.nesterov,
            weight_decay: self.weight_decay,
            schedule,
            warmup_steps: self.warmup_steps,
            seed: self.seed,
            probe_every: self.probe_every,
            augment,
            train_limit: self.train_examples,
            test_limit: self.test_examples,
            overrides: self.layers.overrides(),
            threads: self.threads,
        };
        config.check().map_err(|e| CliError::new(2, e))?;
        if config.backend == BackendChoice::Cuda {
            // Refused before anything is written, with the reason.
            crate::backend::select(BackendChoice::Cuda).map_err(|e| CliError::new(2, e))?;
        }
        Ok(config)
    }
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// A preset name or an architecture JSON file.
    #[arg(long)]
    pub arch: String,
    /// The run folder to write (default: runs/<arch>-<time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace a finished run already in --out (never one still being written).
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub training: TrainingFlags,
}

/// A default run folder name: `runs/resnet-20-20261128-154210`.
pub fn default_run_dir(arch_name: &str) -> PathBuf {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let clean: String = arch_name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    PathBuf::from("runs").join(format!("{clean}-{}", crate::util::timestamp(secs)))
}

pub fn train(args: &TrainArgs) -> Result<(), CliError> {
    let config = args.training.config()?;
    let data = Dataset::load(&config.data)?;
    let arch = resolve(&args.arch, data.shape()).map_err(|e| CliError::new(2, e.to_string()))?;
    if let Some(init) = config.overrides.residual_init.filter(|i| !i.is_default())
        && !arch.has_residual_branches()
    {
        return Err(CliError::new(
            2,
            format!(
                "--residual-init {} sets how residual branches start, and {} has no residual block with a shortcut",
                init.word(),
                arch.name
            ),
        ));
    }
    let analysis = {
        let mut a = arch.clone();
        a.apply_overrides(&config.overrides);
        a.analyse(data.shape(), data.classes())
    };
    if !analysis.is_valid() {
        for e in &analysis.errors {
            say!("error: {e}");
        }
        return Err(CliError::new(2, format!("{} is invalid for {} input", arch.name, data.shape())));
    }
    let out = args.out.clone().unwrap_or_else(|| default_run_dir(&arch.name));
    // The run being replaced is moved aside, and deleted only once the new
    // one has saved (nothing finished is lost to a full disk or a crash).
    let replaced = match args.overwrite {
        true => crate::train::replace::set_aside(&out).map_err(|e| CliError::new(1, e))?,
        false => None,
    };
    let data = std::sync::Arc::new(data);
    let request = RunRequest { arch, config, data: Some(data.clone()), out: Some(out.clone()), init_weights: None };
    let handle = spawn(request, None)?;
    let interrupts = Interrupts::install(handle.commander());
    let summary = follow(&handle.events, None);
    handle.join();
    if let Some(replaced) = replaced {
        match replaced.finish() {
            Ok(true) => {}
            Ok(false) => say!("the new run saved no weights: the run it was to replace is back in {}, as it was", out.display()),
            Err(e) => say!("warning: the run being replaced could not be settled: {e}"),
        }
    }
    let summary = summary?;
    if matches!(data.spec, crate::data::DataSpec::Plane(_)) && out.join(crate::train::runfolder::MODEL_FILE).exists() {
        match write_boundary(&out, &data.train) {
            Ok(path) => say!("decision boundary: {}", path.display()),
            Err(e) => say!("warning: the decision boundary was not drawn: {e}"),
        }
    }
    report(&summary, &out)?;
    interrupts.exit_code()
}

/// Ctrl-C (SIGINT) and SIGTERM: the first stops the run as the window's
/// Stop button does (the step ends, the weights are saved, the summary says
/// stopped) and the command exits 130; a second ends the process at once.
pub struct Interrupts {
    installed: bool,
}

static SIGNALS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Milliseconds the run's steps take (their mean so far; 0 before the first
/// one ends), for the interrupt message: on a slow adapter "after this
/// step" can mean minutes, and the message says so.
static STEP_MILLIS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// What the interrupt message says of the step under way.
fn step_wait() -> String {
    let millis = STEP_MILLIS.load(std::sync::atomic::Ordering::Relaxed);
    crate::train::events::step_wait((millis > 0).then(|| millis as f64 / 1000.0))
}

/// The exit status of `train` when the run diverged (its folder is whole,
/// its summary says `diverged` and why).
pub const DIVERGED_EXIT: i32 = 3;

/// The exit status of a process stopped by an interrupt (128 + SIGINT).
pub const INTERRUPTED_EXIT: i32 = 130;

impl Interrupts {
    pub fn install(commands: std::sync::mpsc::Sender<crate::train::Command>) -> Interrupts {
        let handler = move || {
            if SIGNALS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                say!("\nstopping after this step{} and saving the run (press Ctrl-C again to quit at once)", step_wait());
                if commands.send(crate::train::Command::Stop).is_err() {
                    // The run already ended: nothing to stop.
                }
            } else {
                std::process::exit(INTERRUPTED_EXIT);
            }
        };
        match ctrlc::set_handler(handler) {
            Ok(()) => Interrupts { installed: true },
            Err(e) => {
                say!("note: Ctrl-C will end the process at once ({e})");
                Interrupts { installed: false }
            }
        }
    }

    /// `Err` with exit status 130 when an interrupt stopped the command.
    pub fn exit_code(&self) -> Result<(), CliError> {
        if self.installed && SIGNALS.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            return Err(CliError::new(INTERRUPTED_EXIT, "interrupted: the run stopped and its folder is saved"));
        }
        Ok(())
    }
}

fn report(summary: &Summary, out: &std::path::Path) -> Result<(), CliError> {
    let pct = |v: Option<f32>| v.map(|a| format!("{:.2}%", a * 100.0)).unwrap_or_else(|| "-".into());
    say!(
        "{}: {} steps in {:.1} s; train loss {} accuracy {}; test loss {} accuracy {}; {} img/s; {}",
        summary.status,
        summary.steps,
        summary.wall_secs,
        summary.final_train_loss.map(|l| format!("{l:.4}")).unwrap_or_else(|| "-".into()),
        pct(summary.final_train_accuracy),
        summary.final_test_loss.map(|l| format!("{l:.4}")).unwrap_or_else(|| "-".into()),
        pct(summary.final_test_accuracy),
        summary.images_per_sec.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into()),
        out.display()
    );
    match summary.status {
        RunStatus::Failed => Err(CliError::new(1, summary.reason.clone().unwrap_or_default())),
        RunStatus::Diverged => Err(CliError::new(
            DIVERGED_EXIT,
            format!(
                "the run diverged: {}. Its folder is complete (metrics.csv holds every step). {} (--lr, --warmup-steps, --residual-init)",
                summary.reason.clone().unwrap_or_default(),
                crate::train::events::DIVERGED_ADVICE
            ),
        )),
        _ => Ok(()),
    }
}

/// Why the decision boundary was not drawn (a warning, not a failure).
#[derive(Debug, thiserror::Error)]
enum BoundaryError {
    #[error(transparent)]
    Run(#[from] crate::train::runfolder::RunFolderError),
    #[error(transparent)]
    Classify(#[from] crate::classify::ClassifyError),
    #[error(transparent)]
    File(#[from] crate::util::fsio::FileError),
}

/// Draws the trained net's decision boundary over the plane with the
/// training points into the run folder's `boundary.png`.
fn write_boundary(out: &std::path::Path, train: &crate::data::Split) -> Result<std::path::PathBuf, BoundaryError> {
    use crate::report::boundary;
    let classifier = crate::classify::Classifier::open(out)?;
    let classes = classifier.classes_of_points(&boundary::grid())?;
    let path = out.join(crate::train::runfolder::BOUNDARY_FILE);
    let run = &classifier.run;
    let accuracy = run.summary.as_ref().and_then(|s| s.final_test_accuracy).map_or("-".to_string(), |a| format!("{:.1} %", a * 100.0));
    let title = format!("Decision boundary of {}", run.arch.name);
    let subtitle = format!("{}: {} training points; test accuracy {accuracy}", run.record.dataset.spec, train.len());
    boundary::save(&classes, train, &path, &title, &subtitle)?;
    Ok(path)
}

/// Prints progress until the run finishes; returns its summary.
fn follow(events: &Receiver<Event>, label: Option<&str>) -> Result<Summary, CliError> {
    let terminal = std::io::stderr().is_terminal();
    let mut total_steps = 0;
    let mut last_print = Instant::now() - std::time::Duration::from_secs(10);
    let mut last_pct = usize::MAX;
    let prefix = label.map(|l| format!("{l}: ")).unwrap_or_default();
    for event in events.iter() {
        match event {
            Event::Preparing(what) => say!("{prefix}{what}…"),
            Event::Started(s) => {
                total_steps = s.total_steps;
                say!(
                    "{prefix}training on {} ({}): depth {}, {} parameters, {} steps ({} per epoch){}",
                    s.backend,
                    s.adapter,
                    s.depth,
                    s.params,
                    s.total_steps,
                    s.steps_per_epoch,
                    s.run_dir.as_ref().map(|d| format!(", writing {}", d.display())).unwrap_or_default()
                );
                if s.fell_back {
                    say!("{prefix}note: {}", s.backend_reason);
                }
            }
            Event::Step(m) => {
                let done = m.step + 1;
                let millis = (m.elapsed_secs * 1000.0 / done as f64).round().max(1.0) as u64;
                STEP_MILLIS.store(millis, std::sync::atomic::Ordering::Relaxed);
                let pct = done * 100 / total_steps.max(1);
                let due = if terminal { last_print.elapsed().as_millis() >= 100 } else { pct / 10 != last_pct / 10 };
                if due || done == total_steps {
                    last_print = Instant::now();
                    last_pct = pct;
                    let eta = if m.images_per_sec > 0.0 && done > 0 {
                        let per_step = m.elapsed_secs / done as f64;
                        crate::util::format_secs(per_step * (total_steps.saturating_sub(done)) as f64)
                    } else {
                        "?".into()
                    };
                    let width = 24;
                    let filled = (done * width / total_steps.max(1)).min(width);
                    let line = format!(
                        "{prefix}[{}{}] step {done}/{total_steps} epoch {} loss {:.4} acc {:5.1}% {:.0} img/s ETA {eta}",
                        "=".repeat(filled),
                        " ".repeat(width - filled),
                        m.epoch,
                        m.loss,
                        m.accuracy * 100.0,
                        m.images_per_sec
                    );
                    if terminal {
                        let _ = write!(std::io::stderr(), "\r{line}\x1b[K");
                        std::io::stderr().flush()?;
                    } else {
                        say!("{line}");
                    }
                }
            }
            Event::Evaluation(e) => {
                if terminal {
                    say!("");
                }
                say!("{prefix}epoch {} test loss {:.4} accuracy {:.2}%", e.epoch, e.loss, e.accuracy * 100.0);
            }
            Event::Finished(summary) => {
                if terminal {
                    say!("");
                }
                return Ok(*summary);
            }
            _ => {}
        }
    }
    Err(CliError::new(1, "the training thread ended without a summary"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupt_says_how_long_the_step_under_way_may_take() {
        use std::sync::atomic::Ordering;
        STEP_MILLIS.store(0, Ordering::Relaxed);
        assert!(step_wait().contains("the first step is still running"), "{}", step_wait());
        // A software GPU adapter's step (179 s measured on lavapipe).
        STEP_MILLIS.store(179_000, Ordering::Relaxed);
        assert_eq!(step_wait(), " (steps take about 0:02:59 here)");
        // Quick steps need no word.
        STEP_MILLIS.store(300, Ordering::Relaxed);
        assert_eq!(step_wait(), "");
    }
}
