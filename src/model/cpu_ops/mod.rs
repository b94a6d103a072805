//! The lab's CPU kernels ([`crate::kernels`]) as burn operations, through a
//! backend extension: on the CPU backend (`flex`, with or without autodiff)
//! a convolution or a batch norm (+ ReLU) runs the lab's kernels with a
//! hand-written backward pass; on every other device (wgpu, CUDA) the same
//! calls take burn's own modules. Models call [`conv2d`] and
//! [`batch_norm_act`] and never see the difference.

#[cfg(test)]
mod accuracy_tests;
mod autodiff;
mod flex;
#[cfg(test)]
mod tests;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::prelude::*;

use crate::kernels::BatchNormStats;
use crate::kernels::conv::ConvGeometry;

/// Operations the lab implements itself on the CPU backend.
#[backend_extension(Flex, Autodiff)]
pub trait LabKernels: Backend {
    /// A 2-D convolution without bias, dilation or groups. With
    /// `shared_input`, another operation deeper in the graph (one that runs
    /// its backward pass first) also reads `x` — a residual join reading
    /// its identity shortcut — and the backward pass adds that operation's
    /// gradient of `x` into its own as it writes it, instead of leaving
    /// burn to add the two afterwards on one thread.
    fn lab_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
        shared_input: bool,
    ) -> FloatTensor<Self>;

    /// The same with a bias (the extension macro cannot route an optional
    /// tensor, so the bias gets its own operation).
    fn lab_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
    ) -> FloatTensor<Self>;

    /// Batch norm with the batch's statistics, then a ReLU when `relu`.
    /// Returns the output, the batch mean and the biased batch variance.
    fn lab_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// A residual join in training: `relu(bn(x) + residual)` with the
    /// batch's statistics. Returns the output, the batch mean and the
    /// biased batch variance.
    fn lab_batch_norm_add_relu_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Option A's shortcut: every `stride`-th row and column of `x`, then
    /// `extra` channels of zeros.
    fn lab_zero_pad_shortcut(x: FloatTensor<Self>, stride: usize, extra: usize) -> FloatTensor<Self>;

    /// The L2 norm of all of `x`'s values, shape `[1]`, accumulated in f64 so
    /// that vanishing gradients (1e-25 and below) do not underflow when
    /// squared. Not differentiable (it reads gradients).
    fn lab_l2_norm(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `x` unchanged; in the backward pass, `x`'s gradient passes through
    /// and the `[1]` leaf `probe` receives that gradient's L2 norm.
    fn lab_tap(x: FloatTensor<Self>, probe: FloatTensor<Self>) -> FloatTensor<Self>;

    /// A convolution in evaluation, each output value `z` of channel `o`
    /// then `z·scale[o] + shift[o]`, then a ReLU when `relu`: a convolution
    /// and the batch norm after it in one pass.
    #[allow(clippy::too_many_arguments)]
    fn lab_conv2d_affine(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
        relu: bool,
    ) -> FloatTensor<Self>;

    /// The same with `residual` added before the ReLU: the last convolution
    /// of a residual branch and the join after it.
    #[allow(clippy::too_many_arguments)]
    fn lab_conv2d_affine_add(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
        relu: bool,
    ) -> FloatTensor<Self>;

    /// Batch norm with given (running) statistics, then a ReLU when `relu`.
    fn lab_batch_norm_eval(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self>;
}

/// Which operations take the lab's kernels on the CPU: set by the
/// environment variable `DEPTHLAB_CPU_KERNELS` (`all`, the default; `conv`
/// for the convolutions only; `burn` for none), to compare them with burn's
/// own or to step around one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KernelSet {
    Burn,
    Conv,
    All,
}

impl KernelSet {
    /// The set this process uses (read once).
    pub fn current() -> KernelSet {
        static SET: std::sync::OnceLock<KernelSet> = std::sync::OnceLock::new();
        *SET.get_or_init(|| match std::env::var("DEPTHLAB_CPU_KERNELS").as_deref() {
            Ok("burn") => KernelSet::Burn,
            Ok("conv") => KernelSet::Conv,
            Ok("all") | Err(_) => KernelSet::All,
            Ok(other) => {
                eprintln!("depthlab: DEPTHLAB_CPU_KERNELS={other} is not all, conv or burn; using all");
                KernelSet::All
            }
        })
    }
}

/// Whether tensors on `device` run on the lab's CPU kernels.
pub fn uses_lab_kernels(device: &Device) -> bool {
    device.clone().inner() == Device::flex()
}

fn lab_kernels_for(device: &Device, needed: KernelSet) -> bool {
    KernelSet::current() >= needed && uses_lab_kernels(device)
}

