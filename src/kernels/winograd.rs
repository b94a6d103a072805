//! Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray 2016) for the
//! stride-1 3×3 convolutions with padding 1 on images of even height and
//! width: each 2×2 block of outputs ("tile") comes from the 4×4 block of
//! input around it, and
//!
//! `Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A`
//!
//! turns the 36 multiplications of a tile per (input, output) channel pair
//! into 16. With the 16 elements of the transformed tiles as 16 separate
//! matrix products over the channels, a forward pass or a stride-1 input
//! gradient does 4/9 of the direct kernel's multiply-adds, through the
//! same register-blocked micro-kernel ([`super::direct::Product`]), plus
//! the transforms (additions only, and halves in `G`).
//!
//! F(2×2, 3×3) is the variant whose transforms are exact in floating point
//! up to the halves of `G`: its error stays at the level of the direct sum
//! (the tests compare both with a float64 convolution). Larger tiles
//! (F(4×4, 3×3)) save more multiplications but lose digits, which matters
//! in a lab that measures gradients across many orders of magnitude.

use std::mem::MaybeUninit;

use super::conv::{ConvGeometry, Epilogue};
use super::direct::Product;

/// Elements of a transformed 4×4 tile.
const POINTS: usize = 16;

/// The smallest image (height × width) the Winograd kernel takes when asked
/// for. Measured
/// against the direct kernel on resnet-20's shapes (`examples/conv_kernels`,
/// batch 128, two threads, forward): 32×32 2.40 against 2.49 ms, 16×16 2.08
/// against 2.40 ms, but 8×8 2.74 against 2.37 ms — a row of 4 tiles fills a
/// quarter of a vector in the transforms, and an image's 16 tiles make one
/// vector of the products.
const MIN_PLANE: usize = 256;

/// Whether the Winograd kernel can compute this convolution: 3×3,
/// padding 1, stride 1, even height and width, at most 32 columns (a row of
/// tiles is one vector), on a CPU with AVX-512.
pub fn fits(g: &ConvGeometry) -> bool {
    g.kernel == [3, 3]
        && g.padding == [1, 1]
        && g.stride == [1, 1]
        && g.in_height.is_multiple_of(2)
        && g.in_width.is_multiple_of(2)
        && g.in_height >= 2
        && (2..=2 * LANES).contains(&g.in_width)
        && super::simd::has_avx512()
}

/// Whether the lab computes this convolution with Winograd tiles: only
/// when `DEPTHLAB_CONV_WINOGRAD` is set, where they [`fit`](fits) on
/// images of at least [`MIN_PLANE`] positions. Off by default because it
/// does not pay yet on the whole step: on this 2-core machine resnet-20
/// trained at 638 img/s with it against 625 without, plain-20 628 against
/// 621, resnet-56 213 against 221 (medians of three alternating runs of
/// `depthlab bench`) — the 4/9 multiply-adds are eaten by the transforms
/// and by products over as few as 16 channels.
pub fn applies(g: &ConvGeometry) -> bool {
    fits(g) && g.in_height * g.in_width >= MIN_PLANE && !super::conv::patches_forced() && !super::conv::shifted_forced() && asked_for()
}

/// Whether `DEPTHLAB_CONV_WINOGRAD` asks for Winograd tiles where they fit.
fn asked_for() -> bool {
    static WINOGRAD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WINOGRAD.get_or_init(|| std::env::var_os("DEPTHLAB_CONV_WINOGRAD").is_some())
}

/// `G g Gᵀ` of one 3×3 kernel `g` (row-major), as 16 values.
fn transform_kernel(g: &[f32]) -> [f32; POINTS] {
    // G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]].
    let column = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    // G g: 4 × 3.
    let mut gg = [[0.0f32; 3]; 4];
    for j in 0..3 {
        let t = column(g[j], g[3 + j], g[6 + j]);
        for i in 0..4 {
            gg[i][j] = t[i];
        }
    }
    let mut u = [0.0f32; POINTS];
    for i in 0..4 {
        let t = column(gg[i][0], gg[i][1], gg[i][2]);
        u[i * 4..i * 4 + 4].copy_from_slice(&t);
    }
    u
}

/// A forward convolution ready to run image by image: its 16 matrix
/// products and their packed, transformed weights.
pub struct Forward {
    product: Product,
    /// Per point of the tile, `U[o][c]` packed for [`Product::run`].
    packed: Vec<Vec<f32>>,
    tiles: usize,
}

