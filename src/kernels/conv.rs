//! 2-D convolution over NCHW `f32` slices (no dilation, no groups), forward
//! and both gradients, by unfolding one image at a time into a patch matrix
//! that stays in the core's cache and multiplying it with the weights.
//!
//! For an image, the patch matrix `col` is `K × P` with `K = C_in·k_h·k_w`
//! and `P = H_out·W_out` ([`super::unfold`]). Then, per image,
//!
//! - forward: `y = W · col` (`W` is `C_out × K`);
//! - input gradient: `dcol = Wᵀ · dy`, folded back onto the image (the
//!   adjoint of the unfold); at stride 1 it is instead a forward convolution
//!   of `dy` with the flipped, transposed kernel, which multiplies faster;
//! - weight gradient: `dW += dy · colᵀ`, summed over images in fixed groups
//!   so the result does not depend on the number of threads.

use rayon::prelude::*;

use std::mem::MaybeUninit;

use super::gemm::{View, matmul, matmul_uninit};
use super::simd::vectorized;
use super::unfold::{Patches, fold_add, valid_range};
use super::{assume_written, par_filled};

/// The shapes of one convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    pub batch: usize,
    pub in_channels: usize,
    pub in_height: usize,
    pub in_width: usize,
    pub out_channels: usize,
    /// `[k_h, k_w]`.
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Zero padding on each side, `[rows, columns]`.
    pub padding: [usize; 2],
}

/// A convolution that is not well formed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GeometryError {
    #[error("kernel {kernel:?} and stride {stride:?} must be positive")]
    NotPositive { kernel: [usize; 2], stride: [usize; 2] },
    #[error("a {}x{} kernel does not fit a {}x{} input padded by {padding:?}", kernel[0], kernel[1], input[0], input[1])]
    KernelTooLarge { kernel: [usize; 2], input: [usize; 2], padding: [usize; 2] },
}

/// Images per group when the weight gradient is summed over the batch: each
/// group's partial sum is added in group order, so the result is the same
/// whatever the number of threads.
const WEIGHT_GRAD_GROUP: usize = 8;

impl ConvGeometry {
    /// Checks that the convolution is well formed (positive sizes, kernel
    /// no larger than the padded input).
    pub fn validate(&self) -> Result<(), GeometryError> {
        if self.kernel.contains(&0) || self.stride.contains(&0) {
            return Err(GeometryError::NotPositive { kernel: self.kernel, stride: self.stride });
        }
        if self.in_height + 2 * self.padding[0] < self.kernel[0] || self.in_width + 2 * self.padding[1] < self.kernel[1] {
            return Err(GeometryError::KernelTooLarge {
                kernel: self.kernel,
                input: [self.in_height, self.in_width],
                padding: self.padding,
            });
        }
        Ok(())
    }

    pub fn out_height(&self) -> usize {
        (self.in_height + 2 * self.padding[0] - self.kernel[0]) / self.stride[0] + 1
    }

    pub fn out_width(&self) -> usize {
        (self.in_width + 2 * self.padding[1] - self.kernel[1]) / self.stride[1] + 1
    }

    /// `K`: the length of one patch.
    pub fn patch_len(&self) -> usize {
        self.in_channels * self.kernel[0] * self.kernel[1]
    }

    /// `P`: output positions per channel.
    pub fn out_plane(&self) -> usize {
        self.out_height() * self.out_width()
    }

    pub fn in_plane(&self) -> usize {
        self.in_height * self.in_width
    }

    /// Elements of one input image.
    pub fn in_image(&self) -> usize {
        self.in_channels * self.in_plane()
    }

    /// Elements of one output image.
    pub fn out_image(&self) -> usize {
        self.out_channels * self.out_plane()
    }

    pub fn weight_len(&self) -> usize {
        self.out_channels * self.patch_len()
    }

    /// A 1x1 convolution at stride 1 without padding: the image is its own
    /// patch matrix.
    pub(super) fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.padding == [0, 0]
    }

    /// The forward convolution whose output is this one's input gradient,
    /// when there is one: at stride 1 with padding below the kernel size.
    fn transposed(&self) -> Option<ConvGeometry> {
        let fits = self.stride == [1, 1] && self.padding[0] < self.kernel[0] && self.padding[1] < self.kernel[1];
        fits.then(|| ConvGeometry {
            batch: self.batch,
            in_channels: self.out_channels,
            in_height: self.out_height(),
            in_width: self.out_width(),
            out_channels: self.in_channels,
            kernel: self.kernel,
            stride: [1, 1],
            padding: [self.kernel[0] - 1 - self.padding[0], self.kernel[1] - 1 - self.padding[1]],
        })
    }

    /// For kernel column `j`, the output columns whose input column
    /// `ow·s + j − p` lies inside the image: `lo..hi`.
    pub(super) fn valid_columns(&self, j: usize) -> (usize, usize) {
        valid_range(j, self.stride[1], self.padding[1], self.in_width, self.out_width())
    }

    pub(super) fn valid_rows(&self, i: usize) -> (usize, usize) {
        valid_range(i, self.stride[0], self.padding[0], self.in_height, self.out_height())
    }
}

