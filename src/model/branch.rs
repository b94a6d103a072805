//! What the two residual blocks (convolutional and dense) share: how the
//! residual branch starts (the residual initialisations of
//! [`ResidualInit`]), the scalars some of them add, stochastic depth's
//! decision for a pass, and the join of branch and shortcut.
//!
//! Why a branch should start at zero: with He et al.'s initialisation each
//! residual branch adds about its input's variance to the stream, so the
//! output of `L` blocks has a variance that grows with `L` (logits of
//! standard deviation ~20 for ResNet-1202). A branch that starts at zero
//! makes every block start as its shortcut, and the whole net as a shallow
//! one, whatever its depth: zero-γ (Goyal et al. 2017), SkipInit (De &
//! Smith 2020), ReZero (Bachlechner et al. 2020), Fixup (Zhang et al. 2019).

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear};
use burn::prelude::*;

use super::Ctx;
use super::surgery::GradientRoute;
use crate::arch::ResidualInit;

/// The learnable scalars a residual initialisation adds to a block.
///
/// SkipInit: `alpha` (starts at 0) multiplies the branch. Fixup: `fixup_bias`
/// holds `2m` scalar biases for a branch of `m` weight layers — before layer
/// `i` (index `2i`) and after it (`2i + 1`: before the activation, or after
/// the multiplier for the last layer) — and `fixup_scale` (starts at 1)
/// multiplies the branch before its last bias.
#[derive(Module, Debug)]
pub struct BranchScalars {
    pub alpha: Option<Param<Tensor<1>>>,
    pub fixup_bias: Option<Param<Tensor<1>>>,
    pub fixup_scale: Option<Param<Tensor<1>>>,
}

impl BranchScalars {
    /// The scalars of `init` for a branch of `layers` weight layers.
    pub fn new(init: ResidualInit, layers: usize, device: &Device) -> Self {
        let scalar = |len: usize, value: f32| Some(Param::from_tensor(Tensor::full([len], value, device)));
        match init {
            ResidualInit::Default | ResidualInit::Zero => Self { alpha: None, fixup_bias: None, fixup_scale: None },
            ResidualInit::Skipinit => Self { alpha: scalar(1, 0.0), fixup_bias: None, fixup_scale: None },
            ResidualInit::Fixup => Self { alpha: None, fixup_bias: scalar(2 * layers, 0.0), fixup_scale: scalar(1, 1.0) },
        }
    }

    /// Whether the block has none (its branch joins as He et al. wrote it).
    pub fn is_empty(&self) -> bool {
        self.alpha.is_none() && self.fixup_bias.is_none() && self.fixup_scale.is_none()
    }

    pub fn is_fixup(&self) -> bool {
        self.fixup_bias.is_some()
    }

    /// `x + b` with Fixup's scalar bias number `index`; `x` without Fixup.
    pub fn bias<const D: usize>(&self, x: Tensor<D>, index: usize) -> Tensor<D> {
        match &self.fixup_bias {
            Some(bias) => x + bias.val().slice(index..index + 1).reshape([1; D]),
            None => x,
        }
    }

    /// The last weight layer's output `h` as it leaves a Fixup branch:
    /// `h · scale + b` (the branch's last bias); `h` otherwise.
    pub fn fixup_end<const D: usize>(&self, h: Tensor<D>, layers: usize) -> Tensor<D> {
        match &self.fixup_scale {
            Some(scale) => self.bias(h * scale.val().reshape([1; D]), 2 * layers - 1),
            None => h,
        }
    }

    /// The branch `f` as it reaches the addition: `α · f` with SkipInit.
    pub fn weigh<const D: usize>(&self, f: Tensor<D>) -> Tensor<D> {
        match &self.alpha {
            Some(alpha) => f * alpha.val().reshape([1; D]),
            None => f,
        }
    }
}

/// Fixup's factor on the weights of every branch layer but the last:
/// `L^(-1/(2m-2))` for `L` residual branches of `m` layers (1 when `m` is 1:
/// the only layer starts at zero).
pub fn fixup_factor(branches: usize, layers: usize) -> f32 {
    if layers < 2 || branches < 2 {
        return 1.0;
    }
    (branches as f64).powf(-1.0 / (2.0 * layers as f64 - 2.0)) as f32
}

