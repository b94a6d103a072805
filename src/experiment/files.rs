//! A sweep folder on disk: `sweep.json` (the settings and the planned runs,
//! written before anything trains), one run folder per run, and `sweep.csv`
//! (a row per planned run, rewritten whole as runs finish). Other machines
//! may fill the run folders (`jobs.txt`, `sweep.sbatch`); `collect` reads
//! whatever is there.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::sweep::{PlannedRun, SWEEP_HEADER, SweepConfig, SweepPlan, SweepRow};
use crate::train::runfolder::{MODEL_FILE, RunFolder, RunFolderError, clear_run};
use crate::train::{RunStatus, TrainConfig};
use crate::util::fsio::{FileError, write_atomic};

pub const SWEEP_FILE: &str = "sweep.json";
pub const SWEEP_CSV: &str = "sweep.csv";
pub const SWEEP_FORMAT_VERSION: u32 = 1;

/// A sweep folder that cannot be read, started or updated.
#[derive(Debug, thiserror::Error)]
pub enum SweepFileError {
    #[error("{}: {source} (is this a sweep folder?)", .path.display())]
    NotASweep { path: PathBuf, source: std::io::Error },
    #[error("{}: {source}", .path.display())]
    Json { path: PathBuf, source: serde_json::Error },
    #[error("{}: format version {version} is newer than this depthlab understands ({SWEEP_FORMAT_VERSION})", .path.display())]
    Newer { path: PathBuf, version: u32 },
    #[error("{}: already holds a sweep; add --resume to finish it (finished runs are kept), or choose another folder", .dir.display())]
    AlreadyHolds { dir: PathBuf },
    #[error(
        "{}: the sweep there has other settings ({runs} runs of {families}); resume it with the same families, depths, seeds and training flags",
        .dir.display()
    )]
    OtherSettings { dir: PathBuf, runs: usize, families: String },
    #[error("{}: cannot set it aside as {}: {source}", .path.display(), .aside.display())]
    SetAside { path: PathBuf, aside: PathBuf, source: std::io::Error },
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Run(#[from] RunFolderError),
}

/// `sweep.json`: what was asked for and the runs it gives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepFile {
    pub format_version: u32,
    pub families: Vec<String>,
    /// Depths as asked for (each family rounds them to its valid depths).
    pub depths: Vec<usize>,
    pub seeds: usize,
    /// The settings of every run (each with its own seed).
    pub train: TrainConfig,
    pub runs: Vec<PlannedRun>,
}

impl SweepFile {
    pub fn new(config: &SweepConfig, plan: &SweepPlan) -> SweepFile {
        SweepFile {
            format_version: SWEEP_FORMAT_VERSION,
            families: config.families.iter().map(|f| f.prefix().to_string()).collect(),
            depths: config.depths.clone(),
            seeds: config.seeds.max(1),
            // Threads decide speed, not results: a resumed sweep may use others.
            train: TrainConfig { threads: None, ..config.train.clone() },
            runs: plan.runs.clone(),
        }
    }

    /// Reads `DIR/sweep.json`.
    pub fn load(dir: &Path) -> Result<SweepFile, SweepFileError> {
        let path = dir.join(SWEEP_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(source) => return Err(SweepFileError::NotASweep { path, source }),
        };
        let file: SweepFile = match serde_json::from_str(&text) {
            Ok(file) => file,
            Err(source) => return Err(SweepFileError::Json { path, source }),
        };
        if file.format_version > SWEEP_FORMAT_VERSION {
            return Err(SweepFileError::Newer { path, version: file.format_version });
        }
        Ok(file)
    }

    fn save(&self, dir: &Path) -> Result<(), SweepFileError> {
        let path = dir.join(SWEEP_FILE);
        let text = match serde_json::to_string_pretty(self) {
            Ok(text) => text,
            Err(source) => return Err(SweepFileError::Json { path, source }),
        };
        Ok(write_atomic(&path, text.as_bytes()).map_err(FileError::io(&path))?)
    }
}

