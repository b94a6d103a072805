//! The weight gradient of a 3×3 convolution (any stride) as a sum of outer
//! products, vectorised over output channels: no patch matrix, and no
//! horizontal sums.
//!
//! `dW[o, c, i, j] = Σ_n Σ_(oh, ow) dY[n, o, oh, ow] · X̃[n, c, s·oh + i, s·ow + j]`
//! with `X̃` the image padded with zeros (padding 0 or 1), read in place: a
//! tap that falls in the padding is skipped (the only taps that can are
//! those of the first kernel column of a row's first position and of the
//! last column of its last, tested only there once the loops are unrolled,
//! and whole kernel rows at the top and bottom). A padded copy of each
//! group's images was 9 % of the weight gradient's time. The output gradient of a group of
//! images is laid channels-last (`dYᵀ[n, q, o]`, the output channels
//! padded to a multiple of 16 with zeros), so that one vector load holds 16
//! output channels at one position; each of the nine image values a
//! position meets is broadcast and multiplied into all of them. The
//! micro-kernel holds up to 27 vectors of sums in registers — 16·`NO`
//! output channels × `NC` input channels × the nine taps — over every
//! position of every image of the group, and stores them once.
//!
//! Sums: each weight's gradient adds the positions of a group in order
//! (images, rows, columns); the groups (of [`super::conv`]'s fixed size) are
//! added in group order by the caller: the result depends on the shapes
//! alone, never on the number of threads.

use super::conv::ConvGeometry;

/// The vector width.
const LANES: usize = 16;

/// Positions summed in registers before they are added to the totals
/// (whole images, at least this many): on plain-20's first convolution
/// (128 images of 28×28) the kernel's sum is 3.6e-6 from a float64 sum this
/// way, 4e-5 with every position of a group in one running sum.
const SUM_RUN: usize = 512;

/// Neighbouring output positions of a row taken at once by the
/// micro-kernel, sharing the image values they read.
const POSITIONS: usize = 4;

/// Whether this kernel computes the weight gradient: a 3×3 kernel at
/// equal strides with the same padding of 0 or 1 on each side, on a CPU
/// with AVX-512 (elsewhere the patch matrix path runs), unless
/// `DEPTHLAB_CONV_PATCHES` asks for the patch matrix everywhere.
pub fn applies(g: &ConvGeometry) -> bool {
    fits(g) && !super::conv::patches_forced()
}

/// [`applies`] without the environment's say.
fn fits(g: &ConvGeometry) -> bool {
    g.kernel == [3, 3] && g.stride[0] == g.stride[1] && g.padding[0] == g.padding[1] && g.padding[0] <= 1 && super::simd::has_avx512()
}

/// Where things lie in the scratch buffers of one group of images.
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// The image's height and width.
    height: usize,
    width: usize,
    /// Floats per image channel, `H·W`.
    plane: usize,
    /// The padding (the same on every side, 0 or 1).
    pad: usize,
    /// Output channels rounded up to a multiple of 16.
    cout_p: usize,
    /// Output height and width.
    ho: usize,
    wo: usize,
    /// The stride (the same across and down).
    stride: usize,
}

