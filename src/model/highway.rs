//! The highway layer of Srivastava et al. (2015):
//! `y = H(x)·T(x) + x·C(x)`, `T = sigmoid(W_T x + b_T)`, with the carry gate
//! coupled (`C = 1 - T`) or independent (`C = sigmoid(W_C x + b_C)`). The
//! transform-gate bias starts negative so the layer starts close to the
//! identity; an independent carry gate starts at the opposite bias so that
//! `C ≈ 1 - T` at initialisation. Gate weights start small (uniform
//! ±1/√fan_in, whatever the layer's init) so that every unit's gate starts
//! near `sigmoid(b_T)`: with He-scaled gate weights the gates of a deep
//! highway MLP spread out, the carried signal fades layer after layer, and
//! training stalls.

use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use super::layers::{self, Act, Builder};
use super::{Ctx, Features};
use crate::arch::{Carry, Init, LayerOptions};

/// Combines the transform `h`, the gate pre-activations and the input.
fn combine<const D: usize>(x: Tensor<D>, h: Tensor<D>, t_logits: Tensor<D>, c_logits: Option<Tensor<D>>, ctx: &mut Ctx) -> Tensor<D> {
    let t = sigmoid(t_logits);
    if ctx.probe {
        ctx.record_gate(t.clone().detach().mean());
    }
    let carry = match c_logits {
        Some(c) => sigmoid(c),
        None => t.clone().ones_like() - t.clone(),
    };
    h * t + x * carry
}

/// A convolutional highway layer; keeps the shape.
///
/// # Shapes
/// `[B, C, H, W] -> [B, C, H, W]`
#[derive(Module, Debug)]
pub struct HighwayConv {
    pub transform: Conv2d,
    pub norm: Option<BatchNorm>,
    pub gate: Conv2d,
    pub carry: Option<Conv2d>,
    #[module(skip)]
    pub act: Act,
}

impl HighwayConv {
    pub fn new(b: &mut Builder, channels: usize, kernel: usize, carry: Carry, gate_bias: f32, options: &LayerOptions) -> Self {
        Self {
            transform: layers::conv(b, channels, channels, kernel, 1, layers::bias_unless_norm(options), options.init),
            norm: layers::norm(b, channels, options),
            gate: layers::conv(b, channels, channels, kernel, 1, Some(gate_bias), Init::Standard),
            carry: (carry == Carry::Independent).then(|| layers::conv(b, channels, channels, kernel, 1, Some(-gate_bias), Init::Standard)),
            act: Act(options.activation),
        }
    }

    pub fn forward(&self, x: Features, ctx: &mut Ctx) -> Features {
        let x = x.into_map();
        let h = layers::norm_act(layers::conv_forward(&self.transform, x.clone()), self.norm.as_ref(), self.act);
        let t = layers::conv_forward(&self.gate, x.clone());
        let c = self.carry.as_ref().map(|conv| layers::conv_forward(conv, x.clone()));
        Features::Map(combine(x, h, t, c, ctx))
    }
}

/// A fully connected highway layer; input and output have the same width.
///
/// # Shapes
/// `[B, ...] -> [B, D]` with `D` the flattened input width.
#[derive(Module, Debug)]
pub struct HighwayDense {
    pub transform: Linear,
    pub norm: Option<BatchNorm>,
    pub gate: Linear,
    pub carry: Option<Linear>,
    #[module(skip)]
    pub act: Act,
}

impl HighwayDense {
    pub fn new(b: &mut Builder, width: usize, carry: Carry, gate_bias: f32, options: &LayerOptions) -> Self {
        Self {
            transform: layers::linear(b, width, width, layers::bias_unless_norm(options), options.init),
            norm: layers::norm(b, width, options),
            gate: layers::linear(b, width, width, Some(gate_bias), Init::Standard),
            carry: (carry == Carry::Independent).then(|| layers::linear(b, width, width, Some(-gate_bias), Init::Standard)),
            act: Act(options.activation),
        }
    }

    pub fn forward(&self, x: Features, ctx: &mut Ctx) -> Features {
        let x = x.into_flat();
        let h = layers::norm_act(self.transform.forward(x.clone()), self.norm.as_ref(), self.act);
        let t = self.gate.forward(x.clone());
        let c = self.carry.as_ref().map(|l| l.forward(x.clone()));
        Features::Flat(combine(x, h, t, c, ctx))
    }
}
