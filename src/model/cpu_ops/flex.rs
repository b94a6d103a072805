//! The lab's kernels on raw `flex` buffers: conversions between burn's CPU
//! tensors and slices, and the extension's operations on the plain CPU
//! backend.

use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::{Flex, TensorMetadata};
use burn::prelude::*;
use burn::tensor::{Bytes, DType};

use super::LabKernels;
use crate::kernels::batchnorm::{self, BatchNormStats, NormShape};
use crate::kernels::conv::{self, ConvGeometry};
use crate::kernels::shortcut::ZeroPad;

// ---------------------------------------------------------------------------
// Raw buffers.

/// The values of an `f32` tensor in row-major order (copied only when the
/// tensor is a strided view).
pub(super) fn values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(t.to_contiguous().as_slice::<f32>().map(<[f32]>::to_vec).unwrap_or_default()),
    }
}

pub(super) fn tensor(data: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(data), Layout::contiguous(shape.into()), DType::F32)
}

/// A training batch norm's output (shaped as `x`) and its statistics.
fn norm_outputs(y: Vec<f32>, stats: BatchNormStats, x: &FlexTensor) -> (FlexTensor, FlexTensor, FlexTensor) {
    let channels = stats.mean.len();
    (tensor(y, dims(x)), tensor(stats.mean, [channels]), tensor(stats.var, [channels]))
}

/// The option-A shortcut of a `[batch, channels, height, width]` tensor.
pub(super) fn zero_pad_of(x: &FlexTensor, stride: usize, extra: usize) -> ZeroPad {
    let d = dims(x);
    ZeroPad { batch: d[0], channels: d[1], height: d[2], width: d[3], stride, extra }
}

pub(super) fn dims(t: &FlexTensor) -> Vec<usize> {
    t.shape().iter().copied().collect()
}

pub(super) fn conv_geometry(x: &FlexTensor, weight: &FlexTensor, stride: [usize; 2], padding: [usize; 2]) -> ConvGeometry {
    let (xd, wd) = (dims(x), dims(weight));
    ConvGeometry {
        batch: xd[0],
        in_channels: xd[1],
        in_height: xd[2],
        in_width: xd[3],
        out_channels: wd[0],
        kernel: [wd[2], wd[3]],
        stride,
        padding,
    }
}

pub(super) fn norm_shape(x: &FlexTensor) -> NormShape {
    let d = dims(x);
    NormShape { batch: d[0], channels: d[1], plane: d[2..].iter().product() }
}

pub(super) fn stats_of(mean: &FlexTensor, var: &FlexTensor) -> BatchNormStats {
    BatchNormStats { mean: values(mean).into_owned(), var: values(var).into_owned() }
}

// ---------------------------------------------------------------------------
// Batch statistics handed from a convolution to the batch norm after it.
//
// burn's CPU backend runs each operation on the calling thread before it
// returns, so a convolution and the batch norm that reads its output meet
// on one thread: [`with_statistics`] asks the convolution inside it for its
// output's statistics (taken while each output image is in cache), and
// [`given_statistics`] hands them to the batch norm it runs, which then
// skips its own pass over the batch. Both clear what they set when they
// return or unwind, whatever the operations inside did.

thread_local! {
    /// Set while a convolution should take its output's moments.
    static WANT_MOMENTS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The moments the convolution took, with its output's shape.
    static MOMENTS: std::cell::RefCell<Option<(NormShape, Vec<[f32; 3]>)>> = const { std::cell::RefCell::new(None) };
    /// Statistics for the next training batch norm of this thread.
    static GIVEN: std::cell::RefCell<Option<BatchNormStats>> = const { std::cell::RefCell::new(None) };
}

/// Runs `convolution` (one lab convolution on the CPU) and returns, beside
/// its result, the batch statistics of its output when the convolution
/// took them.
pub(super) fn with_statistics<R>(convolution: impl FnOnce() -> R) -> (R, Option<BatchNormStats>) {
    let _clear = Clear;
    WANT_MOMENTS.with(|w| w.set(true));
    let out = convolution();
    WANT_MOMENTS.with(|w| w.set(false));
    let stats = MOMENTS.with(|m| m.borrow_mut().take()).map(|(shape, moments)| batchnorm::statistics_from_moments(&shape, &moments));
    (out, stats)
}

/// Runs `norm` (one training batch norm) with `stats` as its batch's
/// statistics, where given.
pub(super) fn given_statistics<R>(stats: Option<BatchNormStats>, norm: impl FnOnce() -> R) -> R {
    let _clear = Clear;
    GIVEN.with(|g| *g.borrow_mut() = stats);
    norm()
}

/// Clears all three hand-overs when dropped: nothing set for one
/// operation reaches another, even after a panic inside it.
struct Clear;

impl Drop for Clear {
    fn drop(&mut self) {
        WANT_MOMENTS.with(|w| w.set(false));
        MOMENTS.with(|m| m.borrow_mut().take());
        GIVEN.with(|g| g.borrow_mut().take());
    }
}

