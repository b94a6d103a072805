//! Batch normalisation in training mode (statistics of the batch itself),
//! optionally followed by a ReLU, over NCHW `f32` slices: two passes forward
//! (statistics, then normalise-scale-shift-clamp) and two passes backward,
//! where burn's generic composition makes a dozen.
//!
//! With `x̂ = (x − μ)/σ`, `z = γ·x̂ + β` and `y = relu(z)` (or `y = z`), and
//! `dz = dy·[z > 0]`, the gradients over the `M = N·H·W` values of a channel
//! are `dβ = Σ dz`, `dγ = Σ dz·x̂` and `dx = γ/σ · (dz − dβ/M − x̂·dγ/M)`.
//! Only `x` is kept for the backward pass: the ReLU's mask is recomputed
//! from it.

use std::mem::MaybeUninit;

use super::simd::{LANES, vectorized};
use super::{par_filled, par_filled_map};

/// The batch's per-channel mean and biased variance (what burn's
/// `batch_norm_train` returns, and what feeds the running statistics).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNormStats {
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
}

impl BatchNormStats {
    /// From each channel's `(mean, variance)`.
    fn from_channels(per_channel: &[(f32, f32)]) -> BatchNormStats {
        BatchNormStats { mean: per_channel.iter().map(|p| p.0).collect(), var: per_channel.iter().map(|p| p.1).collect() }
    }
}

/// The shape `[N, C, plane]` of a batch-norm input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormShape {
    pub batch: usize,
    pub channels: usize,
    /// Values per channel per example (`H·W`; 1 for flat features).
    pub plane: usize,
}

impl NormShape {
    fn len(&self) -> usize {
        self.batch * self.channels * self.plane
    }

    fn count(&self) -> f64 {
        (self.batch * self.plane) as f64
    }

    /// Floats per image, `C·plane`.
    fn image(&self) -> usize {
        self.channels * self.plane
    }

    /// Image `n`'s floats in the batch.
    fn image_span(&self, n: usize) -> std::ops::Range<usize> {
        n * self.image()..(n + 1) * self.image()
    }

    /// Channel `c`'s plane within one image.
    fn plane_span(&self, c: usize) -> std::ops::Range<usize> {
        c * self.plane..(c + 1) * self.plane
    }

    /// The `N` slices of channel `c`.
    fn channel<'a>(&self, data: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> + 'a {
        let shape = *self;
        (0..self.batch).map(move |n| &data[shape.image_span(n)][shape.plane_span(c)])
    }
}

vectorized! {
    /// Σ (x − shift) and Σ (x − shift)², in lanes.
    fn moments(values: &[f32], shift: f32) -> (f32, f32) {
        let mut s1 = [0.0f32; LANES];
        let mut s2 = [0.0f32; LANES];
        let mut chunks = values.chunks_exact(LANES);
        for chunk in &mut chunks {
            for l in 0..LANES {
                let d = chunk[l] - shift;
                s1[l] += d;
                s2[l] += d * d;
            }
        }
        for (l, &v) in chunks.remainder().iter().enumerate() {
            let d = v - shift;
            s1[l] += d;
            s2[l] += d * d;
        }
        (s1.iter().sum(), s2.iter().sum())
    }
}

vectorized! {
    /// `out = x·a + b`, clamped at 0 when `relu` (`out` and `x` have the
    /// same length: every element is written).
    fn affine(out: &mut [MaybeUninit<f32>], x: &[f32], a: f32, b: f32, relu: bool) {
        assert_eq!(out.len(), x.len());
        if relu {
            for (o, &v) in out.iter_mut().zip(x) {
                o.write((v * a + b).max(0.0));
            }
        } else {
            for (o, &v) in out.iter_mut().zip(x) {
                o.write(v * a + b);
            }
        }
    }
}