/// Starts (or, with `resume`, continues) the sweep `file` in `dir`: a
/// folder that already holds a sweep is refused unless resuming, and a
/// resumed sweep must have the same settings.
pub fn begin(dir: &Path, file: &SweepFile, resume: bool) -> Result<(), SweepFileError> {
    let holds_sweep = dir.join(SWEEP_FILE).exists() || dir.join(SWEEP_CSV).exists();
    match (holds_sweep, resume) {
        (true, false) => return Err(SweepFileError::AlreadyHolds { dir: dir.to_path_buf() }),
        (true, true) => {
            let before = SweepFile::load(dir)?;
            if before.runs != file.runs || before.train != file.train {
                return Err(SweepFileError::OtherSettings {
                    dir: dir.to_path_buf(),
                    runs: before.runs.len(),
                    families: before.families.join(","),
                });
            }
        }
        (false, _) => {}
    }
    std::fs::create_dir_all(dir).map_err(FileError::io(dir))?;
    file.save(dir)
}

/// The row of every planned run as its folder stands now: finished runs
/// (completed or diverged) and runs another process is writing are read;
/// anything else is pending. A folder left by a run that did not finish
/// (stopped, failed, interrupted) is cleared so the run can start again
/// (`clear_run`: only the files a run writes, under the folder's lock). A
/// folder that cannot be read but holds weights (a damaged summary.json,
/// say) is never cleared: it is set aside under a new name, kept whole,
/// and the run starts again in a fresh folder.
pub fn rows_so_far(dir: &Path, file: &SweepFile) -> Result<Vec<SweepRow>, SweepFileError> {
    file.runs
        .iter()
        .map(|run| {
            let run_dir = dir.join(&run.dir);
            match RunFolder::open(&run_dir) {
                Ok(folder) if matches!(folder.status, RunStatus::Completed | RunStatus::Diverged | RunStatus::Running) => {
                    return Ok(SweepRow::of(run, folder.status, folder.summary.as_ref(), dir));
                }
                Err(e) if run_dir.join(MODEL_FILE).exists() => {
                    let aside = set_aside(&run_dir)?;
                    eprintln!("depthlab: {e}; the folder is kept as {} and the run trains again", aside.display());
                }
                _ => clear_run(&run_dir)?,
            }
            Ok(SweepRow::of(run, RunStatus::Pending, None, dir))
        })
        .collect()
}

/// Renames `run_dir` to the first free `NAME.unreadable-N` beside it.
fn set_aside(run_dir: &Path) -> Result<PathBuf, SweepFileError> {
    let name = run_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let aside = (1..)
        .map(|n| run_dir.with_file_name(format!("{name}.unreadable-{n}")))
        .find(|p| !p.exists())
        .expect("an unbounded range has a free name");
    match std::fs::rename(run_dir, &aside) {
        Ok(()) => Ok(aside),
        Err(source) => Err(SweepFileError::SetAside { path: run_dir.to_path_buf(), aside, source }),
    }
}

/// The rows of a sweep folder as it stands, without changing anything:
/// finished and running runs as their folders say, the others as their
/// folders say too (stopped, failed, interrupted), runs without a folder
/// as pending, and folders that do not read as unreadable, with why.
pub fn collect(dir: &Path) -> Result<(SweepFile, Vec<SweepRow>, Vec<String>), SweepFileError> {
    let file = SweepFile::load(dir)?;
    let mut problems = Vec::new();
    let rows = file
        .runs
        .iter()
        .map(|run| {
            let run_dir = dir.join(&run.dir);
            match RunFolder::open(&run_dir) {
                Ok(folder) => SweepRow::of(run, folder.status, folder.summary.as_ref(), dir),
                Err(_) if !run_dir.exists() => SweepRow::of(run, RunStatus::Pending, None, dir),
                Err(e) => {
                    problems.push(e.to_string());
                    SweepRow::of(run, RunStatus::Unreadable, None, dir)
                }
            }
        })
        .collect();
    Ok((file, rows, problems))
}

/// Writes `sweep.csv` whole (a row per planned run).
pub fn write_csv(dir: &Path, rows: &[SweepRow]) -> Result<(), FileError> {
    let mut text = format!("{SWEEP_HEADER}\n");
    for row in rows {
        text.push_str(&row.csv());
        text.push('\n');
    }
    let path = dir.join(SWEEP_CSV);
    write_atomic(&path, text.as_bytes()).map_err(FileError::io(&path))
}
