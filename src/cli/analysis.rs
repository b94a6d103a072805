//! `depthlab lesion`, `depthlab paths` and `depthlab landscape`: the
//! analyses of `crate::analysis` on the command line.

use std::path::{Path, PathBuf};

use clap::Args;

use super::CliError;
use super::bounds::{count, odd_count};
use crate::analysis::landscape::{self, LandscapeOptions, MAX_GRID};
use crate::analysis::lesion::{self, LesionOptions, MAX_DRAWS};
use crate::analysis::paths::{self, MAX_BATCH, MAX_SAMPLES, PathsOptions};
use crate::analysis::{AnalysisError, CONFIRM_AFTER_SECS, Progress};
use crate::data::{DataSpec, Dataset};

#[derive(Args, Debug)]
pub struct LesionArgs {
    /// A run folder written by `depthlab train`.
    #[arg(long)]
    pub run: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write lesion.json, lesion.csv and lesion.png into DIR.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Evaluate on the first N test images only.
    #[arg(long)]
    pub test_examples: Option<usize>,
    /// Random draws for each number of removed blocks (1 to 10000).
    #[arg(long, default_value_t = 5, value_parser = count("--draws", 1, MAX_DRAWS))]
    pub draws: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Run even when the study is expected to take more than 10 minutes.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Args, Debug)]
pub struct PathsArgs {
    /// A preset or architecture JSON, freshly initialised from --seed.
    #[arg(long, conflicts_with = "run", required_unless_present = "run")]
    pub arch: Option<String>,
    /// A run folder: its trained weights and its data.
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// The data for --arch (fashion-mini, digits, mnist:DIR, …).
    #[arg(long, default_value = "fashion-mini")]
    pub data: String,
    /// Random sets of blocks (each with its own batch) per path length (1 to 10000).
    #[arg(long, default_value_t = 20, value_parser = count("--samples", 1, MAX_SAMPLES))]
    pub samples: usize,
    /// Images per batch (1 to 4096).
    #[arg(long, default_value_t = 32, value_parser = count("--batch-size", 1, MAX_BATCH))]
    pub batch_size: usize,
    /// Run even when the measurement is expected to take more than 10 minutes.
    #[arg(long)]
    pub yes: bool,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write paths.json, paths.csv and paths.png into DIR.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct LandscapeArgs {
    /// A run folder written by `depthlab train`.
    #[arg(long)]
    pub run: PathBuf,
    /// Grid points per axis (α, β in [-1, 1]): odd, 1 to 201, so that the centre is the trained weights.
    #[arg(long, default_value_t = 21, value_parser = odd_count("--grid", MAX_GRID))]
    pub grid: usize,
    /// Training images the loss is measured on.
    #[arg(long, default_value_t = 1000)]
    pub subset: usize,
    /// Points on the line from the initial to the trained weights (0: none; at most 201).
    #[arg(long, default_value_t = 21, value_parser = count("--line-points", 0, MAX_GRID))]
    pub line_points: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Run even when the landscape is expected to take more than 10 minutes.
    #[arg(long)]
    pub yes: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write landscape.json, landscape.csv, interpolation.csv and landscape.png into DIR.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// An analysis's output files, written all or nothing (a full disk part-way
/// leaves the earlier set whole).
fn write(dir: &Path, files: &[(&str, &[u8])]) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::new(2, format!("{}: {e}", dir.display())))?;
    // What a killed earlier command left half-written goes first.
    crate::util::fsio::remove_dead_scratch(dir);
    crate::util::fsio::write_set(dir, files).map_err(|e| CliError::new(1, format!("{}: {e}", dir.display())))
}

/// Progress on stderr for a person at a terminal (a line every 10 %).
struct TerminalProgress {
    label: &'static str,
    last: std::cell::Cell<i32>,
}

impl TerminalProgress {
    fn new(label: &'static str) -> TerminalProgress {
        TerminalProgress { label, last: std::cell::Cell::new(-1) }
    }

    fn report(&self, f: f32) {
        let tenth = (f * 10.0).floor() as i32;
        if tenth != self.last.get() {
            self.last.set(tenth);
            eprint!("\r{}: {:>3.0}%", self.label, f * 100.0);
            if tenth >= 10 {
                eprintln!();
            }
        }
    }

    /// An analysis's error as the command exits with it, on a line of its
    /// own after the progress.
    fn failed(&self, e: AnalysisError) -> CliError {
        if (0..10).contains(&self.last.get()) {
            eprintln!();
        }
        // Bad input exits 2, a failure 1, a cancel 130 (as Ctrl-C does).
        e.into()
    }
}