fn check_lengths(g: &ConvGeometry, input: usize, weight: usize, output: usize) {
    assert_eq!(input, g.batch * g.in_image(), "input length does not match {g:?}");
    assert_eq!(weight, g.weight_len(), "weight length does not match {g:?}");
    assert_eq!(output, g.batch * g.out_image(), "output length does not match {g:?}");
}

/// What the forward pass does to each output value `z` of channel `o`
/// before storing it, while the image's output is still in the core's
/// cache: `z·scale[o] + shift[o]` (or `z + shift[o]` with no scale), then
/// `+ residual`, then a ReLU. In evaluation, a convolution followed by batch
/// norm (scale `γ/σ`, shift `β − μ·γ/σ`), a residual join and the ReLU
/// after it take one pass instead of three, with the same arithmetic as
/// the separate passes (so the same bits).
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    pub scale: Option<&'a [f32]>,
    pub shift: Option<&'a [f32]>,
    /// Added after the shift: `[N, C_out, H_out, W_out]` like the output.
    pub residual: Option<&'a [f32]>,
    pub relu: bool,
}

impl Epilogue<'_> {
    fn is_identity(&self) -> bool {
        self.scale.is_none() && self.shift.is_none() && self.residual.is_none() && !self.relu
    }

    /// The epilogue of image `n` of the batch, whose images have `len`
    /// output values each: the residual cut to that image.
    pub(super) fn for_image(&self, n: usize, len: usize) -> Self {
        Epilogue { residual: self.residual.map(|r| &r[n * len..(n + 1) * len]), ..*self }
    }
}

vectorized! {
    /// One output channel's values `z` through the epilogue's steps.
    fn finish_channel(z: &mut [f32], scale: Option<f32>, shift: f32, residual: Option<&[f32]>, relu: bool) {
        match scale {
            Some(a) => z.iter_mut().for_each(|v| *v = *v * a + shift),
            None => z.iter_mut().for_each(|v| *v += shift),
        }
        if let Some(r) = residual {
            z.iter_mut().zip(r).for_each(|(v, &r)| *v += r);
        }
        if relu {
            z.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }
}

/// One image's output (`C_out` channels of `plane` values) through the
/// epilogue of that image ([`Epilogue::for_image`]).
pub(super) fn finish_image(out: &mut [f32], plane: usize, epilogue: &Epilogue) {
    if epilogue.is_identity() {
        return;
    }
    for (o, z) in out.chunks_exact_mut(plane).enumerate() {
        let scale = epilogue.scale.map(|s| s[o]);
        let shift = epilogue.shift.map_or(0.0, |s| s[o]);
        finish_channel(z, scale, shift, epilogue.residual.map(|r| &r[o * plane..(o + 1) * plane]), epilogue.relu);
    }
}

/// The convolution of `x` (`[N, C_in, H, W]`) with `weight`
/// (`[C_out, C_in, k_h, k_w]`), plus `bias` (`[C_out]`) when given:
/// `[N, C_out, H_out, W_out]`.
pub fn forward(g: &ConvGeometry, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    forward_fused(g, x, weight, &Epilogue { shift: bias, ..Epilogue::default() })
}

/// How a forward convolution meets the matrix multiply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// The patch matrix of each image ([`super::unfold`]).
    Patches,
    /// Shifted copies of the padded image ([`super::shifted`]; stride 1).
    Shifted,
    /// The image read in place ([`super::direct`]; 3×3, padding 1, stride
    /// 1 or 2, AVX-512).
    Direct,
    /// F(2×2, 3×3) tiles ([`super::winograd`]; 3×3, padding 1, stride 1,
    /// even sizes, AVX-512).
    Winograd,
}

impl Method {
    /// The method for this convolution: Winograd tiles where asked for
    /// ([`super::winograd::applies`]), else the direct kernel where it
    /// applies, else shifted copies at stride 1 (about 15 % faster than the patch
    /// matrix on resnet-20's evaluation, 5 % on its training step), unless
    /// the environment variable `DEPTHLAB_CONV_PATCHES` (the patch matrix
    /// everywhere) or `DEPTHLAB_CONV_SHIFTED` (neither Winograd nor the
    /// direct kernel) is set, to compare.
    pub fn best(g: &ConvGeometry) -> Method {
        if super::winograd::applies(g) {
            Method::Winograd
        } else if super::direct::applies(g) {
            Method::Direct
        } else if super::shifted::applies(g) && !patches_forced() {
            Method::Shifted
        } else {
            Method::Patches
        }
    }
}