/// Sets every value of a parameter to `value` (same shape, same device).
fn fill<const D: usize>(param: &mut Param<Tensor<D>>, value: f32) {
    let t = param.val();
    *param = Param::from_tensor(Tensor::full(t.dims(), value, &t.device()));
}

/// Multiplies a parameter by `factor`.
fn scale<const D: usize>(param: &mut Param<Tensor<D>>, factor: f32) {
    *param = Param::from_tensor((param.val() * factor).detach());
}

/// A weight layer of a residual branch, as the initialisations see it.
pub trait BranchLayer {
    /// Weights and bias set to zero.
    fn zero(&mut self);
    /// Weights multiplied by `factor`.
    fn scale_weights(&mut self, factor: f32);
    /// Drops the per-channel bias (Fixup's scalar biases replace it).
    fn drop_bias(&mut self);
}

/// Conv and dense layers alike: a `weight` and an optional `bias`.
macro_rules! branch_layer {
    ($($layer:ty),*) => {$(
        impl BranchLayer for $layer {
            fn zero(&mut self) {
                fill(&mut self.weight, 0.0);
                if let Some(bias) = &mut self.bias {
                    fill(bias, 0.0);
                }
            }
            fn scale_weights(&mut self, factor: f32) {
                scale(&mut self.weight, factor);
            }
            fn drop_bias(&mut self) {
                self.bias = None;
            }
        }
    )*};
}

branch_layer!(Conv2d, Linear);

/// Applies `init` to a branch of weight `layers` and their batch norms
/// (`norms[i]` after layer `i` in a post-activation block), after the
/// layers were drawn by their own rule (so twin nets consume the same
/// draws). `fixup_branches` is the number of Fixup branches in the net.
pub fn start_branch<L: BranchLayer>(
    init: ResidualInit,
    layers: &mut [L],
    norms: &mut [BatchNorm],
    preactivation: bool,
    fixup_branches: usize,
) {
    let Some(last) = layers.len().checked_sub(1) else {
        return;
    };
    match init {
        ResidualInit::Default | ResidualInit::Skipinit => {}
        ResidualInit::Zero => match norms.get_mut(last) {
            // Goyal et al.: the γ of the BN that ends the branch.
            Some(bn) if !preactivation => fill(&mut bn.gamma, 0.0),
            // The branch ends in a weight layer: that layer starts at zero.
            _ => layers[last].zero(),
        },
        ResidualInit::Fixup => {
            let factor = fixup_factor(fixup_branches, layers.len());
            for layer in layers.iter_mut() {
                layer.drop_bias();
                layer.scale_weights(factor);
            }
            layers[last].zero();
        }
    }
}

/// Stochastic depth's decision for one pass of a block with survival
/// probability `p`.
pub enum Survival {
    /// The branch runs and joins unchanged.
    Kept,
    /// Training dropped the branch: the block is its shortcut.
    Dropped,
    /// Evaluation: the branch is scaled by `p`.
    Scaled(f32),
}

impl Survival {
    /// Draws (in training) or reads (in evaluation) the decision, recording
    /// the drop probe. A block without a shortcut is always kept.
    pub fn decide(p: Option<f32>, has_shortcut: bool, ctx: &mut Ctx) -> Survival {
        match p {
            Some(p) if has_shortcut && ctx.training => {
                let keep = ctx.rng.bernoulli(f64::from(p));
                ctx.record_probe("dropped", if keep { 0.0 } else { 1.0 });
                if keep { Survival::Kept } else { Survival::Dropped }
            }
            Some(p) if has_shortcut => Survival::Scaled(p),
            _ => Survival::Kept,
        }
    }
}

