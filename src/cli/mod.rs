//! The command line: the GUI's twin, used by tests and by people on a GPU box.

mod analysis;
mod bench;
mod bounds;
mod classify;
mod export;
mod inspect;
mod lesson;
mod reproduce;
mod runs;
mod sweep;
mod train;

use clap::{Args, Parser, Subcommand};

use crate::arch::{Activation, Init, LayerOverrides, Norm, ResidualInit};

/// depthlab: see why shortcut connections let networks grow deep.
#[derive(Parser, Debug)]
#[command(name = "depthlab", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Commands>,
    /// Open the window on a scripted scene (builder, highway, fractal, invalid, training, sweep, comparison, why-lesion, why-paths, why-landscape, classify, classify-error, large, thousand).
    #[arg(long, hide = true)]
    pub scene: Option<String>,
    /// With --scene: save a screenshot to FILE and close.
    #[arg(long, hide = true)]
    pub screenshot: Option<std::path::PathBuf>,
    /// With --scene: the window's size, WIDTHxHEIGHT (default 1440x900).
    #[arg(long, hide = true)]
    pub window_size: Option<String>,
    /// A lab file (.depthlab) to open in the window (as `depthlab open FILE`).
    #[arg(value_name = "LAB")]
    pub lab: Option<std::path::PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Commands {
    /// List the presets: name, depth, parameters, summary.
    Presets(inspect::PresetsArgs),
    /// Per-block table of an architecture: output shape, parameters; errors exit 2.
    Inspect(inspect::InspectArgs),
    /// Train an architecture and write a run folder.
    Train(train::TrainArgs),
    /// Train several families at several depths (the degradation figure), here or planned for other machines.
    Sweep(sweep::SweepArgs),
    /// The run folders under a folder, with status, steps and final accuracy.
    Runs(runs::RunsArgs),
    /// Classify an image with a trained run.
    Classify(classify::ClassifyArgs),
    /// Export a trained run as PyTorch code and safetensors weights.
    Export(export::ExportArgs),
    /// Remove blocks of a trained run at test time (Veit et al. 2016): test error per block and for k random blocks.
    Lesion(analysis::LesionArgs),
    /// Gradient reaching the input per path length of a residual net (Veit et al. 2016, fig. 6).
    Paths(analysis::PathsArgs),
    /// Training loss on a plane of filter-normalised random directions through a run's weights (Li et al. 2018).
    Landscape(analysis::LandscapeArgs),
    /// Training throughput, probe overhead and peak memory (optionally next to PyTorch).
    Bench(bench::BenchArgs),
    /// Open a lab file (.depthlab) in the window, as it was saved.
    Open(OpenArgs),
    /// The built-in lessons: list them, or play every step without the window (wall time and quoted figures per step).
    #[command(subcommand)]
    Lesson(lesson::LessonCommand),
    /// The papers' experiments at lab scale, with figures (glorot, highway, degradation, stochastic-depth, fractal, branch-length, lesion, paths, landscape, thousand-layers, all).
    Reproduce(reproduce::ReproduceArgs),
}

impl Commands {
    /// Commands that train keep going when the pipe their messages go to
    /// closes (`depthlab train … 2>&1 | head`): the run is finished and
    /// saved, its messages dropped ([`say!`]). Every other command only
    /// reports, and ends there, quietly.
    pub fn trains(&self) -> bool {
        matches!(self, Commands::Train(_) | Commands::Sweep(_) | Commands::Reproduce(_) | Commands::Lesson(lesson::LessonCommand::Run(_)))
    }
}

