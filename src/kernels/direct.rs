//! The weight gradient of a stride-1 3×3 convolution without a patch
//! matrix: an AVX-512 micro-kernel that reads the padded image and the
//! output gradient in place.
//!
//! Lay the output gradient of each channel on the padded width `W̃` (output
//! position `q = oh·W̃ + ow`, zeros in the `W̃ − W_out` columns past each
//! row). Then tap `(i, j)` of the kernel reads the padded image `X̃` at
//! `q + i·W̃ + j`, and
//!
//! `dW[o, c, i, j] = Σ_n Σ_q dY[n, o, q] · X̃[n, c, q + i·W̃ + j]`,
//!
//! a dot product of two contiguous runs for every `(o, c, i, j)`. The
//! micro-kernel holds 27 of them in registers — three output channels ×
//! the nine taps, each a vector of 16 partial sums over `q` — loads each
//! output-gradient vector once for nine multiply-adds and each image
//! vector once for three, and runs over every image of a group before the
//! partial sums are added up. The patch matrix path wrote nine copies of
//! each image first (10 % of a ResNet-110 step) and ran the product
//! through the `gemm` crate's narrow 16-row micro-kernel on 16-channel
//! layers.
//!
//! Sums: each lane adds `1/16` of a group's positions in order, the lanes
//! are added in a fixed order, and the groups (of [`super::conv`]'s fixed
//! size) in group order: the result depends on the shapes alone, never on
//! the number of threads.

use super::conv::ConvGeometry;

/// Output channels per register block (3 × 9 taps = 27 accumulators of the
/// 32 vector registers).
const BLOCK: usize = 3;

/// The narrowest output this kernel takes. Measured on 128 images, two
/// threads (GFLOP/s, direct against patch matrix): 16 channels at 32×32
/// 158 against 107; 32 at 16×16 160 against 171; 64 at 8×8 105 against
/// 165 — on narrow images the padded columns (2 of every `W + 2`) and the
/// final sums of the 27 accumulators weigh more than the copies saved.
const MIN_WIDTH: usize = 24;

/// The vector width.
const LANES: usize = 16;

/// Whether this kernel computes the weight gradient: a 3×3 kernel at
/// stride 1 over outputs at least [`MIN_WIDTH`] wide, on a CPU with
/// AVX-512 (elsewhere the patch matrix path runs), unless
/// `DEPTHLAB_CONV_PATCHES` asks for the patch matrix everywhere.
pub fn applies(g: &ConvGeometry) -> bool {
    g.kernel == [3, 3] && g.stride == [1, 1] && g.out_width() >= MIN_WIDTH && super::simd::has_avx512() && !super::conv::patches_forced()
}

/// Where things lie in the padded buffers of one group of images.
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// Padded width `W̃`.
    wp: usize,
    /// Output positions per channel on the padded width, rounded up to the
    /// vector width.
    positions: usize,
    /// Floats per padded image channel: the padded plane, then zeros that
    /// the last vectors of the last taps read past it.
    channel: usize,
}

impl Layout {
    fn of(g: &ConvGeometry) -> Layout {
        let wp = g.in_width + 2 * g.padding[1];
        let hp = g.in_height + 2 * g.padding[0];
        let positions = (g.out_height() * wp).div_ceil(LANES) * LANES;
        // The furthest read: the last vector of tap (2, 2).
        let channel = (positions + 2 * wp + 2).max(hp * wp).div_ceil(LANES) * LANES;
        Layout { wp, positions, channel }
    }
}

/// The weight gradient `[C_out, C_in, 3, 3]` of a group of images (`xs`
/// and `dys` hold whole images), added to by nothing else: the caller sums
/// the groups. `padded_x` and `padded_dy` are scratch space of any
/// contents.
pub fn weight_grad_group(g: &ConvGeometry, xs: &[f32], dys: &[f32], padded_x: &mut Vec<f32>, padded_dy: &mut Vec<f32>) -> Vec<f32> {
    assert!(
        g.kernel == [3, 3] && g.stride == [1, 1] && super::simd::has_avx512(),
        "the direct weight gradient takes 3x3 kernels at stride 1, with AVX-512"
    );
    let images = xs.len() / g.in_image().max(1);
    debug_assert_eq!(dys.len(), images * g.out_image());
    let layout = Layout::of(g);
    let (cin, cout) = (g.in_channels, g.out_channels);
    resize(padded_x, images * cin * layout.channel);
    resize(padded_dy, images * cout * layout.positions);
    pad_images(g, &layout, xs, padded_x);
    pad_gradients(g, &layout, dys, padded_dy);
    let mut dw = vec![0.0f32; cout * cin * 9];
    for c in 0..cin {
        let mut o = 0;
        while o < cout {
            let block = BLOCK.min(cout - o);
            let mut sums = [[0.0f32; 9]; BLOCK];
            // SAFETY: AVX-512F is present (`applies`), and every read lies
            // inside the padded buffers laid out by `layout` (see
            // `accumulate`).
            unsafe {
                match block {
                    3 => accumulate::<3>(&layout, images, cin, cout, c, o, padded_x, padded_dy, &mut sums),
                    2 => accumulate::<2>(&layout, images, cin, cout, c, o, padded_x, padded_dy, &mut sums),
                    _ => accumulate::<1>(&layout, images, cin, cout, c, o, padded_x, padded_dy, &mut sums),
                }
            }
            for (b, taps) in sums.iter().take(block).enumerate() {
                dw[((o + b) * cin + c) * 9..][..9].copy_from_slice(taps);
            }
            o += block;
        }
    }
    dw
}

