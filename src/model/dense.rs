//! Fully connected layers: the plain dense layer and the final classifier.
//! Both flatten a feature map first.

use burn::nn::{BatchNorm, Linear};
use burn::prelude::*;

use super::layers::{self, Act, Builder};
use super::{Ctx, Features};
use crate::arch::LayerOptions;

/// A plain fully connected layer: linear-BN-activation.
///
/// # Shapes
/// `[B, ...] -> [B, units]`
#[derive(Module, Debug)]
pub struct DenseLayer {
    pub linear: Linear,
    pub norm: Option<BatchNorm>,
    #[module(skip)]
    pub act: Act,
}

impl DenseLayer {
    pub fn new(b: &mut Builder, din: usize, units: usize, options: &LayerOptions) -> Self {
        Self {
            linear: layers::linear(b, din, units, layers::bias_unless_norm(options), options.init),
            norm: layers::norm(b, units, options),
            act: Act(options.activation),
        }
    }

    pub fn forward(&self, x: Features, _ctx: &mut Ctx) -> Features {
        let x = self.linear.forward(x.into_flat());
        Features::Flat(layers::norm_act(x, self.norm.as_ref(), self.act))
    }
}

/// The final linear layer: one logit per class.
///
/// # Shapes
/// `[B, ...] -> [B, classes]`
#[derive(Module, Debug)]
pub struct Classifier {
    pub linear: Linear,
}

impl Classifier {
    /// With `zero` (Fixup, Zhang et al. 2019) the weights start at zero, so
    /// the net starts with equal logits; they are drawn all the same, so
    /// twin nets consume the same random numbers.
    pub fn new(b: &mut Builder, din: usize, classes: usize, options: &LayerOptions, zero: bool) -> Self {
        let mut linear = layers::linear(b, din, classes, Some(0.0), options.init);
        if zero {
            super::branch::BranchLayer::zero(&mut linear);
        }
        Self { linear }
    }

    pub fn forward(&self, x: Features, _ctx: &mut Ctx) -> Features {
        Features::Flat(self.linear.forward(x.into_flat()))
    }
}