/// The addition `f + s`, or `f` alone without a shortcut; the path-length
/// analysis lets the gradient through one side only.
pub fn join<const D: usize>(f: Tensor<D>, shortcut: Option<Tensor<D>>, route: Option<GradientRoute>) -> Tensor<D> {
    match shortcut {
        Some(s) => match route {
            Some(GradientRoute::Branch) => f + s.detach(),
            Some(GradientRoute::Shortcut) => f.detach() + s,
            None => f + s,
        },
        None => f,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{Architecture, BlockKind, BlockSpec, LayerOptions, LayerOverrides, Norm, Shape, Shortcut, presets};
    use crate::model::{Block, Features, Network};
    use crate::util::rng::Rng;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.try_into_vec_as::<f32>().unwrap()
    }

    fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    /// A net of one block (then pooling and a classifier) on `shape`.
    fn one_block(kind: BlockKind, norm: Norm, shape: Shape, device: &Device) -> Network {
        let layer = LayerOptions { norm, ..LayerOptions::default() };
        let mut blocks = vec![BlockSpec::new(kind.clone()).with_layer(layer)];
        if matches!(shape, Shape::Map { .. }) {
            blocks.push(BlockSpec::new(BlockKind::GlobalAvgPool));
        }
        blocks.push(BlockSpec::new(BlockKind::Classifier));
        let arch = Architecture { name: "one".into(), description: String::new(), stochastic_depth: None, blocks };
        let net = Network::build(&arch, shape, 3, device, 7).unwrap();
        assert_eq!(net.num_trainable(), net.meta.params, "{kind:?} {norm:?}");
        net
    }

    fn residual(filters: usize, stride: usize, bottleneck: bool, preactivation: bool, shortcut: Shortcut, init: ResidualInit) -> BlockKind {
        BlockKind::Residual { filters, stride, bottleneck, preactivation, shortcut, survival: None, branch_layers: 2, residual_init: init }
    }

    fn dense(units: usize, preactivation: bool, branch_layers: usize, init: ResidualInit) -> BlockKind {
        BlockKind::ResidualDense { units, branch_layers, preactivation, shortcut: Shortcut::B, survival: None, residual_init: init }
    }

    /// The block's output and its shortcut alone (`removed_forward`), in
    /// training (batch statistics) and in evaluation.
    fn outputs(net: &Network, shape: Shape, device: &Device) -> [(Vec<f32>, Vec<f32>); 2] {
        let mut rng = Rng::new(11);
        let values_in: Vec<f32> = (0..4 * shape.numel()).map(|_| rng.normal() as f32).collect();
        let x = match shape {
            Shape::Map { channels, height, width } => {
                Features::Map(Tensor::<4>::from_data(TensorData::new(values_in, [4, channels, height, width]), device))
            }
            Shape::Flat { features } => Features::Flat(Tensor::<2>::from_data(TensorData::new(values_in, [4, features]), device)),
        };
        let run = |net: &Network, x: Features, training: bool| {
            let mut ctx = Ctx::new(Rng::new(1));
            ctx.training = training;
            let out = net.blocks[0].forward(x.clone(), &mut ctx).into_flat();
            let shortcut = net.blocks[0].removed_forward(x).into_flat();
            (values(out), values(shortcut))
        };
        let valid = net.valid();
        let x_valid = match &x {
            Features::Map(t) => Features::Map(t.clone().inner()),
            Features::Flat(t) => Features::Flat(t.clone().inner()),
        };
        [run(net, x, true), run(&valid, x_valid, false)]
    }

    /// Zero-γ, SkipInit and Fixup start every block as its shortcut (with
    /// the activation after the addition): the branch adds exactly 0, in
    /// training and in evaluation, for every block variant they apply to;
    /// the default init does not.
    #[test]
    fn a_zero_start_makes_every_block_its_shortcut() {
        let device = Device::flex().autodiff();
        let map = Shape::map(4, 6, 6);
        let flat = Shape::Flat { features: 10 };
        let mut cases: Vec<(BlockKind, Norm, Shape)> = Vec::new();
        for init in [ResidualInit::Default, ResidualInit::Zero, ResidualInit::Skipinit] {
            for preactivation in [false, true] {
                cases.push((residual(4, 1, false, preactivation, Shortcut::A, init), Norm::Batchnorm, map));
                cases.push((residual(8, 2, false, preactivation, Shortcut::A, init), Norm::Batchnorm, map));
                cases.push((residual(2, 1, true, preactivation, Shortcut::B, init), Norm::Batchnorm, map));
                cases.push((residual(4, 1, false, preactivation, Shortcut::C, init), Norm::None, map));
                cases.push((dense(10, preactivation, 2, init), Norm::Batchnorm, flat));
                cases.push((dense(12, preactivation, 3, init), Norm::None, flat));
            }
        }
        for shortcut in [Shortcut::A, Shortcut::B] {
            cases.push((residual(8, 2, false, false, shortcut, ResidualInit::Fixup), Norm::None, map));
        }
        cases.push((residual(1, 1, true, false, Shortcut::A, ResidualInit::Fixup), Norm::None, map));
        cases.push((dense(12, false, 2, ResidualInit::Fixup), Norm::None, flat));
        cases.push((dense(10, false, 1, ResidualInit::Fixup), Norm::None, flat));
        for (kind, norm, shape) in cases {
            let net = one_block(kind.clone(), norm, shape, &device);
            for (mode, (out, shortcut)) in ["training", "evaluation"].iter().zip(outputs(&net, shape, &device)) {
                let difference = max_abs_diff(&out, &shortcut);
                if kind.residual_init() == Some(ResidualInit::Default) {
                    assert!(difference > 1e-3, "{kind:?} {norm:?} ({mode}): the default init already equals the shortcut");
                } else {
                    assert_eq!(difference, 0.0, "{kind:?} {norm:?} ({mode})");
                }
            }
        }
    }

    /// Fixup on resnet-20 and resnet-56 without BN: the first conv of each
    /// branch is He's draw times `L^(-1/2)` (the same draws as the default
    /// init), the last conv and the classifier start at zero, and the
    /// branch convs have no bias of their own.
    #[test]
    fn fixup_scales_each_branch_by_the_depth() {
        let device = Device::flex();
        let shape = Shape::map(1, 8, 8);
        for (name, branches) in [("resnet-20", 9usize), ("resnet-56", 27)] {
            let build = |init: ResidualInit| {
                let mut arch = presets::build(name, shape).unwrap();
                let overrides = LayerOverrides { norm: Some(Norm::None), residual_init: Some(init), ..LayerOverrides::default() };
                arch.apply_overrides(&overrides);
                let net = Network::build(&arch, shape, 10, &device, 5).unwrap();
                assert_eq!(net.num_trainable(), net.meta.params, "{name} {init:?}");
                net
            };
            let (default, fixup) = (build(ResidualInit::Default), build(ResidualInit::Fixup));
            let factor = (branches as f32).powf(-0.5);
            let mut seen = 0;
            for (d, f) in default.blocks.iter().zip(&fixup.blocks) {
                match (d, f) {
                    (Block::Residual(d), Block::Residual(f)) => {
                        seen += 1;
                        let expected: Vec<f32> = values(d.convs[0].weight.val()).iter().map(|w| w * factor).collect();
                        assert!(max_abs_diff(&values(f.convs[0].weight.val()), &expected) < 1e-7, "{name}");
                        assert!(values(f.convs[1].weight.val()).iter().all(|&w| w == 0.0), "{name}");
                        assert!(f.convs.iter().all(|c| c.bias.is_none()) && d.convs.iter().all(|c| c.bias.is_some()));
                        assert_eq!(values(f.scalars.fixup_bias.as_ref().unwrap().val()), vec![0.0; 4]);
                        assert_eq!(values(f.scalars.fixup_scale.as_ref().unwrap().val()), vec![1.0]);
                    }
                    (Block::Classifier(d), Block::Classifier(f)) => {
                        assert!(values(d.linear.weight.val()).iter().any(|&w| w != 0.0));
                        assert!(values(f.linear.weight.val()).iter().all(|&w| w == 0.0), "{name}");
                    }
                    _ => {}
                }
            }
            assert_eq!(seen, branches, "{name}");
        }
    }

    #[test]
    fn fixup_scales_by_the_number_of_branches() {
        // Zhang et al.: L^(-1/(2m-2)); ResNet-110 has 54 two-layer branches.
        assert!((fixup_factor(54, 2) - 54f32.powf(-0.5)).abs() < 1e-7);
        assert!((fixup_factor(600, 3) - 600f32.powf(-0.25)).abs() < 1e-7);
        assert_eq!(fixup_factor(600, 1), 1.0);
        assert_eq!(fixup_factor(1, 2), 1.0);
        // Deeper nets start with smaller branch layers.
        assert!(fixup_factor(600, 2) < fixup_factor(54, 2));
    }
}
