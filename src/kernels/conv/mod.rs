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

use std::mem::MaybeUninit;

use super::gemm::{View, matmul, matmul_uninit};
use super::geometry::check_lengths;
pub use super::geometry::{ConvGeometry, GeometryError};
use super::simd::vectorized;
use super::unfold::{Patches, fold_add, valid_range};
use super::{assume_written, par_filled};

/// Images per group when the weight gradient is summed over the batch: each
/// group's partial sum is added in group order, so the result is the same
/// whatever the number of threads.
const WEIGHT_GRAD_GROUP: usize = 8;

impl ConvGeometry {
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
    /// Where each finished output plane's moments go
    /// ([`forward_with_moments`]).
    pub moments: Option<MomentsOut<'a>>,
}

/// Where a forward convolution writes the [`super::batchnorm::plane_moments`]
/// of each output plane, `[N][C_out]`: made by [`forward_with_moments`]
/// alone. Each image's task writes its own row.
#[derive(Clone, Copy, Debug)]
pub struct MomentsOut<'a> {
    row: *mut [f32; 3],
    /// Entries per row: the output channels.
    channels: usize,
    _rows: std::marker::PhantomData<&'a mut [[f32; 3]]>,
}

// SAFETY: the tasks that share it write disjoint rows (one image each).
unsafe impl Send for MomentsOut<'_> {}
// SAFETY: as above.
unsafe impl Sync for MomentsOut<'_> {}

impl Epilogue<'_> {
    fn is_identity(&self) -> bool {
        self.scale.is_none() && self.shift.is_none() && self.residual.is_none() && !self.relu
    }

    /// The epilogue of image `n` of the batch, whose images have `len`
    /// output values each: the residual cut to that image, the moments
    /// pointed at its row.
    pub(super) fn for_image(&self, n: usize, len: usize) -> Self {
        Epilogue {
            residual: self.residual.map(|r| &r[n * len..(n + 1) * len]),
            // Row `n` of the `[N][C_out]` moments; written through only by
            // `finish_image`, inside the row.
            moments: self.moments.map(|m| MomentsOut { row: m.row.wrapping_add(n * m.channels), ..m }),
            ..*self
        }
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
    if plane == 0 {
        return;
    }
    if !epilogue.is_identity() {
        for (o, z) in out.chunks_exact_mut(plane).enumerate() {
            let scale = epilogue.scale.map(|s| s[o]);
            let shift = epilogue.shift.map_or(0.0, |s| s[o]);
            finish_channel(z, scale, shift, epilogue.residual.map(|r| &r[o * plane..(o + 1) * plane]), epilogue.relu);
        }
    }
    if let Some(moments) = epilogue.moments {
        for (o, z) in out.chunks_exact(plane).enumerate() {
            // SAFETY: entry `o < C_out` of this image's row, which no other
            // task writes (`Epilogue::for_image`).
            unsafe { moments.row.add(o).write(super::batchnorm::plane_moments(z)) };
        }
    }
}

/// The convolution of `x` (`[N, C_in, H, W]`) with `weight`
/// (`[C_out, C_in, k_h, k_w]`), plus `bias` (`[C_out]`) when given:
/// `[N, C_out, H_out, W_out]`.
pub fn forward(g: &ConvGeometry, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    forward_fused(g, x, weight, &Epilogue { shift: bias, ..Epilogue::default() })
}

