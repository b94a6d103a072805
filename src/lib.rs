//! depthlab: a desktop lab that makes visible why shortcut connections let
//! neural networks grow deep.
//!
//! The library is GUI-free at its core: [`arch`] describes networks as pure
//! data, [`model`] builds burn modules from them, [`data`] loads datasets,
//! and the GUI and the command line are two thin front ends over it.

pub mod analysis;
pub mod app;
pub mod arch;
pub mod backend;
pub mod bench;
pub mod classify;
pub mod cli;
pub mod data;
pub mod experiment;
pub mod export;
pub mod kernels;
pub mod lesson;
pub mod model;
pub mod report;
pub mod train;
pub mod util;
