//! The fully connected residual block: `y = act(F(x) + s(x))` with `F`
//! made of `branch_layers` dense layers (He et al. 2016: "two weight
//! layers, dense or convolutional"), `s` the identity, or a dense
//! projection (+ BN) where the width changes (option B) or in every block
//! (option C), or nothing (the plain twin). Pre-activation (He et al.
//! 2016b): BN-activation before each dense layer and nothing after the
//! addition, so the identity path carries signal and gradient untouched
//! whatever the activation. Stochastic depth (Huang et al. 2016) as in the
//! convolutional block: in training the branch is skipped with probability
//! `1 - p_l`; at test time it is scaled by `p_l`.

use burn::nn::{BatchNorm, Linear};
use burn::prelude::*;

use super::branch::{self, BranchScalars, Survival};
use super::layers::{self, Act, Builder};
use super::{Ctx, Features};
use crate::arch::{Activation, LayerOptions, Norm, ResidualInit, Shortcut};

/// How the input reaches the addition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenseShortcut {
    /// No shortcut: a plain stack of dense layers.
    Removed,
    Identity,
    /// A dense layer (+ BN) to the block's width.
    Projection,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResidualDenseConfig {
    pub preactivation: bool,
    pub path: DenseShortcut,
    pub act: Act,
    /// Stochastic-depth survival probability `p_l`.
    pub survival: Option<f32>,
}

/// What the block is built from (the spec's options).
pub struct ResidualDenseOptions {
    pub units: usize,
    pub branch_layers: usize,
    pub preactivation: bool,
    pub shortcut: Shortcut,
    pub survival: Option<f32>,
    /// How the branch starts.
    pub residual_init: ResidualInit,
    /// Fixup branches in the whole network (Fixup scales by their number).
    pub fixup_branches: usize,
}

impl ResidualDenseOptions {
    /// The options of a dense residual block instance of the analysis
    /// (`None` for other kinds); `fixup_branches` only matters for the
    /// starting weights.
    pub fn of(inst: &crate::arch::Instance, fixup_branches: usize) -> Option<ResidualDenseOptions> {
        match inst.kind {
            crate::arch::BlockKind::ResidualDense { units, branch_layers, preactivation, shortcut, residual_init, .. } => {
                Some(ResidualDenseOptions {
                    units,
                    branch_layers,
                    preactivation,
                    shortcut,
                    survival: inst.survival,
                    residual_init,
                    fixup_branches,
                })
            }
            _ => None,
        }
    }
}

/// A fully connected residual block.
///
/// # Shapes
/// `[B, ...] -> [B, units]` (the input is flattened first).
#[derive(Module, Debug)]
pub struct ResidualDense {
    /// The residual branch `F`: 1 to 4 dense layers.
    pub linears: Vec<Linear>,
    /// BN after each layer (post-activation) or before each layer
    /// (pre-activation); empty without normalisation.
    pub norms: Vec<BatchNorm>,
    pub projection: Option<Linear>,
    pub projection_norm: Option<BatchNorm>,
    /// SkipInit's α or Fixup's scalars (none with the default or zero init).
    pub scalars: BranchScalars,
    #[module(skip)]
    pub config: ResidualDenseConfig,
}

impl ResidualDense {
    pub fn new(b: &mut Builder, din: usize, o: &ResidualDenseOptions, options: &LayerOptions) -> Self {
        let units = o.units;
        let widths: Vec<(usize, usize)> = (0..o.branch_layers).map(|i| (if i == 0 { din } else { units }, units)).collect();
        let bias = layers::bias_unless_norm(options);
        let mut linears: Vec<Linear> = widths.iter().map(|&(i, j)| layers::linear(b, i, j, bias, options.init)).collect();
        let mut norms: Vec<BatchNorm> = if options.norm == Norm::Batchnorm {
            widths
                .iter()
                .map(|&(i, j)| if o.preactivation { i } else { j })
                .map(|n| burn::nn::BatchNormConfig::new(n).init(b.device))
                .collect()
        } else {
            Vec::new()
        };
        let changes_width = din != units;
        let path = match o.shortcut {
            Shortcut::None => DenseShortcut::Removed,
            Shortcut::B if changes_width => DenseShortcut::Projection,
            Shortcut::C => DenseShortcut::Projection,
            // Option A on an unchanged width is the identity (a changed
            // width is refused by the analysis).
            Shortcut::A | Shortcut::B => DenseShortcut::Identity,
        };
        let (projection, projection_norm) = if path == DenseShortcut::Projection {
            (Some(layers::linear(b, din, units, bias, options.init)), layers::norm(b, units, options))
        } else {
            (None, None)
        };
        let survival = if path == DenseShortcut::Removed { None } else { o.survival.filter(|&p| p < 1.0) };
        // A plain twin has no branch to start at zero (the analysis refuses it).
        let init = if path == DenseShortcut::Removed { ResidualInit::Default } else { o.residual_init };
        branch::start_branch(init, &mut linears, &mut norms, o.preactivation, o.fixup_branches);
        Self {
            scalars: BranchScalars::new(init, linears.len(), b.device),
            linears,
            norms,
            projection,
            projection_norm,
            config: ResidualDenseConfig { preactivation: o.preactivation, path, act: Act(options.activation), survival },
        }
    }

