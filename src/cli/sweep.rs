//! `depthlab sweep`: a depth sweep run here (resumable), planned for other
//! machines (`--plan`: jobs.txt and a Slurm job array), or collected from
//! whatever run folders exist (`--collect`).

use super::say;
use std::path::{Path, PathBuf};

use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::io::IsTerminal;

use super::CliError;
use super::bounds::{count, slurm_mem, slurm_partition, slurm_time};
use super::train::{Interrupts, TrainingFlags};
use crate::arch::presets::Family;
use crate::data::Dataset;
use crate::experiment::{
    JOBS_FILE, MAX_SEEDS, SBATCH_FILE, SWEEP_CSV, SlurmOptions, SweepConfig, SweepEvent, SweepFile, check_folder, collect, parse_depths,
    parse_families, plan, spawn_sweep, write_csv, write_jobs,
};
use crate::train::RunStatus;
use crate::train::events::Event;
use crate::util::threads::MAX_THREADS;

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// Families to compare: plain, resnet, highway, fractal, densenet, plain-mlp, highway-mlp, resnet-sd, preact-resnet, densenet-bc.
    #[arg(long, default_value = "plain,resnet")]
    pub families: String,
    /// Depths, 1 to 1202, at most 64 (each family uses its valid depth nearest to each; depths giving the same net run once).
    #[arg(long, default_value = "8,20,32,44")]
    pub depths: String,
    /// Seeds per (family, depth), 1 to 1000 (a sweep plans at most 10000 runs).
    #[arg(long, default_value_t = 1, value_parser = count("--seeds", 1, MAX_SEEDS))]
    pub seeds: usize,
    /// The sweep folder.
    #[arg(long, required_unless_present = "collect")]
    pub out: Option<PathBuf>,
    /// Finish the sweep already in --out: its finished runs are kept, the others run.
    #[arg(long)]
    pub resume: bool,
    /// Write --out/sweep.json, jobs.txt (one command per run) and sweep.sbatch (a Slurm job array); train nothing. With --resume: plan again the runs of the sweep in --out that have not finished.
    #[arg(long, conflicts_with = "collect")]
    pub plan: bool,
    /// Write DIR/sweep.csv and DIR/sweep.png from the run folders DIR holds (runs not started yet are pending).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["resume", "out"])]
    pub collect: Option<PathBuf>,
    /// Runs at once on this machine, each on its share of the cores (0: two on a CPU with two or more cores, one on a GPU).
    #[arg(long, default_value_t = 0, value_parser = count("--jobs", 0, MAX_THREADS))]
    pub jobs: usize,
    /// With --plan: CPUs per Slurm task (and each run's --threads); 0 leaves both unset.
    #[arg(long, default_value_t = 1, value_parser = count("--slurm-cpus", 0, MAX_THREADS))]
    pub slurm_cpus: usize,
    /// With --plan: the Slurm time limit of each task (e.g. 30, 01:00:00, 2-00:00:00).
    #[arg(long, value_parser = slurm_time)]
    pub slurm_time: Option<String>,
    /// With --plan: the Slurm partition (names of letters, digits, '-', '_', '.', comma-separated).
    #[arg(long, value_parser = slurm_partition)]
    pub slurm_partition: Option<String>,
    /// With --plan: memory per Slurm task (a number with an optional K, M, G or T, e.g. 4G).
    #[arg(long, value_parser = slurm_mem)]
    pub slurm_mem: Option<String>,
    #[command(flatten)]
    pub training: TrainingFlags,
}

