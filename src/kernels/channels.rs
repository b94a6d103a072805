//! The stride-1 3×3 convolution with padding 1 and more than 16 output
//! channels — the CIFAR ResNets' second and third stages, and their input
//! gradients — vectorised over output channels: an AVX-512 micro-kernel
//! with no masks and no unaligned vector loads of the image.
//!
//! A register block is a run of [`PIXELS`] neighbouring output positions
//! of one row × [`VECTORS`] vectors of 16 output channels. For each input
//! channel and tap it loads the block's weight vectors (16 output channels
//! each, packed in the order the kernel reads them) once and broadcasts
//! each image value it meets; a tap that falls outside the image at the
//! left or right edge is skipped for that position, at compile time (the
//! block's first and last positions are the only ones that can fall
//! outside), and a row above or below the image is skipped for the whole
//! block. So the image is read in place, with no copy, and no lane is
//! computed and thrown away.
//!
//! The sums come out as vectors of output channels at one position; an
//! in-register transpose (three rounds of two-source permutes) turns them
//! into rows of positions of one channel, stored where they belong in the
//! NCHW output.
//!
//! Each output value is a sum over `(c, tap)` in that order — the order of
//! [`super::direct`]'s tap kernel, which adds a zero for each tap outside
//! the image where this one skips it — whatever the number of threads.
//!
//! Measured against the tap kernel ([`super::direct`]), which vectorises
//! over positions and masks each load (`examples/conv_kernels.rs`, 128
//! images, two threads): 64 channels at 8×8 1.66–1.77 against 2.11–2.19
//! ms, 32 at 16×16 1.92–2.01 against 2.07–2.14.

use std::mem::MaybeUninit;

use super::conv::ConvGeometry;

/// The vector width.
const LANES: usize = 16;

/// Neighbouring output positions of one row per register block.
const PIXELS: usize = 8;

/// Vectors of 16 output channels per register block: 8 × 2 = 16 sums in
/// registers, beside the block's two weight vectors.
const VECTORS: usize = 2;

/// A stride-1 convolution ready to run image by image: its weights packed
/// in blocks of [`VECTORS`] × 16 output channels (the last block may hold
/// one vector; channels past `C_out` are zeros), each laid `[c][tap][o]`.
pub struct Stride1 {
    packed: Vec<f32>,
    cin: usize,
    cout: usize,
    height: usize,
    width: usize,
}

impl Stride1 {
    /// The convolution of `[cin, height, width]` images into `cout`
    /// channels of the same size with weight `weight(o, c, tap)` (tap
    /// `3·i + j`, row `i` and column `j` of the 3×3 kernel, reading input
    /// position `(oh + i − 1, ow + j − 1)`).
    pub fn new(cin: usize, cout: usize, height: usize, width: usize, weight: impl Fn(usize, usize, usize) -> f32) -> Stride1 {
        let vectors = cout.div_ceil(LANES);
        let blocks = (0..vectors).step_by(VECTORS).map(|v0| (v0 * LANES, VECTORS.min(vectors - v0) * LANES));
        let packed = super::direct::pack_blocks(cout, cin, 9, blocks, weight);
        Stride1 { packed, cin, cout, height, width }
    }

    /// Whether the kernel can run here: a CPU with AVX-512.
    pub fn available() -> bool {
        super::simd::has_avx512()
    }

    /// The convolution of one image (`[C_in, H, W]`) into `out`
    /// (`[C_out, H, W]`, every element written).
    pub fn image(&self, image: &[f32], out: &mut [MaybeUninit<f32>]) {
        assert!(Self::available(), "the channel-vectorised convolution needs AVX-512");
        let plane = self.height * self.width;
        assert_eq!(image.len(), self.cin * plane);
        assert_eq!(out.len(), self.cout * plane);
        if plane == 0 || self.cout == 0 {
            return;
        }
        let vectors = self.cout.div_ceil(LANES);
        let out_ptr = out.as_mut_ptr().cast::<f32>();
        let mut v0 = 0;
        while v0 < vectors {
            let nv = VECTORS.min(vectors - v0);
            let weights = self.packed[v0 * LANES * self.cin * 9..(v0 + nv) * LANES * self.cin * 9].as_ptr();
            let channels = (self.cout - v0 * LANES).min(nv * LANES);
            for oh in 0..self.height {
                let rows = usize::from(oh == 0)..if oh + 1 == self.height { 2 } else { 3 };
                let mut ow = 0;
                while ow < self.width {
                    let np = PIXELS.min(self.width - ow);
                    let block = Block {
                        image: image.as_ptr(),
                        plane,
                        width: self.width,
                        cin: self.cin,
                        channels,
                        rows: rows.clone(),
                        first: oh * self.width + ow,
                        weights,
                        // SAFETY (of the offset): channel `v0·16 < C_out`, inside `out`.
                        out: unsafe { out_ptr.add(v0 * LANES * plane) },
                    };
                    // SAFETY: AVX-512F is present (asserted); see `Block::run`.
                    unsafe { block.dispatch(np, nv, ow == 0, ow + np == self.width) };
                    ow += np;
                }
            }
            v0 += nv;
        }
    }
}

