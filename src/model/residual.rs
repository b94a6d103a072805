//! The residual block of He et al. (2016): `H(x) = relu(F(x) + x)`, basic
//! (two 3x3 convs, or one to four with `branch_layers`) or bottleneck
//! (1x1-3x3-1x1), post-activation or pre-activation (He et al. 2016b:
//! BN-ReLU-conv, nothing after the addition), with the shortcut options A,
//! B and C, or none at all (the plain twin). Stochastic depth (Huang et al.
//! 2016): in training the whole residual branch is skipped with probability
//! `1 - p_l`; at test time it is scaled by `p_l`.

use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;

use super::branch::{self, BranchScalars, Survival};
use super::cpu_ops;
use super::layers::{self, Act, Builder};
use super::{Ctx, Features};
use crate::arch::{Activation, LayerOptions, Norm, ResidualInit, Shortcut};

/// How the input reaches the addition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShortcutPath {
    /// No shortcut: a plain pair of layers.
    Removed,
    Identity,
    /// Option A: subsample by `stride`, append `extra` zero channels.
    ZeroPad {
        stride: usize,
        extra: usize,
    },
    /// Options B and C: 1x1 conv (+ BN).
    Projection,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResidualConfig {
    pub preactivation: bool,
    pub path: ShortcutPath,
    pub act: Act,
    /// Stochastic-depth survival probability `p_l`.
    pub survival: Option<f32>,
}

/// A residual block.
///
/// # Shapes
/// `[B, C_in, H, W] -> [B, out, H/stride, W/stride]` where `out` is `filters`
/// (basic) or `4 filters` (bottleneck).
#[derive(Module, Debug)]
pub struct ResidualBlock {
    /// The residual branch `F`: 1 to 4 (basic, 2 by default) or 3
    /// (bottleneck) convolutions.
    pub convs: Vec<Conv2d>,
    /// BN after each conv (post-activation) or before each conv
    /// (pre-activation); empty without normalisation.
    pub norms: Vec<BatchNorm>,
    pub projection: Option<Conv2d>,
    pub projection_norm: Option<BatchNorm>,
    /// SkipInit's α or Fixup's scalars (none with the default or zero init).
    pub scalars: BranchScalars,
    #[module(skip)]
    pub config: ResidualConfig,
}

pub struct ResidualOptions {
    pub filters: usize,
    pub stride: usize,
    pub bottleneck: bool,
    pub preactivation: bool,
    pub shortcut: Shortcut,
    pub survival: Option<f32>,
    /// Convolutions in a basic block's branch (a bottleneck has 3).
    pub branch_layers: usize,
    /// How the branch starts.
    pub residual_init: ResidualInit,
    /// Fixup branches in the whole network (Fixup scales by their number).
    pub fixup_branches: usize,
}

impl ResidualOptions {
    /// The options of a residual block instance of the analysis (`None`
    /// for other kinds); `fixup_branches` only matters for the starting
    /// weights.
    pub fn of(inst: &crate::arch::Instance, fixup_branches: usize) -> Option<ResidualOptions> {
        match inst.kind {
            crate::arch::BlockKind::Residual {
                filters, stride, bottleneck, preactivation, shortcut, branch_layers, residual_init, ..
            } => Some(ResidualOptions {
                filters,
                stride,
                bottleneck,
                preactivation,
                shortcut,
                survival: inst.survival,
                branch_layers,
                residual_init,
                fixup_branches,
            }),
            _ => None,
        }
    }
}

/// Every `stride`-th row and column of `x` (option A's subsampling): a
/// stepped slice on the CPU backend (a view; its gradient is scattered
/// back by a stepped slice assignment), a 1×1 max pool elsewhere.
pub(super) fn subsample(x: &Tensor<4>, stride: usize) -> Tensor<4> {
    if cpu_ops::uses_lab_kernels(&x.device()) {
        let every = burn::tensor::Slice::new(0, None, stride as isize);
        return x.clone().slice([burn::tensor::Slice::full(), burn::tensor::Slice::full(), every, every]);
    }
    max_pool2d(x.clone(), MaxPoolOptions::new([1, 1]).with_stride([stride, stride]))
}