/// Whether the environment variable `DEPTHLAB_CONV_PATCHES` asks for the
/// patch matrix everywhere (forward and weight gradient), to compare.
pub(super) fn patches_forced() -> bool {
    static PATCHES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    env_set(&PATCHES, "DEPTHLAB_CONV_PATCHES")
}

/// Whether the environment variable `DEPTHLAB_CONV_SHIFTED` asks for the
/// shifted copies where the direct kernel would run, to compare.
pub(super) fn shifted_forced() -> bool {
    static SHIFTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    env_set(&SHIFTED, "DEPTHLAB_CONV_SHIFTED")
}

/// Whether the environment variable `name` is set, read once into `cache`.
fn env_set(cache: &std::sync::OnceLock<bool>, name: &str) -> bool {
    *cache.get_or_init(|| std::env::var_os(name).is_some())
}

/// [`forward`] with an [`Epilogue`] applied to each image's output.
pub fn forward_fused(g: &ConvGeometry, x: &[f32], weight: &[f32], epilogue: &Epilogue) -> Vec<f32> {
    forward_with(g, x, weight, epilogue, Method::best(g))
}

/// [`forward_fused`] by the given method.
pub fn forward_with(g: &ConvGeometry, x: &[f32], weight: &[f32], epilogue: &Epilogue, method: Method) -> Vec<f32> {
    let len = g.batch * g.out_image();
    check_lengths(g, x.len(), weight.len(), len);
    for per_channel in [epilogue.scale, epilogue.shift].into_iter().flatten() {
        assert_eq!(per_channel.len(), g.out_channels, "per-channel epilogue length does not match {g:?}");
    }
    if let Some(r) = epilogue.residual {
        assert_eq!(r.len(), len, "residual length does not match {g:?}");
    }
    let (in_len, out_len) = (g.in_image(), g.out_image());
    if method == Method::Winograd && super::winograd::fits(g) {
        let winograd = super::winograd::Forward::new(g, weight);
        // SAFETY: `Forward::image` writes the image's whole C_out × H × W output.
        return unsafe {
            each_image(g.batch, x, in_len, out_len, |n, input, out, s| {
                let (tiles, products) = s.vectors();
                winograd.image(g, input, out, &epilogue.for_image(n, out_len), tiles, products)
            })
        };
    }
    if method == Method::Direct || method == Method::Winograd {
        let direct = super::direct::Forward::new(g, weight);
        // SAFETY: `Forward::image` writes the image's whole C_out × P output.
        return unsafe {
            each_image(g.batch, x, in_len, out_len, |n, input, out, s| {
                direct.image(g, input, out, &epilogue.for_image(n, out_len), s.vectors().0)
            })
        };
    }
    if method == Method::Shifted && super::shifted::applies(g) {
        let grouped = super::shifted::regroup(g, weight);
        // SAFETY: `forward_image` writes the image's whole C_out × P output.
        return unsafe {
            each_image(g.batch, x, in_len, out_len, |n, input, out, s| {
                super::shifted::forward_image(g, input, &grouped, out, &epilogue.for_image(n, out_len), s)
            })
        };
    }
    let (k, p) = (g.patch_len(), g.out_plane());
    // Computed as yᵀ = colᵀ · Wᵀ (P × C_out): the orientation measured
    // fastest (158 GFLOP/s against 96 for y = W · col on a 16-channel 32×32
    // layer, one core).
    let wt = View::col_major(weight, k, g.out_channels);
    let image = |n: usize, input: &[f32], out: &mut [MaybeUninit<f32>], s: &mut Patches| {
        matmul_uninit(out, (1, p), View::col_major(s.of(g, input), p, k), wt);
        // SAFETY: the multiply wrote all of `out` (C_out × P).
        finish_image(unsafe { assume_written(out) }, p, &epilogue.for_image(n, out_len));
    };
    // SAFETY: each image's multiply writes its whole C_out × P output.
    unsafe { each_image(g.batch, x, in_len, out_len, image) }
}

/// The outputs of `batch` images, `out_len` floats an image, written image
/// by image in parallel: `image(n, input, out, scratch)` gets image `n`'s
/// `in_len` input floats, its output and this thread's scratch space.
///
/// # Safety
/// `image` must write every element of `out`.
unsafe fn each_image(
    batch: usize,
    input: &[f32],
    in_len: usize,
    out_len: usize,
    image: impl Fn(usize, &[f32], &mut [MaybeUninit<f32>], &mut Patches) + Sync,
) -> Vec<f32> {
    let fill = |n: usize, out: &mut [MaybeUninit<f32>]| Patches::with(|s| image(n, &input[n * in_len..(n + 1) * in_len], out, s));
    // SAFETY: the caller's `image` writes every element of each image's
    // chunk.
    unsafe { par_filled(batch * out_len, out_len, fill) }
}

