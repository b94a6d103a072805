//! The lab's CPU kernels ([`crate::kernels`]) as burn operations, through a
//! backend extension: on the CPU backend (`flex`, with or without autodiff)
//! a convolution or a batch norm (+ ReLU) runs the lab's kernels with a
//! hand-written backward pass; on every other device (wgpu, CUDA) the same
//! calls take burn's own modules. Models call [`conv2d`] and
//! [`batch_norm_act`] and never see the difference.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::{Bytes, DType};

use crate::kernels::batchnorm::{self, BatchNormStats, NormShape};
use crate::kernels::conv::{self, ConvGeometry};

/// Operations the lab implements itself on the CPU backend.
#[backend_extension(Flex, Autodiff)]
pub trait LabKernels: Backend {
    /// A 2-D convolution without bias, dilation or groups.
    fn lab_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
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

    /// The L2 norm of all of `x`'s values, shape `[1]`, accumulated in f64 so
    /// that vanishing gradients (1e-25 and below) do not underflow when
    /// squared. Not differentiable (it reads gradients).
    fn lab_l2_norm(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `x` unchanged; in the backward pass, `x`'s gradient passes through
    /// and the `[1]` leaf `probe` receives that gradient's L2 norm.
    fn lab_tap(x: FloatTensor<Self>, probe: FloatTensor<Self>) -> FloatTensor<Self>;

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

/// `conv.forward(x)`, on the lab's kernels on the CPU.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let Some(geometry) = geometry_of(conv, &x) else {
        return conv.forward(x);
    };
    if !lab_kernels_for(&x.device(), KernelSet::Conv) || x.dtype() != burn::tensor::DType::F32 || geometry.validate().is_err() {
        return conv.forward(x);
    }
    let ([sh, sw], [ph, pw]) = (geometry.stride, geometry.padding);
    let (x, weight) = (x.into_dispatch(), conv.weight.val().into_dispatch());
    Tensor::from_dispatch(match &conv.bias {
        Some(bias) => <Dispatch as LabKernels>::lab_conv2d_bias(x, weight, bias.val().into_dispatch(), sh, sw, ph, pw),
        None => <Dispatch as LabKernels>::lab_conv2d(x, weight, sh, sw, ph, pw),
    })
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

/// The L2 norm of `x` in one pass on the CPU backend, or `None` on other
/// devices.
pub fn l2_norm<const D: usize>(x: &Tensor<D>) -> Option<Tensor<1>> {
    (lab_kernels_for(&x.device(), KernelSet::All) && x.dtype() == burn::tensor::DType::F32)
        .then(|| Tensor::from_dispatch(<Dispatch as LabKernels>::lab_l2_norm(x.clone().into_dispatch())))
}

/// A `[1]` leaf for [`tap`] on the CPU backend's training device, or
/// `None` where taps take burn's own route.
pub fn tap_leaf(device: &Device) -> Option<Tensor<1>> {
    (device.is_autodiff() && lab_kernels_for(device, KernelSet::All)).then(|| Tensor::<1>::zeros([1], device).require_grad())
}

/// `x` unchanged; after `backward`, `leaf`'s gradient is the L2 norm of the
/// gradient of the loss with respect to `x` (computed once, in f64, as the
/// gradient flows past: no copy of `x`, no zero tensor added to it).
pub fn tap<const D: usize>(x: Tensor<D>, leaf: &Tensor<1>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as LabKernels>::lab_tap(x.into_dispatch(), leaf.clone().into_dispatch()))
}