impl ResidualBlock {
    pub fn new(b: &mut Builder, cin: usize, o: &ResidualOptions, options: &LayerOptions) -> Self {
        let out = if o.bottleneck { 4 * o.filters } else { o.filters };
        // (in, out, kernel, stride) of each conv of the branch.
        let plan: Vec<(usize, usize, usize, usize)> = if o.bottleneck {
            vec![(cin, o.filters, 1, 1), (o.filters, o.filters, 3, o.stride), (o.filters, out, 1, 1)]
        } else {
            let mut plan = vec![(cin, out, 3, o.stride)];
            plan.extend((1..o.branch_layers).map(|_| (out, out, 3, 1)));
            plan
        };
        let bias = layers::bias_unless_norm(options);
        let mut convs: Vec<Conv2d> = plan.iter().map(|&(i, j, k, s)| layers::conv(b, i, j, k, s, bias, options.init)).collect();
        let mut norms: Vec<BatchNorm> = if options.norm == Norm::Batchnorm {
            plan.iter()
                .map(|&(i, j, _, _)| if o.preactivation { i } else { j })
                .map(|channels| burn::nn::BatchNormConfig::new(channels).init(b.device))
                .collect()
        } else {
            Vec::new()
        };
        let changes_shape = o.stride != 1 || cin != out;
        let path = match o.shortcut {
            Shortcut::None => ShortcutPath::Removed,
            Shortcut::A if changes_shape => ShortcutPath::ZeroPad { stride: o.stride, extra: out.saturating_sub(cin) },
            Shortcut::B if changes_shape => ShortcutPath::Projection,
            Shortcut::C => ShortcutPath::Projection,
            Shortcut::A | Shortcut::B => ShortcutPath::Identity,
        };
        let (projection, projection_norm) = if path == ShortcutPath::Projection {
            (Some(layers::conv(b, cin, out, 1, o.stride, bias, options.init)), layers::norm(b, out, options))
        } else {
            (None, None)
        };
        let survival = if path == ShortcutPath::Removed { None } else { o.survival.filter(|&p| p < 1.0) };
        // A plain twin has no branch to start at zero (the analysis refuses it).
        let init = if path == ShortcutPath::Removed { ResidualInit::Default } else { o.residual_init };
        branch::start_branch(init, &mut convs, &mut norms, o.preactivation, o.fixup_branches);
        Self {
            scalars: BranchScalars::new(init, convs.len(), b.device),
            convs,
            norms,
            projection,
            projection_norm,
            config: ResidualConfig { preactivation: o.preactivation, path, act: Act(options.activation), survival },
        }
    }

    fn norm(&self, i: usize) -> Option<&BatchNorm> {
        self.norms.get(i)
    }

    fn shortcut(&self, x: &Tensor<4>, preactivated: &Tensor<4>) -> Option<Tensor<4>> {
        // Fixup shifts the input of a shortcut that changes the shape by the
        // branch's first scalar bias, as its first layer sees it.
        let shifted = || self.scalars.bias(x.clone(), 0);
        match self.config.path {
            ShortcutPath::Removed => None,
            ShortcutPath::Identity => Some(x.clone()),
            ShortcutPath::ZeroPad { stride, extra } => {
                let input = shifted();
                if let Some(y) = cpu_ops::zero_pad_shortcut(&input, stride, extra) {
                    return Some(y);
                }
                let sub = if stride > 1 { subsample(&input, stride) } else { input };
                if extra == 0 {
                    Some(sub)
                } else {
                    let [batch, _, h, w] = sub.dims();
                    let zeros = Tensor::zeros([batch, extra, h, w], &sub.device());
                    Some(Tensor::cat(vec![sub, zeros], 1))
                }
            }
            ShortcutPath::Projection => {
                let conv = self.projection.as_ref()?;
                // He et al. 2016b project the pre-activated input.
                let input = if self.config.preactivation { preactivated.clone() } else { shifted() };
                Some(layers::conv_norm_act(conv, self.projection_norm.as_ref(), Act(Activation::Linear), input, None))
            }
        }
    }