vectorized! {
    /// Σ dz and Σ dz·(x − μ), where `dz = dy` masked by `x·a + b > 0` when
    /// `relu`.
    fn grad_moments(x: &[f32], dy: &[f32], a: f32, b: f32, mean: f32, relu: bool) -> (f32, f32) {
        let mut s1 = [0.0f32; LANES];
        let mut s2 = [0.0f32; LANES];
        let mut chunks = x.chunks_exact(LANES).zip(dy.chunks_exact(LANES));
        for (xc, gc) in &mut chunks {
            for l in 0..LANES {
                let dz = if !relu || xc[l] * a + b > 0.0 { gc[l] } else { 0.0 };
                s1[l] += dz;
                s2[l] += dz * (xc[l] - mean);
            }
        }
        let tail = x.len() - x.len() % LANES;
        for (l, (&xv, &gv)) in x[tail..].iter().zip(&dy[tail..]).enumerate() {
            let dz = if !relu || xv * a + b > 0.0 { gv } else { 0.0 };
            s1[l] += dz;
            s2[l] += dz * (xv - mean);
        }
        (s1.iter().sum(), s2.iter().sum())
    }
}

/// Per-channel constants of the input gradient:
/// `dx = scale·dz − offset − slope·(x − μ)`.
#[derive(Clone, Copy)]
struct InputGrad {
    a: f32,
    b: f32,
    mean: f32,
    scale: f32,
    offset: f32,
    slope: f32,
}

vectorized! {
    /// Writes every element of `out` (`out`, `x` and `dy` have one length).
    fn grad_input(out: &mut [MaybeUninit<f32>], x: &[f32], dy: &[f32], k: InputGrad, relu: bool) {
        assert!(out.len() == x.len() && x.len() == dy.len());
        for ((o, &xv), &gv) in out.iter_mut().zip(x).zip(dy) {
            let dz = if !relu || xv * k.a + k.b > 0.0 { gv } else { 0.0 };
            o.write(k.scale * dz - k.offset - k.slope * (xv - k.mean));
        }
    }
}

fn check(shape: &NormShape, x: usize, gamma: usize, beta: usize) {
    assert_eq!(x, shape.len(), "input length does not match {shape:?}");
    assert_eq!(gamma, shape.channels, "gamma length does not match {shape:?}");
    assert_eq!(beta, shape.channels, "beta length does not match {shape:?}");
}

/// Per-channel `a = γ/σ`, `b = β − μ·a`.
pub fn scale_shift(stats: &BatchNormStats, gamma: &[f32], beta: &[f32], epsilon: f64) -> (Vec<f32>, Vec<f32>) {
    let a: Vec<f32> = gamma.iter().zip(&stats.var).map(|(&g, &v)| (g as f64 / (v as f64 + epsilon).sqrt()) as f32).collect();
    let b = beta.iter().zip(&stats.mean).zip(&a).map(|((&bt, &m), &a)| bt - m * a).collect();
    (a, b)
}

/// One plane's (one image's channel's) moments about its first value:
/// `[shift, Σ (x − shift), Σ (x − shift)²]`. A forward convolution can take
/// them while each output image is in cache
/// ([`super::conv::forward_with_moments`]), so that the batch norm after
/// it needs no pass of its own over the batch.
pub fn plane_moments(values: &[f32]) -> [f32; 3] {
    let shift = values.first().copied().unwrap_or(0.0);
    let (a, b) = moments(values, shift);
    [shift, a, b]
}

/// A channel's mean and biased variance from the moments of its planes
/// (`plane` values each), merged in order in f64 (Chan et al.'s pairwise
/// update): the same bits whoever computed the moments.
fn merge(plane: usize, planes: impl Iterator<Item = [f32; 3]>) -> (f32, f32) {
    if plane == 0 {
        return (0.0, 0.0);
    }
    let c = plane as f64;
    let (mut count, mut mean, mut m2) = (0.0f64, 0.0f64, 0.0f64);
    for [shift, a, b] in planes {
        let (a, b) = (a as f64, b as f64);
        let m = shift as f64 + a / c;
        let total = count + c;
        let delta = m - mean;
        mean += delta * c / total;
        m2 += (b - a * a / c).max(0.0) + delta * delta * count * c / total;
        count = total;
    }
    if count == 0.0 {
        return (0.0, 0.0);
    }
    (mean as f32, (m2 / count).max(0.0) as f32)
}

/// The batch's mean and biased variance per channel.
pub fn statistics(shape: &NormShape, x: &[f32]) -> BatchNormStats {
    BatchNormStats::from_channels(&super::team::map(shape.channels, |c| merge(shape.plane, shape.channel(x, c).map(plane_moments))))
}