/// One register block's operands.
struct Block {
    /// The image, `[C_in, H, W]`.
    image: *const f32,
    plane: usize,
    width: usize,
    cin: usize,
    /// Output channels of the block that exist (the rest of its vectors
    /// are padding, not stored).
    channels: usize,
    /// The kernel rows `i` whose input row `oh + i − 1` lies inside the
    /// image.
    rows: std::ops::Range<usize>,
    /// The block's first output position, `oh·W + ow`.
    first: usize,
    /// The block's packed weights, `[c][tap][o]`.
    weights: *const f32,
    /// The block's first output channel's plane.
    out: *mut f32,
}

impl Block {
    /// Runs the micro-kernel instantiated for `np` positions, `nv` vectors
    /// and the edges the block touches.
    ///
    /// # Safety
    /// As [`Block::run`], with `1 ≤ np ≤ PIXELS` and `1 ≤ nv ≤ VECTORS`.
    unsafe fn dispatch(&self, np: usize, nv: usize, left: bool, right: bool) {
        macro_rules! by_edges {
            ($p:literal, $v:literal) => {
                match (left, right) {
                    (true, true) => unsafe { self.run::<$p, $v, true, true>() },
                    (true, false) => unsafe { self.run::<$p, $v, true, false>() },
                    (false, true) => unsafe { self.run::<$p, $v, false, true>() },
                    (false, false) => unsafe { self.run::<$p, $v, false, false>() },
                }
            };
        }
        super::by_block_shape!(np, nv, by_edges)
    }

    /// `out[o][first + p] = Σ_c Σ_(i, j) W[o, c, 3i + j] · image[c][first
    /// + p + (i − 1)·W + j − 1]` for the block's `NP` positions and
    /// `16·NV` channels, the taps outside the image left out.
    ///
    /// # Safety
    /// The CPU must have AVX-512F. `image` holds `cin` planes of `plane`
    /// floats; the block's positions `first..first + NP` lie in one row,
    /// `LEFT` exactly when the first is in column 0 and `RIGHT` exactly
    /// when the last is in column `W − 1`; `rows` holds exactly the kernel
    /// rows that stay inside the image; `weights` holds `cin · 9 · 16·NV`
    /// floats; `out` points at `channels ≤ 16·NV` planes of `plane` floats.
    /// Then every image value read lies inside its channel's plane, and
    /// every store inside the block's positions of an existing channel.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::needless_range_loop)] // register blocks indexed [p][v], as in the formula
    unsafe fn run<const NP: usize, const NV: usize, const LEFT: bool, const RIGHT: bool>(&self) {
        use std::arch::x86_64::*;
        let mut acc = [[_mm512_setzero_ps(); NV]; NP];
        for c in 0..self.cin {
            // SAFETY: channel `c < cin` of the image and of the weights.
            let (x, w) = unsafe { (self.image.add(c * self.plane + self.first), self.weights.add(c * 9 * NV * LANES)) };
            for i in self.rows.clone() {
                // Column −1 of the row the tap reads (never read itself at
                // the left edge: wrapping).
                let row = x.wrapping_add(i * self.width).wrapping_sub(self.width + 1);
                for j in 0..3 {
                    let mut wv = [_mm512_setzero_ps(); NV];
                    for v in 0..NV {
                        // SAFETY: `(3i + j)·NV + v < 9·NV` vectors of channel `c`.
                        wv[v] = unsafe { _mm512_loadu_ps(w.add(((3 * i + j) * NV + v) * LANES)) };
                    }
                    for p in 0..NP {
                        if (LEFT && p == 0 && j == 0) || (RIGHT && p == NP - 1 && j == 2) {
                            continue;
                        }
                        // SAFETY: row `oh + i − 1` is inside the image
                        // (`rows`), and column `ow + p + j − 1` too (the
                        // edges skipped above).
                        let xb = _mm512_set1_ps(unsafe { *row.add(p + j) });
                        for v in 0..NV {
                            acc[p][v] = _mm512_fmadd_ps(xb, wv[v], acc[p][v]);
                        }
                    }
                }
            }
        }
        let lanes = (1u16 << NP) - 1;
        for v in 0..NV {
            let mut rows = [_mm512_setzero_ps(); PIXELS];
            for p in 0..NP {
                rows[p] = acc[p][v];
            }
            let pairs = transpose(rows);
            for (k, pair) in pairs.iter().enumerate() {
                for half in 0..2 {
                    let o = v * LANES + 2 * k + half;
                    if o < self.channels {
                        // SAFETY: channel `o` exists; lanes `8·half ..
                        // 8·half + NP` of the store land on positions
                        // `first .. first + NP` of its plane, the others
                        // are masked off (the address before the plane is
                        // never written).
                        unsafe {
                            let at = self.out.add(o * self.plane + self.first).wrapping_sub(8 * half);
                            _mm512_mask_storeu_ps(at, lanes << (8 * half), *pair);
                        }
                    }
                }
            }
        }
    }