fn resize(buffer: &mut Vec<f32>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
}

/// Each image channel inside its zero padding, followed by zeros.
fn pad_images(g: &ConvGeometry, layout: &Layout, xs: &[f32], out: &mut [f32]) {
    let (h, w, ph, pw, wp) = (g.in_height, g.in_width, g.padding[0], g.padding[1], layout.wp);
    for (src, dst) in xs.chunks_exact(h * w).zip(out.chunks_exact_mut(layout.channel)) {
        dst[..ph * wp].fill(0.0);
        for (line, row) in src.chunks_exact(w).zip(dst[ph * wp..].chunks_exact_mut(wp)) {
            row[..pw].fill(0.0);
            row[pw..pw + w].copy_from_slice(line);
            row[pw + w..].fill(0.0);
        }
        dst[(ph + h) * wp..].fill(0.0);
    }
}

/// Each output-gradient channel on the padded width: zeros past each row
/// and past the last.
fn pad_gradients(g: &ConvGeometry, layout: &Layout, dys: &[f32], out: &mut [f32]) {
    let (ho, wo, wp) = (g.out_height(), g.out_width(), layout.wp);
    for (src, dst) in dys.chunks_exact(ho * wo).zip(out.chunks_exact_mut(layout.positions)) {
        for (line, row) in src.chunks_exact(wo).zip(dst.chunks_mut(wp)) {
            row[..wo].copy_from_slice(line);
            row[wo..].fill(0.0);
        }
        dst[ho * wp..].fill(0.0);
    }
}

/// `sums[b][i·3 + j] = Σ_n Σ_q dY[n, o + b, q] · X̃[n, c, q + i·W̃ + j]`
/// for `b < NB`.
///
/// # Safety
/// The CPU must have AVX-512F; `padded_x` must hold `images × cin` padded
/// channels and `padded_dy` `images × cout` padded gradient channels laid
/// out by `layout`, with `c < cin` and `o + NB ≤ cout`. Then every vector
/// read ends at most at `positions − 16 + 2·W̃ + 2 + 16 ≤ channel` floats
/// into its image channel, and at `positions` into its gradient channel.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn accumulate<const NB: usize>(
    layout: &Layout,
    images: usize,
    cin: usize,
    cout: usize,
    c: usize,
    o: usize,
    padded_x: &[f32],
    padded_dy: &[f32],
    sums: &mut [[f32; 9]; BLOCK],
) {
    use std::arch::x86_64::*;
    let wp = layout.wp;
    let mut acc = [[_mm512_setzero_ps(); 9]; NB];
    for n in 0..images {
        let x = padded_x[(n * cin + c) * layout.channel..][..layout.channel].as_ptr();
        let dy = padded_dy[(n * cout + o) * layout.positions..][..NB * layout.positions].as_ptr();
        let mut q = 0;
        while q < layout.positions {
            let mut d = [_mm512_setzero_ps(); NB];
            for (b, d) in d.iter_mut().enumerate() {
                // SAFETY: `q + 16 ≤ positions` inside gradient channel `o + b`.
                *d = unsafe { _mm512_loadu_ps(dy.add(b * layout.positions + q)) };
            }
            for i in 0..3 {
                for j in 0..3 {
                    // SAFETY: within the image channel (see the function's
                    // safety note).
                    let v = unsafe { _mm512_loadu_ps(x.add(q + i * wp + j)) };
                    for b in 0..NB {
                        acc[b][i * 3 + j] = _mm512_fmadd_ps(d[b], v, acc[b][i * 3 + j]);
                    }
                }
            }
            q += LANES;
        }
    }
    for b in 0..NB {
        for t in 0..9 {
            let mut lanes = [0.0f32; LANES];
            // SAFETY: `lanes` holds 16 floats.
            unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), acc[b][t]) };
            sums[b][t] = super::simd::sum(&lanes);
        }
    }
}

/// Never called: [`applies`] is false off x86-64.
#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
unsafe fn accumulate<const NB: usize>(
    _layout: &Layout,
    _images: usize,
    _cin: usize,
    _cout: usize,
    _c: usize,
    _o: usize,
    _padded_x: &[f32],
    _padded_dy: &[f32],
    _sums: &mut [[f32; 9]; BLOCK],
) {
    unreachable!("the direct weight gradient needs AVX-512")
}
