//! Experiments over many runs: the depth sweep (plain vs residual and the
//! other families at several depths, the degradation figure of He et al.),
//! run here or planned for other machines and collected from its folder.

mod files;
mod jobs;
mod runner;
mod sweep;

pub use files::{SWEEP_CSV, SWEEP_FILE, SweepFile, begin as begin_sweep, collect, write_csv};
pub use jobs::{JOBS_FILE, SBATCH_FILE, SlurmOptions, job_lines, write_jobs};
pub use runner::default_jobs;
pub use sweep::{PlannedRun, SWEEP_HEADER, SweepConfig, SweepPlan, SweepRow, parse_families, plan, run_sweep, spawn_sweep};