/// `bn.forward(x)` followed by a ReLU when `relu`, fused on the CPU. In
/// training (an autodiff device with the layer not frozen) it normalises
/// with the batch's statistics and updates the running ones, as burn's
/// `BatchNorm` does.
pub fn batch_norm_act<const D: usize>(bn: &BatchNorm, x: Tensor<D>, relu: bool) -> Tensor<D> {
    let device = x.device();
    if !lab_kernels_for(&device, KernelSet::All) || x.dtype() != burn::tensor::DType::F32 || D < 2 || x.dims()[1] != bn.gamma.dims()[0] {
        let y = bn.forward(x);
        return if relu { burn::tensor::activation::relu(y) } else { y };
    }
    if device.is_autodiff() && bn.training.is_enabled() {
        let (y, mean, var) = <Dispatch as LabKernels>::lab_batch_norm_train(
            x.into_dispatch(),
            bn.gamma.val().into_dispatch(),
            bn.beta.val().into_dispatch(),
            bn.epsilon,
            relu,
        );
        let mean = Tensor::<1>::from_dispatch(mean).detach();
        let var = Tensor::<1>::from_dispatch(var).detach();
        let running_mean = bn.running_mean.value_sync().to_device(&device);
        let running_var = bn.running_var.value_sync().to_device(&device);
        bn.running_mean.update(running_mean.mul_scalar(1.0 - bn.momentum).add(mean.mul_scalar(bn.momentum)).detach());
        bn.running_var.update(running_var.mul_scalar(1.0 - bn.momentum).add(var.mul_scalar(bn.momentum)).detach());
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

// ---------------------------------------------------------------------------
// Raw buffers.

/// The values of an `f32` tensor in row-major order (copied only when the
/// tensor is a strided view).
fn values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(t.to_contiguous().as_slice::<f32>().map(<[f32]>::to_vec).unwrap_or_default()),
    }
}

fn tensor(data: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(data), Layout::contiguous(shape.into()), DType::F32)
}

fn dims(t: &FlexTensor) -> Vec<usize> {
    t.shape().iter().copied().collect()
}

fn conv_geometry(x: &FlexTensor, weight: &FlexTensor, stride: [usize; 2], padding: [usize; 2]) -> ConvGeometry {
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

fn norm_shape(x: &FlexTensor) -> NormShape {
    let d = dims(x);
    NormShape { batch: d[0], channels: d[1], plane: d[2..].iter().product() }
}

fn stats_of(mean: &FlexTensor, var: &FlexTensor) -> BatchNormStats {
    BatchNormStats { mean: values(mean).into_owned(), var: values(var).into_owned() }
}

// ---------------------------------------------------------------------------
// The CPU backend.

fn flex_conv2d(x: &FlexTensor, weight: &FlexTensor, bias: Option<&FlexTensor>, stride: [usize; 2], padding: [usize; 2]) -> FlexTensor {
    let g = conv_geometry(x, weight, stride, padding);
    let bias = bias.map(values);
    let y = conv::forward(&g, &values(x), &values(weight), bias.as_deref());
    tensor(y, [g.batch, g.out_channels, g.out_height(), g.out_width()])
}

impl LabKernels for Flex {
    fn lab_conv2d(x: FlexTensor, weight: FlexTensor, stride_h: usize, stride_w: usize, pad_h: usize, pad_w: usize) -> FlexTensor {
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
        let (y, stats) = batchnorm::forward_train(&shape, &values(&x), &values(&gamma), &values(&beta), epsilon, relu);
        (tensor(y, dims(&x)), tensor(stats.mean, [shape.channels]), tensor(stats.var, [shape.channels]))
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

// ---------------------------------------------------------------------------
// The CPU backend with autodiff: the forward on the kernels above, and a
// hand-written backward pass.

/// What the convolution's backward pass needs.
#[derive(Clone, Debug)]
struct ConvState {
    x: FlexTensor,
    weight: FlexTensor,
    geometry: ConvGeometry,
}

/// Registers the convolution's gradients for the parents that want them.
fn conv_backward(state: ConvState, dy: FlexTensor, grads: &mut Gradients, parents: &[Option<burn::backend::autodiff::NodeId>; 3]) {
    let g = state.geometry;
    let dy = values(&dy);
    if let Some(id) = parents[0] {
        let dx = conv::backward_input(&g, &dy, &values(&state.weight));
        grads.register::<Flex>(id, tensor(dx, [g.batch, g.in_channels, g.in_height, g.in_width]));
    }
    if parents[1].is_some() || parents[2].is_some() {
        let (dw, db) = conv::backward_weight(&g, &values(&state.x), &dy, parents[2].is_some());
        if let Some(id) = parents[1] {
            grads.register::<Flex>(id, tensor(dw, [g.out_channels, g.in_channels, g.kernel[0], g.kernel[1]]));
        }
        if let (Some(id), Some(db)) = (parents[2], db) {
            grads.register::<Flex>(id, tensor(db, [g.out_channels]));
        }
    }
}

#[derive(Debug)]
struct ConvWithBias;

impl Backward<Flex, 3> for ConvWithBias {
    type State = ConvState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let [x, w, b] = ops.parents;
        conv_backward(ops.state, dy, grads, &[x.map(|n| n.id), w.map(|n| n.id), b.map(|n| n.id)]);
    }
}

#[derive(Debug)]
struct ConvNoBias;

impl Backward<Flex, 2> for ConvNoBias {
    type State = ConvState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let [x, w] = ops.parents;
        conv_backward(ops.state, dy, grads, &[x.map(|n| n.id), w.map(|n| n.id), None]);
    }
}

/// What batch norm's backward pass needs.
#[derive(Clone, Debug)]
struct NormState {
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    stats: BatchNormStats,
    epsilon: f64,
    relu: bool,
}

#[derive(Debug)]
struct NormTrain;

impl Backward<Flex, 3> for NormTrain {
    type State = NormState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        let shape = norm_shape(&s.x);
        let (dx, dgamma, dbeta) = batchnorm::backward_train(
            &shape,
            &values(&s.x),
            &values(&dy),
            &values(&s.gamma),
            &values(&s.beta),
            &s.stats,
            s.epsilon,
            s.relu,
        );
        let [x, gamma, beta] = ops.parents;
        if let Some(node) = x {
            grads.register::<Flex>(node.id, tensor(dx, dims(&s.x)));
        }
        if let Some(node) = gamma {
            grads.register::<Flex>(node.id, tensor(dgamma, [shape.channels]));
        }
        if let Some(node) = beta {
            grads.register::<Flex>(node.id, tensor(dbeta, [shape.channels]));
        }
    }
}

