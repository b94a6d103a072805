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

use crate::kernels::conv::ConvGeometry;
use crate::kernels::cube::Pass;

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

    /// The L2 norm of all of `x`'s values, shape `[1]`, in one read of `x`
    /// and without underflow (see [`crate::kernels::cube`]'s norm). Not
    /// differentiable (it reads gradients).
    #[fusion(dtype = x, shape = norm_shape(x))]
    fn gpu_l2_norm(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `x` unchanged; in the backward pass, `x`'s gradient passes through
    /// and the `[1]` leaf `probe` receives that gradient's L2 norm.
    #[fusion(dtype = x, shape = x)]
    fn gpu_tap(x: FloatTensor<Self>, probe: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// Which passes of a convolution run the lab's kernels (the others run
/// burn's): one bit per [`Pass`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Kernels(pub u8);

impl Kernels {
    pub const LAB: Kernels = Kernels(0b111);
    pub const BURN: Kernels = Kernels(0);

    fn bit(pass: Pass) -> u8 {
        1 << pass.index()
    }

    pub fn lab(self, pass: Pass) -> bool {
        self.0 & Self::bit(pass) != 0
    }

    pub fn with(self, pass: Pass, lab: bool) -> Kernels {
        Kernels(if lab { self.0 | Self::bit(pass) } else { self.0 & !Self::bit(pass) })
    }
}

/// A norm's shape, `[1]`.
fn norm_shape(_x: &Shape) -> Shape {
    Shape::new([1])
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
fn geometry(x: &[usize], weight: &[usize], stride: [usize; 2], padding: [usize; 2]) -> ConvGeometry {
    ConvGeometry {
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
/// burn's own operations everywhere (its convolutions, and the probes'
/// zero leaves and composed norms), to compare them.
pub fn uses_gpu_kernels(device: &Device) -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let off = *OFF.get_or_init(|| std::env::var("DEPTHLAB_GPU_KERNELS").as_deref() == Ok("burn"));
    !off && matches!(device.clone().inner().as_dispatch(), burn::backend::DispatchDevice::Cube(_))
}

/// The name of the cubecl runtime behind `device`, which says the shader
/// compiler it uses (`wgpu<spirv>`, `wgpu<wgsl>`), or `None` on other
/// devices.
pub fn runtime_name(device: &Device) -> Option<&'static str> {
    match device.clone().inner().as_dispatch() {
        burn::backend::DispatchDevice::Cube(cube) => Some(cube.client().name()),
        _ => None,
    }
}

/// The L2 norm of `x` in one pass on cubecl devices, or `None` on others.
pub fn l2_norm<const D: usize>(x: &Tensor<D>) -> Option<Tensor<1>> {
    (norm_applies(&x.device(), x.dtype(), x.shape().num_elements()))
        .then(|| Tensor::from_dispatch(<Dispatch as GpuKernels>::gpu_l2_norm(x.clone().into_dispatch())))
}

/// Whether the GPU norm takes a tensor of `dtype` and `len` values on `device`.
pub fn norm_applies(device: &Device, dtype: burn::tensor::DType, len: usize) -> bool {
    uses_gpu_kernels(device) && dtype == burn::tensor::DType::F32 && len < u32::MAX as usize / 2
}

/// `x` unchanged; after `backward`, `leaf`'s gradient is the L2 norm of the
/// gradient of the loss with respect to `x` (no copy of `x`, no zero tensor
/// added to it). For cubecl training devices.
pub fn tap<const D: usize>(x: Tensor<D>, leaf: &Tensor<1>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as GpuKernels>::gpu_tap(x.into_dispatch(), leaf.clone().into_dispatch()))
}

/// `x` convolved with `weight` (no bias) on cubecl devices, each pass on
/// the lab's kernel or burn's, whichever [`tune`] found faster for the
/// shape; `None` where burn's convolution should run as it is (another
/// device, not f32, shapes that do not match or that the kernels cannot
/// launch, or burn faster on every pass).
pub fn conv2d(x: &Tensor<4>, weight: &Tensor<4>, stride: [usize; 2], padding: [usize; 2]) -> Option<Tensor<4>> {
    // The device first: on the CPU, every convolution asks.
    if !uses_gpu_kernels(&x.device()) {
        return None;
    }
    let f32 = |t: &Tensor<4>| t.dtype() == burn::tensor::DType::F32;
    let g = geometry(&x.dims(), &weight.dims(), stride, padding);
    let fits = x.dims()[1] == weight.dims()[1] && g.validate().is_ok() && g.fits_kernels();
    if !f32(x) || !f32(weight) || !fits {
        return None;
    }
    // The passes this use runs: the gradients only in training, and the
    // input's only where the input is part of the graph (not a data batch).
    let passes: &[Pass] = match (x.device().is_autodiff(), x.is_tracked()) {
        (false, _) => &[Pass::Forward],
        (true, true) => &Pass::ALL,
        (true, false) => &[Pass::Forward, Pass::WeightGrad],
    };
    let kernels = tune::kernels_for(&x.device(), &g, passes);
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
