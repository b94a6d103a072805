//! The lab's CPU kernels for the hot paths of training a convolutional
//! net: convolution forward and both backward passes, and batch
//! normalisation in training mode fused with its ReLU, forward and
//! backward.
//!
//! burn's `flex` backend lowers each convolution to an unfold plus a matrix
//! multiply through layout copies, takes burn's generic paths for both
//! convolution gradients and composes batch norm from a dozen element-wise
//! passes. These kernels work on plain NCHW `f32` slices instead:
//!
//! - [`direct`]: every 3×3 convolution with padding 1 (strides 1 and 2),
//!   forward and input gradient, read in place by an AVX-512 micro-kernel
//!   vectorised over positions; at stride 1 with more than 16 output
//!   channels, [`channels`]' micro-kernel vectorised over output channels
//!   runs in its place;
//! - [`winograd`]: the stride-1 ones as F(2×2, 3×3) tiles, 4/9 of the
//!   multiply-adds through the same micro-kernel — measured, not yet
//!   faster on the whole step, so only when `DEPTHLAB_CONV_WINOGRAD` is set;
//! - [`outer`]: the weight gradient of 3×3 convolutions as outer products;
//! - [`shifted`], [`unfold`] and the `gemm` crate for every other shape (and
//!   on CPUs without AVX-512);
//! - [`batchnorm`]: batch norm + ReLU in two passes each way;
//! - [`shortcut`]: option A's subsampled, zero-padded shortcut;
//! - [`reduce`]: the probes' gradient norms;
//! - [`team`]: the parallel loops, on threads that wait for the next loop
//!   awake.
//!
//! Everything here is plain Rust over slices, with no burn types: the
//! wiring into burn's autodiff lives in [`crate::model::cpu_ops`], and the
//! tests there compare these kernels with burn's reference ops. Each kernel
//! is a candidate to offer to burn's `flex` upstream.
//!
//! Work is spread over a training run's [`team`] of threads (its
//! `--threads`; elsewhere the current rayon pool), and every reduction sums
//! in an order fixed by the shapes alone, so the same inputs give the same
//! bits whatever the number of threads.

pub mod batchnorm;
pub mod channels;
pub mod conv;
pub mod cube;
pub mod direct;
mod gemm;
pub mod geometry;
pub mod outer;
pub mod reduce;
pub mod shifted;
pub mod shortcut;
mod simd;
pub mod team;
pub mod unfold;
pub mod winograd;

pub use batchnorm::BatchNormStats;
pub use conv::ConvGeometry;

use std::mem::MaybeUninit;

/// Expands `$then!(n, v)` with literal constants for a register block of
/// `$n` (1–8: output channels or positions) × `$nv` (1 or 2) vectors, so
/// that a micro-kernel is compiled once per block shape (its sums stay in
/// registers only when their count is known when compiled).
macro_rules! by_block_shape {
    ($n:expr, $nv:expr, $then:ident) => {
        match ($n, $nv) {
            (8, 2) => $then!(8, 2),
            (8, _) => $then!(8, 1),
            (7, 2) => $then!(7, 2),
            (7, _) => $then!(7, 1),
            (6, 2) => $then!(6, 2),
            (6, _) => $then!(6, 1),
            (5, 2) => $then!(5, 2),
            (5, _) => $then!(5, 1),
            (4, 2) => $then!(4, 2),
            (4, _) => $then!(4, 1),
            (3, 2) => $then!(3, 2),
            (3, _) => $then!(3, 1),
            (2, 2) => $then!(2, 2),
            (2, _) => $then!(2, 1),
            (_, 2) => $then!(1, 2),
            (_, _) => $then!(1, 1),
        }
    };
}
use by_block_shape;

/// A vector of `len` floats filled in parallel, `chunk` elements at a time
/// (the last chunk may be shorter), without zeroing it first: outputs of
/// many megabytes are written once, and clearing them beforehand cost 6 % of
/// a training step.
///
/// # Safety
/// `fill(i, out)` must write every element of `out`, the `i`-th chunk.
pub(crate) unsafe fn par_filled(len: usize, chunk: usize, fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync) -> Vec<f32> {
    // SAFETY: the caller's promise, passed on.
    unsafe { par_filled_map(len, chunk, fill) }.0
}

/// [`par_filled`], keeping what each chunk's `fill` returns, in chunk
/// order (none when `len` is 0).
///
/// # Safety
/// As [`par_filled`].
pub(crate) unsafe fn par_filled_map<R: Send>(
    len: usize,
    chunk: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<f32>]) -> R + Sync,
) -> (Vec<f32>, Vec<R>) {
    let mut v: Vec<f32> = Vec::with_capacity(len);
    let results = if len > 0 { team::map_chunks_mut(&mut v.spare_capacity_mut()[..len], chunk, fill) } else { Vec::new() };
    // SAFETY: the caller's `fill` wrote every element of every chunk, and
    // the chunks cover `0..len`.
    unsafe { v.set_len(len) };
    (v, results)
}

/// `buffer`'s first `len` floats (of any contents), growing it when it is
/// shorter: the kernels' per-thread scratch space.
pub(crate) fn grown(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    &mut buffer[..len]
}

/// `out` as initialised floats, once every element has been written.
///
/// # Safety
/// Every element of `out` must have been written.
pub(crate) unsafe fn assume_written(out: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and the caller
    // guarantees every element is initialised.
    unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<f32>(), out.len()) }
}
