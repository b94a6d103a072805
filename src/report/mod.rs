//! Figures and reproductions outside the window: egui plots drawn to PNG on
//! the CPU, and the experiments that reproduce the papers at lab scale.

pub mod analysis;
pub mod boundary;
pub mod experiments;
pub mod figure;
pub mod log_axis;
pub mod render;
pub mod sweep;
