//! The stride-1 convolution without a patch matrix: each image is copied,
//! zero-padded, `k_w` times (shifted left by `0 … k_w − 1` columns), and
//! each kernel row `i` is one matrix product of a *view* of those copies
//! with that row's weights, accumulated into an output laid out on the
//! padded width.
//!
//! With the padded image `X̃` (`C_in × H̃ × W̃`) and output positions
//! `q = oh·W̃ + ow` on the padded width (the `W̃ − W_out` positions past
//! each output row are computed and dropped),
//! `yᵀ[q, o] = Σ_i Σ_(c, j) X̃[c, q + i·W̃ + j] · W[o, c, i, j]`. Stored as
//! `S[(c, j), t] = X̃[c, t + j]`, the left operand for row `i` is `S` read
//! from offset `i·W̃` with unit row stride: a plain strided matrix, no copy.
//! Against the patch matrix (`k_h·k_w` copies of the image written as short
//! rows) this writes `k_w` copies as long runs. The number of output
//! positions is rounded up to a multiple of the vector width, so that the
//! `gemm` crate reads the operand in place instead of packing it first.

use std::mem::MaybeUninit;

use super::conv::{ConvGeometry, Epilogue};
use super::gemm::{View, matmul};
use super::simd::vectorized;
use super::unfold::Patches;

/// Output positions are computed in multiples of this (the AVX-512 `f32`
/// width the `gemm` crate packs to).
const ROUND: usize = 16;

/// Whether this path computes the convolution: stride 1 and a kernel of
/// more than one tap (a 1×1 kernel at stride 1 reads the image as it is).
pub fn applies(g: &ConvGeometry) -> bool {
    g.stride == [1, 1] && g.kernel != [1, 1]
}

/// The padded plane `H̃·W̃` and width `W̃`.
fn padded(g: &ConvGeometry) -> (usize, usize) {
    let wp = g.in_width + 2 * g.padding[1];
    ((g.in_height + 2 * g.padding[0]) * wp, wp)
}

/// Output positions on the padded width, rounded up to [`ROUND`].
fn positions(g: &ConvGeometry) -> usize {
    let (_, wp) = padded(g);
    ((g.out_height() - 1) * wp + g.out_width()).div_ceil(ROUND) * ROUND
}

/// The weights regrouped per kernel row `i`: `k_h` column-major
/// `(C_in·k_w) × C_out` matrices, row `c·k_w + j` and column `o` holding
/// `W[o, c, i, j]`.
pub fn regroup(g: &ConvGeometry, weight: &[f32]) -> Vec<f32> {
    let (kh, kw, cin, cout) = (g.kernel[0], g.kernel[1], g.in_channels, g.out_channels);
    let rows = cin * kw;
    let mut out = vec![0.0f32; kh * rows * cout];
    for i in 0..kh {
        for o in 0..cout {
            for c in 0..cin {
                for j in 0..kw {
                    out[(i * cout + o) * rows + c * kw + j] = weight[((o * cin + c) * kh + i) * kw + j];
                }
            }
        }
    }
    out
}

vectorized! {
    /// `S[(c·k_w + j)·H̃W̃ + t] = X̃[c, t + j]`: `k_w` shifted copies of
    /// each padded channel (positions past the plane read as zero). The
    /// first copy is the padded channel, written row by row; the others
    /// are that copy again, `j` values further on, in one block each.
    fn fill_shifted(g: &ConvGeometry, image: &[f32], shifted: &mut [f32]) {
        let (ph, pw, kw) = (g.padding[0], g.padding[1], g.kernel[1]);
        let (h, w) = (g.in_height, g.in_width);
        let (plane, wp) = padded(g);
        for c in 0..g.in_channels {
            let src = &image[c * h * w..(c + 1) * h * w];
            let copies = &mut shifted[c * kw * plane..(c + 1) * kw * plane];
            let (first, rest) = copies.split_at_mut(plane);
            first[..ph * wp].fill(0.0);
            first[(ph + h) * wp..].fill(0.0);
            for (line, row) in src.chunks_exact(w).zip(first[ph * wp..].chunks_exact_mut(wp)) {
                for v in &mut row[..pw] {
                    *v = 0.0;
                }
                super::unfold::copy_row(&mut row[pw..pw + w], line);
                for v in &mut row[pw + w..] {
                    *v = 0.0;
                }
            }
            for (j, copy) in (1..kw).zip(rest.chunks_exact_mut(plane)) {
                copy[..plane - j].copy_from_slice(&first[j..]);
                copy[plane - j..].fill(0.0);
            }
        }
    }
}

vectorized! {
    /// One output channel's rows (`width` values each, `row_stride` apart
    /// in `src`) copied side by side into `dst`, in fixed-size blocks (the
    /// rows are a few dozen values: a `memcpy` call each cost more).
    fn narrow(dst: &mut [MaybeUninit<f32>], src: &[f32], row_stride: usize, width: usize) {
        for (r, d) in dst.chunks_exact_mut(width).enumerate() {
            let s = &src[r * row_stride..r * row_stride + width];
            let mut k = 0;
            while k + 16 <= width {
                let block: [f32; 16] = s[k..k + 16].try_into().expect("16 values");
                for (d, v) in d[k..k + 16].iter_mut().zip(block) {
                    d.write(v);
                }
                k += 16;
            }
            for (d, &v) in d[k..].iter_mut().zip(&s[k..]) {
                d.write(v);
            }
        }
    }
}

/// The convolution of one image `[C_in, H, W]` with the weights regrouped
/// by [`regroup`], into `out` (`[C_out, H_out, W_out]`, every element
/// written), through this image's epilogue ([`Epilogue::for_image`]).
pub fn forward_image(
    g: &ConvGeometry,
    image: &[f32],
    grouped: &[f32],
    out: &mut [MaybeUninit<f32>],
    epilogue: &Epilogue,
    scratch: &mut Patches,
) {
    debug_assert!(applies(g));
    let (kh, kw, cin, cout) = (g.kernel[0], g.kernel[1], g.in_channels, g.out_channels);
    let (plane, wp) = padded(g);
    let (ho, wo) = (g.out_height(), g.out_width());
    let m = positions(g);
    let rows = cin * kw;
    // The last rows of the products read up to `ROUND` values past the
    // copies (into positions that are dropped): kept zero.
    let (shifted, wide) = scratch.buffers(rows * plane + ROUND, m * cout);
    shifted[rows * plane..].fill(0.0);
    fill_shifted(g, image, &mut shifted[..rows * plane]);
    for i in 0..kh {
        let lhs = View { data: &shifted[i * wp..], rows: m, cols: rows, row_stride: 1, col_stride: plane };
        let rhs = View::col_major(&grouped[i * rows * cout..(i + 1) * rows * cout], rows, cout);
        matmul(wide, (1, m), lhs, rhs, i > 0);
    }
    let p = ho * wo;
    for (o, dst) in out.chunks_exact_mut(p).enumerate() {
        narrow(dst, &wide[o * m..], wp, wo);
    }
    // SAFETY: the copies above wrote every element of `out`.
    super::conv::finish_image(unsafe { super::assume_written(out) }, p, epilogue);
}
