//! One block's output shape, parameter count and depth (weight layers on
//! its longest path), kind by kind: what the builder shows for each row
//! and what the model builder (one file per kind in `src/model`) makes.

use super::InferError;
use crate::arch::spec::{BlockKind, Carry, LayerOptions, Norm, ResidualInit, Shape, Shortcut};

/// Output shape, parameters and depth of one block instance.
pub fn infer_block(kind: &BlockKind, layer: &LayerOptions, input: Shape, classes: usize) -> Result<(Shape, usize, usize), InferError> {
    let norm = layer.norm;
    match *kind {
        BlockKind::Conv { filters, kernel, stride } => conv(input, filters, kernel, stride, norm),
        BlockKind::Dense { units } => {
            let n = input.numel();
            Ok((Shape::Flat { features: units }, n * units + norm_or_bias(units, norm), 1))
        }
        BlockKind::Residual { filters, stride, bottleneck, preactivation, shortcut, branch_layers, residual_init, .. } => {
            let branch = Branch { layers: branch_layers, bottleneck, preactivation, init: residual_init };
            residual(input, filters, stride, shortcut, branch, norm)
        }
        BlockKind::ResidualDense { units, branch_layers, preactivation, shortcut, residual_init, .. } => {
            let branch = Branch { layers: branch_layers, bottleneck: false, preactivation, init: residual_init };
            residual_dense(input, units, shortcut, branch, norm)
        }
        BlockKind::Highway { kernel, carry, .. } => highway(input, kernel, carry, norm),
        BlockKind::HighwayDense { carry, .. } => Ok(highway_dense(input, carry, norm)),
        BlockKind::Fractal { columns, filters, .. } => {
            let (c, h, w) = need_map(input, "a fractal block")?;
            Ok((Shape::map(filters, h, w), fractal_params(columns, c, filters, norm), 1 << (columns - 1)))
        }
        BlockKind::DenseBlock { layers, growth_rate, bottleneck } => dense_block(input, layers, growth_rate, bottleneck, norm),
        BlockKind::Transition { compression } => transition(input, compression, norm),
        BlockKind::MaxPool { size, stride } | BlockKind::AvgPool { size, stride } => pool(input, size, stride),
        BlockKind::GlobalAvgPool => {
            let (c, _, _) = need_map(input, "global average pooling")?;
            Ok((Shape::Flat { features: c }, 0, 0))
        }
        BlockKind::NormAct => {
            let channels = match input {
                Shape::Map { channels, .. } => channels,
                Shape::Flat { features } => features,
            };
            Ok((input, bn_params(channels, norm), 0))
        }
        BlockKind::Dropout { .. } => Ok((input, 0, 0)),
        BlockKind::Classifier => {
            let n = input.numel();
            Ok((Shape::Flat { features: classes }, n * classes + classes, 1))
        }
    }
}

/// A "same"-padded conv layer.
fn conv(input: Shape, filters: usize, kernel: usize, stride: usize, norm: Norm) -> Result<(Shape, usize, usize), InferError> {
    let (c, h, w) = need_map(input, "a conv layer")?;
    check_stride(stride, h, w)?;
    Ok((Shape::map(filters, conv_out(h, kernel, stride), conv_out(w, kernel, stride)), conv_params(c, filters, kernel, norm), 1))
}

/// The branch of a residual block, as its kind describes it.
#[derive(Clone, Copy)]
struct Branch {
    /// Weight layers of a basic branch (a bottleneck always holds 3).
    layers: usize,
    bottleneck: bool,
    preactivation: bool,
    init: ResidualInit,
}