    /// Never called: [`Stride1::available`] is false off x86-64.
    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn run<const NP: usize, const NV: usize, const LEFT: bool, const RIGHT: bool>(&self) {
        unreachable!("the channel-vectorised convolution needs AVX-512")
    }
}

/// The permutes of [`transpose`]: for each of its three rounds, the index
/// vectors of the pair's two outputs (`16 +` a lane takes it from the
/// second source).
const ROUNDS: [[[i32; LANES]; 2]; 3] = rounds();

const fn rounds() -> [[[i32; LANES]; 2]; 3] {
    let mut r = [[[0i32; LANES]; 2]; 3];
    let mut lane = 0;
    while lane < LANES {
        let l = lane as i32;
        // Round 1 swaps position bit 2 with channel bit 3: lanes
        // (p2, l2, l1, l0) afterwards.
        r[0][0][lane] = (l >> 3) * 16 + (l & 7);
        r[0][1][lane] = (l >> 3) * 16 + 8 + (l & 7);
        // Round 2 swaps position bit 1 with channel bit 2: lanes
        // (p2, p1, l1, l0).
        r[1][0][lane] = ((l >> 2) & 1) * 16 + (l & !4);
        r[1][1][lane] = ((l >> 2) & 1) * 16 + (l | 4);
        // Round 3 swaps position bit 0 with channel bit 1 and reorders the
        // lanes to (l0, p2, p1, p0): eight positions of channel `2k`, then
        // eight of channel `2k + 1`.
        let (l0, p) = (l >> 3, l & 7);
        let (p2, p1, p0) = (p >> 2, (p >> 1) & 1, p & 1);
        let mut half = 0;
        while half < 2 {
            r[2][half][lane] = p0 * 16 + ((p2 << 3) | (p1 << 2) | ((half as i32) << 1) | l0);
            half += 1;
        }
        lane += 1;
    }
    r
}

/// Eight vectors of 16 channels at positions `p = 0..8` into eight vectors
/// `k` of positions: lanes `0..8` channel `2k` at positions `0..8`, lanes
/// `8..16` channel `2k + 1`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn transpose(rows: [std::arch::x86_64::__m512; PIXELS]) -> [std::arch::x86_64::__m512; PIXELS] {
    use std::arch::x86_64::*;
    // SAFETY: the index arrays hold 16 `i32`s each.
    let index = |round: usize, half: usize| unsafe { _mm512_loadu_si512(ROUNDS[round][half].as_ptr().cast()) };
    let mut a = rows;
    // The vector index's bits take the channel's bits 3, 2, 1 in turn;
    // round `r` pairs the vectors whose index differs in bit `2 − r`.
    for (round, bit) in [4usize, 2, 1].into_iter().enumerate() {
        let (lo, hi) = (index(round, 0), index(round, 1));
        let mut b = a;
        for m in 0..PIXELS {
            if m & bit == 0 {
                b[m] = _mm512_permutex2var_ps(a[m], lo, a[m | bit]);
                b[m | bit] = _mm512_permutex2var_ps(a[m], hi, a[m | bit]);
            }
        }
        a = b;
    }
    a
}