/// [`statistics`] from every plane's [`plane_moments`], `[N][C]`: the same
/// bits as [`statistics`] of the planes themselves.
pub fn statistics_from_moments(shape: &NormShape, moments: &[[f32; 3]]) -> BatchNormStats {
    assert_eq!(moments.len(), shape.batch * shape.channels, "moments do not match {shape:?}");
    let per_channel: Vec<(f32, f32)> =
        (0..shape.channels).map(|c| merge(shape.plane, (0..shape.batch).map(|n| moments[n * shape.channels + c]))).collect();
    BatchNormStats::from_channels(&per_channel)
}

/// `known`, the batch's statistics already taken from `x` by the
/// convolution that wrote it ([`statistics_from_moments`]), or else
/// [`statistics`] of `x` (also where `known` has the wrong number of
/// channels).
fn known_or_computed(shape: &NormShape, x: &[f32], known: Option<BatchNormStats>) -> BatchNormStats {
    match known {
        Some(stats) if stats.mean.len() == shape.channels && stats.var.len() == shape.channels => stats,
        _ => statistics(shape, x),
    }
}

/// Normalises `x` (`[N, C, plane]`) with the batch's own statistics
/// (`known`, or computed here), scales by `gamma`, shifts by `beta`, and
/// applies a ReLU when `relu`. Returns the output and the statistics.
pub fn forward_train(
    shape: &NormShape,
    x: &[f32],
    known: Option<BatchNormStats>,
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    relu: bool,
) -> (Vec<f32>, BatchNormStats) {
    check(shape, x.len(), gamma.len(), beta.len());
    let stats = known_or_computed(shape, x, known);
    let y = normalize(shape, x, &stats, gamma, beta, epsilon, relu);
    (y, stats)
}

/// `γ·(x − μ)/√(var + ε) + β` with the given statistics (the batch's in
/// training, the running ones in evaluation), then a ReLU when `relu`.
pub fn normalize(shape: &NormShape, x: &[f32], stats: &BatchNormStats, gamma: &[f32], beta: &[f32], epsilon: f64, relu: bool) -> Vec<f32> {
    apply(shape, x, None, stats, gamma, beta, epsilon, relu)
}

/// [`normalize`], with `residual` added before the ReLU when given (then
/// `relu` must be set: the residual join of a post-activation block).
#[allow(clippy::too_many_arguments)]
fn apply(
    shape: &NormShape,
    x: &[f32],
    residual: Option<&[f32]>,
    stats: &BatchNormStats,
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    relu: bool,
) -> Vec<f32> {
    check(shape, x.len(), gamma.len(), beta.len());
    assert_eq!(stats.mean.len(), shape.channels, "statistics do not match {shape:?}");
    if let Some(r) = residual {
        assert_eq!(r.len(), x.len(), "residual length does not match {shape:?}");
        assert!(relu, "a residual join is followed by its ReLU");
    }
    let (a, b) = scale_shift(stats, gamma, beta, epsilon);
    let fill = |n: usize, out: &mut [MaybeUninit<f32>]| {
        let input = &x[shape.image_span(n)];
        for c in 0..shape.channels {
            let range = shape.plane_span(c);
            match residual {
                Some(r) => affine_add_relu(&mut out[range.clone()], &input[range.clone()], &r[shape.image_span(n)][range], a[c], b[c]),
                None => affine(&mut out[range.clone()], &input[range], a[c], b[c], relu),
            }
        }
    };
    // SAFETY: every image's channels cover its whole chunk, and `affine`
    // and `affine_add_relu` write every element they are given.
    unsafe { par_filled(x.len(), shape.image(), fill) }
}

vectorized! {
    /// `out = max(x·a + b + r, 0)`: batch norm's affine map, a residual
    /// join and its ReLU in one pass (the same arithmetic, in the same
    /// order, as the three separate passes).
    fn affine_add_relu(out: &mut [MaybeUninit<f32>], x: &[f32], r: &[f32], a: f32, b: f32) {
        assert!(out.len() == x.len() && x.len() == r.len());
        for ((o, &v), &r) in out.iter_mut().zip(x).zip(r) {
            o.write((v * a + b + r).max(0.0));
        }
    }
}