pub fn sweep(args: &SweepArgs) -> Result<(), CliError> {
    if let Some(dir) = &args.collect {
        return collect_sweep(dir);
    }
    let out = args.out.clone().ok_or_else(|| CliError::new(2, "--out is needed"))?;
    let mut train = args.training.config()?;
    let families = parse_families(&args.families).map_err(|e| CliError::new(2, e))?;
    let depths = parse_depths(&args.depths).map_err(|e| CliError::new(2, format!("--depths: {e}")))?;
    if let Some(init) = train.overrides.residual_init.filter(|i| !i.is_default()) {
        let (residual, other): (Vec<Family>, Vec<Family>) = families.iter().copied().partition(|f| f.has_shortcuts());
        if residual.is_empty() {
            return Err(CliError::new(
                2,
                format!("--residual-init {} sets how residual branches start, and no family swept has them", init.word()),
            ));
        }
        if !other.is_empty() {
            let names: Vec<&str> = other.iter().map(|f| f.prefix()).collect();
            say!(
                "note: --residual-init {} applies to the residual families; {} keep their layers' own init",
                init.word(),
                names.join(", ")
            );
        }
    }
    if args.plan {
        // Jobs run elsewhere: every path in them is absolute.
        train.data = train.data.absolute();
        let out = std::path::absolute(&out).map_err(|e| CliError::new(2, format!("{}: {e}", out.display())))?;
        let config = SweepConfig { families, depths, seeds: args.seeds, train, out, resume: false, jobs: 1 };
        config.check().map_err(|e| CliError::new(2, e.to_string()))?;
        return plan_sweep(&config, args);
    }
    let config = SweepConfig { families, depths, seeds: args.seeds, train, out: out.clone(), resume: args.resume, jobs: args.jobs };
    config.check().map_err(|e| CliError::new(2, e.to_string()))?;
    let data = std::sync::Arc::new(Dataset::load(&config.train.data)?);
    let handle = spawn_sweep(config, Some(data), None)?;
    let interrupts = Interrupts::install(handle.commander());
    let mut progress = Progress::new();
    for event in handle.events.iter() {
        if progress.show(event) {
            break;
        }
    }
    handle.join();
    if let Some(reason) = progress.refused {
        return Err(CliError::new(2, reason));
    }
    say!("sweep {}: {}", if progress.stopped { "stopped" } else { "done" }, out.join(SWEEP_CSV).display());
    interrupts.exit_code()?;
    if progress.failures > 0 {
        return Err(CliError::new(1, format!("{} run(s) failed", progress.failures)));
    }
    Ok(())
}

/// A run in progress on the terminal.
struct RunLine {
    /// Its index in the sweep's plan, and its folder (its row names it).
    index: usize,
    dir: PathBuf,
    label: String,
    /// Its bar on a terminal (none on a pipe).
    bar: Option<ProgressBar>,
    total_steps: usize,
}

/// The sweep on the terminal: a bar for the sweep and one per run in
/// progress (several with --jobs), a line per finished run; on a pipe or a
/// file, plain lines only.
struct Progress {
    multi: Option<MultiProgress>,
    total: Option<ProgressBar>,
    /// Runs in progress.
    runs: Vec<RunLine>,
    failures: usize,
    refused: Option<String>,
    stopped: bool,
}

impl Progress {
    fn new() -> Progress {
        let multi = std::io::stderr().is_terminal().then(MultiProgress::new);
        Progress { multi, total: None, runs: Vec::new(), failures: 0, refused: None, stopped: false }
    }

    fn line(&self, text: String) {
        match &self.multi {
            Some(m) if m.println(&text).is_ok() => {}
            _ => say!("{text}"),
        }
    }

    /// Shows one event; true when the sweep is over.
    fn show(&mut self, event: SweepEvent) -> bool {
        match event {
            SweepEvent::Note(note) => self.line(format!("note: {note}")),
            SweepEvent::Preparing(_) => {}
            SweepEvent::RunStarted { index, total, label, dir } => {
                let label = format!("[{}/{total}] {label}", index + 1);
                if let Some(multi) = &self.multi {
                    let total_bar = self.total.get_or_insert_with(|| {
                        let bar = multi.add(ProgressBar::new(total as u64));
                        bar.set_style(style("sweep {bar:24} {pos}/{len} runs {elapsed_precise}"));
                        bar
                    });
                    let bar = multi.insert_before(total_bar, ProgressBar::new(1));
                    bar.set_style(style("{prefix} {bar:24} {msg}"));
                    bar.set_prefix(label.clone());
                    self.runs.push(RunLine { index, dir, label, bar: Some(bar), total_steps: 0 });
                } else {
                    self.line(format!("{label}: started"));
                    self.runs.push(RunLine { index, dir, label, bar: None, total_steps: 0 });
                }
            }
            SweepEvent::Run { run, event } => self.in_run(run, event),
            SweepEvent::Row(row) => {
                let position = self.runs.iter().position(|r| r.dir == row.run_dir);
                let label = match position.map(|p| self.runs.remove(p)) {
                    Some(line) => {
                        if let Some(bar) = line.bar {
                            bar.finish_and_clear();
                        }
                        line.label
                    }
                    None => format!("{}-{} seed {}", row.family, row.depth, row.seed),
                };
                if let Some(total) = &self.total {
                    total.inc(1);
                }
                let pct = |v: Option<f32>| v.map(|e| format!("{:.2}%", e * 100.0)).unwrap_or_else(|| "-".into());
                self.line(format!(
                    "{label}: {} depth {} train error {} test error {} first-layer output gradient {} ({})",
                    row.family,
                    row.depth,
                    pct(row.final_train_error),
                    pct(row.final_test_error),
                    row.first_layer_output_grad_norm.map(|g| format!("{g:.3e}")).unwrap_or_else(|| "-".into()),
                    row.status
                ));
                if row.status == RunStatus::Failed {
                    self.failures += 1;
                }
            }
            // The sweep itself was refused (its settings, its folder).
            SweepEvent::Failed(reason) => self.refused = Some(reason),
            SweepEvent::Finished { stopped } => {
                self.stopped = stopped;
                if let Some(total) = self.total.take() {
                    total.finish_and_clear();
                }
                return true;
            }
        }
        false
    }