/// A residual block of 3x3 convs (or a 1x1, 3x3, 1x1 bottleneck with four
/// times the filters out), with its shortcut.
fn residual(
    input: Shape,
    filters: usize,
    stride: usize,
    shortcut: Shortcut,
    branch: Branch,
    norm: Norm,
) -> Result<(Shape, usize, usize), InferError> {
    let (c, h, w) = need_map(input, "a residual block")?;
    check_stride(stride, h, w)?;
    let out = if branch.bottleneck { 4 * filters } else { filters };
    let changes_shape = stride != 1 || c != out;
    if shortcut == Shortcut::A && changes_shape && out < c {
        return Err(InferError::ShortcutReduces { c, out });
    }
    let bias = |ch: usize| if norm == Norm::None { ch } else { 0 };
    let bn = |ch: usize| bn_params(ch, norm);
    let (weights, biases, norms, depth) = if branch.bottleneck {
        let f = filters;
        let weights = c * f + 9 * f * f + f * out;
        let norms = if branch.preactivation { bn(c) + 2 * bn(f) } else { 2 * bn(f) + bn(out) };
        (weights, 2 * bias(f) + bias(out), norms, 3)
    } else {
        let extra = branch.layers.saturating_sub(1);
        let weights = 9 * c * out + extra * 9 * out * out;
        let norms = if branch.preactivation { bn(c) + extra * bn(out) } else { branch.layers * bn(out) };
        (weights, branch.layers * bias(out), norms, branch.layers)
    };
    let (added, replaced) = residual_init_params(branch.init, depth, biases);
    let mut params = weights + biases + norms + added - replaced;
    if projects(shortcut, changes_shape) {
        params += c * out + norm_or_bias(out, norm);
    }
    Ok((Shape::map(out, conv_out(h, 3, stride), conv_out(w, 3, stride)), params, depth))
}

/// A residual block of dense layers (the residual MLPs), with its shortcut.
fn residual_dense(input: Shape, units: usize, shortcut: Shortcut, branch: Branch, norm: Norm) -> Result<(Shape, usize, usize), InferError> {
    let d = input.numel();
    let changes_width = d != units;
    if shortcut == Shortcut::A && changes_width {
        return Err(InferError::ShortcutWidens { d, units });
    }
    let bias = |n: usize| if norm == Norm::None { n } else { 0 };
    let extra = branch.layers.saturating_sub(1);
    let weights = d * units + extra * units * units;
    let norms =
        if branch.preactivation { bn_params(d, norm) + extra * bn_params(units, norm) } else { branch.layers * bn_params(units, norm) };
    let biases = branch.layers * bias(units);
    let (added, replaced) = residual_init_params(branch.init, branch.layers, biases);
    let mut params = weights + biases + norms + added - replaced;
    if projects(shortcut, changes_width) {
        params += d * units + norm_or_bias(units, norm);
    }
    Ok((Shape::Flat { features: units }, params, branch.layers))
}

/// Whether a shortcut is a projection with weights of its own: option B
/// where the block changes shape, option C always.
fn projects(shortcut: Shortcut, changes_shape: bool) -> bool {
    match shortcut {
        Shortcut::None | Shortcut::A => false,
        Shortcut::B => changes_shape,
        Shortcut::C => true,
    }
}

/// Gate convolutions (or layers) of a highway layer: one when the carry
/// gate is `1 - T`, two when it is learnt on its own.
fn gates(carry: Carry) -> usize {
    match carry {
        Carry::Coupled => 1,
        Carry::Independent => 2,
    }
}

/// A conv highway layer: it keeps its input's shape.
fn highway(input: Shape, kernel: usize, carry: Carry, norm: Norm) -> Result<(Shape, usize, usize), InferError> {
    let (c, _, _) = need_map(input, "a conv highway layer")?;
    let params = conv_params(c, c, kernel, norm) + gates(carry) * conv_params(c, c, kernel, Norm::None);
    Ok((input, params, 1))
}

/// A dense highway layer: it keeps its input's width.
fn highway_dense(input: Shape, carry: Carry, norm: Norm) -> (Shape, usize, usize) {
    let d = input.numel();
    let params = d * d + norm_or_bias(d, norm) + gates(carry) * (d * d + d);
    (Shape::Flat { features: d }, params, 1)
}

/// A DenseNet block: each layer adds `growth_rate` channels, read by every
/// later layer.
fn dense_block(input: Shape, layers: usize, growth_rate: usize, bottleneck: bool, norm: Norm) -> Result<(Shape, usize, usize), InferError> {
    let (c, h, w) = need_map(input, "a dense block")?;
    let mut params = 0;
    let bias = |ch: usize| if norm == Norm::None { ch } else { 0 };
    for i in 0..layers {
        let cin = c + i * growth_rate;
        params += bn_params(cin, norm);
        if bottleneck {
            let width = 4 * growth_rate;
            params += cin * width + bias(width) + bn_params(width, norm) + 9 * width * growth_rate + bias(growth_rate);
        } else {
            params += 9 * cin * growth_rate + bias(growth_rate);
        }
    }
    let depth = layers * if bottleneck { 2 } else { 1 };
    Ok((Shape::map(c + layers * growth_rate, h, w), params, depth))
}

