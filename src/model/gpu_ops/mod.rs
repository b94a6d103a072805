//! The lab's GPU convolution kernels ([`crate::kernels::cube`]) as burn
//! operations, through a backend extension: on burn's cubecl backend (the
//! wgpu devices, and CUDA where it is built), with or without autodiff, a
//! convolution's forward pass and both gradients run the lab's
//! implicit-GEMM kernels. [`super::cpu_ops::conv2d`] routes here; models
//! never see the difference.

mod autodiff;
mod cube;
#[cfg(test)]
mod tests;
pub mod tune;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::prelude::*;

use burn::tensor::ops::ConvOptions;

use crate::kernels::cube::{Geometry, Pass};

/// Operations the lab implements itself on cubecl devices.
#[backend_extension(Cube, Fusion, Autodiff)]
pub trait GpuKernels: Backend {
    /// A 2-D convolution without bias, dilation or groups, differentiable;
    /// `kernels` ([`Kernels`]'s bits) says which of its three passes run
    /// the lab's kernels and which burn's.
    #[fusion(dtype = x, shape = forward_shape(x, weight, stride_h, stride_w, pad_h, pad_w))]
    fn gpu_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
        kernels: u8,
    ) -> FloatTensor<Self>;

    /// The gradient of the convolution's input `x`, given its output's
    /// gradient `dy`, on the lab's kernel.
    #[fusion(dtype = x, shape = x)]
    fn gpu_conv2d_input_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
    ) -> FloatTensor<Self>;

    /// The gradient of the convolution's weight, given its output's
    /// gradient `dy`, on the lab's kernel.
    #[fusion(dtype = weight, shape = weight)]
    fn gpu_conv2d_weight_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
    ) -> FloatTensor<Self>;
}

/// Which passes of a convolution run the lab's kernels (the others run
/// burn's): one bit per [`Pass`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Kernels(pub u8);

impl Kernels {
    pub const LAB: Kernels = Kernels(0b111);
    pub const BURN: Kernels = Kernels(0);

    fn bit(pass: Pass) -> u8 {
        match pass {
            Pass::Forward => 1,
            Pass::InputGrad => 2,
            Pass::WeightGrad => 4,
        }
    }

    pub fn lab(self, pass: Pass) -> bool {
        self.0 & Self::bit(pass) != 0
    }

    pub fn with(self, pass: Pass, lab: bool) -> Kernels {
        Kernels(if lab { self.0 | Self::bit(pass) } else { self.0 & !Self::bit(pass) })
    }
}

/// The convolution's output shape.
fn forward_shape(x: &Shape, weight: &Shape, stride_h: &usize, stride_w: &usize, pad_h: &usize, pad_w: &usize) -> Shape {
    let out = |size: usize, kernel: usize, stride: usize, pad: usize| (size + 2 * pad - kernel) / stride + 1;
    Shape::new([x[0], weight[0], out(x[2], weight[2], *stride_h, *pad_h), out(x[3], weight[3], *stride_w, *pad_w)])
}

/// burn's options for the same convolution.
fn options(stride: [usize; 2], padding: [usize; 2]) -> ConvOptions<2> {
    ConvOptions::new(stride, padding, [1, 1], 1)
}

/// The geometry of a convolution of `x` (NCHW) by `weight` (OIHW).
fn geometry(x: &[usize], weight: &[usize], stride: [usize; 2], padding: [usize; 2]) -> Geometry {
    Geometry {
        batch: x[0],
        in_channels: x[1],
        in_height: x[2],
        in_width: x[3],
        out_channels: weight[0],
        kernel: [weight[2], weight[3]],
        stride,
        padding,
    }
}

/// Whether tensors on `device` run on the lab's GPU kernels: a cubecl
/// device (wgpu, CUDA), unless `DEPTHLAB_GPU_KERNELS=burn` asks for
/// burn's own convolutions (to compare them).
pub fn uses_gpu_kernels(device: &Device) -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let off = *OFF.get_or_init(|| std::env::var("DEPTHLAB_GPU_KERNELS").as_deref() == Ok("burn"));
    !off && matches!(device.clone().inner().as_dispatch(), burn::backend::DispatchDevice::Cube(_))
}

/// `x` convolved with `weight` (no bias) on cubecl devices, each pass on
/// the lab's kernel or burn's, whichever [`tune`] found faster for the
/// shape; `None` where burn's convolution should run as it is (another
/// device, not f32, indices past 32 bits, or burn faster on every pass).
pub fn conv2d(x: &Tensor<4>, weight: &Tensor<4>, stride: [usize; 2], padding: [usize; 2]) -> Option<Tensor<4>> {
    let f32 = |t: &Tensor<4>| t.dtype() == burn::tensor::DType::F32;
    let g = geometry(&x.dims(), &weight.dims(), stride, padding);
    if !uses_gpu_kernels(&x.device()) || !f32(x) || !f32(weight) || !g.fits_u32() {
        return None;
    }
    let kernels = tune::kernels_for(&x.device(), &g);
    (kernels != Kernels::BURN).then(|| conv2d_with(x, weight, stride, padding, kernels))
}

/// [`conv2d`] with the passes' kernels given.
pub fn conv2d_with(x: &Tensor<4>, weight: &Tensor<4>, stride: [usize; 2], padding: [usize; 2], kernels: Kernels) -> Tensor<4> {
    let ([sh, sw], [ph, pw]) = (stride, padding);
    Tensor::from_dispatch(<Dispatch as GpuKernels>::gpu_conv2d(
        x.clone().into_dispatch(),
        weight.clone().into_dispatch(),
        sh,
        sw,
        ph,
        pw,
        kernels.0,
    ))
}