/// The weight gradient `[C_out, C_in, 3, 3]` of a group of images (`xs`
/// and `dys` hold whole images), added to by nothing else: the caller sums
/// the groups. `dy_t` is scratch space of any contents.
pub fn weight_grad_group(g: &ConvGeometry, xs: &[f32], dys: &[f32], dy_t: &mut Vec<f32>) -> Vec<f32> {
    assert!(fits(g), "the outer-product weight gradient takes 3x3 kernels at equal strides and paddings of 0 or 1, with AVX-512");
    let images = xs.len() / g.in_image().max(1);
    assert_eq!(dys.len(), images * g.out_image());
    let (cin, cout) = (g.in_channels, g.out_channels);
    let layout = Layout {
        height: g.in_height,
        width: g.in_width,
        plane: g.in_height * g.in_width,
        pad: g.padding[0],
        cout_p: cout.div_ceil(LANES) * LANES,
        ho: g.out_height(),
        wo: g.out_width(),
        stride: g.stride[0],
    };
    let mut dw = vec![0.0f32; cout * cin * 9];
    if images == 0 || layout.ho * layout.wo == 0 || cout == 0 || cin == 0 {
        return dw;
    }
    let dy_t = super::grown(dy_t, images * layout.ho * layout.wo * layout.cout_p);
    transpose_gradients(g, &layout, dys, dy_t);
    let vectors = layout.cout_p / LANES;
    let mut v0 = 0;
    while v0 < vectors {
        // Blocks of two vectors × one channel, or one vector × two
        // channels (18 sums each, beside the gradient vectors of
        // `POSITIONS` positions).
        let no = (vectors - v0).min(2);
        let nc = if no == 1 { 2 } else { 1 };
        let mut c0 = 0;
        while c0 < cin {
            let nc = nc.min(cin - c0);
            let block = Block { layout: &layout, images, cin, xs, dy_t, v0, c0 };
            let mut sums = [[[0.0f32; LANES]; 9]; 3];
            // SAFETY: AVX-512F is present (asserted); the block's channels
            // and vectors exist (see `Block::run`).
            unsafe { block.dispatch(no, nc, &mut sums) };
            // `sums[v·nc + cc][t][lane]` is the gradient of weight
            // `(16·(v0 + v) + lane, c0 + cc, t)`.
            for v in 0..no {
                for cc in 0..nc {
                    for (t, lanes) in sums[v * nc + cc].iter().enumerate() {
                        for (lane, &s) in lanes.iter().enumerate() {
                            let o = (v0 + v) * LANES + lane;
                            if o < cout {
                                dw[(o * cin + c0 + cc) * 9 + t] = s;
                            }
                        }
                    }
                }
            }
            c0 += nc;
        }
        v0 += no;
    }
    dw
}

/// `dy_t[(n·P + q)·C̃ + o] = dY[n, o, q]`, zero for the padding channels
/// `o ≥ C_out`: in tiles of 16 channels × 16 positions transposed in
/// registers (a value at a time, this took a fifth of the weight
/// gradient's time).
fn transpose_gradients(g: &ConvGeometry, layout: &Layout, dys: &[f32], out: &mut [f32]) {
    let (p, cout, cout_p) = (layout.ho * layout.wo, g.out_channels, layout.cout_p);
    for (src, dst) in dys.chunks_exact(cout * p).zip(out.chunks_exact_mut(p * cout_p)) {
        for o0 in (0..cout_p).step_by(LANES) {
            for q0 in (0..p).step_by(LANES) {
                // SAFETY: AVX-512F is present (the caller asserted it); the
                // tile's reads are masked to channels `< cout` and
                // positions `< p`, its writes to positions `< p`.
                unsafe { transpose_tile(src, dst, p, cout, cout_p, o0, q0) };
            }
        }
    }
}