// ---------------------------------------------------------------------------
// The model-facing functions.

/// `conv.forward(x)`, on the lab's kernels on the CPU and on cubecl
/// devices ([`super::gpu_ops`]).
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    conv2d_reading(conv, x, Input::Own)
}

/// Who else reads a convolution's input, for its backward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// Nothing the convolution knows of (burn adds any other gradient).
    Own,
    /// An operation that depends on this convolution's output, so runs its
    /// backward pass first — the join of the residual branch this
    /// convolution starts, reading its identity shortcut. The convolution
    /// adds that gradient of its input into its own.
    SharedWithLaterJoin,
}

/// [`conv2d`], told who else reads `x` ([`Input`]).
pub fn conv2d_reading(conv: &Conv2d, x: Tensor<4>, input: Input) -> Tensor<4> {
    let Some(geometry) = geometry_of(conv, &x) else {
        return conv.forward(x);
    };
    // (`gpu_ops::conv2d` checks the geometry itself.)
    if let Some(y) = super::gpu_ops::conv2d(&x, &conv.weight.val(), geometry.stride, geometry.padding) {
        return match &conv.bias {
            Some(bias) => y + bias.val().reshape([1, -1, 1, 1]),
            None => y,
        };
    }
    if !lab_kernels_for(&x.device(), KernelSet::Conv) || x.dtype() != burn::tensor::DType::F32 || geometry.validate().is_err() {
        return conv.forward(x);
    }
    let ([sh, sw], [ph, pw]) = (geometry.stride, geometry.padding);
    let (x, weight) = (x.into_dispatch(), conv.weight.val().into_dispatch());
    Tensor::from_dispatch(match &conv.bias {
        Some(bias) => <Dispatch as LabKernels>::lab_conv2d_bias(x, weight, bias.val().into_dispatch(), sh, sw, ph, pw),
        None => <Dispatch as LabKernels>::lab_conv2d(x, weight, sh, sw, ph, pw, input == Input::SharedWithLaterJoin),
    })
}

/// [`conv2d_reading`], and the batch statistics of its output per channel
/// where the lab's CPU convolution computed them on the way (while each
/// output image was in cache): what the training batch norm after it
/// would read the whole output again for. Hand them to
/// [`batch_norm_act_given`] or [`batch_norm_add_relu_given`].
pub fn conv2d_reading_with_statistics(conv: &Conv2d, x: Tensor<4>, input: Input) -> (Tensor<4>, Option<BatchNormStats>) {
    flex::with_statistics(|| conv2d_reading(conv, x, input))
}

/// `bn(conv(x))`, plus `residual` when given, then a ReLU when `relu`, in
/// one pass over each output image, for evaluation on the plain CPU
/// backend (no autodiff: batch norm uses its running statistics there).
/// `None` where this does not apply (another device, training, a shape the
/// kernels do not take); the caller then composes the steps. The batch
/// norm's scale and shift are applied to the convolution's output exactly
/// as the separate batch-norm pass does, so the result has the same bits.
pub fn conv_eval(conv: &Conv2d, bn: Option<&BatchNorm>, x: &Tensor<4>, residual: Option<&Tensor<4>>, relu: bool) -> Option<Tensor<4>> {
    let device = x.device();
    if device.is_autodiff() || !lab_kernels_for(&device, KernelSet::All) || x.dtype() != burn::tensor::DType::F32 {
        return None;
    }
    let geometry = geometry_of(conv, x)?;
    geometry.validate().ok()?;
    let out = [geometry.batch, geometry.out_channels, geometry.out_height(), geometry.out_width()];
    if residual.is_some_and(|r| r.dims() != out || r.dtype() != burn::tensor::DType::F32) {
        return None;
    }
    let read = |t: Tensor<1>| t.try_into_vec_as::<f32>().ok().filter(|v| v.len() == geometry.out_channels);
    let bias = match &conv.bias {
        Some(b) => Some(read(b.val())?),
        None => None,
    };
    let (scale, shift) = match bn {
        Some(bn) => {
            let stats = crate::kernels::BatchNormStats { mean: read(bn.running_mean.value())?, var: read(bn.running_var.value())? };
            let (a, mut b) = crate::kernels::batchnorm::scale_shift(&stats, &read(bn.gamma.val())?, &read(bn.beta.val())?, bn.epsilon);
            // A bias before the norm is folded into its shift.
            for ((b, a), c) in b.iter_mut().zip(&a).zip(bias.iter().flatten()) {
                *b += c * a;
            }
            (a, b)
        }
        None => (vec![1.0; geometry.out_channels], bias.unwrap_or_else(|| vec![0.0; geometry.out_channels])),
    };
    let per_channel = |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v, [geometry.out_channels]), &device).into_dispatch();
    let ([sh, sw], [ph, pw]) = (geometry.stride, geometry.padding);
    let (x, weight, scale, shift) = (x.clone().into_dispatch(), conv.weight.val().into_dispatch(), per_channel(scale), per_channel(shift));
    Some(Tensor::from_dispatch(match residual {
        Some(r) => {
            <Dispatch as LabKernels>::lab_conv2d_affine_add(x, weight, scale, shift, r.clone().into_dispatch(), sh, sw, ph, pw, relu)
        }
        None => <Dispatch as LabKernels>::lab_conv2d_affine(x, weight, scale, shift, sh, sw, ph, pw, relu),
    }))
}

