//! Blocks with no weight layer: max and average pooling, global average
//! pooling, normalisation + activation, dropout.

use burn::nn::BatchNorm;
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::module::{avg_pool2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};

use super::layers::{self, Act, Builder};
use super::{Ctx, Features};
use crate::arch::LayerOptions;

/// Max or average pooling.
///
/// # Shapes
/// `[B, C, H, W] -> [B, C, (H - size)/stride + 1, (W - size)/stride + 1]`
#[derive(Module, Debug)]
pub struct Pool {
    pub size: usize,
    pub stride: usize,
    pub max: bool,
}

impl Pool {
    pub fn forward(&self, x: Features, _ctx: &mut Ctx) -> Features {
        let (k, s) = ([self.size, self.size], [self.stride, self.stride]);
        let x = x.into_map();
        Features::Map(if self.max {
            max_pool2d(x, MaxPoolOptions::new(k).with_stride(s))
        } else {
            avg_pool2d(x, AvgPoolOptions::new(k).with_stride(s))
        })
    }
}

/// Global average pooling: one number per channel.
///
/// # Shapes
/// `[B, C, H, W] -> [B, C]`
#[derive(Module, Debug)]
pub struct GlobalAvgPool {
    pub channels: usize,
}

impl GlobalAvgPool {
    pub fn forward(&self, x: Features, _ctx: &mut Ctx) -> Features {
        match x {
            Features::Map(x) => Features::Flat(x.mean_dims(&[2, 3]).flatten::<2>(1, 3)),
            flat => flat,
        }
    }
}

/// BN and activation with no weight layer (the final BN-ReLU of
/// pre-activation ResNets and DenseNets).
///
/// # Shapes
/// unchanged
#[derive(Module, Debug)]
pub struct NormAct {
    pub norm: Option<BatchNorm>,
    #[module(skip)]
    pub act: Act,
}

impl NormAct {
    pub fn new(b: &mut Builder, channels: usize, options: &LayerOptions) -> Self {
        Self { norm: layers::norm(b, channels, options), act: Act(options.activation) }
    }

    pub fn forward(&self, x: Features, _ctx: &mut Ctx) -> Features {
        match x {
            Features::Map(x) => Features::Map(layers::norm_act(x, self.norm.as_ref(), self.act)),
            Features::Flat(x) => Features::Flat(layers::norm_act(x, self.norm.as_ref(), self.act)),
        }
    }
}

/// Dropout: zeroes each unit with probability `p` in training only (and
/// rescales the rest by `1/(1-p)`).
#[derive(Module, Debug)]
pub struct DropoutLayer {
    pub p: f32,
}

impl DropoutLayer {
    pub fn forward(&self, x: Features, ctx: &mut Ctx) -> Features {
        if !ctx.training || self.p <= 0.0 {
            return x;
        }
        let keep = 1.0 - f64::from(self.p);
        let scale = (1.0 / keep) as f32;
        match x {
            Features::Map(x) => {
                let mask = x.random_like(Distribution::Bernoulli(keep));
                Features::Map(x * mask * scale)
            }
            Features::Flat(x) => {
                let mask = x.random_like(Distribution::Bernoulli(keep));
                Features::Flat(x * mask * scale)
            }
        }
    }
}