/// [`forward`], and the [`super::batchnorm::plane_moments`] of every output
/// plane, `[N][C_out]`, taken while each image's output is in cache: what
/// a batch norm after the convolution reads the whole output again for
/// ([`super::batchnorm::statistics_from_moments`] gives the same bits).
pub fn forward_with_moments(g: &ConvGeometry, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> (Vec<f32>, Vec<[f32; 3]>) {
    let mut moments = vec![[0.0f32; 3]; g.batch * g.out_channels];
    let out = MomentsOut { row: moments.as_mut_ptr(), channels: g.out_channels, _rows: std::marker::PhantomData };
    let y = forward_fused(g, x, weight, &Epilogue { shift: bias, moments: Some(out), ..Epilogue::default() });
    (y, moments)
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

/// Whether the environment variable `DEPTHLAB_CONV_TAPS` asks for the
/// direct tap kernel where the channel-vectorised one would run, to
/// compare.
pub(super) fn taps_forced() -> bool {
    static TAPS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    env_set(&TAPS, "DEPTHLAB_CONV_TAPS")
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
    backward_input_plus(g, dy, weight, None)
}

/// [`backward_input`] plus `other` (`[N, C_in, H, W]`), another gradient
/// of the same input: where the input gradient is a forward convolution
/// (stride 1) the sum is taken in that convolution's epilogue, while each
/// image's output is in cache; elsewhere in one parallel pass after it.
pub fn backward_input_plus(g: &ConvGeometry, dy: &[f32], weight: &[f32], other: Option<&[f32]>) -> Vec<f32> {
    if let Some(other) = other {
        assert_eq!(other.len(), g.batch * g.in_image(), "the other input gradient does not match {g:?}");
    }
    check_lengths(g, g.batch * g.in_image(), weight.len(), dy.len());
    if let Some(t) = g.transposed() {
        return forward_fused(&t, dy, &flip_transpose(g, weight), &Epilogue { residual: other, ..Epilogue::default() });
    }
    let mut dx = backward_input_strided(g, dy, weight);
    if let Some(other) = other {
        let epilogue = Epilogue { residual: Some(other), ..Epilogue::default() };
        let len = g.in_image();
        super::team::for_each_chunk(&mut dx, len, |n, image| finish_image(image, g.in_plane(), &epilogue.for_image(n, len)));
    }
    dx
}

/// The input gradient of a convolution that is not a forward convolution
/// of the output gradient (stride above 1).
fn backward_input_strided(g: &ConvGeometry, dy: &[f32], weight: &[f32]) -> Vec<f32> {
    if super::direct::applies_to_input_grad(g) {
        let direct = super::direct::InputGrad::new(g, weight);
        // SAFETY: `InputGrad::image` writes the image's whole C_in × H × W
        // gradient.
        return unsafe {
            each_image(g.batch, dy, g.out_image(), g.in_image(), |_, grad, out, s| {
                direct.image(g, grad, out, s.vectors().1);
            })
        };
    }
    let mut dx = vec![0.0f32; g.batch * g.in_image()];
    if dx.is_empty() || dy.is_empty() {
        return dx;
    }
    let (k, p) = (g.patch_len(), g.out_plane());
    let wt = View::col_major(weight, k, g.out_channels);
    let (in_image, out_image) = (g.in_image(), g.out_image());
    let image = |n: usize, out: &mut [f32]| {
        let grad = &dy[n * out_image..(n + 1) * out_image];
        Patches::with(|scratch| {
            let col = scratch.buffer(k * p);
            matmul(col, (p, 1), wt, View::row_major(grad, g.out_channels, p), false);
            fold_add(g, col, out);
        })
    };
    super::team::for_each_chunk(&mut dx, in_image, image);
    dx
}

/// `W'[c][o][i][j] = W[o][c][k_h−1−i][k_w−1−j]`: the kernel of the
/// transposed convolution.
fn flip_transpose(g: &ConvGeometry, weight: &[f32]) -> Vec<f32> {
    // Flipping both axes of a `k_h × k_w` kernel reverses its taps. Written
    // in the output's order, one kernel at a time.
    let k = g.kernel[0] * g.kernel[1];
    let mut out = vec![0.0f32; weight.len()];
    if k == 0 || g.out_channels == 0 {
        return out;
    }
    for (c, kernels) in out.chunks_exact_mut(g.out_channels * k).enumerate() {
        for (o, taps) in kernels.chunks_exact_mut(k).enumerate() {
            let src = &weight[(o * g.in_channels + c) * k..][..k];
            taps.iter_mut().zip(src.iter().rev()).for_each(|(t, &w)| *t = w);
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
            let dw = Patches::with(|scratch| super::outer::weight_grad_group(g, xs, dys, scratch.vectors().1));
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
    let dyg = WEIGHT_GRAD_GROUP * g.out_image();
    let partials =
        super::team::map_chunks(x, WEIGHT_GRAD_GROUP * g.in_image(), |i, xs| group((xs, &dy[i * dyg..((i + 1) * dyg).min(dy.len())])));
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
pub(super) mod tests;