#[derive(Debug)]
struct Tap;

impl Backward<Flex, 2> for Tap {
    type State = ();

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let [x, probe] = ops.parents;
        if let Some(node) = probe {
            grads.register::<Flex>(node.id, tensor(vec![crate::kernels::reduce::l2_norm(&values(&dy))], [1]));
        }
        if let Some(node) = x {
            grads.register::<Flex>(node.id, dy);
        }
    }
}

impl<C: CheckpointStrategy> LabKernels for Autodiff<Flex, C> {
    fn lab_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
    ) -> FloatTensor<Self> {
        let (stride, padding) = ([stride_h, stride_w], [pad_h, pad_w]);
        let geometry = conv_geometry(x.primitive(), weight.primitive(), stride, padding);
        match ConvNoBias.prepare::<C>([x.node(), weight.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (x, weight) = (x.into_primitive(), weight.into_primitive());
                let y = flex_conv2d(&x, &weight, None, stride, padding);
                prep.finish(ConvState { x, weight, geometry }, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(flex_conv2d(x.primitive(), weight.primitive(), None, stride, padding)),
        }
    }

    fn lab_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
    ) -> FloatTensor<Self> {
        let (stride, padding) = ([stride_h, stride_w], [pad_h, pad_w]);
        let geometry = conv_geometry(x.primitive(), weight.primitive(), stride, padding);
        match ConvWithBias.prepare::<C>([x.node(), weight.node(), bias.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (x, weight, bias) = (x.into_primitive(), weight.into_primitive(), bias.into_primitive());
                let y = flex_conv2d(&x, &weight, Some(&bias), stride, padding);
                prep.finish(ConvState { x, weight, geometry }, y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(flex_conv2d(x.primitive(), weight.primitive(), Some(bias.primitive()), stride, padding))
            }
        }
    }

    fn lab_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let prep = NormTrain.prepare::<C>([x.node(), gamma.node(), beta.node()]).compute_bound().stateful();
        let (x, gamma, beta) = (x.into_primitive(), gamma.into_primitive(), beta.into_primitive());
        let (y, mean, var) = Flex::lab_batch_norm_train(x.clone(), gamma.clone(), beta.clone(), epsilon, relu);
        let output = match prep {
            OpsKind::Tracked(prep) => {
                let stats = stats_of(&mean, &var);
                prep.finish(NormState { x, gamma, beta, stats, epsilon, relu }, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        (output, Self::from_inner(mean), Self::from_inner(var))
    }

    fn lab_l2_norm(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::from_inner(Flex::lab_l2_norm(x.into_primitive()))
    }

    fn lab_tap(x: FloatTensor<Self>, probe: FloatTensor<Self>) -> FloatTensor<Self> {
        Tap.prepare::<C>([x.node(), probe.node()]).compute_bound().stateless(x.into_primitive())
    }

    fn lab_batch_norm_eval(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self> {
        // Evaluation on a training device (rare: a frozen layer): burn's
        // differentiable composition.
        use burn::backend::ops::{ActivationOps, ModuleOps};
        let y = <Self as ModuleOps<Self>>::batch_norm(x, gamma, beta, mean, variance, epsilon);
        if relu { <Self as ActivationOps<Self>>::relu(y) } else { y }
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::BatchNormConfig;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::module::conv2d as burn_conv2d;
    use burn::tensor::ops::ConvOptions;

    use super::*;
    use crate::util::rng::Rng;

    fn random<const D: usize>(shape: [usize; D], rng: &mut Rng, device: &Device) -> Tensor<D> {
        let len = shape.iter().product();
        let values: Vec<f32> = (0..len).map(|_| rng.normal() as f32).collect();
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    /// Every element within `1e-5 · (1 + |reference|)`, scaled by the
    /// reference's largest magnitude for sums of many terms.
    fn assert_close<const D: usize>(what: &str, got: Tensor<D>, want: Tensor<D>) {
        assert_eq!(got.dims(), want.dims(), "{what}: shapes differ");
        let got = got.into_data().to_vec::<f32>().expect("f32 values");
        let want = want.into_data().to_vec::<f32>().expect("f32 values");
        let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!((a - b).abs() <= 1e-5 * scale, "{what}[{i}]: {a} vs burn's {b} (scale {scale})");
        }
    }

    /// (batch, in, h, w, out, kernel, stride, padding, bias)
    const CONVS: [(usize, usize, usize, usize, usize, usize, usize, usize, bool); 8] = [
        (2, 3, 8, 8, 4, 3, 1, 1, false),
        (1, 1, 7, 5, 2, 3, 2, 1, true),
        (3, 2, 9, 9, 5, 3, 2, 1, false),
        (2, 4, 6, 6, 3, 1, 1, 0, true),
        (2, 4, 7, 7, 3, 1, 2, 0, false),
        (1, 2, 5, 5, 3, 5, 1, 2, true),
        (9, 3, 4, 4, 2, 3, 1, 0, false),
        (1, 1, 1, 1, 1, 1, 1, 0, false),
    ];

    #[test]
    fn the_cpu_devices_take_the_lab_kernels() {
        // These tests compare the lab's kernels with burn's: they must run.
        assert_eq!(KernelSet::current(), KernelSet::All, "unset DEPTHLAB_CPU_KERNELS to test the kernels");
        assert!(uses_lab_kernels(&Device::flex()));
        assert!(uses_lab_kernels(&Device::flex().autodiff()));
    }

    #[test]
    fn convolution_matches_burn_forward_and_gradients() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(11);
        for (n, cin, h, w, cout, k, s, p, bias) in CONVS {
            let what = format!("conv {n}x{cin}x{h}x{w} -> {cout}, {k}x{k} stride {s} pad {p} bias {bias}");
            let x = random([n, cin, h, w], &mut rng, &device);
            let mut layer = Conv2dConfig::new([cin, cout], [k, k])
                .with_stride([s, s])
                .with_padding(burn::nn::PaddingConfig2d::Explicit(p, p, p, p))
                .with_bias(bias)
                .init(&device);
            layer.weight = burn::module::Param::from_tensor(random([cout, cin, k, k], &mut rng, &device));
            let options = ConvOptions::new([s, s], [p, p], [1, 1], 1);
            let lab = conv2d(&layer, x.clone().require_grad());
            let ho = (h + 2 * p - k) / s + 1;
            let wo = (w + 2 * p - k) / s + 1;
            let r = random([n, cout, ho, wo], &mut rng, &device);

            let (x1, w1) = (x.clone().require_grad(), layer.weight.val().detach().require_grad());
            let b1 = layer.bias.as_ref().map(|b| b.val().detach().require_grad());
            let mut lab_layer = layer.clone();
            lab_layer.weight = burn::module::Param::from_tensor(w1.clone());
            lab_layer.bias = b1.clone().map(burn::module::Param::from_tensor);
            let y1 = conv2d(&lab_layer, x1.clone());
            let g1 = (y1.clone() * r.clone()).sum().backward();

            let (x2, w2) = (x.clone().require_grad(), layer.weight.val().detach().require_grad());
            let b2 = layer.bias.as_ref().map(|b| b.val().detach().require_grad());
            let y2 = burn_conv2d(x2.clone(), w2.clone(), b2.clone(), options);
            let g2 = (y2.clone() * r).sum().backward();

            assert_close(&format!("{what}: output"), lab, y2.clone());
            assert_close(&format!("{what}: output"), y1, y2);
            assert_close(&format!("{what}: input gradient"), x1.grad(&g1).unwrap(), x2.grad(&g2).unwrap());
            assert_close(&format!("{what}: weight gradient"), w1.grad(&g1).unwrap(), w2.grad(&g2).unwrap());
            if let (Some(b1), Some(b2)) = (b1, b2) {
                assert_close(&format!("{what}: bias gradient"), b1.grad(&g1).unwrap(), b2.grad(&g2).unwrap());
            }
        }
    }

    #[test]
    fn convolution_on_the_plain_cpu_device_matches_burn() {
        let device = Device::flex();
        let mut rng = Rng::new(12);
        let x = random([2, 3, 9, 9], &mut rng, &device);
        let layer = Conv2dConfig::new([3, 5], [3, 3])
            .with_stride([2, 2])
            .with_padding(burn::nn::PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        assert_close("conv on flex", conv2d(&layer, x.clone()), layer.forward(x));
    }

    /// (batch, channels, height, width) of batch-norm inputs; a width of 0
    /// means a flat `[batch, channels]` input.
    const NORMS: [(usize, usize, usize, usize); 5] = [(4, 3, 5, 5), (1, 1, 6, 7), (2, 5, 1, 1), (8, 4, 0, 0), (3, 2, 4, 3)];

    #[test]
    fn batch_norm_in_training_matches_burn_forward_gradients_and_running_statistics() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(13);
        for (n, c, h, w) in NORMS {
            for relu in [false, true] {
                let what = format!("batch norm {n}x{c}x{h}x{w} relu {relu}");
                let x = random([n, c, h.max(1), w.max(1)], &mut rng, &device).mul_scalar(2.0).add_scalar(0.5);
                let r = random([n, c, h.max(1), w.max(1)], &mut rng, &device);
                let gamma = random([c], &mut rng, &device);
                let beta = random([c], &mut rng, &device);
                let make = || {
                    let mut bn = BatchNormConfig::new(c).init(&device);
                    bn.gamma = burn::module::Param::from_tensor(gamma.clone().require_grad());
                    bn.beta = burn::module::Param::from_tensor(beta.clone().require_grad());
                    bn
                };
                let (lab_bn, burn_bn) = (make(), make());
                let (x1, x2) = (x.clone().require_grad(), x.clone().require_grad());
                let (y1, y2) = if h == 0 {
                    let flat = |t: Tensor<4>| t.reshape([n, c]);
                    let (a, b) = (batch_norm_act(&lab_bn, flat(x1.clone()), relu), burn_bn.forward(flat(x2.clone())));
                    let b = if relu { burn::tensor::activation::relu(b) } else { b };
                    (a.reshape([n, c, 1, 1]), b.reshape([n, c, 1, 1]))
                } else {
                    let b = burn_bn.forward(x2.clone());
                    (batch_norm_act(&lab_bn, x1.clone(), relu), if relu { burn::tensor::activation::relu(b) } else { b })
                };
                let g1 = (y1.clone() * r.clone()).sum().backward();
                let g2 = (y2.clone() * r).sum().backward();
                assert_close(&format!("{what}: output"), y1, y2);
                assert_close(&format!("{what}: input gradient"), x1.grad(&g1).unwrap(), x2.grad(&g2).unwrap());
                assert_close(
                    &format!("{what}: gamma gradient"),
                    lab_bn.gamma.val().grad(&g1).unwrap(),
                    burn_bn.gamma.val().grad(&g2).unwrap(),
                );
                assert_close(
                    &format!("{what}: beta gradient"),
                    lab_bn.beta.val().grad(&g1).unwrap(),
                    burn_bn.beta.val().grad(&g2).unwrap(),
                );
                assert_close(&format!("{what}: running mean"), lab_bn.running_mean.value(), burn_bn.running_mean.value());
                assert_close(&format!("{what}: running variance"), lab_bn.running_var.value(), burn_bn.running_var.value());
            }
        }
    }

    #[test]
    fn a_tap_passes_the_gradient_through_and_reports_its_norm() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(15);
        let x = random([3, 2, 4, 4], &mut rng, &device).require_grad();
        let r = random([3, 2, 4, 4], &mut rng, &device);
        let leaf = tap_leaf(&device).expect("the CPU training device taps");
        let y = tap(x.clone() * 2.0, &leaf);
        let grads = (y * r.clone()).sum().backward();
        // d(loss)/d(tapped output) = r, and x's gradient is 2 r.
        let want = r.clone().square().sum().sqrt();
        assert_close("tap norm", leaf.grad(&grads).unwrap(), want.inner());
        assert_close("gradient through the tap", x.grad(&grads).unwrap(), (r * 2.0).inner());
        // Vanishing gradients keep their size.
        let z = random([2, 5], &mut rng, &device).require_grad();
        let leaf = tap_leaf(&device).unwrap();
        let grads = (tap(z.clone(), &leaf) * 1e-30).sum().backward();
        let norm = leaf.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap()[0];
        assert!((norm / (1e-30 * 10f32.sqrt()) - 1.0).abs() < 1e-5, "{norm}");
        assert!(tap_leaf(&Device::flex()).is_none(), "no taps without autodiff");
    }

    #[test]
    fn batch_norm_in_evaluation_matches_burn() {
        let device = Device::flex();
        let mut rng = Rng::new(14);
        let mut bn = BatchNormConfig::new(3).init(&device);
        bn.gamma = burn::module::Param::from_tensor(random([3], &mut rng, &device));
        bn.running_mean = burn::module::RunningState::new(random([3], &mut rng, &device));
        bn.running_var = burn::module::RunningState::new(random([3], &mut rng, &device).abs().add_scalar(0.1));
        let x = random([2, 3, 4, 5], &mut rng, &device);
        assert_close("eval bn", batch_norm_act(&bn, x.clone(), false), bn.forward(x.clone()));
        assert_close("eval bn + relu", batch_norm_act(&bn, x.clone(), true), burn::tensor::activation::relu(bn.forward(x)));
    }
}