pub fn lesion(args: &LesionArgs) -> Result<(), CliError> {
    let max_secs = (!args.yes).then_some(CONFIRM_AFTER_SECS);
    let options = LesionOptions { test_examples: args.test_examples, draws: args.draws, seed: args.seed, max_secs };
    let bar = TerminalProgress::new("lesion");
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let progress = Progress { report: &|f| bar.report(f), cancel: &cancel };
    let report = lesion::lesion_run(&args.run, &options, &progress).map_err(|e| bar.failed(e))?;
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(dir) = &args.out {
        let png = crate::report::analysis::lesion_figure(&[(&report, crate::report::figure::COLORS[1])], &report.arch)
            .png(&dir.join("lesion.png"))
            .map_err(|e| CliError::new(1, e))?;
        write(dir, &[("lesion.json", json.as_bytes()), ("lesion.csv", report.to_csv().as_bytes()), ("lesion.png", &png)])?;
    }
    if args.json {
        println!("{json}");
    } else {
        println!("{} on {} test images: baseline test error {:.2}%", report.arch, report.test_examples, report.baseline_test_error * 100.0);
        println!("one block removed:");
        for b in &report.blocks {
            match (b.test_error, &b.skipped) {
                (Some(e), _) => {
                    println!("  {:>3} {:<24} {:>6.2}%  ({:+.2})", b.index, b.name, e * 100.0, (e - report.baseline_test_error) * 100.0)
                }
                (None, Some(why)) => println!("  {:>3} {:<24}   kept: {why}", b.index, b.name),
                (None, None) => {}
            }
        }
        println!("k random blocks removed (mean ± std over draws):");
        for r in &report.random {
            println!("  k={:<3} {:>6.2}% ± {:.2}", r.k, r.mean * 100.0, r.std * 100.0);
        }
        println!("median rise for one block: {:+.2} points", report.median_rise() * 100.0);
    }
    Ok(())
}

pub fn paths(args: &PathsArgs) -> Result<(), CliError> {
    let max_secs = (!args.yes).then_some(CONFIRM_AFTER_SECS);
    let options = PathsOptions { samples: args.samples, batch: args.batch_size, seed: args.seed, max_secs };
    let bar = TerminalProgress::new("paths");
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let progress = Progress { report: &|f| bar.report(f), cancel: &cancel };
    let report = match (&args.run, &args.arch) {
        (Some(run), _) => paths::paths_run(run, &options, &progress).map_err(|e| bar.failed(e))?,
        (None, Some(arch)) => {
            let spec = args.data.parse::<DataSpec>().map_err(|e| CliError::new(2, e))?;
            let data = Dataset::load(&spec).map_err(|e| CliError::new(2, e.to_string()))?;
            let arch = crate::arch::resolve(arch, data.shape()).map_err(|e| CliError::new(2, e.to_string()))?;
            paths::paths_arch(&arch, &data, &options, &progress).map_err(|e| bar.failed(e))?
        }
        (None, None) => return Err(CliError::new(2, "give --arch ARCH or --run DIR")),
    };
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(dir) = &args.out {
        let png = crate::report::analysis::paths_figure(&report).png(&dir.join("paths.png")).map_err(|e| CliError::new(1, e))?;
        write(dir, &[("paths.json", json.as_bytes()), ("paths.csv", report.to_csv().as_bytes()), ("paths.png", &png)])?;
    }
    if args.json {
        println!("{json}");
    } else {
        println!(
            "{} ({}): {} residual blocks, {} samples of {} images per length",
            report.arch,
            if report.trained { "trained" } else { "initialised" },
            report.blocks,
            report.samples,
            report.batch
        );
        println!("{:>6} {:>12} {:>14} {:>14}", "length", "paths", "grad/path", "total");
        for l in &report.lengths {
            println!("{:>6} {:>12.4e} {:>14.4e} {:>14.4e}", l.length, l.count, l.grad_per_path, l.total);
        }
        let (lo, hi) = report.effective_range(0.9);
        println!("90% of the total gradient comes from paths of length {lo}–{hi} (of {})", report.blocks);
    }
    Ok(())
}

pub fn landscape(args: &LandscapeArgs) -> Result<(), CliError> {
    let max_secs = (!args.yes).then_some(CONFIRM_AFTER_SECS);
    let options = LandscapeOptions { grid: args.grid, subset: args.subset, line_points: args.line_points, seed: args.seed, max_secs };
    let bar = TerminalProgress::new("landscape");
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let progress = Progress { report: &|f| bar.report(f), cancel: &cancel };
    let report = landscape::landscape_run(&args.run, &options, &progress).map_err(|e| bar.failed(e))?;
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(dir) = &args.out {
        let png = crate::report::analysis::landscape_png_bytes(&report, &dir.join("landscape.png")).map_err(|e| CliError::new(1, e))?;
        let (csv, line) = (report.to_csv(), report.interpolation_csv());
        write(
            dir,
            &[
                ("landscape.json", json.as_bytes()),
                ("landscape.csv", csv.as_bytes()),
                ("interpolation.csv", line.as_bytes()),
                ("landscape.png", &png),
            ],
        )?;
    }
    if args.json {
        println!("{json}");
    } else {
        println!(
            "{}: {}x{} grid on {} training images in {:.1} s (line: {:.1} s more)",
            report.arch,
            report.alphas.len(),
            report.betas.len(),
            report.subset,
            report.grid_secs,
            report.total_secs - report.grid_secs
        );
        let finite: Vec<f64> = report.loss.iter().flatten().copied().filter(|v| v.is_finite()).collect();
        let (lo, hi) = finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        println!(
            "loss at the trained weights {:.4}, corners' mean {:.4}, range {lo:.4} to {hi:.4}",
            report.centre_loss, report.corner_mean
        );
        if !report.interpolation.t.is_empty() {
            let line: Vec<String> =
                report.interpolation.t.iter().zip(&report.interpolation.loss).map(|(t, l)| format!("{t:.2}:{l:.3}")).collect();
            println!("line from the initial weights (t:loss): {}", line.join(" "));
        }
    }
    Ok(())
}