/// The gradient of the loss with respect to the convolution's input, given
/// the gradient `dy` with respect to its output.
pub fn backward_input(g: &ConvGeometry, dy: &[f32], weight: &[f32]) -> Vec<f32> {
    check_lengths(g, g.batch * g.in_image(), weight.len(), dy.len());
    if let Some(t) = g.transposed() {
        return forward(&t, dy, &flip_transpose(g, weight), None);
    }
    if super::direct::applies_to_input_grad(g) {
        let direct = super::direct::InputGrad::new(g, weight);
        // SAFETY: `InputGrad::image` writes the image's whole C_in × H × W
        // gradient.
        return unsafe {
            each_image(g.batch, dy, g.out_image(), g.in_image(), |_, grad, out, s| {
                let (copy, phase) = s.vectors();
                direct.image(g, grad, out, copy, phase);
            })
        };
    }
    let mut dx = vec![0.0f32; g.batch * g.in_image()];
    if dx.is_empty() || dy.is_empty() {
        return dx;
    }
    let (k, p) = (g.patch_len(), g.out_plane());
    let wt = View::col_major(weight, k, g.out_channels);
    let image = |(out, grad): (&mut [f32], &[f32])| {
        Patches::with(|scratch| {
            let col = scratch.buffer(k * p);
            matmul(col, (p, 1), wt, View::row_major(grad, g.out_channels, p), false);
            fold_add(g, col, out);
        })
    };
    dx.par_chunks_mut(g.in_image()).zip(dy.par_chunks(g.out_image())).for_each(image);
    dx
}

/// `W'[c][o][i][j] = W[o][c][k_h−1−i][k_w−1−j]`: the kernel of the
/// transposed convolution.
fn flip_transpose(g: &ConvGeometry, weight: &[f32]) -> Vec<f32> {
    let (kh, kw) = (g.kernel[0], g.kernel[1]);
    let mut out = vec![0.0f32; weight.len()];
    for o in 0..g.out_channels {
        for c in 0..g.in_channels {
            for i in 0..kh {
                for j in 0..kw {
                    out[((c * g.out_channels + o) * kh + i) * kw + j] =
                        weight[((o * g.in_channels + c) * kh + (kh - 1 - i)) * kw + (kw - 1 - j)];
                }
            }
        }
    }
    out
}

/// The gradients of the loss with respect to the weights
/// (`[C_out, C_in, k_h, k_w]`) and, when asked, the bias (`[C_out]`).
pub fn backward_weight(g: &ConvGeometry, x: &[f32], dy: &[f32], with_bias: bool) -> (Vec<f32>, Option<Vec<f32>>) {
    backward_weight_by(g, x, dy, with_bias, WeightMethod::best(g))
}

/// How a weight gradient is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightMethod {
    /// The patch matrix of each image times the output gradient.
    Patches,
    /// Outer products vectorised over output channels ([`super::outer`];
    /// 3×3, stride 1, AVX-512). On 128 images, two threads (GFLOP/s,
    /// against the patch matrix): 16 channels at 32×32 196 against 111,
    /// 32 at 16×16 238 against 175, 64 at 8×8 204 against 147; the dot
    /// products over positions it replaced ran at 167, 161 and 107.
    Outer,
}

impl WeightMethod {
    /// The fastest method that applies to this convolution.
    pub fn best(g: &ConvGeometry) -> WeightMethod {
        if super::outer::applies(g) { WeightMethod::Outer } else { WeightMethod::Patches }
    }
}

/// [`backward_weight`] by the given method (which must apply).
pub fn backward_weight_by(g: &ConvGeometry, x: &[f32], dy: &[f32], with_bias: bool, method: WeightMethod) -> (Vec<f32>, Option<Vec<f32>>) {
    check_lengths(g, x.len(), g.weight_len(), dy.len());
    let (k, p, cout) = (g.patch_len(), g.out_plane(), g.out_channels);
    // With the patch matrix, accumulated as dWᵀ (K × C_out, stored
    // transposed): with the patch matrix in its natural K × P layout this
    // orientation ran at 75–150 GFLOP/s where dW = dy · colᵀ stored
    // row-major ran at 27–116.
    let group = |(xs, dys): (&[f32], &[f32])| {
        let mut db = vec![0.0f32; if with_bias { cout } else { 0 }];
        for grad in dys.chunks_exact(g.out_image()) {
            for (d, row) in db.iter_mut().zip(grad.chunks_exact(p)) {
                *d += super::simd::sum(row);
            }
        }
        if method != WeightMethod::Patches {
            let dw = Patches::with(|scratch| {
                let (padded_x, dy_t) = scratch.vectors();
                super::outer::weight_grad_group(g, xs, dys, padded_x, dy_t)
            });
            return (dw, db);
        }
        let mut dwt = vec![0.0f32; cout * k];
        for (input, grad) in xs.chunks_exact(g.in_image()).zip(dys.chunks_exact(g.out_image())) {
            Patches::with(|scratch| {
                let patches = View::col_major(scratch.of(g, input), p, k);
                matmul(&mut dwt, (1, cout), View::row_major(grad, cout, p), patches, true);
            });
        }
        (dwt, db)
    };
    let mut db = vec![0.0f32; cout];
    if g.batch == 0 || p == 0 {
        return (vec![0.0f32; cout * k], with_bias.then_some(db));
    }
    let partials: Vec<(Vec<f32>, Vec<f32>)> =
        x.par_chunks(WEIGHT_GRAD_GROUP * g.in_image().max(1)).zip(dy.par_chunks(WEIGHT_GRAD_GROUP * g.out_image())).map(group).collect();
    let mut sum = vec![0.0f32; cout * k];
    for (pw, pb) in &partials {
        sum.iter_mut().zip(pw).for_each(|(d, s)| *d += s);
        db.iter_mut().zip(pb).for_each(|(d, s)| *d += s);
    }
    if method != WeightMethod::Patches {
        return (sum, with_bias.then_some(db));
    }
    let mut dw = vec![0.0f32; cout * k];
    for (i, row) in sum.chunks_exact(cout).enumerate() {
        for (o, &v) in row.iter().enumerate() {
            dw[o * k + i] = v;
        }
    }
    (dw, with_bias.then_some(db))
}

