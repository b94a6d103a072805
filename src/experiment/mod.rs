//! Experiments over many runs: the depth sweep (plain vs residual and the
//! other families at several depths, the degradation figure of He et al.).

mod sweep;

pub use sweep::{SWEEP_HEADER, SweepConfig, SweepRow, parse_families, run_sweep, spawn_sweep};