/// One 16 × 16 tile of [`transpose_gradients`]: channels `o0..o0 + 16`,
/// positions `q0..q0 + 16`.
///
/// # Safety
/// The CPU must have AVX-512F; `src` holds `cout` channels of `p` values,
/// `dst` `p` rows of `cout_p` values, `o0 + 16 ≤ cout_p` and `q0 < p`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose_tile(src: &[f32], dst: &mut [f32], p: usize, cout: usize, cout_p: usize, o0: usize, q0: usize) {
    use std::arch::x86_64::*;
    let run = LANES.min(p - q0);
    let mask: __mmask16 = if run == LANES { !0 } else { (1u16 << run) - 1 };
    let mut r = [_mm512_setzero_ps(); LANES];
    for (k, row) in r.iter_mut().enumerate() {
        if o0 + k < cout {
            // SAFETY: channel `o0 + k < cout`, positions `q0..q0 + run ≤ p`.
            *row = unsafe { _mm512_maskz_loadu_ps(mask, src.as_ptr().add((o0 + k) * p + q0)) };
        }
    }
    // Pairs of rows interleaved, then fours, then the 128-bit lanes of
    // eights and sixteens: `out[col]` holds column `col` of the 16 rows.
    let mut t = [_mm512_setzero_ps(); LANES];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for i in 0..4 {
        r[4 * i] = _mm512_shuffle_ps::<0x44>(t[4 * i], t[4 * i + 2]);
        r[4 * i + 1] = _mm512_shuffle_ps::<0xEE>(t[4 * i], t[4 * i + 2]);
        r[4 * i + 2] = _mm512_shuffle_ps::<0x44>(t[4 * i + 1], t[4 * i + 3]);
        r[4 * i + 3] = _mm512_shuffle_ps::<0xEE>(t[4 * i + 1], t[4 * i + 3]);
    }
    let mut out = [_mm512_setzero_ps(); LANES];
    for k in 0..4 {
        let a = _mm512_shuffle_f32x4::<0x88>(r[k], r[4 + k]);
        let b = _mm512_shuffle_f32x4::<0xDD>(r[k], r[4 + k]);
        let c = _mm512_shuffle_f32x4::<0x88>(r[8 + k], r[12 + k]);
        let d = _mm512_shuffle_f32x4::<0xDD>(r[8 + k], r[12 + k]);
        out[k] = _mm512_shuffle_f32x4::<0x88>(a, c);
        out[4 + k] = _mm512_shuffle_f32x4::<0x88>(b, d);
        out[8 + k] = _mm512_shuffle_f32x4::<0xDD>(a, c);
        out[12 + k] = _mm512_shuffle_f32x4::<0xDD>(b, d);
    }
    for (col, v) in out.iter().take(run).enumerate() {
        // SAFETY: row `q0 + col < p`, channels `o0..o0 + 16 ≤ cout_p`.
        unsafe { _mm512_storeu_ps(dst.as_mut_ptr().add((q0 + col) * cout_p + o0), *v) };
    }
}

/// Never called: [`applies`] is false off x86-64.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn transpose_tile(_src: &[f32], _dst: &mut [f32], _p: usize, _cout: usize, _cout_p: usize, _o0: usize, _q0: usize) {
    unreachable!("the outer-product weight gradient needs AVX-512")
}

/// One register block: output-channel vectors from `v0`, input channels
/// from `c0`.
struct Block<'a> {
    layout: &'a Layout,
    images: usize,
    cin: usize,
    /// The group's images, `[n][c][H][W]`.
    xs: &'a [f32],
    dy_t: &'a [f32],
    v0: usize,
    c0: usize,
}