/// Whether this kernel computes `g`'s forward pass in place of the tap
/// kernel: 3×3, padding 1, stride 1, at least two vectors of output
/// channels. With one vector (16 channels) a block holds 8 sums and loads
/// 9 values for 8 multiply-adds, and the tap kernel is faster (16 channels
/// at 32×32, 128 images: 2.2 against 2.4 ms; blocks of 16 positions × 16
/// channels were no better, 2.35–2.4 ms).
pub fn applies(g: &ConvGeometry) -> bool {
    g.kernel == [3, 3] && g.padding == [1, 1] && g.stride == [1, 1] && g.out_channels > LANES && Stride1::available()
}

/// The forward convolution of `g` (3×3, padding 1, stride 1) with its
/// weights `[C_out, C_in, 3, 3]`.
pub fn forward(g: &ConvGeometry, weight: &[f32]) -> Stride1 {
    assert!(
        g.kernel == [3, 3] && g.padding == [1, 1] && g.stride == [1, 1],
        "the channel-vectorised kernel takes 3x3, padding 1, stride 1: {g:?}"
    );
    assert_eq!(weight.len(), g.weight_len());
    let cin = g.in_channels;
    Stride1::new(cin, g.out_channels, g.in_height, g.in_width, |o, c, k| weight[(o * cin + c) * 9 + k])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sum at `(o, oh, ow)` in float64 from the definition.
    fn reference(
        (cin, h, w): (usize, usize, usize),
        image: &[f32],
        weight: impl Fn(usize, usize, usize) -> f32,
        (o, oh, ow): (usize, usize, usize),
    ) -> f64 {
        let mut s = 0.0f64;
        for c in 0..cin {
            for i in 0..3 {
                for j in 0..3 {
                    let (r, q) = (oh as isize + i as isize - 1, ow as isize + j as isize - 1);
                    if r >= 0 && q >= 0 && (r as usize) < h && (q as usize) < w {
                        s += f64::from(weight(o, c, 3 * i + j)) * f64::from(image[(c * h + r as usize) * w + q as usize]);
                    }
                }
            }
        }
        s
    }

    #[test]
    fn matches_the_definition_on_odd_shapes() {
        if !Stride1::available() {
            return;
        }
        // Widths below, at and across a block of eight; 1 channel; output
        // channels below, at and past a vector and a block of two.
        for &(cin, cout, h, w) in &[
            (1, 1, 1, 1),
            (3, 5, 4, 7),
            (2, 16, 3, 8),
            (4, 17, 5, 9),
            (1, 33, 2, 20),
            (5, 40, 1, 3),
            (7, 64, 8, 8),
            (3, 16, 3, 20),
            (2, 7, 2, 13),
            (1, 1, 1, 16),
            (2, 48, 2, 9),
        ] {
            let image: Vec<f32> = (0..cin * h * w).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
            let weight = |o: usize, c: usize, k: usize| (((o * 131 + c * 17 + k * 7) % 29) as f32 - 14.0) / 14.0;
            let conv = Stride1::new(cin, cout, h, w, weight);
            let mut out = vec![MaybeUninit::new(f32::NAN); cout * h * w];
            conv.image(&image, &mut out);
            for o in 0..cout {
                for oh in 0..h {
                    for ow in 0..w {
                        // SAFETY: every element was initialised (NaN) before the call.
                        let got = unsafe { out[(o * h + oh) * w + ow].assume_init() };
                        let want = reference((cin, h, w), &image, weight, (o, oh, ow));
                        assert!(
                            (f64::from(got) - want).abs() <= 1e-5 * (1.0 + want.abs()),
                            "{cin}x{h}x{w} -> {cout}: ({o}, {oh}, {ow}) {got} against {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_transpose_puts_each_channels_positions_in_a_row() {
        if !Stride1::available() {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::*;
            let mut rows = [[0.0f32; LANES]; PIXELS];
            for (p, row) in rows.iter_mut().enumerate() {
                for (l, v) in row.iter_mut().enumerate() {
                    *v = (100 * p + l) as f32;
                }
            }
            // SAFETY: AVX-512F is present (checked above); each row holds 16 floats.
            let out = unsafe { transpose(rows.map(|r| _mm512_loadu_ps(r.as_ptr()))) };
            for (k, v) in out.iter().enumerate() {
                let mut lanes = [0.0f32; LANES];
                // SAFETY: `lanes` holds 16 floats.
                unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), *v) };
                for (lane, &x) in lanes.iter().enumerate() {
                    let (channel, p) = (2 * k + lane / 8, lane % 8);
                    assert_eq!(x, (100 * p + channel) as f32, "vector {k}, lane {lane}");
                }
            }
        }
    }
}