/// A residual block's join in training: `relu(bn(x) + residual)` with the
/// batch's statistics (`known`, or computed here), in one pass over the
/// output. Returns the output and the statistics.
pub fn forward_train_add_relu(
    shape: &NormShape,
    x: &[f32],
    known: Option<BatchNormStats>,
    residual: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
) -> (Vec<f32>, BatchNormStats) {
    check(shape, x.len(), gamma.len(), beta.len());
    let stats = known_or_computed(shape, x, known);
    (apply(shape, x, Some(residual), &stats, gamma, beta, epsilon, true), stats)
}

/// The backward pass of [`forward_train_add_relu`], given its output `y`:
/// the gradient where the ReLU passed is the residual's, and through batch
/// norm gives `x`'s, `gamma`'s and `beta`'s. Returns `(dx, dgamma, dbeta,
/// dresidual)`.
///
/// The masked gradient and its moments are taken in one pass, image by
/// image, each plane's moments while the plane just written is in cache.
#[allow(clippy::too_many_arguments)]
pub fn backward_train_add_relu(
    shape: &NormShape,
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    gamma: &[f32],
    beta: &[f32],
    stats: &BatchNormStats,
    epsilon: f64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    check(shape, x.len(), gamma.len(), beta.len());
    assert!(y.len() == x.len() && dy.len() == x.len(), "output and gradient lengths do not match {shape:?}");
    let (a, b) = scale_shift(stats, gamma, beta, epsilon);
    let mask = |n: usize, out: &mut [MaybeUninit<f32>]| -> Vec<(f32, f32)> {
        let span = shape.image_span(n);
        let (xs, ys, gs) = (&x[span.clone()], &y[span.clone()], &dy[span]);
        (0..shape.channels)
            .map(|c| {
                let range = shape.plane_span(c);
                let plane = &mut out[range.clone()];
                relu_mask(plane, &ys[range.clone()], &gs[range.clone()]);
                // SAFETY: `relu_mask` wrote every element of the plane.
                let dz = unsafe { super::assume_written(plane) };
                grad_moments(&xs[range], dz, a[c], b[c], stats.mean[c], false)
            })
            .collect()
    };
    // SAFETY: every image's channels cover its whole chunk, and
    // `relu_mask` writes every element it is given.
    let (dz, partial) = unsafe { par_filled_map(x.len(), shape.image().max(1), mask) };
    let sums = merge_sums(shape, &partial);
    let (dx, dgamma, dbeta) = input_gradient(shape, x, &dz, gamma, stats, epsilon, (&a, &b), &sums, false);
    (dx, dgamma, dbeta, dz)
}

vectorized! {
    /// `out = dy` where `y > 0`, else 0 (every element written).
    fn relu_mask(out: &mut [MaybeUninit<f32>], y: &[f32], dy: &[f32]) {
        assert!(out.len() == y.len() && y.len() == dy.len());
        for ((o, &y), &g) in out.iter_mut().zip(y).zip(dy) {
            o.write(if y > 0.0 { g } else { 0.0 });
        }
    }
}

/// The gradients of the loss with respect to `x`, `gamma` and `beta`, given
/// the gradient `dy` of the (ReLU'd, when `relu`) output and the statistics
/// the forward pass used.
///
/// Each plane's [`grad_moments`] are taken image by image (reading each
/// image's channels in order, not one channel's planes across the batch),
/// and merged per channel in image order in f64.
#[allow(clippy::too_many_arguments)]
pub fn backward_train(
    shape: &NormShape,
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    beta: &[f32],
    stats: &BatchNormStats,
    epsilon: f64,
    relu: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    check(shape, x.len(), gamma.len(), beta.len());
    assert_eq!(dy.len(), x.len(), "output gradient length does not match {shape:?}");
    let (a, b) = scale_shift(stats, gamma, beta, epsilon);
    let partial = super::team::map(shape.batch, |n| {
        let (xs, gs) = (&x[shape.image_span(n)], &dy[shape.image_span(n)]);
        (0..shape.channels)
            .map(|c| {
                let range = shape.plane_span(c);
                grad_moments(&xs[range.clone()], &gs[range], a[c], b[c], stats.mean[c], relu)
            })
            .collect::<Vec<_>>()
    });
    let sums = merge_sums(shape, &partial);
    input_gradient(shape, x, dy, gamma, stats, epsilon, (&a, &b), &sums, relu)
}