/// A DenseNet transition: a 1x1 conv that compresses the channels, then
/// 2x2 average pooling.
fn transition(input: Shape, compression: f32, norm: Norm) -> Result<(Shape, usize, usize), InferError> {
    let (c, h, w) = need_map(input, "a transition")?;
    let out = ((c as f32) * compression).floor() as usize;
    if out == 0 {
        return Err(InferError::NoChannelsLeft { compression, c });
    }
    if h < 2 || w < 2 {
        return Err(InferError::TransitionTooSmall { h, w });
    }
    let params = bn_params(c, norm) + c * out + if norm == Norm::None { out } else { 0 };
    Ok((Shape::map(out, h / 2, w / 2), params, 1))
}

/// Max or average pooling, without padding.
fn pool(input: Shape, size: usize, stride: usize) -> Result<(Shape, usize, usize), InferError> {
    let (c, h, w) = need_map(input, "pooling")?;
    if h < size || w < size {
        return Err(InferError::PoolTooLarge { size, h, w });
    }
    Ok((Shape::map(c, (h - size) / stride + 1, (w - size) / stride + 1), 0, 0))
}

/// Parameters a residual-branch initialisation adds to a block whose
/// branch has `layers` weight layers carrying `branch_biases` bias values:
/// SkipInit's α; Fixup's scalar biases (one before each weight layer, one
/// after each layer's output) and multiplier, which replace the branch's
/// per-channel biases.
fn residual_init_params(init: ResidualInit, layers: usize, branch_biases: usize) -> (usize, usize) {
    match init {
        ResidualInit::Default | ResidualInit::Zero => (0, 0),
        ResidualInit::Skipinit => (1, 0),
        ResidualInit::Fixup => (2 * layers + 1, branch_biases),
    }
}

/// Parameters of a `k`x`k` conv from `cin` to `cout` channels, followed by BN
/// (no bias) or not (bias).
pub fn conv_params(cin: usize, cout: usize, k: usize, norm: Norm) -> usize {
    cin * cout * k * k + norm_or_bias(cout, norm)
}

/// BN has 2 parameters per channel (gamma, beta); without it a layer has a bias.
fn norm_or_bias(channels: usize, norm: Norm) -> usize {
    match norm {
        Norm::Batchnorm => 2 * channels,
        Norm::None => channels,
    }
}

fn bn_params(channels: usize, norm: Norm) -> usize {
    match norm {
        Norm::Batchnorm => 2 * channels,
        Norm::None => 0,
    }
}

/// Spatial size after a "same"-padded `k`x`k` conv with stride `s`.
fn conv_out(size: usize, k: usize, s: usize) -> usize {
    (size + 2 * (k / 2) - k) / s + 1
}

fn need_map(shape: Shape, what: &'static str) -> Result<(usize, usize, usize), InferError> {
    match shape {
        Shape::Map { channels, height, width } => Ok((channels, height, width)),
        Shape::Flat { features } => Err(InferError::NeedsMap { what, features }),
    }
}

fn check_stride(stride: usize, h: usize, w: usize) -> Result<(), InferError> {
    if stride > 1 && h == 1 && w == 1 {
        Err(InferError::StrideOnOne(stride))
    } else if stride > h.max(w) {
        Err(InferError::StrideTooLarge { stride, h, w })
    } else {
        Ok(())
    }
}

/// Parameters of a fractal block: `f_1 = conv`, `f_{C+1} = join(f_C ∘ f_C, conv)`.
fn fractal_params(columns: usize, cin: usize, filters: usize, norm: Norm) -> usize {
    let unit = |cin: usize| conv_params(cin, filters, 3, norm);
    if columns <= 1 {
        return unit(cin);
    }
    fractal_params(columns - 1, cin, filters, norm) + fractal_params(columns - 1, filters, filters, norm) + unit(cin)
}
