//! The fractal block of Larsson et al. (2017):
//! `f_1(z) = conv(z)`, `f_{C+1}(z) = join(f_C(f_C(z)), conv(z))`, where the
//! join is the element-wise mean of its active inputs and `conv` is
//! conv3x3-BN-ReLU. As in the paper's figure, nested joins at the same depth
//! merge into one join over all the columns that reach it.
//!
//! Drop-path in training: per batch either *local* (each join input dropped
//! with probability `local_drop`, at least one kept) or *global* (one whole
//! column kept, chosen for the whole network). Any single column can be
//! evaluated alone.

use burn::prelude::*;

use super::conv::ConvLayer;
use super::layers::Builder;
use super::{Ctx, Features};
use crate::arch::LayerOptions;

/// A fractal block of `columns` columns.
///
/// # Shapes
/// `[B, C_in, H, W] -> [B, filters, H, W]`
#[derive(Module, Debug)]
pub struct FractalBlock {
    /// The shallowest column's single conv, `conv(z)`.
    pub unit: ConvLayer,
    /// `[f_C, f_C]` applied one after the other (empty when `columns == 1`).
    pub deep: Vec<FractalBlock>,
    pub columns: usize,
    pub local_drop: f32,
}

impl FractalBlock {
    pub fn new(b: &mut Builder, cin: usize, columns: usize, filters: usize, local_drop: f32, options: &LayerOptions) -> Self {
        let unit = ConvLayer::new(b, cin, filters, 3, 1, options);
        let deep = if columns > 1 {
            vec![
                FractalBlock::new(b, cin, columns - 1, filters, local_drop, options),
                FractalBlock::new(b, filters, columns - 1, filters, local_drop, options),
            ]
        } else {
            Vec::new()
        };
        Self { unit, deep, columns, local_drop }
    }

    fn conv(&self, z: Tensor<4>, ctx: &mut Ctx) -> Tensor<4> {
        self.unit.forward(Features::Map(z), ctx).into_map()
    }

    /// The outputs of every column reaching this block's final join,
    /// shallowest first.
    fn column_outputs(&self, z: Tensor<4>, ctx: &mut Ctx) -> Vec<Tensor<4>> {
        let shallow = self.conv(z.clone(), ctx);
        match self.deep.as_slice() {
            [first, second] => {
                let inner = first.column_outputs(z, ctx);
                let inner = join(inner, self.local_drop, ctx);
                let mut columns = vec![shallow];
                columns.extend(second.column_outputs(inner, ctx));
                columns
            }
            _ => vec![shallow],
        }
    }

    /// Column `k` (1 = shallowest, depth `2^(k-1)`) alone.
    fn single_column(&self, z: Tensor<4>, k: usize, ctx: &mut Ctx) -> Tensor<4> {
        match self.deep.as_slice() {
            [first, second] if k > 1 => {
                let inner = first.single_column(z, k - 1, ctx);
                second.single_column(inner, k - 1, ctx)
            }
            _ => self.conv(z, ctx),
        }
    }

    pub fn forward(&self, x: Features, ctx: &mut Ctx) -> Features {
        let z = x.into_map();
        if let Some(k) = ctx.fractal_column {
            let k = k.clamp(1, self.columns);
            ctx.record_probe("global_column", k as f32);
            return Features::Map(self.single_column(z, k, ctx));
        }
        ctx.join_inputs = (0, 0);
        let columns = self.column_outputs(z, ctx);
        let out = join(columns, self.local_drop, ctx);
        if ctx.training {
            let (kept, total) = ctx.join_inputs;
            ctx.record_probe("paths_kept", kept as f32 / total.max(1) as f32);
        }
        Features::Map(out)
    }
}

/// The join: element-wise mean of the inputs that local drop-path keeps (in
/// training), or of all inputs.
fn join(inputs: Vec<Tensor<4>>, local_drop: f32, ctx: &mut Ctx) -> Tensor<4> {
    let n = inputs.len();
    let keep = if ctx.training && !ctx.calibrate && local_drop > 0.0 && n > 1 {
        let keep = local_keep_mask(n, local_drop, &mut ctx.rng);
        ctx.join_inputs.0 += keep.iter().filter(|&&k| k).count();
        ctx.join_inputs.1 += n;
        keep
    } else {
        vec![true; n]
    };
    let mut sum: Option<Tensor<4>> = None;
    let mut count = 0usize;
    for (input, kept) in inputs.into_iter().zip(keep) {
        if kept {
            sum = Some(match sum {
                Some(s) => s + input,
                None => input,
            });
            count += 1;
        }
    }
    // A join always has an input and the mask always keeps one.
    sum.expect("a join keeps at least one input") / count as f32
}

/// Local drop-path keep decisions for one join of `n` inputs: each dropped
/// with probability `local_drop`, and one survivor drawn if all were dropped.
pub fn local_keep_mask(n: usize, local_drop: f32, rng: &mut crate::util::rng::Rng) -> Vec<bool> {
    let mut keep: Vec<bool> = (0..n).map(|_| !rng.bernoulli(f64::from(local_drop))).collect();
    if !keep.contains(&true) {
        let survivor = rng.below(n);
        keep[survivor] = true;
    }
    keep
}