/// Per channel, the planes' `(Σ dz, Σ dz·(x − μ))` (`partial[n][c]`)
/// added in f64 in image order.
fn merge_sums(shape: &NormShape, partial: &[Vec<(f32, f32)>]) -> Vec<(f64, f64)> {
    let mut sums = vec![(0.0f64, 0.0f64); shape.channels];
    for image in partial {
        for (s, &(p, q)) in sums.iter_mut().zip(image) {
            s.0 += p as f64;
            s.1 += q as f64;
        }
    }
    sums
}

/// `(dx, dgamma, dbeta)` from the gradient `dy` and its per-channel sums
/// ([`merge_sums`]); `a`, `b` the forward's [`scale_shift`].
#[allow(clippy::too_many_arguments)]
fn input_gradient(
    shape: &NormShape,
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    stats: &BatchNormStats,
    epsilon: f64,
    (a, b): (&[f32], &[f32]),
    sums: &[(f64, f64)],
    relu: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let m = shape.count().max(1.0);
    let mut dgamma = Vec::with_capacity(shape.channels);
    let mut dbeta = Vec::with_capacity(shape.channels);
    let consts: Vec<InputGrad> = (0..shape.channels)
        .map(|c| {
            let inv_std = 1.0 / (stats.var[c] as f64 + epsilon).sqrt();
            let (sum_dz, sum_dz_centered) = sums[c];
            dbeta.push(sum_dz as f32);
            dgamma.push((sum_dz_centered * inv_std) as f32);
            let scale = gamma[c] as f64 * inv_std;
            InputGrad {
                a: a[c],
                b: b[c],
                mean: stats.mean[c],
                scale: scale as f32,
                offset: (scale * sum_dz / m) as f32,
                slope: (scale * sum_dz_centered * inv_std * inv_std / m) as f32,
            }
        })
        .collect();
    let fill = |n: usize, out: &mut [MaybeUninit<f32>]| {
        let (input, grad) = (&x[shape.image_span(n)], &dy[shape.image_span(n)]);
        for (c, k) in consts.iter().enumerate() {
            let range = shape.plane_span(c);
            grad_input(&mut out[range.clone()], &input[range.clone()], &grad[range], *k, relu);
        }
    };
    // SAFETY: every image's channels cover its whole chunk, and
    // `grad_input` writes every element it is given.
    let dx = unsafe { par_filled(x.len(), shape.image(), fill) };
    (dx, dgamma, dbeta)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Planes whose means lie 1e4 apart around a spread of 0.1: merged in
    /// f64 about each plane's own first value, the statistics stay within
    /// float32 rounding of a float64 two-pass computation.
    #[test]
    fn statistics_merge_planes_of_distant_means_accurately() {
        let shape = NormShape { batch: 7, channels: 2, plane: 33 };
        let x: Vec<f32> =
            (0..shape.len()).map(|i| (i / (2 * 33)) as f32 * 1e4 + ((i * 7919) % 13) as f32 * 0.01 + (i % 2) as f32).collect();
        let stats = statistics(&shape, &x);
        for c in 0..shape.channels {
            let v: Vec<f64> = shape.channel(&x, c).flatten().map(|&v| v as f64).collect();
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / v.len() as f64;
            assert!((stats.mean[c] as f64 - mean).abs() <= 1e-6 * mean.abs(), "mean {} vs {mean}", stats.mean[c]);
            assert!((stats.var[c] as f64 - var).abs() <= 1e-6 * var, "variance {} vs {var}", stats.var[c]);
        }
        let moments: Vec<[f32; 3]> = x.chunks_exact(shape.plane).map(plane_moments).collect();
        assert_eq!(statistics_from_moments(&shape, &moments), stats);
        // No values, no planes: zeros, not NaN.
        let zeros = BatchNormStats { mean: vec![0.0; 3], var: vec![0.0; 3] };
        assert_eq!(statistics(&NormShape { batch: 0, channels: 3, plane: 4 }, &[]), zeros);
        assert_eq!(statistics(&NormShape { batch: 2, channels: 3, plane: 0 }, &[]), zeros);
        assert_eq!(statistics_from_moments(&NormShape { batch: 2, channels: 3, plane: 0 }, &[[0.0; 3]; 6]), zeros);
        // A NaN reaches the mean.
        let mut bad = x.clone();
        bad[40] = f32::NAN;
        assert!(statistics(&shape, &bad).mean.iter().any(|m| m.is_nan()));
    }

    /// Statistics handed in are used where their shape fits, and computed
    /// afresh where it does not.
    #[test]
    fn known_statistics_replace_the_pass_only_where_they_fit() {
        let shape = NormShape { batch: 2, channels: 2, plane: 3 };
        let x = values(shape.len(), 5, 0.5);
        let (gamma, beta) = ([1.5, -0.5], [0.25, 0.0]);
        let (alone, stats) = forward_train(&shape, &x, None, &gamma, &beta, 1e-5, true);
        let (given, same) = forward_train(&shape, &x, Some(stats.clone()), &gamma, &beta, 1e-5, true);
        assert_eq!((alone.clone(), stats.clone()), (given, same));
        let other = BatchNormStats { mean: vec![10.0, 10.0], var: vec![4.0, 4.0] };
        let (shifted, used) = forward_train(&shape, &x, Some(other.clone()), &gamma, &beta, 1e-5, true);
        assert_eq!(used, other);
        assert_ne!(shifted, alone);
        let wrong = BatchNormStats { mean: vec![10.0; 3], var: vec![4.0; 3] };
        assert_eq!(forward_train(&shape, &x, Some(wrong), &gamma, &beta, 1e-5, true), (alone, stats));
    }

    fn values(len: usize, seed: u64, offset: f32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0 + offset
            })
            .collect()
    }

    /// Forward in f64, straight from the definition.
    fn reference(shape: &NormShape, x: &[f32], gamma: &[f32], beta: &[f32], eps: f64, relu: bool) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let m = (shape.batch * shape.plane) as f64;
        let mut mean = vec![0.0; shape.channels];
        let mut var = vec![0.0; shape.channels];
        for c in 0..shape.channels {
            let all: Vec<f64> = shape.channel(x, c).flatten().map(|&v| v as f64).collect();
            mean[c] = all.iter().sum::<f64>() / m;
            var[c] = all.iter().map(|v| (v - mean[c]).powi(2)).sum::<f64>() / m;
        }
        let mut y = vec![0.0; x.len()];
        for (i, v) in x.iter().enumerate() {
            let c = (i / shape.plane) % shape.channels;
            let z = gamma[c] as f64 * (*v as f64 - mean[c]) / (var[c] + eps).sqrt() + beta[c] as f64;
            y[i] = if relu { z.max(0.0) } else { z };
        }
        (y, mean, var)
    }

    fn shapes() -> Vec<NormShape> {
        vec![
            NormShape { batch: 4, channels: 3, plane: 37 },
            NormShape { batch: 1, channels: 1, plane: 5 },
            NormShape { batch: 7, channels: 2, plane: 1 },
            NormShape { batch: 2, channels: 5, plane: 64 },
        ]
    }

    #[test]
    fn forward_matches_the_definition() {
        for (t, shape) in shapes().iter().enumerate() {
            // An offset far from zero tests the shifted moments.
            let x = values(shape.len(), t as u64, 30.0);
            let gamma = values(shape.channels, 10 + t as u64, 0.5);
            let beta = values(shape.channels, 20 + t as u64, 0.0);
            for relu in [false, true] {
                let (y, stats) = forward_train(shape, &x, None, &gamma, &beta, 1e-5, relu);
                let (ry, rmean, rvar) = reference(shape, &x, &gamma, &beta, 1e-5, relu);
                for (a, e) in y.iter().zip(&ry) {
                    assert!((*a as f64 - e).abs() < 1e-3 * (1.0 + e.abs()), "{shape:?} relu {relu}: {a} vs {e}");
                }
                for c in 0..shape.channels {
                    assert!((stats.mean[c] as f64 - rmean[c]).abs() < 1e-4 * (1.0 + rmean[c].abs()));
                    assert!((stats.var[c] as f64 - rvar[c]).abs() < 1e-4 * (1.0 + rvar[c]));
                }
            }
        }
    }

    /// Central differences of `L = Σ w·y` in f64 against the analytic gradients.
    #[test]
    fn backward_matches_finite_differences() {
        let shape = NormShape { batch: 3, channels: 2, plane: 5 };
        let x = values(shape.len(), 1, 0.2);
        let gamma = vec![1.3f32, -0.7];
        let beta = vec![0.1f32, 0.4];
        let w = values(shape.len(), 2, 0.0);
        let eps = 1e-5;
        for relu in [false, true] {
            let loss = |x: &[f32], gamma: &[f32], beta: &[f32]| {
                let (y, _, _) = reference(&shape, x, gamma, beta, eps, relu);
                y.iter().zip(&w).map(|(a, b)| a * *b as f64).sum::<f64>()
            };
            let (_, stats) = forward_train(&shape, &x, None, &gamma, &beta, eps, relu);
            let (dx, dgamma, dbeta) = backward_train(&shape, &x, &w, &gamma, &beta, &stats, eps, relu);
            let h = 1e-3f32;
            for i in 0..x.len() {
                let (mut up, mut down) = (x.clone(), x.clone());
                up[i] += h;
                down[i] -= h;
                let numeric = (loss(&up, &gamma, &beta) - loss(&down, &gamma, &beta)) / (2.0 * h as f64);
                assert!((dx[i] as f64 - numeric).abs() < 2e-2 * (1.0 + numeric.abs()), "relu {relu} dx[{i}]: {} vs {numeric}", dx[i]);
            }
            for c in 0..2 {
                let (mut up, mut down) = (gamma.clone(), gamma.clone());
                up[c] += h;
                down[c] -= h;
                let numeric = (loss(&x, &up, &beta) - loss(&x, &down, &beta)) / (2.0 * h as f64);
                assert!((dgamma[c] as f64 - numeric).abs() < 1e-2 * (1.0 + numeric.abs()), "dgamma {} vs {numeric}", dgamma[c]);
                let (mut up, mut down) = (beta.clone(), beta.clone());
                up[c] += h;
                down[c] -= h;
                let numeric = (loss(&x, &gamma, &up) - loss(&x, &gamma, &down)) / (2.0 * h as f64);
                assert!((dbeta[c] as f64 - numeric).abs() < 1e-2 * (1.0 + numeric.abs()), "dbeta {} vs {numeric}", dbeta[c]);
            }
        }
    }

    /// The join's one-pass backward (mask and moments together, image by
    /// image) gives the bits of the mask followed by [`backward_train`].
    #[test]
    fn the_joins_backward_is_the_masked_gradient_through_batch_norm() {
        for (t, shape) in shapes().iter().enumerate() {
            let x = values(shape.len(), 40 + t as u64, 0.1);
            let r = values(shape.len(), 50 + t as u64, 0.0);
            let dy = values(shape.len(), 60 + t as u64, 0.0);
            let (gamma, beta) = (values(shape.channels, 70, 0.5), values(shape.channels, 80, 0.0));
            let (y, stats) = forward_train_add_relu(shape, &x, None, &r, &gamma, &beta, 1e-5);
            let (dx, dgamma, dbeta, dz) = backward_train_add_relu(shape, &x, &y, &dy, &gamma, &beta, &stats, 1e-5);
            let masked: Vec<f32> = y.iter().zip(&dy).map(|(&y, &g)| if y > 0.0 { g } else { 0.0 }).collect();
            assert_eq!(dz, masked, "{shape:?}");
            assert!(dz.iter().any(|&v| v == 0.0) && dz.iter().any(|&v| v != 0.0), "{shape:?}: the mask passes some and stops some");
            assert_eq!((dx, dgamma, dbeta), backward_train(shape, &x, &masked, &gamma, &beta, &stats, 1e-5, false), "{shape:?}");
        }
    }

    #[test]
    fn a_constant_channel_normalises_to_beta() {
        let shape = NormShape { batch: 2, channels: 1, plane: 4 };
        let (y, stats) = forward_train(&shape, &[3.0; 8], None, &[2.0], &[0.5], 1e-5, false);
        assert_eq!(stats.var, vec![0.0]);
        assert!(y.iter().all(|&v| (v - 0.5).abs() < 1e-6));
    }
}
