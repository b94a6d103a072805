//! Floating-point work per training image, counted from the architecture,
//! for the bench's fraction of the machine's peak.
//!
//! Derivation: a weight layer's forward pass is one multiply-add per
//! weight and output position — a `k`x`k` convolution from `c_in` to
//! `c_out` channels with an `h_out`x`w_out` output does
//! `h_out · w_out · c_out · c_in · k²`, a dense layer `d_in · d_out`. Its
//! backward pass does the same twice over: once for the gradient of its
//! input, once for that of its weights. So a training step costs three
//! times the forward multiply-adds, less the first layer's input gradient
//! (nothing needs the image's gradient), and a multiply-add is two FLOPs.
//! Batch norm, activations, pooling and the residual additions are a few
//! operations per value, not per weight: left out (under 2 % for the CIFAR
//! nets). Example: ResNet-20 on 3x32x32 does 40.55 M multiply-adds forward,
//! 81.1 MFLOP, and about 242 MFLOP per training image.

use crate::arch::{Analysis, BlockKind, Instance, Shape};

/// Forward multiply-adds of one block, and those of its first weight layer
/// (the one whose input gradient the first block of a net skips); `None`
/// for blocks the count does not cover (highway, fractal, dense blocks).
fn block_macs(inst: &Instance, classes: usize) -> Option<(f64, f64)> {
    let spatial = |s: Shape| match s {
        Shape::Map { height, width, .. } => (height * width) as f64,
        Shape::Flat { .. } => 1.0,
    };
    let channels = |s: Shape| match s {
        Shape::Map { channels, .. } => channels as f64,
        Shape::Flat { features } => features as f64,
    };
    let (cin, out_positions, cout) = (channels(inst.input), spatial(inst.output), channels(inst.output));
    match inst.kind {
        BlockKind::Conv { kernel, .. } => {
            let macs = out_positions * cout * cin * (kernel * kernel) as f64;
            Some((macs, macs))
        }
        BlockKind::Dense { units } => {
            let macs = inst.input.numel() as f64 * units as f64;
            Some((macs, macs))
        }
        BlockKind::Classifier => {
            let macs = inst.input.numel() as f64 * classes as f64;
            Some((macs, macs))
        }
        BlockKind::Residual { bottleneck, branch_layers, filters, .. } => {
            let (first, rest) = if bottleneck {
                let f = filters as f64;
                // 1x1 at the input's size, the 3x3 (with the stride), 1x1 up.
                let first = spatial(inst.input) * f * cin;
                (first, out_positions * (f * f * 9.0 + f * cout))
            } else {
                let first = out_positions * cout * cin * 9.0;
                (first, out_positions * cout * cout * 9.0 * branch_layers.saturating_sub(1) as f64)
            };
            // A projection shortcut (options B, C) is a 1x1 convolution.
            let projection = if inst.params > 0 && has_projection(inst) { out_positions * cout * cin } else { 0.0 };
            Some((first + rest + projection, first))
        }
        BlockKind::ResidualDense { units, branch_layers, .. } => {
            let (din, u) = (inst.input.numel() as f64, units as f64);
            let first = din * u;
            let projection = if has_projection(inst) { din * u } else { 0.0 };
            Some((first + u * u * branch_layers.saturating_sub(1) as f64 + projection, first))
        }
        BlockKind::MaxPool { .. }
        | BlockKind::AvgPool { .. }
        | BlockKind::GlobalAvgPool
        | BlockKind::NormAct
        | BlockKind::Dropout { .. } => Some((0.0, 0.0)),
        BlockKind::Highway { .. }
        | BlockKind::HighwayDense { .. }
        | BlockKind::Fractal { .. }
        | BlockKind::DenseBlock { .. }
        | BlockKind::Transition { .. } => None,
    }
}

/// Whether a residual block's shortcut is a projection (a weight layer).
fn has_projection(inst: &Instance) -> bool {
    use crate::arch::Shortcut;
    let changes = inst.input != inst.output;
    match inst.kind {
        BlockKind::Residual { shortcut, .. } | BlockKind::ResidualDense { shortcut, .. } => match shortcut {
            Shortcut::C => true,
            Shortcut::B => changes,
            Shortcut::A | Shortcut::None => false,
        },
        _ => false,
    }
}

/// FLOPs of one training image (forward and backward), or `None` when the
/// net has blocks the count does not cover.
pub fn training_flops_per_image(analysis: &Analysis) -> Option<f64> {
    let mut forward = 0.0;
    let mut first_weight_layer = None;
    for inst in &analysis.instances {
        let (macs, first) = block_macs(inst, analysis.classes)?;
        if macs > 0.0 && first_weight_layer.is_none() {
            first_weight_layer = Some(first);
        }
        forward += macs;
    }
    Some(2.0 * (3.0 * forward - first_weight_layer.unwrap_or(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::presets;

    fn flops(name: &str, input: Shape) -> f64 {
        let arch = presets::build(name, input).unwrap();
        training_flops_per_image(&arch.analyse(input, 10)).unwrap()
    }

    #[test]
    fn resnet_20_costs_what_its_layers_add_up_to() {
        let cifar = Shape::map(3, 32, 32);
        // Forward, by hand: the stem 32·32·16·3·9, stage 1: 6 convs of
        // 32·32·16·16·9, stage 2: 16→32 at 16x16 then 5 of 32→32,
        // stage 3: 32→64 at 8x8 then 5 of 64→64, the classifier 64·10.
        let stem: f64 = 32.0 * 32.0 * 16.0 * 3.0 * 9.0;
        let stage1 = 6.0 * 32.0 * 32.0 * 16.0 * 16.0 * 9.0;
        let stage2 = 16.0 * 16.0 * 32.0 * 9.0 * (16.0 + 5.0 * 32.0);
        let stage3 = 8.0 * 8.0 * 64.0 * 9.0 * (32.0 + 5.0 * 64.0);
        let forward = stem + stage1 + stage2 + stage3 + 640.0;
        assert!((forward - 40.55e6).abs() < 0.01e6, "{forward}");
        assert_eq!(flops("resnet-20", cifar), 2.0 * (3.0 * forward - stem));
        // The plain twin does the same work; ResNet-56 about three times it.
        assert_eq!(flops("plain-20", cifar), flops("resnet-20", cifar));
        let ratio = flops("resnet-56", cifar) / flops("resnet-20", cifar);
        assert!((3.0..3.2).contains(&ratio), "{ratio}");
        // Nets the count does not cover say so.
        let fractal = presets::build("fractal-3", cifar).unwrap();
        assert_eq!(training_flops_per_image(&fractal.analyse(cifar, 10)), None);
    }
}