/// `eprintln!` (or, with `stdout;` first, `println!`) for commands that
/// train: a message that cannot be written (its pipe closed) is dropped
/// instead of ending the run.
macro_rules! say {
    (stdout; $($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use say;

/// Flags that override every layer of ARCH.
#[derive(Args, Debug, Clone, Default)]
pub struct LayerFlags {
    /// Activation of every layer.
    #[arg(long, value_parser = parse_activation)]
    pub activation: Option<Activation>,
    /// Initialisation of every layer.
    #[arg(long, value_parser = parse_init)]
    pub init: Option<Init>,
    /// Normalisation of every layer.
    #[arg(long, value_parser = parse_norm)]
    pub norm: Option<Norm>,
    /// How every residual branch starts: default (He init), zero (last BN γ = 0), skipinit (a scalar α = 0 on the branch), fixup (Zhang et al. 2019, with --norm none).
    #[arg(long, value_parser = parse_residual_init)]
    pub residual_init: Option<ResidualInit>,
}

impl LayerFlags {
    pub fn overrides(&self) -> LayerOverrides {
        LayerOverrides { activation: self.activation, init: self.init, norm: self.norm, residual_init: self.residual_init }
    }
}

/// A layer flag's value that names no option (clap exits 2 with it).
#[derive(Debug, thiserror::Error)]
pub enum LayerFlagError {
    #[error("'{0}': use relu, tanh, sigmoid or linear")]
    Activation(String),
    #[error("'{0}': use he, xavier or standard")]
    Init(String),
    #[error("'{0}': use default, zero, skipinit or fixup")]
    ResidualInit(String),
    #[error("'{0}': use batchnorm or none")]
    Norm(String),
}

fn parse_activation(text: &str) -> Result<Activation, LayerFlagError> {
    serde_json::from_value(serde_json::Value::from(text)).map_err(|_| LayerFlagError::Activation(text.to_string()))
}

fn parse_init(text: &str) -> Result<Init, LayerFlagError> {
    serde_json::from_value(serde_json::Value::from(text)).map_err(|_| LayerFlagError::Init(text.to_string()))
}

fn parse_residual_init(text: &str) -> Result<ResidualInit, LayerFlagError> {
    serde_json::from_value(serde_json::Value::from(text)).map_err(|_| LayerFlagError::ResidualInit(text.to_string()))
}

fn parse_norm(text: &str) -> Result<Norm, LayerFlagError> {
    serde_json::from_value(serde_json::Value::from(text)).map_err(|_| LayerFlagError::Norm(text.to_string()))
}

/// An error that says how the process should exit: 2 for bad input (a
/// flag, a file the user gave, a preset or a limit), 1 for a failure while
/// running (a file that cannot be written, a run that failed), 3 for a run
/// that diverged, 130 for an interrupt.
#[derive(Debug)]
pub struct CliError {
    pub code: i32,
    pub message: String,
}

impl CliError {
    /// An error whose exit status the caller chose.
    pub fn new(code: i32, message: impl std::fmt::Display) -> Self {
        Self { code, message: message.to_string() }
    }
}

/// Errors whose kind chooses the exit status (`exit_code()`).
macro_rules! exit_by_kind {
    ($($error:ty),* $(,)?) => {$(
        impl From<$error> for CliError {
            fn from(e: $error) -> Self {
                CliError::new(e.exit_code(), e)
            }
        }
    )*};
}

exit_by_kind!(
    crate::lesson::LessonError,
    crate::data::DataError,
    crate::classify::ClassifyError,
    crate::export::ExportError,
    crate::analysis::AnalysisError,
    crate::train::runfolder::RunFolderError,
    crate::util::threads::ThreadsError,
);

/// Writing output, starting a thread or a process: a failure while running (1).
impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::new(1, e)
    }
}

/// JSON that could not be written or read back from a child process: a
/// failure while running (1).
impl From<serde_json::Error> for CliError {
    fn from(e: serde_json::Error) -> Self {
        CliError::new(1, e)
    }
}

/// Runs a command; `None` means the GUI should open.
pub fn run(command: Commands) -> Result<(), CliError> {
    crate::util::fault::point("command");
    match command {
        Commands::Presets(args) => inspect::presets(&args),
        Commands::Inspect(args) => inspect::inspect(&args),
        Commands::Train(args) => train::train(&args),
        Commands::Sweep(args) => sweep::sweep(&args),
        Commands::Runs(args) => runs::runs(&args),
        Commands::Classify(args) => classify::classify(&args),
        Commands::Export(args) => export::export(&args),
        Commands::Lesion(args) => analysis::lesion(&args),
        Commands::Paths(args) => analysis::paths(&args),
        Commands::Landscape(args) => analysis::landscape(&args),
        Commands::Bench(args) => bench::bench(&args),
        Commands::Reproduce(args) => reproduce::reproduce(&args),
        // The window is the binary's to open (the command line never names the app).
        Commands::Open(args) => {
            Err(CliError::new(2, format!("depthlab open {}: the depthlab binary opens the window", args.file.display())))
        }
        Commands::Lesson(command) => lesson::lesson(&command),
    }
}

#[derive(Args, Debug)]
pub struct OpenArgs {
    /// The lab file (written by File → Save lab).
    pub file: std::path::PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each error's kind picks the exit status; the message is the error's own.
    #[test]
    fn errors_exit_by_their_kind() {
        use crate::analysis::AnalysisError;
        use crate::classify::ClassifyError;
        let data = crate::data::DataError::new("table.csv", "line 3, column 'b': missing value 'nan'");
        let cases: [(CliError, i32, &str); 8] = [
            (data.clone().into(), 2, "table.csv: line 3, column 'b': missing value 'nan'"),
            (ClassifyError::Image(data).into(), 2, "table.csv: line 3"),
            (ClassifyError::WrongInput("trained on images".into()).into(), 2, "trained on images"),
            (ClassifyError::Read("a device error".into()).into(), 1, "reading the network's outputs: a device error"),
            (AnalysisError::Input("no such run folder".into()).into(), 2, "no such run folder"),
            (AnalysisError::Cancelled.into(), 130, "cancelled"),
            (crate::util::threads::check(Some(0)).unwrap_err().into(), 2, "threads must be at least 1"),
            (std::io::Error::other("disk full").into(), 1, "disk full"),
        ];
        for (error, code, message) in cases {
            assert_eq!(error.code, code, "{}", error.message);
            assert!(error.message.contains(message), "{}", error.message);
        }
    }
}