/// The convolution's shapes, when the lab's kernels can run it: no
/// dilation, no groups, symmetric explicit padding, matching channels.
fn geometry_of(conv: &Conv2d, x: &Tensor<4>) -> Option<ConvGeometry> {
    use burn::nn::PaddingConfig2d;
    let [batch, in_channels, in_height, in_width] = x.dims();
    let [out_channels, weight_in, kh, kw] = conv.weight.dims();
    let padding = match &conv.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => [*top, *left],
        PaddingConfig2d::Valid => [0, 0],
        _ => return None,
    };
    let plain = conv.dilation == [1, 1] && conv.groups == 1 && weight_in == in_channels;
    let g = ConvGeometry { batch, in_channels, in_height, in_width, out_channels, kernel: [kh, kw], stride: conv.stride, padding };
    let nonempty = [batch, in_channels, in_height, in_width, out_channels].iter().all(|&d| d > 0);
    (plain && nonempty).then_some(g)
}

/// Option A's shortcut of `x` (every `stride`-th row and column, then
/// `extra` channels of zeros) in one pass each way on the CPU backend, or
/// `None` on other devices.
pub fn zero_pad_shortcut(x: &Tensor<4>, stride: usize, extra: usize) -> Option<Tensor<4>> {
    (lab_kernels_for(&x.device(), KernelSet::All) && x.dtype() == burn::tensor::DType::F32 && stride > 0)
        .then(|| Tensor::from_dispatch(<Dispatch as LabKernels>::lab_zero_pad_shortcut(x.clone().into_dispatch(), stride, extra)))
}

/// The L2 norm of `x` in one pass on the CPU backend (in f64) and on
/// cubecl devices ([`super::gpu_ops::l2_norm`]), or `None` on other devices.
pub fn l2_norm<const D: usize>(x: &Tensor<D>) -> Option<Tensor<1>> {
    if x.dtype() != burn::tensor::DType::F32 {
        return None;
    }
    if lab_kernels_for(&x.device(), KernelSet::All) {
        return Some(Tensor::from_dispatch(<Dispatch as LabKernels>::lab_l2_norm(x.clone().into_dispatch())));
    }
    super::gpu_ops::l2_norm(x)
}

/// A `[1]` leaf for [`tap`]ping a tensor of `dtype` and `len` values on a
/// training device of the CPU backend or of cubecl, or `None` where taps
/// take burn's own route.
pub fn tap_leaf(device: &Device, dtype: burn::tensor::DType, len: usize) -> Option<Tensor<1>> {
    let cpu = lab_kernels_for(device, KernelSet::All) && dtype == burn::tensor::DType::F32;
    let ours = cpu || super::gpu_ops::norm_applies(device, dtype, len);
    (device.is_autodiff() && ours).then(|| Tensor::<1>::zeros([1], device).require_grad())
}

/// `x` unchanged; after `backward`, `leaf`'s gradient is the L2 norm of the
/// gradient of the loss with respect to `x` (computed once as the gradient
/// flows past, in f64 on the CPU: no copy of `x`, no zero tensor added to
/// it). On devices [`tap_leaf`] gives a leaf for.
pub fn tap<const D: usize>(x: Tensor<D>, leaf: &Tensor<1>) -> Tensor<D> {
    if super::gpu_ops::uses_gpu_kernels(&x.device()) {
        return super::gpu_ops::tap(x, leaf);
    }
    Tensor::from_dispatch(<Dispatch as LabKernels>::lab_tap(x.into_dispatch(), leaf.clone().into_dispatch()))
}

/// `bn.forward(x)` followed by a ReLU when `relu`, fused on the CPU. In
/// training (an autodiff device with the layer not frozen) it normalises
/// with the batch's statistics and updates the running ones, as burn's
/// `BatchNorm` does.
pub fn batch_norm_act<const D: usize>(bn: &BatchNorm, x: Tensor<D>, relu: bool) -> Tensor<D> {
    batch_norm_act_given(bn, x, relu, None)
}