    /// An event of sweep run `run`: its bar moves.
    fn in_run(&mut self, run: usize, event: Event) {
        let Some(entry) = self.runs.iter_mut().find(|r| r.index == run) else {
            return;
        };
        match event {
            Event::Started(s) => {
                entry.total_steps = s.total_steps;
                if let Some(bar) = &entry.bar {
                    bar.set_length(s.total_steps as u64);
                }
            }
            Event::Step(m) => {
                if let Some(bar) = &entry.bar {
                    bar.set_position((m.step + 1) as u64);
                    bar.set_message(format!(
                        "step {}/{} loss {:.4} acc {:5.1}% {:.0} img/s",
                        m.step + 1,
                        entry.total_steps,
                        m.loss,
                        m.accuracy * 100.0,
                        m.images_per_sec
                    ));
                }
            }
            Event::Evaluation(e) => {
                if entry.bar.is_none() {
                    let text = format!("{}: epoch {} test loss {:.4} accuracy {:.2}%", entry.label, e.epoch, e.loss, e.accuracy * 100.0);
                    self.line(text);
                }
            }
            _ => {}
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// `--plan`: sweep.json, jobs.txt and sweep.sbatch, nothing trained.
fn plan_sweep(config: &SweepConfig, args: &SweepArgs) -> Result<(), CliError> {
    let data = Dataset::load(&config.train.data)?;
    let plan = plan(config, data.shape(), data.classes()).map_err(|e| CliError::new(2, e))?;
    for notice in &plan.notices {
        say!("note: {notice}");
    }
    let slurm = SlurmOptions {
        cpus: args.slurm_cpus,
        time: args.slurm_time.clone(),
        partition: args.slurm_partition.clone(),
        mem: args.slurm_mem.clone(),
    };
    slurm.check().and_then(|()| check_folder(&config.out)).map_err(|e| CliError::new(2, e.to_string()))?;
    let file = SweepFile::new(config, &plan);
    crate::experiment::begin_sweep(&config.out, &file, args.resume).map_err(|e| CliError::new(2, e))?;
    // Resuming, only the runs that have not finished (nor are running) are planned again.
    let mut left = file.clone();
    if args.resume {
        let rows = crate::experiment::rows_so_far(&config.out, &file).map_err(|e| CliError::new(1, e))?;
        left.runs = file.runs.iter().zip(&rows).filter(|(_, row)| row.status == RunStatus::Pending).map(|(run, _)| run.clone()).collect();
        if left.runs.is_empty() {
            say!("every run of the sweep in {} has finished or is running: nothing to plan", config.out.display());
            return Ok(());
        }
    }
    let exe = std::env::current_exe().map_err(|e| CliError::new(1, format!("cannot find the depthlab binary: {e}")))?;
    write_jobs(&config.out, &left, &exe, &slurm).map_err(|e| CliError::new(1, e))?;
    let (_, rows, _) = collect(&config.out).map_err(|e| CliError::new(1, e))?;
    write_csv(&config.out, &rows).map_err(|e| CliError::new(1, e))?;
    let dir = config.out.display();
    say!("planned {} runs in {dir} (nothing trained):", left.runs.len());
    say!("  any machine:  xargs -P 2 -I CMD bash -c CMD < {dir}/{JOBS_FILE}");
    say!("  Slurm:        sbatch {dir}/{SBATCH_FILE}");
    say!("  then:         depthlab sweep --collect {dir}");
    Ok(())
}

/// `--collect DIR`: sweep.csv and the figure from the folders there.
fn collect_sweep(dir: &Path) -> Result<(), CliError> {
    let (file, rows, problems) = collect(dir).map_err(|e| CliError::new(2, e))?;
    for problem in &problems {
        say!("warning: unreadable run folder: {problem}");
    }
    write_csv(dir, &rows).map_err(|e| CliError::new(1, e))?;
    let figure = dir.join("sweep.png");
    let title = format!("depth sweep: {} (seeds: {})", file.families.join(" vs "), file.seeds);
    crate::report::sweep::save_sweep_figure(&rows, &title, &figure).map_err(|e| CliError::new(1, e))?;
    let mut counts: Vec<(RunStatus, usize)> = Vec::new();
    for row in &rows {
        match counts.iter_mut().find(|(s, _)| *s == row.status) {
            Some((_, n)) => *n += 1,
            None => counts.push((row.status, 1)),
        }
    }
    let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    say!("{} runs: {}; wrote {} and {}", rows.len(), counts.join(", "), dir.join(SWEEP_CSV).display(), figure.display());
    Ok(())
}
