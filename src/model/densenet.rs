//! DenseNet (Huang et al. 2017): the dense block, where each layer receives
//! the concatenation of every earlier feature map of the block and adds `k`
//! (growth rate) channels, with BN-ReLU-conv3x3 layers (DenseNet-B: a 1x1
//! conv to 4k channels first); and the transition, BN-ReLU-conv1x1 with
//! compression, then 2x2 average pooling.

use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;

use super::layers::{self, Act, Builder};
use super::{Ctx, Features};
use crate::arch::LayerOptions;

/// One layer of a dense block.
#[derive(Module, Debug)]
pub struct DenseUnit {
    pub bottleneck_norm: Option<BatchNorm>,
    pub bottleneck: Option<Conv2d>,
    pub norm: Option<BatchNorm>,
    pub conv: Conv2d,
    #[module(skip)]
    pub act: Act,
}

impl DenseUnit {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = layers::norm_act(x, self.bottleneck_norm.as_ref(), self.act);
        if let Some(conv) = &self.bottleneck {
            h = layers::conv_forward(conv, h);
            h = layers::norm_act(h, self.norm.as_ref(), self.act);
        }
        layers::conv_forward(&self.conv, h)
    }
}

/// A dense block.
///
/// # Shapes
/// `[B, C, H, W] -> [B, C + layers * growth_rate, H, W]`
#[derive(Module, Debug)]
pub struct DenseBlock {
    pub units: Vec<DenseUnit>,
}

impl DenseBlock {
    pub fn new(b: &mut Builder, cin: usize, count: usize, growth_rate: usize, bottleneck: bool, options: &LayerOptions) -> Self {
        let bias = layers::bias_unless_norm(options);
        let units = (0..count)
            .map(|i| {
                let channels = cin + i * growth_rate;
                let width = 4 * growth_rate;
                if bottleneck {
                    DenseUnit {
                        bottleneck_norm: layers::norm(b, channels, options),
                        bottleneck: Some(layers::conv(b, channels, width, 1, 1, bias, options.init)),
                        norm: layers::norm(b, width, options),
                        conv: layers::conv(b, width, growth_rate, 3, 1, bias, options.init),
                        act: Act(options.activation),
                    }
                } else {
                    DenseUnit {
                        bottleneck_norm: layers::norm(b, channels, options),
                        bottleneck: None,
                        norm: None,
                        conv: layers::conv(b, channels, growth_rate, 3, 1, bias, options.init),
                        act: Act(options.activation),
                    }
                }
            })
            .collect();
        Self { units }
    }

    pub fn forward(&self, x: Features, _ctx: &mut Ctx) -> Features {
        let mut features = x.into_map();
        for unit in &self.units {
            let new = unit.forward(features.clone());
            features = Tensor::cat(vec![features, new], 1);
        }
        Features::Map(features)
    }
}

/// A transition between dense blocks.
///
/// # Shapes
/// `[B, C, H, W] -> [B, floor(compression C), H/2, W/2]`
#[derive(Module, Debug)]
pub struct Transition {
    pub norm: Option<BatchNorm>,
    pub conv: Conv2d,
    #[module(skip)]
    pub act: Act,
}

impl Transition {
    pub fn new(b: &mut Builder, cin: usize, compression: f32, options: &LayerOptions) -> Self {
        let out = ((cin as f32) * compression).floor() as usize;
        Self {
            norm: layers::norm(b, cin, options),
            conv: layers::conv(b, cin, out, 1, 1, layers::bias_unless_norm(options), options.init),
            act: Act(options.activation),
        }
    }

    pub fn forward(&self, x: Features, _ctx: &mut Ctx) -> Features {
        let h = layers::conv_forward(&self.conv, layers::norm_act(x.into_map(), self.norm.as_ref(), self.act));
        Features::Map(avg_pool2d(h, AvgPoolOptions::new([2, 2]).with_stride([2, 2])))
    }
}