/// [`batch_norm_act`], with the batch's statistics in training already
/// known (from [`conv2d_reading_with_statistics`]); `None`, or statistics
/// of another shape, and they are computed here.
pub fn batch_norm_act_given<const D: usize>(bn: &BatchNorm, x: Tensor<D>, relu: bool, stats: Option<BatchNormStats>) -> Tensor<D> {
    let device = x.device();
    if !lab_kernels_for(&device, KernelSet::All) || x.dtype() != burn::tensor::DType::F32 || D < 2 || x.dims()[1] != bn.gamma.dims()[0] {
        let y = bn.forward(x);
        return if relu { burn::tensor::activation::relu(y) } else { y };
    }
    if device.is_autodiff() && bn.training.is_enabled() {
        let (x, gamma, beta) = (x.into_dispatch(), bn.gamma.val().into_dispatch(), bn.beta.val().into_dispatch());
        let (y, mean, var) =
            flex::given_statistics(stats, || <Dispatch as LabKernels>::lab_batch_norm_train(x, gamma, beta, bn.epsilon, relu));
        update_running_statistics(bn, mean, var, &device);
        Tensor::from_dispatch(y)
    } else {
        let mean = bn.running_mean.value().to_device(&device);
        let var = bn.running_var.value().to_device(&device);
        Tensor::from_dispatch(<Dispatch as LabKernels>::lab_batch_norm_eval(
            x.into_dispatch(),
            bn.gamma.val().into_dispatch(),
            bn.beta.val().into_dispatch(),
            mean.into_dispatch(),
            var.into_dispatch(),
            bn.epsilon,
            relu,
        ))
    }
}

/// Moves `bn`'s running statistics towards a training batch's (burn's
/// `BatchNorm` rule, with its momentum).
fn update_running_statistics(bn: &BatchNorm, mean: FloatTensor<Dispatch>, var: FloatTensor<Dispatch>, device: &Device) {
    let mean = Tensor::<1>::from_dispatch(mean).detach();
    let var = Tensor::<1>::from_dispatch(var).detach();
    let running_mean = bn.running_mean.value_sync().to_device(device);
    let running_var = bn.running_var.value_sync().to_device(device);
    bn.running_mean.update(running_mean.mul_scalar(1.0 - bn.momentum).add(mean.mul_scalar(bn.momentum)).detach());
    bn.running_var.update(running_var.mul_scalar(1.0 - bn.momentum).add(var.mul_scalar(bn.momentum)).detach());
}

/// `relu(bn(x) + residual)` in training on the CPU backend's autodiff
/// device, as one fused operation (one pass forward, batch norm's two
/// backward); the running statistics are updated as [`batch_norm_act`]
/// does. The inputs come back unchanged where this does not apply
/// (another device, evaluation, a frozen layer, shapes that differ).
// The inputs come back by value so the caller can compose the steps
// without cloning them first.
#[allow(clippy::result_large_err)]
pub fn batch_norm_add_relu(bn: &BatchNorm, x: Tensor<4>, residual: Tensor<4>) -> Result<Tensor<4>, (Tensor<4>, Tensor<4>)> {
    batch_norm_add_relu_given(bn, x, residual, None)
}

/// [`batch_norm_add_relu`], with the batch's statistics already known (as
/// [`batch_norm_act_given`]).
#[allow(clippy::result_large_err)]
pub fn batch_norm_add_relu_given(
    bn: &BatchNorm,
    x: Tensor<4>,
    residual: Tensor<4>,
    stats: Option<BatchNormStats>,
) -> Result<Tensor<4>, (Tensor<4>, Tensor<4>)> {
    let device = x.device();
    let applies = device.is_autodiff()
        && bn.training.is_enabled()
        && lab_kernels_for(&device, KernelSet::All)
        && x.dtype() == burn::tensor::DType::F32
        && residual.dtype() == burn::tensor::DType::F32
        && x.dims() == residual.dims()
        && x.dims()[1] == bn.gamma.dims()[0];
    if !applies {
        return Err((x, residual));
    }
    let (x, gamma, beta, residual) =
        (x.into_dispatch(), bn.gamma.val().into_dispatch(), bn.beta.val().into_dispatch(), residual.into_dispatch());
    let (y, mean, var) =
        flex::given_statistics(stats, || <Dispatch as LabKernels>::lab_batch_norm_add_relu_train(x, gamma, beta, residual, bn.epsilon));
    update_running_statistics(bn, mean, var, &device);
    Ok(Tensor::from_dispatch(y))
}
