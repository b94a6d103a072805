//! The pieces every block is made of: weight layers initialised on the host
//! from the run's seed (so the same seed gives the same weights on every
//! backend, and twin networks start from the same draws), activations and
//! normalisation.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;

use super::cpu_ops;
use crate::arch::{Activation, Init, LayerOptions, Norm};
use crate::kernels::BatchNormStats;
use crate::util::rng::Rng;

/// Everything a block needs while it is being built.
pub struct Builder<'a> {
    pub device: &'a Device,
    pub rng: &'a mut Rng,
}

/// Draws `len` initial weights for a layer with the given fans.
pub fn init_values(init: Init, fan_in: usize, fan_out: usize, len: usize, rng: &mut Rng) -> Vec<f32> {
    match init {
        Init::He => {
            let std = (2.0 / fan_in as f64).sqrt();
            (0..len).map(|_| (rng.normal() * std) as f32).collect()
        }
        Init::Xavier => {
            let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
            (0..len).map(|_| ((rng.next_f64() * 2.0 - 1.0) * bound) as f32).collect()
        }
        Init::Standard => {
            let bound = 1.0 / (fan_in as f64).sqrt();
            (0..len).map(|_| ((rng.next_f64() * 2.0 - 1.0) * bound) as f32).collect()
        }
    }
}

/// A `k`x`k` convolution with "same" padding, weights drawn by `init`, bias
/// (zero, or `bias_value`) when `bias` is set.
pub fn conv(b: &mut Builder, cin: usize, cout: usize, k: usize, stride: usize, bias: Option<f32>, init: Init) -> Conv2d {
    let pad = k / 2;
    let mut conv = Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(bias.is_some())
        .init(b.device);
    let values = init_values(init, cin * k * k, cout * k * k, cout * cin * k * k, b.rng);
    conv.weight = Param::from_tensor(Tensor::from_data(TensorData::new(values, [cout, cin, k, k]), b.device));
    conv.bias = bias.map(|value| Param::from_tensor(Tensor::full([cout], value, b.device)));
    conv
}

/// A fully connected layer `din -> dout` (burn stores the weight as `[din, dout]`).
pub fn linear(b: &mut Builder, din: usize, dout: usize, bias: Option<f32>, init: Init) -> Linear {
    let mut linear = LinearConfig::new(din, dout).with_bias(bias.is_some()).init(b.device);
    let values = init_values(init, din, dout, din * dout, b.rng);
    linear.weight = Param::from_tensor(Tensor::from_data(TensorData::new(values, [din, dout]), b.device));
    linear.bias = bias.map(|value| Param::from_tensor(Tensor::full([dout], value, b.device)));
    linear
}

/// Batch normalisation over `channels`, or nothing when the layer has no norm.
pub fn norm(b: &Builder, channels: usize, options: &LayerOptions) -> Option<BatchNorm> {
    match options.norm {
        Norm::Batchnorm => Some(BatchNormConfig::new(channels).init(b.device)),
        Norm::None => None,
    }
}

/// A conv's bias: none when BN follows it (BN's beta does that job).
pub fn bias_unless_norm(options: &LayerOptions) -> Option<f32> {
    match options.norm {
        Norm::Batchnorm => None,
        Norm::None => Some(0.0),
    }
}

/// Applies an activation function.
pub fn activate<const D: usize>(x: Tensor<D>, activation: Activation) -> Tensor<D> {
    match activation {
        Activation::Relu => burn::tensor::activation::relu(x),
        Activation::Tanh => burn::tensor::activation::tanh(x),
        Activation::Sigmoid => burn::tensor::activation::sigmoid(x),
        Activation::Linear => x,
    }
}

/// Applies an optional BN.
pub fn apply_norm<const D: usize>(x: Tensor<D>, norm: &Option<BatchNorm>) -> Tensor<D> {
    match norm {
        Some(bn) => cpu_ops::batch_norm_act(bn, x, false),
        None => x,
    }
}

/// An optional BN, then the activation: one fused kernel on the CPU when
/// the activation is a ReLU.
pub fn norm_act<const D: usize>(x: Tensor<D>, norm: Option<&BatchNorm>, act: Act) -> Tensor<D> {
    norm_act_given(x, norm, act, None)
}

/// [`norm_act`], with the batch's statistics known where `stats` is given
/// ([`cpu_ops::batch_norm_act_given`]).
fn norm_act_given<const D: usize>(x: Tensor<D>, norm: Option<&BatchNorm>, act: Act, stats: Option<BatchNormStats>) -> Tensor<D> {
    match norm {
        Some(bn) if act.0 == Activation::Relu => cpu_ops::batch_norm_act_given(bn, x, true, stats),
        Some(bn) => act.apply(cpu_ops::batch_norm_act_given(bn, x, false, stats)),
        None => act.apply(x),
    }
}

/// `conv → norm → activation`; with a `residual`, `conv → norm → +
/// residual → activation` (the end of a post-activation residual block).
/// In evaluation on the CPU the steps are one pass over each output image.
pub fn conv_norm_act(conv: &Conv2d, norm: Option<&BatchNorm>, act: Act, x: Tensor<4>, residual: Option<Tensor<4>>) -> Tensor<4> {
    conv_norm_act_reading(conv, norm, act, x, residual, cpu_ops::Input::Own)
}

/// [`conv_norm_act`], told who else reads `x` ([`cpu_ops::Input`]).
pub fn conv_norm_act_reading(
    conv: &Conv2d,
    norm: Option<&BatchNorm>,
    act: Act,
    x: Tensor<4>,
    residual: Option<Tensor<4>>,
    input: cpu_ops::Input,
) -> Tensor<4> {
    let relu = act.0 == Activation::Relu;
    if let Some(y) = cpu_ops::conv_eval(conv, norm, &x, residual.as_ref(), relu) {
        return if relu { y } else { act.apply(y) };
    }
    // With a batch norm next, the convolution sums its output's batch
    // statistics on the way, and the batch norm skips its own pass.
    let (y, stats) = match norm {
        Some(_) => cpu_ops::conv2d_reading_with_statistics(conv, x, input),
        None => (cpu_ops::conv2d_reading(conv, x, input), None),
    };
    match (residual, norm) {
        (None, _) => norm_act_given(y, norm, act, stats),
        (Some(r), Some(bn)) if relu => match cpu_ops::batch_norm_add_relu_given(bn, y, r, stats) {
            Ok(out) => out,
            Err((y, r)) => act.apply(norm_act(y, norm, Act(Activation::Linear)) + r),
        },
        (Some(r), _) => act.apply(norm_act_given(y, norm, Act(Activation::Linear), stats) + r),
    }
}

/// `conv.forward(x)`, on the lab's own kernels on the CPU.
pub fn conv_forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    cpu_ops::conv2d(conv, x)
}

/// The activation stored in a module (burn modules cannot hold foreign enums
/// without `#[module(skip)]`, so blocks keep this small copyable wrapper).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Act(pub Activation);

impl Act {
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        activate(x, self.0)
    }
}