impl Block<'_> {
    /// Runs the micro-kernel instantiated for `no` vectors and `nc`
    /// channels (`no · nc ≤ 2`).
    ///
    /// # Safety
    /// As [`Block::run`].
    unsafe fn dispatch(&self, no: usize, nc: usize, sums: &mut [[[f32; LANES]; 9]; 3]) {
        match (no, nc, self.layout.stride) {
            (2, _, 1) => unsafe { self.run::<2, 1, 1>(sums) },
            (2, _, 2) => unsafe { self.run::<2, 1, 2>(sums) },
            (2, _, _) => unsafe { self.run::<2, 1, 0>(sums) },
            (_, 2, 1) => unsafe { self.run::<1, 2, 1>(sums) },
            (_, 2, 2) => unsafe { self.run::<1, 2, 2>(sums) },
            (_, 2, _) => unsafe { self.run::<1, 2, 0>(sums) },
            (_, _, 1) => unsafe { self.run::<1, 1, 1>(sums) },
            (_, _, 2) => unsafe { self.run::<1, 1, 2>(sums) },
            _ => unsafe { self.run::<1, 1, 0>(sums) },
        }
    }

    /// `sums[v·NC + cc][i·3 + j][lane] = Σ_n Σ_(oh, ow) dYᵀ[n, q, 16·(v0 + v) + lane]
    /// · X̃[n, c0 + cc, s·oh + i − pad, s·ow + j − pad]`, for stride `S` (1 or
    /// 2; 0 for any other, one position at a time), the taps in the
    /// padding left out.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; `xs` holds `images × cin` channels and
    /// `dy_t` `images × P` rows of `cout_p` floats laid out by `layout`;
    /// `c0 + NC ≤ cin` and `16·(v0 + NO) ≤ cout_p`. Then every image read
    /// lies inside its channel's plane (see [`Block::positions`]) and every
    /// gradient load inside its row.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run<const NO: usize, const NC: usize, const S: usize>(&self, sums: &mut [[[f32; LANES]; 9]; 3]) {
        use std::arch::x86_64::*;
        let l = self.layout;
        let p = l.ho * l.wo;
        debug_assert!(self.c0 + NC <= self.cin && LANES * (self.v0 + NO) <= l.cout_p);
        debug_assert!(S == 0 || S == l.stride);
        let mut total = [[[_mm512_setzero_ps(); 9]; NC]; NO];
        // Whole images of at least `SUM_RUN` positions are summed in
        // registers, then added to the totals: a blocked sum, whose error
        // grows with the run and the number of runs rather than with every
        // position of the group.
        let run = SUM_RUN.div_ceil(p).max(1);
        let mut n0 = 0;
        while n0 < self.images {
            let mut acc = [[[_mm512_setzero_ps(); 9]; NC]; NO];
            for n in n0..(n0 + run).min(self.images) {
                let x = self.xs[(n * self.cin + self.c0) * l.plane..][..NC * l.plane].as_ptr();
                let dy = self.dy_t[n * p * l.cout_p..][..p * l.cout_p].as_ptr();
                for oh in 0..l.ho {
                    // The kernel rows whose image row `s·oh + i − pad`
                    // lies inside the image.
                    let top = l.stride * oh;
                    let rows = l.pad.saturating_sub(top)..3.min(l.height + l.pad - top);
                    let mut ow = 0;
                    if S != 0 {
                        while ow + POSITIONS <= l.wo {
                            // SAFETY: positions `ow..ow + POSITIONS` of row `oh`.
                            unsafe { self.positions::<NO, NC, POSITIONS, S>(x, dy, oh, ow, rows.clone(), &mut acc) };
                            ow += POSITIONS;
                        }
                    }
                    while ow < l.wo {
                        // SAFETY: position `ow` of row `oh`.
                        unsafe { self.positions::<NO, NC, 1, 1>(x, dy, oh, ow, rows.clone(), &mut acc) };
                        ow += 1;
                    }
                }
            }
            for v in 0..NO {
                for cc in 0..NC {
                    for t in 0..9 {
                        total[v][cc][t] = _mm512_add_ps(total[v][cc][t], acc[v][cc][t]);
                    }
                }
            }
            n0 += run;
        }
        for v in 0..NO {
            for cc in 0..NC {
                for t in 0..9 {
                    // SAFETY: `sums[v·NC + cc][t]` holds 16 floats.
                    unsafe { _mm512_storeu_ps(sums[v * NC + cc][t].as_mut_ptr(), total[v][cc][t]) };
                }
            }
        }
    }

    /// Adds positions `ow..ow + P` of output row `oh` of one image (`x`
    /// its channels from `c0`, `dy` its gradient rows) to `acc`.
    /// Neighbouring positions share image values: position `ow + p`'s tap
    /// `(i, j)` reads column `s·(ow + p) + j − pad`, so a row of `P`
    /// positions broadcasts `S·(P − 1) + 3` values per kernel row where one
    /// position at a time broadcast `3·P`. Each sum still adds the positions
    /// in order, so the result is the same bits as one position at a time,
    /// and as a padded copy whose zeros were added.
    ///
    /// The taps in the padding are skipped: whole kernel rows (those not
    /// in `rows`), and the first position's first kernel column (image
    /// column `s·ow − pad`) or the last position's last (`s·(ow + P − 1) +
    /// 2 − pad`) where they fall outside the image. The columns between
    /// those lie inside it (at most one column of padding on each side).
    ///
    /// # Safety
    /// As [`Block::run`], with `ow + P ≤ W_out`, `S` the stride where
    /// `P > 1`, and `rows` the kernel rows whose image row lies inside the
    /// image.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::needless_range_loop)] // register blocks indexed [v][cc][tap], as in the formula
    unsafe fn positions<const NO: usize, const NC: usize, const P: usize, const S: usize>(
        &self,
        x: *const f32,
        dy: *const f32,
        oh: usize,
        ow: usize,
        rows: std::ops::Range<usize>,
        acc: &mut [[[std::arch::x86_64::__m512; 9]; NC]; NO],
    ) {
        use std::arch::x86_64::*;
        let l = self.layout;
        let q = oh * l.wo + ow;
        // Image row `s·oh − pad`, column `s·ow − pad` (wrapping: before
        // the image when a row or column of padding lies above or to the
        // left; never read there).
        let base = x.wrapping_add(l.stride * (oh * l.width + ow)).wrapping_sub(l.pad * (l.width + 1));
        let left = l.stride * ow < l.pad;
        let right = l.stride * (ow + P - 1) + 2 >= l.width + l.pad;
        let mut d = [[_mm512_setzero_ps(); NO]; P];
        for (pp, d) in d.iter_mut().enumerate() {
            for (v, d) in d.iter_mut().enumerate() {
                // SAFETY: row `q + pp` of the image's gradient, vector `v0 + v`.
                *d = unsafe { _mm512_loadu_ps(dy.add((q + pp) * l.cout_p + (self.v0 + v) * LANES)) };
            }
        }
        let last = S * (P - 1) + 2;
        for cc in 0..NC {
            // Every kernel row, tested: unrolled, so that each sum's
            // register is known when compiled (a loop over `rows` alone
            // would leave the tap unknown).
            for i in 0..3 {
                if !rows.contains(&i) {
                    continue;
                }
                // Row `s·oh + i − pad` of channel `c0 + cc` (inside the
                // image: `rows`), from column `s·ow − pad`.
                let row = base.wrapping_add(cc * l.plane + i * l.width);
                // `0..last + 1`, not `0..=last`: LLVM left the inclusive
                // range rolled at stride 2, its sums in memory (3.5x slower).
                for col in 0..last + 1 {
                    // (A test only where `col` is 0 or `last`, once unrolled.)
                    if (col == 0 && left) || (col == last && right) {
                        continue;
                    }
                    // SAFETY: column `s·ow + col − pad` lies inside the
                    // image (the edges skipped above).
                    let xb = _mm512_set1_ps(unsafe { *row.wrapping_add(col) });
                    for pp in 0..P {
                        if col >= S * pp && col < S * pp + 3 {
                            let t = i * 3 + col - S * pp;
                            for v in 0..NO {
                                acc[v][cc][t] = _mm512_fmadd_ps(d[pp][v], xb, acc[v][cc][t]);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Never called: [`applies`] is false off x86-64.
    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn positions<const NO: usize, const NC: usize, const P: usize, const S: usize>(
        &self,
        _x: *const f32,
        _dy: *const f32,
        _oh: usize,
        _ow: usize,
        _rows: std::ops::Range<usize>,
        _acc: &mut [[[f32; 9]; NC]; NO],
    ) {
        unreachable!("the outer-product weight gradient needs AVX-512")
    }

    /// Never called: [`applies`] is false off x86-64.
    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn run<const NO: usize, const NC: usize, const S: usize>(&self, _sums: &mut [[[f32; LANES]; 9]; 3]) {
        unreachable!("the outer-product weight gradient needs AVX-512")
    }
}
