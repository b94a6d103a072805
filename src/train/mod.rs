//! The training engine: settings, the worker thread and its messages,
//! evaluation, gradient probes and run folders.

pub mod config;
pub mod evaluate;
pub mod events;
mod run;

pub use run::{DIVERGENCE_FACTOR, DIVERGENCE_STEPS, DivergenceWatch};
pub mod memory;
pub mod replace;
pub mod runfolder;
pub mod step;
pub mod tensorboard;
pub mod worker;

pub use config::{OptimizerKind, Schedule, TrainConfig};
pub use events::RunRequest;
pub use events::{Command, Event, RunStatus, Summary};
pub use runfolder::{RunFolder, RunWriter};
pub use worker::{RunHandle, spawn, train};

#[cfg(test)]
mod tests;