    fn shortcut(&self, x: &Tensor<2>, preactivated: &Tensor<2>) -> Option<Tensor<2>> {
        match self.config.path {
            DenseShortcut::Removed => None,
            DenseShortcut::Identity => Some(x.clone()),
            DenseShortcut::Projection => {
                let linear = self.projection.as_ref()?;
                // As in the convolutional block, a pre-activation block
                // projects the pre-activated input.
                // Fixup shifts the projection's input by the branch's first bias.
                let input = if self.config.preactivation { preactivated.clone() } else { self.scalars.bias(x.clone(), 0) };
                Some(layers::apply_norm(linear.forward(input), &self.projection_norm))
            }
        }
    }

    /// The residual branch `F`, given the (pre-activated, for pre-activation
    /// blocks) input.
    fn branch(&self, input: Tensor<2>) -> Tensor<2> {
        let act = self.config.act;
        let last = self.linears.len() - 1;
        let mut h = input;
        if self.scalars.is_fixup() {
            // Fixup (post-activation, no normalisation), as in the
            // convolutional block.
            for (i, linear) in self.linears.iter().enumerate() {
                h = linear.forward(self.scalars.bias(h, 2 * i));
                h = if i < last { act.apply(self.scalars.bias(h, 2 * i + 1)) } else { self.scalars.fixup_end(h, self.linears.len()) };
            }
            return h;
        }
        for (i, linear) in self.linears.iter().enumerate() {
            if self.config.preactivation {
                if i > 0 {
                    h = layers::norm_act(h, self.norms.get(i), act);
                }
                h = linear.forward(h);
            } else {
                h = linear.forward(h);
                let after = if i < last { act } else { Act(Activation::Linear) };
                h = layers::norm_act(h, self.norms.get(i), after);
            }
        }
        h
    }

    pub fn forward(&self, x: Features, ctx: &mut Ctx) -> Features {
        let x = x.into_flat();
        let act = self.config.act;
        let preactivated = if self.config.preactivation { layers::norm_act(x.clone(), self.norms.first(), act) } else { x.clone() };
        let shortcut = self.shortcut(&x, &preactivated);
        let finish = |y: Tensor<2>| Features::Flat(if self.config.preactivation { y } else { act.apply(y) });
        let survival = Survival::decide(self.config.survival, shortcut.is_some(), ctx);
        if let (Survival::Dropped, Some(identity)) = (&survival, &shortcut) {
            return finish(identity.clone());
        }
        let mut f = self.scalars.weigh(self.branch(if self.config.preactivation { preactivated } else { x }));
        if let Survival::Scaled(p) = survival {
            f = f * p;
        }
        finish(branch::join(f, shortcut, ctx.gradient_route()))
    }

    /// The block removed at test time (the lesion study): its shortcut
    /// alone, with the activation the block applies after the addition.
    pub fn shortcut_only(&self, x: Features) -> Features {
        let x = x.into_flat();
        let act = self.config.act;
        let preactivated = if self.config.preactivation && self.config.path == DenseShortcut::Projection {
            layers::norm_act(x.clone(), self.norms.first(), act)
        } else {
            x.clone()
        };
        match self.shortcut(&x, &preactivated) {
            Some(y) => Features::Flat(if self.config.preactivation { y } else { act.apply(y) }),
            None => Features::Flat(x),
        }
    }
}