impl Forward {
    /// The plan of `g` (where the tiles [`fit`](fits)) with its weights
    /// `[C_out, C_in, 3, 3]`.
    pub fn new(g: &ConvGeometry, weight: &[f32]) -> Forward {
        assert!(fits(g), "the Winograd convolution does not take {g:?}");
        assert_eq!(weight.len(), g.weight_len());
        let (cin, cout) = (g.in_channels, g.out_channels);
        let u: Vec<[f32; POINTS]> = weight.chunks_exact(9).map(transform_kernel).collect();
        let packed = (0..POINTS).map(|p| Product::pack(cout, cin, |o, c| u[o * cin + c][p])).collect();
        let tiles = (g.in_height / 2) * (g.in_width / 2);
        let row = Product::row(tiles);
        Forward { product: Product::new(tiles, POINTS * row), packed, tiles }
    }

    /// The convolution of one image `[C_in, H, W]` into `out`
    /// (`[C_out, H, W]`, every element written), through this image's
    /// epilogue. `tiles` and `products` are scratch space of any contents.
    pub fn image(
        &self,
        g: &ConvGeometry,
        image: &[f32],
        out: &mut [MaybeUninit<f32>],
        epilogue: &Epilogue,
        tiles: &mut Vec<f32>,
        products: &mut Vec<f32>,
    ) {
        let (cin, cout, h, w) = (g.in_channels, g.out_channels, g.in_height, g.in_width);
        assert!(super::simd::has_avx512(), "the Winograd convolution needs AVX-512");
        assert!(w <= 2 * LANES && w % 2 == 0 && h % 2 == 0);
        assert_eq!(image.len(), g.in_image());
        assert_eq!(out.len(), cout * h * w);
        let row = Product::row(self.tiles);
        // The transformed tiles, then the rows' column transforms (four
        // vectors per row of the image and the zero rows around it).
        // Laid `[c][p][row]`: a channel's 16 points side by side, where
        // its transform writes them; point `p`'s product reads rows
        // `16 · row` apart (and `16 · row` floats of slack close the buffer,
        // so that every point's view is `cin · 16 · row` floats long).
        let stride = POINTS * row;
        let scratch = super::grown(tiles, (cin + 1) * stride + 4 * (h + 2) * LANES);
        let (v, columns) = scratch.split_at_mut((cin + 1) * stride);
        for (c, channel) in image.chunks_exact(h * w).enumerate() {
            // SAFETY: AVX-512F is present (asserted); `channel` is `h × w`
            // with `w ≤ 32` even, `columns` holds `4 (h + 2)` vectors, and
            // point `p`'s row of channel `c` starts at
            // `(c · 16 + p) · row + FRONT` with room for every tile.
            unsafe { transform_channel(channel, h, w, columns, v.as_mut_ptr().add(c * stride + Product::FRONT), row) };
        }
        let m = super::grown(products, POINTS * cout * self.tiles);
        for (p, (m, packed)) in m.chunks_exact_mut(cout * self.tiles).zip(&self.packed).enumerate() {
            // SAFETY: `MaybeUninit<f32>` has the layout of `f32`; the buffer
            // is initialised floats.
            let m = unsafe { std::slice::from_raw_parts_mut(m.as_mut_ptr().cast::<MaybeUninit<f32>>(), m.len()) };
            self.product.run(&v[p * row..p * row + cin * stride], cin, cout, packed, m);
        }
        for (o, plane) in out.chunks_exact_mut(h * w).enumerate() {
            // SAFETY: AVX-512F is present; point `p` of channel `o` holds
            // `tiles` products at `(p · cout + o) · tiles`, and `plane` is
            // `h × w`.
            unsafe { untransform_channel(m.as_ptr().add(o * self.tiles), cout * self.tiles, h, w, plane) };
        }
        // SAFETY: `untransform_channel` wrote every element of each plane.
        super::conv::finish_image(unsafe { super::assume_written(out) }, h * w, epilogue);
    }
}

/// The vector width.
const LANES: usize = 16;

/// The lanes below `n` (at most 16).
fn lanes(n: usize) -> u16 {
    if n >= LANES { u16::MAX } else { (1u16 << n) - 1 }
}

