//! Experiments over many runs: the depth sweep (plain vs residual and the
//! other families at several depths, the degradation figure of He et al.),
//! run here or planned for other machines and collected from its folder.

mod events;
mod files;
mod jobs;
mod runner;
mod sweep;

pub use events::SweepEvent;
pub use files::{SWEEP_CSV, SWEEP_FILE, SweepFile, SweepFileError, begin as begin_sweep, collect, rows_so_far, write_csv};
pub use jobs::{
    JOBS_FILE, JobsError, SBATCH_FILE, SlurmOptions, SlurmValueError, check_folder, check_mem, check_partition, check_time, job_lines,
    write_jobs,
};
pub use runner::{default_jobs, run_sweep, spawn_sweep};
pub use sweep::{
    MAX_DEPTHS, MAX_RUNS, MAX_SEEDS, PlannedRun, SWEEP_HEADER, SweepConfig, SweepError, SweepInputError, SweepPlan, SweepRow, max_depth,
    parse_depths, parse_families, plan,
};