#[cfg(test)]
mod tests {
    use super::super::unfold::unfold;
    use super::*;

    /// Every multiply-add of the convolution's definition, in order
    /// (image, output channel, output position, input channel, tap), as
    /// `(output index, input index, weight index)`; taps in the padding are
    /// skipped.
    fn for_each_tap(g: &ConvGeometry, mut visit: impl FnMut(usize, usize, usize)) {
        let (ho, wo) = (g.out_height(), g.out_width());
        for n in 0..g.batch {
            for o in 0..g.out_channels {
                for oh in 0..ho {
                    for ow in 0..wo {
                        let y = ((n * g.out_channels + o) * ho + oh) * wo + ow;
                        for c in 0..g.in_channels {
                            for i in 0..g.kernel[0] {
                                for j in 0..g.kernel[1] {
                                    let ih = (oh * g.stride[0] + i) as isize - g.padding[0] as isize;
                                    let iw = (ow * g.stride[1] + j) as isize - g.padding[1] as isize;
                                    if ih < 0 || iw < 0 || ih >= g.in_height as isize || iw >= g.in_width as isize {
                                        continue;
                                    }
                                    let x = ((n * g.in_channels + c) * g.in_height + ih as usize) * g.in_width + iw as usize;
                                    visit(y, x, ((o * g.in_channels + c) * g.kernel[0] + i) * g.kernel[1] + j);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The definition, one multiply-add at a time.
    fn naive_forward(g: &ConvGeometry, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        let plane = g.out_plane();
        let mut y: Vec<f64> =
            (0..g.batch * g.out_image()).map(|k| bias.map_or(0.0, |b| f64::from(b[(k / plane) % g.out_channels]))).collect();
        for_each_tap(g, |yi, xi, wi| y[yi] += f64::from(x[xi] * w[wi]));
        y.into_iter().map(|v| v as f32).collect()
    }

    /// The input gradient from the definition: each output's gradient
    /// sent back along each tap.
    fn naive_input_grad(g: &ConvGeometry, dy: &[f32], w: &[f32]) -> Vec<f32> {
        let mut dx = vec![0.0f64; g.batch * g.in_image()];
        for_each_tap(g, |yi, xi, wi| dx[xi] += f64::from(dy[yi]) * f64::from(w[wi]));
        dx.into_iter().map(|v| v as f32).collect()
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    fn geometries() -> Vec<ConvGeometry> {
        let g = |batch, cin, h, w, cout, k: [usize; 2], s: [usize; 2], p: [usize; 2]| ConvGeometry {
            batch,
            in_channels: cin,
            in_height: h,
            in_width: w,
            out_channels: cout,
            kernel: k,
            stride: s,
            padding: p,
        };
        vec![
            g(2, 3, 8, 8, 4, [3, 3], [1, 1], [1, 1]),
            g(1, 1, 5, 7, 2, [3, 3], [2, 2], [1, 1]),
            g(3, 2, 9, 6, 5, [3, 3], [2, 2], [1, 1]),
            g(2, 4, 6, 6, 3, [1, 1], [1, 1], [0, 0]),
            g(2, 4, 7, 7, 3, [1, 1], [2, 2], [0, 0]),
            g(1, 2, 4, 5, 2, [3, 2], [1, 2], [0, 1]),
            g(17, 3, 4, 4, 2, [3, 3], [1, 1], [2, 2]),
            g(1, 1, 1, 1, 1, [1, 1], [1, 1], [0, 0]),
            g(2, 2, 5, 5, 3, [5, 5], [1, 1], [2, 2]),
        ]
    }

    #[test]
    fn valid_ranges_cover_exactly_the_inside_positions() {
        for stride in 1..4 {
            for pad in 0..3 {
                for offset in 0..5 {
                    for size in 1..8 {
                        let outputs = 10;
                        let (lo, hi) = valid_range(offset, stride, pad, size, outputs);
                        for o in 0..outputs {
                            let pos = (o * stride + offset) as isize - pad as isize;
                            let inside = pos >= 0 && pos < size as isize;
                            assert_eq!(inside, (lo..hi).contains(&o), "o {o} s {stride} p {pad} off {offset} size {size}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_stride_1_unfold_matches_the_general_one() {
        for (t, g) in geometries().iter().enumerate().filter(|(_, g)| g.stride == [1, 1]) {
            let image = values(g.in_image(), 900 + t as u32);
            let mut general = vec![0.0f32; g.patch_len() * g.out_plane()];
            unfold(g, &image, &mut general);
            let mut scratch = Patches::default();
            // Twice, with a larger geometry in between: the buffers are
            // reused, their borders must be cleared again.
            assert_eq!(scratch.of(g, &image), &general[..], "{g:?}");
            let big = ConvGeometry { in_height: g.in_height + 3, in_width: g.in_width + 2, ..*g };
            let _ = scratch.of(&big, &values(big.in_image(), 7));
            assert_eq!(scratch.of(g, &image), &general[..], "{g:?} after a larger image");
        }
    }

    #[test]
    fn forward_matches_the_definition() {
        for (t, g) in geometries().iter().enumerate() {
            let x = values(g.batch * g.in_image(), t as u32);
            let w = values(g.weight_len(), 100 + t as u32);
            let b = values(g.out_channels, 200 + t as u32);
            for bias in [None, Some(&b[..])] {
                let got = forward(g, &x, &w, bias);
                let want = naive_forward(g, &x, &w, bias);
                for (a, e) in got.iter().zip(&want) {
                    assert!((a - e).abs() <= 1e-5 * (1.0 + e.abs()), "{g:?}: {a} vs {e}");
                }
            }
        }
    }

    #[test]
    fn the_fused_epilogue_gives_the_bits_of_the_separate_passes() {
        for (t, g) in geometries().iter().enumerate() {
            let x = values(g.batch * g.in_image(), 600 + t as u32);
            let w = values(g.weight_len(), 700 + t as u32);
            let scale = values(g.out_channels, 800 + t as u32);
            let shift = values(g.out_channels, 900 + t as u32);
            let residual = values(g.batch * g.out_image(), 1000 + t as u32);
            let z = forward(g, &x, &w, None);
            let p = g.out_plane();
            for relu in [false, true] {
                let want: Vec<f32> = z
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        let o = (i / p) % g.out_channels;
                        let y = v * scale[o] + shift[o] + residual[i];
                        if relu { y.max(0.0) } else { y }
                    })
                    .collect();
                let epilogue = Epilogue { scale: Some(&scale), shift: Some(&shift), residual: Some(&residual), relu };
                assert_eq!(forward_fused(g, &x, &w, &epilogue), want, "{g:?}");
            }
        }
    }

    /// The gradients are the adjoints of the forward map: for any `dy`,
    /// `<forward(x), dy> = <x, backward_input(dy)> = <w, backward_weight(x, dy)>`.
    #[test]
    fn gradients_are_the_adjoints_of_the_forward_map() {
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum::<f64>();
        for (t, g) in geometries().iter().enumerate() {
            let x = values(g.batch * g.in_image(), 300 + t as u32);
            let w = values(g.weight_len(), 400 + t as u32);
            let dy = values(g.batch * g.out_image(), 500 + t as u32);
            let y = forward(g, &x, &w, None);
            let dx = backward_input(g, &dy, &w);
            let (dw, db) = backward_weight(g, &x, &dy, true);
            let reference = dot(&y, &dy);
            let tol = 1e-4 * (1.0 + reference.abs());
            assert!((dot(&x, &dx) - reference).abs() < tol, "{g:?}: input gradient");
            assert!((dot(&w, &dw) - reference).abs() < tol, "{g:?}: weight gradient");
            let db = db.expect("bias gradient was asked for");
            let sums: Vec<f32> = (0..g.out_channels)
                .map(|o| (0..g.batch).map(|n| dy[(n * g.out_channels + o) * g.out_plane()..][..g.out_plane()].iter().sum::<f32>()).sum())
                .collect();
            for (a, e) in db.iter().zip(&sums) {
                assert!((a - e).abs() < 1e-4 * (1.0 + e.abs()), "{g:?}: bias gradient {a} vs {e}");
            }
        }
    }

    #[test]
    fn the_weight_gradient_does_not_depend_on_the_number_of_threads() {
        // The patch matrix path, and the outer products' (3×3, stride 1).
        let wide = ConvGeometry { batch: 19, in_channels: 3, in_height: 28, in_width: 28, out_channels: 5, ..geometries()[0] };
        for g in [geometries()[2], geometries()[6], wide] {
            let x = values(g.batch * g.in_image(), 1);
            let dy = values(g.batch * g.out_image(), 2);
            let run = |threads| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a thread pool");
                pool.install(|| backward_weight(&g, &x, &dy, true))
            };
            assert_eq!(run(1), run(3), "{g:?}");
        }
    }

    #[test]
    fn both_methods_match_the_definition() {
        for (t, g) in geometries().iter().enumerate() {
            let x = values(g.batch * g.in_image(), 40 + t as u32);
            let w = values(g.weight_len(), 140 + t as u32);
            let b = values(g.out_channels, 240 + t as u32);
            let want = naive_forward(g, &x, &w, Some(&b));
            for method in [Method::Patches, Method::Shifted] {
                let got = forward_with(g, &x, &w, &Epilogue { shift: Some(&b), ..Epilogue::default() }, method);
                for (a, e) in got.iter().zip(&want) {
                    assert!((a - e).abs() <= 1e-5 * (1.0 + e.abs()), "{g:?} {method:?}: {a} vs {e}");
                }
            }
        }
    }

    /// The outer-product weight gradient against the patch matrix's and the
    /// definition (a forward convolution's adjoint), on 3×3 shapes at strides 1 and 2
    /// with every remainder of the output-channel blocks, one channel,
    /// batch 1, a batch that is not a whole number of groups, odd and flat
    /// images and paddings 0–2.
    #[test]
    fn the_outer_weight_gradient_matches_the_patch_matrix() {
        if !crate::kernels::simd::has_avx512() {
            eprintln!("no AVX-512: the outer-product weight gradient never runs here");
            return;
        }
        let g = |batch, cin, h, w, cout, pad| ConvGeometry {
            batch,
            in_channels: cin,
            in_height: h,
            in_width: w,
            out_channels: cout,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [pad, pad],
        };
        let strided = |g: ConvGeometry| ConvGeometry { stride: [2, 2], ..g };
        let shapes = [
            strided(g(3, 4, 8, 8, 16, 1)),
            strided(g(2, 3, 9, 7, 5, 1)),
            strided(g(5, 2, 6, 6, 33, 0)),
            strided(g(1, 1, 3, 3, 1, 1)),
            g(1, 1, 3, 3, 1, 0),
            g(1, 1, 5, 7, 1, 1),
            g(2, 3, 8, 8, 4, 1),
            g(9, 2, 7, 5, 5, 1),
            g(3, 4, 6, 9, 6, 2),
            g(17, 3, 4, 4, 7, 2),
            g(2, 16, 32, 32, 16, 1),
            g(8, 5, 1, 1, 2, 1),
            g(4, 2, 11, 3, 8, 0),
            g(3, 7, 8, 8, 64, 1),
            g(2, 5, 6, 5, 37, 1),
            g(9, 4, 5, 5, 80, 0),
        ];
        for (t, g) in shapes.iter().enumerate() {
            let x = values(g.batch * g.in_image(), 700 + t as u32);
            let dy = values(g.batch * g.out_image(), 800 + t as u32);
            let (patches, db2) = backward_weight_by(g, &x, &dy, true, WeightMethod::Patches);
            let scale = patches.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            let w = values(g.weight_len(), 900 + t as u32);
            let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum::<f64>();
            let y = naive_forward(g, &x, &w, None);
            let (outer, db1) = backward_weight_by(g, &x, &dy, true, WeightMethod::Outer);
            assert_eq!(db1, db2, "{g:?}: bias gradient");
            for (i, (a, b)) in outer.iter().zip(&patches).enumerate() {
                assert!((a - b).abs() <= 1e-5 * scale, "{g:?}[{i}]: outer {a} vs patches {b}");
            }
            // The definition: the forward convolution's adjoint.
            assert!((dot(&w, &outer) - dot(&y, &dy)).abs() < 1e-4 * (1.0 + dot(&y, &dy).abs()), "{g:?}: adjoint");
        }
    }

    /// The direct kernel against the definition and the other methods, on
    /// 3×3 padding-1 shapes at strides 1 and 2 with every remainder of its
    /// register blocks (output channels 1–13, planes that end inside a
    /// vector), one channel, batch 1, a 1×1 image, single rows and columns;
    /// with an epilogue, and as the input gradient (against the definition
    /// and through the adjoint).
    #[test]
    fn the_direct_kernel_matches_the_definition() {
        if !crate::kernels::simd::has_avx512() {
            eprintln!("no AVX-512: the direct kernel never runs here");
            return;
        }
        let g = |batch, cin, h, w, cout| ConvGeometry {
            batch,
            in_channels: cin,
            in_height: h,
            in_width: w,
            out_channels: cout,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
        };
        let strided = |g: ConvGeometry| ConvGeometry { stride: [2, 2], ..g };
        let shapes = [
            g(1, 1, 1, 1, 1),
            g(1, 1, 5, 7, 1),
            g(2, 3, 8, 8, 16),
            g(3, 5, 14, 14, 7),
            g(2, 16, 32, 32, 16),
            g(17, 2, 4, 4, 13),
            g(1, 4, 1, 9, 5),
            g(1, 3, 9, 1, 2),
            g(2, 64, 8, 8, 64),
            g(1, 2, 3, 17, 11),
            strided(g(2, 3, 8, 8, 16)),
            strided(g(1, 1, 2, 2, 1)),
            strided(g(3, 5, 14, 10, 7)),
            strided(g(2, 16, 32, 32, 32)),
            strided(g(17, 2, 4, 6, 13)),
            strided(g(1, 4, 2, 18, 5)),
            strided(g(2, 9, 36, 4, 3)),
        ];
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum::<f64>();
        for (t, g) in shapes.iter().enumerate() {
            let tiled = crate::kernels::winograd::applies(g);
            assert_eq!(Method::best(g), if tiled { Method::Winograd } else { Method::Direct }, "{g:?}");
            let x = values(g.batch * g.in_image(), 1100 + t as u32);
            let w = values(g.weight_len(), 1200 + t as u32);
            let shift = values(g.out_channels, 1300 + t as u32);
            let residual = values(g.batch * g.out_image(), 1400 + t as u32);
            let epilogue = Epilogue { shift: Some(&shift), residual: Some(&residual), relu: true, ..Epilogue::default() };
            let direct = forward_with(g, &x, &w, &epilogue, Method::Direct);
            let shifted = forward_with(g, &x, &w, &epilogue, Method::Shifted);
            // Where Winograd does not apply, this is the direct kernel again.
            let winograd = forward_with(g, &x, &w, &epilogue, Method::Winograd);
            let want = naive_forward(g, &x, &w, Some(&shift));
            for (i, (((a, s), t), e)) in direct.iter().zip(&shifted).zip(&winograd).zip(&want).enumerate() {
                let e = (e + residual[i]).max(0.0);
                assert!((a - e).abs() <= 1e-5 * (1.0 + e.abs()), "{g:?}[{i}]: direct {a} vs definition {e}");
                assert!((a - s).abs() <= 1e-5 * (1.0 + e.abs()), "{g:?}[{i}]: direct {a} vs shifted {s}");
                assert!((t - e).abs() <= 1e-5 * (1.0 + e.abs()), "{g:?}[{i}]: Winograd {t} vs definition {e}");
            }
            let dy = values(g.batch * g.out_image(), 1500 + t as u32);
            let dx = backward_input(g, &dy, &w);
            let reference = dot(&naive_forward(g, &x, &w, None), &dy);
            assert!((dot(&x, &dx) - reference).abs() < 1e-4 * (1.0 + reference.abs()), "{g:?}: input gradient");
            for (i, (a, e)) in dx.iter().zip(naive_input_grad(g, &dy, &w)).enumerate() {
                assert!((a - e).abs() <= 1e-5 * (1.0 + e.abs()), "{g:?}[{i}]: input gradient {a} vs definition {e}");
            }
        }
    }

    #[test]
    fn the_shifted_copies_are_rebuilt_when_their_buffers_are_reused() {
        for g in geometries().iter().filter(|g| super::super::shifted::applies(g)) {
            let g = ConvGeometry { batch: 1, ..*g };
            let x = values(g.in_image(), 17);
            let w = values(g.weight_len(), 18);
            let want = naive_forward(&g, &x, &w, None);
            let big = ConvGeometry { in_height: g.in_height + 3, in_width: g.in_width + 2, ..g };
            // On one thread, so that every call uses the same scratch space.
            let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a thread pool");
            let (first, again) = pool.install(|| {
                let first = forward_with(&g, &x, &w, &Epilogue::default(), Method::Shifted);
                let _ = forward_with(&big, &values(big.in_image(), 7), &values(big.weight_len(), 8), &Epilogue::default(), Method::Shifted);
                (first, forward_with(&g, &x, &w, &Epilogue::default(), Method::Shifted))
            });
            assert_eq!(first, again, "{g:?} after a larger image");
            for (a, e) in first.iter().zip(&want) {
                assert!((a - e).abs() <= 1e-5 * (1.0 + e.abs()), "{g:?}: {a} vs {e}");
            }
        }
    }

    #[test]
    fn bad_geometry_is_refused() {
        let mut g = geometries()[0];
        g.kernel = [11, 11];
        assert!(g.validate().unwrap_err().to_string().contains("does not fit"));
        g.kernel = [3, 3];
        g.stride = [0, 1];
        assert!(g.validate().is_err());
    }
}