/// Row `y` of a channel `w ≤ 32` floats wide as two vectors (zeros past
/// the row).
///
/// # Safety
/// AVX-512F; `x` points at `w` readable floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn load_row(x: *const f32, w: usize) -> (std::arch::x86_64::__m512, std::arch::x86_64::__m512) {
    use std::arch::x86_64::*;
    // SAFETY: masked to the `w` floats of the row.
    unsafe { (_mm512_maskz_loadu_ps(lanes(w), x), _mm512_maskz_loadu_ps(lanes(w.saturating_sub(LANES)), x.add(LANES.min(w)))) }
}

/// `Bᵀ d B` of every tile of one input channel (`h × w`, `w ≤ 32`): first
/// `· B` along each row — tile column `k` reads the image's columns
/// `2k − 1 … 2k + 2` as `c0 … c3`, and gets `c0 − c2`, `c1 + c2`, `c2 − c1`,
/// `c1 − c3` (the row split into its even and odd columns, shifted by a
/// lane where the tile reaches past its pair) — then `Bᵀ` down the rows of
/// each row of tiles. Point `4i + j` of tile `ty · w/2 + k` goes to
/// `v[p · point_stride + ty · w/2 + k]`.
///
/// # Safety
/// AVX-512F; `channel` holds `h × w` floats, `w ≤ 32` and `h` even;
/// `columns` at least `4 (h + 2) · 16` floats; `v` has room for `h/2 · w/2`
/// floats at each of the 16 points.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transform_channel(channel: &[f32], h: usize, w: usize, columns: &mut [f32], v: *mut f32, point_stride: usize) {
    use std::arch::x86_64::*;
    assert!(columns.len() >= 4 * (h + 2) * LANES && channel.len() == h * w);
    let tw = w / 2;
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    let previous = _mm512_setr_epi32(0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14);
    let next = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 15);
    let col = columns.as_mut_ptr();
    // Vector `j` of padded row `yy` (0 and h + 1 are the zero rows).
    let at = |j: usize, yy: usize| (j * (h + 2) + yy) * LANES;
    for yy in 0..h + 2 {
        let (c0, c1, c2, c3) = if yy == 0 || yy == h + 1 {
            let z = _mm512_setzero_ps();
            (z, z, z, z)
        } else {
            // SAFETY: row `yy − 1` of the channel.
            let (lo, hi) = unsafe { load_row(channel.as_ptr().add((yy - 1) * w), w) };
            let e = _mm512_permutex2var_ps(lo, even, hi);
            let o = _mm512_permutex2var_ps(lo, odd, hi);
            // Lanes at and past `tw` are zeros (columns past the row), so
            // the last tile's `c3` is the zero padding column.
            (_mm512_maskz_permutexvar_ps(0xFFFE, previous, o), e, o, _mm512_maskz_permutexvar_ps(0x7FFF, next, e))
        };
        // SAFETY: inside `columns` (asserted).
        unsafe {
            _mm512_storeu_ps(col.add(at(0, yy)), _mm512_sub_ps(c0, c2));
            _mm512_storeu_ps(col.add(at(1, yy)), _mm512_add_ps(c1, c2));
            _mm512_storeu_ps(col.add(at(2, yy)), _mm512_sub_ps(c2, c1));
            _mm512_storeu_ps(col.add(at(3, yy)), _mm512_sub_ps(c1, c3));
        }
    }
    let mask = lanes(tw);
    for ty in 0..h / 2 {
        for j in 0..4 {
            // SAFETY: padded rows `2ty … 2ty + 3 ≤ h + 1`.
            let [a, b, c, d] = std::array::from_fn(|r| unsafe { _mm512_loadu_ps(col.add(at(j, 2 * ty + r))) });
            let rows = [_mm512_sub_ps(a, c), _mm512_add_ps(b, c), _mm512_sub_ps(c, b), _mm512_sub_ps(b, d)];
            for (i, value) in rows.into_iter().enumerate() {
                // SAFETY: tiles `ty · tw … ty · tw + tw` of point `4i + j`.
                unsafe { _mm512_mask_storeu_ps(v.add((i * 4 + j) * point_stride + ty * tw), mask, value) };
            }
        }
    }
}