    /// The residual branch `F`, given the (pre-activated, for pre-activation
    /// blocks) input. With `activated` (post-activation blocks only), the
    /// block's output instead: `act(F(x) + join)`, or `act(F(x))` without a
    /// join (a plain pair), the join and the activation taken in the last
    /// convolution's pass.
    fn branch(&self, input: Tensor<4>, join: Option<Tensor<4>>, activated: bool) -> Tensor<4> {
        let act = self.config.act;
        let last = self.convs.len() - 1;
        if self.scalars.is_fixup() {
            // Fixup (post-activation, no normalisation): a scalar bias
            // before each conv and each activation, the multiplier and a
            // last bias at the end.
            let mut h = input;
            for (i, conv) in self.convs.iter().enumerate() {
                h = layers::conv_forward(conv, self.scalars.bias(h, 2 * i));
                h = if i < last { act.apply(self.scalars.bias(h, 2 * i + 1)) } else { self.scalars.fixup_end(h, self.convs.len()) };
            }
            return h;
        }
        // The join reads the block's input as its identity shortcut and
        // runs its backward pass before the first convolution's, which
        // then adds the join's gradient of the input into its own.
        let first_input = if join.is_some() && self.config.path == ShortcutPath::Identity {
            cpu_ops::Input::SharedWithLaterJoin
        } else {
            cpu_ops::Input::Own
        };
        let mut h = input;
        let mut join = join;
        for (i, conv) in self.convs.iter().enumerate() {
            let reading = if i == 0 { first_input } else { cpu_ops::Input::Own };
            if self.config.preactivation {
                if i > 0 {
                    h = layers::norm_act(h, self.norm(i), act);
                }
                h = layers::conv_forward(conv, h);
            } else if i < last {
                h = layers::conv_norm_act_reading(conv, self.norm(i), act, h, None, reading);
            } else {
                let act = if activated { act } else { Act(Activation::Linear) };
                h = layers::conv_norm_act_reading(conv, self.norm(i), act, h, join.take(), reading);
            }
        }
        h
    }

    pub fn forward(&self, x: Features, ctx: &mut Ctx) -> Features {
        let x = x.into_map();
        let act = self.config.act;
        let finish = |y: Tensor<4>| Features::Map(if self.config.preactivation { y } else { act.apply(y) });
        let preactivated = if self.config.preactivation { layers::norm_act(x.clone(), self.norm(0), act) } else { x.clone() };
        let shortcut = self.shortcut(&x, &preactivated);
        let survival = Survival::decide(self.config.survival, shortcut.is_some(), ctx);
        if let (Survival::Dropped, Some(identity)) = (&survival, &shortcut) {
            return finish(identity.clone());
        }
        let input = if self.config.preactivation { preactivated } else { x };
        let route = ctx.gradient_route();
        let plain_end = !self.config.preactivation && matches!(survival, Survival::Kept) && self.scalars.is_empty();
        // A gradient route splits the join, which a plain pair has not.
        if plain_end && (shortcut.is_none() || route.is_none()) {
            // act(F(x) + s), or act(F(x)) for a plain pair, in the last
            // convolution's pass (burn's add, ReLU and their backward were
            // serial passes over the activations).
            return Features::Map(self.branch(input, shortcut, true));
        }
        let mut f = self.scalars.weigh(self.branch(input, None, false));
        if let Survival::Scaled(p) = survival {
            f = f * p;
        }
        finish(branch::join(f, shortcut, route))
    }

    /// The block removed at test time (Veit et al. 2016): the shortcut alone,
    /// with the activation a post-activation block applies after the
    /// addition. A block without a shortcut passes its input unchanged (the
    /// caller checks that the shapes allow it).
    pub fn shortcut_only(&self, x: Features) -> Features {
        let x = x.into_map();
        let act = self.config.act;
        let preactivated = if self.config.preactivation && self.config.path == ShortcutPath::Projection {
            layers::norm_act(x.clone(), self.norm(0), act)
        } else {
            x.clone()
        };
        match self.shortcut(&x, &preactivated) {
            Some(y) => Features::Map(if self.config.preactivation { y } else { act.apply(y) }),
            None => Features::Map(x),
        }
    }
}