/// The statistics [`given_statistics`] set, taken.
fn take_given() -> Option<BatchNormStats> {
    GIVEN.with(|g| g.borrow_mut().take())
}

// ---------------------------------------------------------------------------
// The CPU backend.

pub(super) fn flex_conv2d(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
    stride: [usize; 2],
    padding: [usize; 2],
) -> FlexTensor {
    let g = conv_geometry(x, weight, stride, padding);
    let bias = bias.map(values);
    let shape = [g.batch, g.out_channels, g.out_height(), g.out_width()];
    if WANT_MOMENTS.with(|w| w.replace(false)) {
        let (y, moments) = conv::forward_with_moments(&g, &values(x), &values(weight), bias.as_deref());
        let norm = NormShape { batch: g.batch, channels: g.out_channels, plane: g.out_plane() };
        MOMENTS.with(|m| *m.borrow_mut() = Some((norm, moments)));
        return tensor(y, shape);
    }
    let y = conv::forward(&g, &values(x), &values(weight), bias.as_deref());
    tensor(y, shape)
}

/// The convolution with an epilogue: `z·scale + shift`, `+ residual`, ReLU.
#[allow(clippy::too_many_arguments)]
pub(super) fn flex_conv2d_affine(
    x: &FlexTensor,
    weight: &FlexTensor,
    scale: &FlexTensor,
    shift: &FlexTensor,
    residual: Option<&FlexTensor>,
    stride: [usize; 2],
    padding: [usize; 2],
    relu: bool,
) -> FlexTensor {
    let g = conv_geometry(x, weight, stride, padding);
    let (scale, shift, residual) = (values(scale), values(shift), residual.map(values));
    let epilogue = conv::Epilogue { scale: Some(&scale), shift: Some(&shift), residual: residual.as_deref(), relu, moments: None };
    let y = conv::forward_fused(&g, &values(x), &values(weight), &epilogue);
    tensor(y, [g.batch, g.out_channels, g.out_height(), g.out_width()])
}

impl LabKernels for Flex {
    fn lab_conv2d_affine(
        x: FlexTensor,
        weight: FlexTensor,
        scale: FlexTensor,
        shift: FlexTensor,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
        relu: bool,
    ) -> FlexTensor {
        flex_conv2d_affine(&x, &weight, &scale, &shift, None, [stride_h, stride_w], [pad_h, pad_w], relu)
    }

    fn lab_conv2d_affine_add(
        x: FlexTensor,
        weight: FlexTensor,
        scale: FlexTensor,
        shift: FlexTensor,
        residual: FlexTensor,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
        relu: bool,
    ) -> FlexTensor {
        flex_conv2d_affine(&x, &weight, &scale, &shift, Some(&residual), [stride_h, stride_w], [pad_h, pad_w], relu)
    }

    fn lab_conv2d(
        x: FlexTensor,
        weight: FlexTensor,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
        _shared_input: bool,
    ) -> FlexTensor {
        flex_conv2d(&x, &weight, None, [stride_h, stride_w], [pad_h, pad_w])
    }

    fn lab_conv2d_bias(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
    ) -> FlexTensor {
        flex_conv2d(&x, &weight, Some(&bias), [stride_h, stride_w], [pad_h, pad_w])
    }

    fn lab_batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
        relu: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let shape = norm_shape(&x);
        let (y, stats) = batchnorm::forward_train(&shape, &values(&x), take_given(), &values(&gamma), &values(&beta), epsilon, relu);
        norm_outputs(y, stats, &x)
    }

    fn lab_batch_norm_add_relu_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        residual: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let shape = norm_shape(&x);
        let (y, stats) = batchnorm::forward_train_add_relu(
            &shape,
            &values(&x),
            take_given(),
            &values(&residual),
            &values(&gamma),
            &values(&beta),
            epsilon,
        );
        norm_outputs(y, stats, &x)
    }

    fn lab_zero_pad_shortcut(x: FlexTensor, stride: usize, extra: usize) -> FlexTensor {
        let pad = zero_pad_of(&x, stride, extra);
        tensor(pad.forward(&values(&x)), [pad.batch, pad.out_channels(), pad.out_height(), pad.out_width()])
    }

    fn lab_l2_norm(x: FlexTensor) -> FlexTensor {
        tensor(vec![crate::kernels::reduce::l2_norm(&values(&x))], [1])
    }

    fn lab_tap(x: FlexTensor, _probe: FlexTensor) -> FlexTensor {
        x
    }

    fn lab_batch_norm_eval(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        epsilon: f64,
        relu: bool,
    ) -> FlexTensor {
        let shape = norm_shape(&x);
        let y = batchnorm::normalize(&shape, &values(&x), &stats_of(&mean, &variance), &values(&gamma), &values(&beta), epsilon, relu);
        tensor(y, dims(&x))
    }
}