/// `Aᵀ M A` of every tile of one output channel into its `h × w` plane
/// (`w ≤ 32`): `Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]` down the rows of the
/// 4×4 products, then along the columns, the 2×2 outputs of tile `k`
/// interleaved into columns `2k`, `2k + 1` of the tile row's two output rows.
///
/// # Safety
/// AVX-512F; `m` points at the channel's products of point 0, point `p`'s
/// `h/2 · w/2` values `p · point_stride` floats further; `plane` is `h × w`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn untransform_channel(m: *const f32, point_stride: usize, h: usize, w: usize, plane: &mut [MaybeUninit<f32>]) {
    use std::arch::x86_64::*;
    assert_eq!(plane.len(), h * w);
    let tw = w / 2;
    let mask = lanes(tw);
    let low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let high = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    let out = plane.as_mut_ptr().cast::<f32>();
    for ty in 0..h / 2 {
        // SAFETY: tiles `ty · tw …` of each point, masked to the row of tiles.
        let v: [__m512; POINTS] = std::array::from_fn(|p| unsafe { _mm512_maskz_loadu_ps(mask, m.add(p * point_stride + ty * tw)) });
        let s0: [__m512; 4] = std::array::from_fn(|j| _mm512_add_ps(_mm512_add_ps(v[j], v[4 + j]), v[8 + j]));
        let s1: [__m512; 4] = std::array::from_fn(|j| _mm512_sub_ps(_mm512_sub_ps(v[4 + j], v[8 + j]), v[12 + j]));
        for (r, s) in [s0, s1].into_iter().enumerate() {
            let left = _mm512_add_ps(_mm512_add_ps(s[0], s[1]), s[2]);
            let right = _mm512_sub_ps(_mm512_sub_ps(s[1], s[2]), s[3]);
            let line = (2 * ty + r) * w;
            // SAFETY: row `2ty + r` of the plane, masked to its `w` floats.
            unsafe {
                _mm512_mask_storeu_ps(out.add(line), lanes(w), _mm512_permutex2var_ps(left, low, right));
                if w > LANES {
                    _mm512_mask_storeu_ps(out.add(line + LANES), lanes(w - LANES), _mm512_permutex2var_ps(left, high, right));
                }
            }
        }
    }
}

/// Never called: [`applies`] is false off x86-64.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn transform_channel(_: &[f32], _: usize, _: usize, _: &mut [f32], _: *mut f32, _: usize) {
    unreachable!("the Winograd convolution needs AVX-512")
}

/// Never called: [`applies`] is false off x86-64.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn untransform_channel(_: *const f32, _: usize, _: usize, _: usize, _: &mut [MaybeUninit<f32>]) {
    unreachable!("the Winograd convolution needs AVX-512")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::conv::tests::{for_each_tap, values};

    /// The convolution in float64, straight from its definition (every
    /// product and sum in float64).
    fn reference(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f64> {
        let mut y = vec![0.0f64; g.batch * g.out_image()];
        for_each_tap(g, |yi, xi, wi| y[yi] += f64::from(x[xi]) * f64::from(w[wi]));
        y
    }

    /// Every shape the CIFAR nets use and odd ones (one channel, 2×2, a
    /// wide or tall image, channel counts off the micro-kernel's blocks):
    /// within float32's error of the float64 convolution, as close as the
    /// direct kernel.
    #[test]
    fn matches_a_float64_convolution() {
        if !crate::kernels::simd::has_avx512() {
            return;
        }
        for (cin, cout, h, w) in
            [(16, 16, 32, 32), (32, 32, 16, 16), (64, 64, 8, 8), (1, 1, 2, 2), (3, 5, 6, 10), (7, 9, 12, 4), (17, 3, 4, 18)]
        {
            let g = ConvGeometry {
                batch: 1,
                in_channels: cin,
                in_height: h,
                in_width: w,
                out_channels: cout,
                kernel: [3, 3],
                stride: [1, 1],
                padding: [1, 1],
            };
            let x = values(g.in_image(), 1);
            let wt = values(g.weight_len(), 2);
            let exact = reference(&g, &x, &wt);
            let forward = Forward::new(&g, &wt);
            let mut out = vec![MaybeUninit::<f32>::uninit(); cout * h * w];
            forward.image(&g, &x, &mut out, &Epilogue::default(), &mut Vec::new(), &mut Vec::new());
            let got: Vec<f32> = out.iter().map(|v| unsafe { v.assume_init() }).collect();
            let scale = exact.iter().map(|v| v.abs()).fold(0.0f64, f64::max).max(1e-30);
            let error = got.iter().zip(&exact).map(|(&a, &b)| (a as f64 - b).abs()).fold(0.0, f64::max) / scale;
            assert!(error < 2e-6, "{cin}->{cout} {h}x{w}: relative error {error:e}");
        }
    }
}
