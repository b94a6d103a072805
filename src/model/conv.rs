//! The plain convolution: conv-BN-activation.

use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::prelude::*;

use super::layers::{self, Act, Builder};
use super::{Ctx, Features};
use crate::arch::LayerOptions;

/// A plain conv layer.
///
/// # Shapes
/// `[B, C_in, H, W] -> [B, filters, H/stride, W/stride]`
#[derive(Module, Debug)]
pub struct ConvLayer {
    pub conv: Conv2d,
    pub norm: Option<BatchNorm>,
    #[module(skip)]
    pub act: Act,
}

impl ConvLayer {
    pub fn new(b: &mut Builder, cin: usize, filters: usize, kernel: usize, stride: usize, options: &LayerOptions) -> Self {
        Self {
            conv: layers::conv(b, cin, filters, kernel, stride, layers::bias_unless_norm(options), options.init),
            norm: layers::norm(b, filters, options),
            act: Act(options.activation),
        }
    }

    pub fn forward(&self, x: Features, _ctx: &mut Ctx) -> Features {
        Features::Map(layers::conv_norm_act(&self.conv, self.norm.as_ref(), self.act, x.into_map(), None))
    }
}
