//! The lab's float32 convolution kernels for GPUs, written in cubecl (they
//! compile to WGSL or SPIR-V for wgpu, and to CUDA where burn's CUDA
//! backend is built).
//!
//! burn 0.22's float32 convolutions on cubecl runtimes run a direct kernel
//! (one unit per output vector, no shared memory) forward and im2col plus a
//! matrix multiply backward, because every implicit-GEMM variant in its
//! autotune asks for tensor-core tiles. Here all three passes of a 2-D
//! convolution are one *implicit GEMM* each, a matrix product whose
//! operands are gathered from the NCHW tensors as they are loaded, never
//! materialised:
//!
//! | pass | M | N | K | A (M×K) | B (K×N) |
//! |---|---|---|---|---|---|
//! | forward | out channels | batch·OH·OW | in channels·KH·KW | weight | input, unfolded |
//! | input gradient | in channels | batch·H·W | out channels·KH·KW | weight, transposed | output gradient, scattered back |
//! | weight gradient | out channels | in channels·KH·KW | batch·OH·OW | output gradient | input, unfolded |
//!
//! A cube of 16×16 units computes a 64×64 tile of the product, each unit a
//! 4×4 block of it held in registers; the K dimension is walked in steps
//! of 16, each step's A and B tiles staged in shared memory by all 256
//! units together (4 values each, adjacent units reading adjacent
//! addresses). Units compute outputs `UNITS` apart, so the 16 units of a
//! row write 16 consecutive values of the output.
//!
//! The weight gradient's K (every pixel of the batch) is long and its M×N
//! small, so it is split over the cubes' third axis (`k_chunk` each); each
//! chunk writes its own partial product, and [`sum_partials`] adds them in
//! chunk order, so results do not depend on scheduling.
//!
//! Padding, strides and kernel sizes are run-time values: one compiled
//! kernel per pass serves every convolution of a net.

use burn_cubecl::cubecl;
use cubecl::prelude::*;

use super::geometry::ConvGeometry;

/// Rows (M) and columns (N) of the output tile one cube computes.
pub const TILE: u32 = 64;
/// The K step staged in shared memory at a time.
pub const TILE_K: u32 = 16;
/// Units along each side of a cube (16×16 = 256 units).
pub const UNITS: u32 = 16;
/// The row length of the A tile in shared memory (TILE + 1).
const A_ROW: u32 = 65;
/// The most cubes a launch may have along one axis on wgpu
/// (`max_compute_workgroups_per_dimension`, 65,535 on every adapter).
pub const MAX_CUBES: usize = 65_535;

/// Which product a launch computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pass {
    Forward,
    InputGrad,
    WeightGrad,
}

impl Pass {
    /// The three, in the order [`Pass::index`] numbers them.
    pub const ALL: [Pass; 3] = [Pass::Forward, Pass::InputGrad, Pass::WeightGrad];

    /// The kernel's compile-time selector.
    pub fn code(self) -> u32 {
        match self {
            Pass::Forward => FORWARD,
            Pass::InputGrad => INPUT_GRAD,
            Pass::WeightGrad => WEIGHT_GRAD,
        }
    }

    /// The pass's place in [`Pass::ALL`] (its selector).
    pub fn index(self) -> usize {
        self.code() as usize
    }

    /// What `bench` calls it.
    pub fn name(self) -> &'static str {
        match self {
            Pass::Forward => "forward",
            Pass::InputGrad => "input grad",
            Pass::WeightGrad => "weight grad",
        }
    }
}

const FORWARD: u32 = 0;
const INPUT_GRAD: u32 = 1;
const WEIGHT_GRAD: u32 = 2;

/// The convolution's shapes and the product's, as the kernel reads them.
#[derive(CubeLaunch, CubeType)]
pub struct Dims {
    pub batch: u32,
    pub in_channels: u32,
    pub in_height: u32,
    pub in_width: u32,
    pub out_channels: u32,
    pub out_height: u32,
    pub out_width: u32,
    pub kernel_h: u32,
    pub kernel_w: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    pub pad_h: u32,
    pub pad_w: u32,
    /// The product's sizes.
    pub m: u32,
    pub n: u32,
    pub k: u32,
    /// K values per cube along the third axis (a multiple of `TILE_K`).
    pub k_chunk: u32,
}

/// `x[base + (row − pad_h)·W + col − pad_w]` for a row and column counted
/// in the padded plane, or 0 in the padding.
#[cube]
fn padded(x: &[f32], d: &Dims, base: u32, row: u32, col: u32) -> f32 {
    let mut value = 0.0f32;
    if row >= d.pad_h && row < d.in_height + d.pad_h && col >= d.pad_w && col < d.in_width + d.pad_w {
        value = x[(base + (row - d.pad_h) * d.in_width + col - d.pad_w) as usize];
    }
    value
}

/// A(m, k) of the pass's product; 0 outside it.
#[cube]
fn load_a(a: &[f32], d: &Dims, m: u32, k: u32, k_end: u32, #[comptime] pass: u32) -> f32 {
    let mut value = 0.0f32;
    if m < d.m && k < k_end {
        if comptime![pass == FORWARD] {
            // weight[o = m][c, kh, kw = k]
            value = a[(m * d.k + k) as usize];
        } else if comptime![pass == INPUT_GRAD] {
            // weight[o][c = m][kh, kw] with k = (o, kh, kw)
            let taps = d.kernel_h * d.kernel_w;
            value = a[(((k / taps) * d.in_channels + m) * taps + k % taps) as usize];
        } else {
            // dy[b][o = m][pixel] with k = (b, pixel)
            let pixels = d.out_height * d.out_width;
            value = a[(((k / pixels) * d.out_channels + m) * pixels + k % pixels) as usize];
        }
    }
    value
}

/// What a unit's column n of B fixes, worked out once per kernel: two
/// coordinates and a base offset whose meaning depends on the pass.
#[derive(CubeType)]
struct Column {
    p0: u32,
    p1: u32,
    base: u32,
    valid: bool,
}

/// Column `n` of B for `pass`:
/// - forward, n = (b, oh, ow): the window's top-left corner in the padded
///   plane (oh·stride, ow·stride) and image b's offset in x;
/// - input gradient, n = (b, ih, iw): the pixel in the padded plane
///   (ih + pad, iw + pad) and image b's offset in dy;
/// - weight gradient, n = (c, kh, kw): the tap and channel c's offset in
///   one image of x.
#[cube]
fn column(d: &Dims, n: u32, #[comptime] pass: u32) -> Column {
    // The weight gradient's, replaced below for the other passes.
    let taps = d.kernel_h * d.kernel_w;
    let tap = n % taps;
    let mut p0 = tap / d.kernel_w;
    let mut p1 = tap % d.kernel_w;
    let mut base = (n / taps) * d.in_height * d.in_width;
    if comptime![pass == FORWARD] {
        let pixels = d.out_height * d.out_width;
        let pixel = n % pixels;
        p0 = (pixel / d.out_width) * d.stride_h;
        p1 = (pixel % d.out_width) * d.stride_w;
        base = (n / pixels) * d.in_channels * d.in_height * d.in_width;
    } else if comptime![pass == INPUT_GRAD] {
        let pixels = d.in_height * d.in_width;
        let pixel = n % pixels;
        p0 = pixel / d.in_width + d.pad_h;
        p1 = pixel % d.in_width + d.pad_w;
        base = (n / pixels) * d.out_channels * d.out_height * d.out_width;
    }
    Column { p0, p1, base, valid: n < d.n }
}

/// B(k, n) of the pass's product for the unit's column; 0 outside it.
// `%` rather than `is_multiple_of`, which cubecl's kernel language lacks.
#[allow(clippy::manual_is_multiple_of)]
#[cube]
fn load_b(src: &[f32], d: &Dims, k: u32, k_end: u32, col: &Column, #[comptime] pass: u32) -> f32 {
    let mut value = 0.0f32;
    if k < k_end && col.valid {
        let taps = d.kernel_h * d.kernel_w;
        if comptime![pass == FORWARD] {
            // x unfolded, k = (c, kh, kw)
            let tap = k % taps;
            let base = col.base + (k / taps) * d.in_height * d.in_width;
            value = padded(src, d, base, col.p0 + tap / d.kernel_w, col.p1 + tap % d.kernel_w);
        } else if comptime![pass == INPUT_GRAD] {
            // dy at the output that tap (kh, kw) of channel o carries to
            // the unit's input pixel, if any: k = (o, kh, kw)
            let tap = k % taps;
            let kh = tap / d.kernel_w;
            let kw = tap % d.kernel_w;
            if col.p0 >= kh && col.p1 >= kw {
                let th = col.p0 - kh;
                let tw = col.p1 - kw;
                let oh = th / d.stride_h;
                let ow = tw / d.stride_w;
                if th % d.stride_h == 0 && tw % d.stride_w == 0 && oh < d.out_height && ow < d.out_width {
                    value = src[(col.base + ((k / taps) * d.out_height + oh) * d.out_width + ow) as usize];
                }
            }
        } else {
            // x unfolded, transposed: k = (b, oh, ow)
            let pixels = d.out_height * d.out_width;
            let pixel = k % pixels;
            let base = (k / pixels) * d.in_channels * d.in_height * d.in_width + col.base;
            let row = (pixel / d.out_width) * d.stride_h + col.p0;
            value = padded(src, d, base, row, (pixel % d.out_width) * d.stride_w + col.p1);
        }
    }
    value
}

/// Where C(m, n) goes in the output.
#[cube]
fn out_index(d: &Dims, m: u32, n: u32, #[comptime] pass: u32) -> u32 {
    // One partial product per K chunk for the weight gradient.
    let mut index = (CUBE_POS_Z * d.m + m) * d.n + n;
    if comptime![pass == FORWARD] {
        let pixels = d.out_height * d.out_width;
        index = ((n / pixels) * d.out_channels + m) * pixels + n % pixels;
    } else if comptime![pass == INPUT_GRAD] {
        let pixels = d.in_height * d.in_width;
        index = ((n / pixels) * d.in_channels + m) * pixels + n % pixels;
    }
    index
}

/// One 64×64 tile of the pass's product (see the module's notes). Cubes
/// of 16×16 units; the cube count is (⌈N/64⌉, ⌈M/64⌉, K chunks).
#[cube(launch)]
pub fn conv_gemm(a: &[f32], bsrc: &[f32], out: &mut [f32], d: Dims, #[comptime] pass: u32) {
    let tx = UNIT_POS_X;
    let ty = UNIT_POS_Y;
    let unit = ty * UNITS + tx;
    let n0 = CUBE_POS_X * TILE;
    let m0 = CUBE_POS_Y * TILE;
    let k_begin = CUBE_POS_Z * d.k_chunk;
    let mut k_end = k_begin + d.k_chunk;
    if k_end > d.k {
        k_end = d.k;
    }

    // a_tile[kk][mm] and b_tile[kk][nn], TILE_K rows of TILE; a_tile's rows
    // one longer, so the 16 units that stage one column of it (rows 0–15)
    // write 16 different banks.
    let mut a_tile = Shared::<[f32]>::new_slice(1040usize);
    let mut b_tile = Shared::<[f32]>::new_slice(1024usize);
    let mut acc = Array::<f32>::new(16usize);
    #[unroll]
    for i in 0..16usize {
        acc[i] = 0.0f32;
    }
    let mut a_reg = Array::<f32>::new(4usize);
    let mut b_reg = Array::<f32>::new(4usize);
    // Each unit stages the same column of B at every step (256 units over
    // 64 columns), so the column's coordinates are worked out once.
    let col = column(&d, n0 + unit % TILE, pass);

    for k0 in range_stepped(k_begin, k_end, TILE_K) {
        #[unroll]
        for r in 0..4u32 {
            let e = unit + r * 256u32;
            // A along k first: adjacent units read adjacent k.
            let kk = e % TILE_K;
            let mm = e / TILE_K;
            a_tile[(kk * A_ROW + mm) as usize] = load_a(a, &d, m0 + mm, k0 + kk, k_end, pass);
            // B along n first (the unit's column, rows 4 apart).
            let kb = e / TILE;
            b_tile[(kb * TILE + unit % TILE) as usize] = load_b(bsrc, &d, k0 + kb, k_end, &col, pass);
        }
        sync_cube();

        #[unroll]
        for kk in 0..16u32 {
            #[unroll]
            for i in 0..4usize {
                a_reg[i] = a_tile[(kk * A_ROW + ty + UNITS * i as u32) as usize];
                b_reg[i] = b_tile[(kk * TILE + tx + UNITS * i as u32) as usize];
            }
            #[unroll]
            for i in 0..4usize {
                #[unroll]
                for j in 0..4usize {
                    acc[i * 4 + j] += a_reg[i] * b_reg[j];
                }
            }
        }
        sync_cube();
    }

    #[unroll]
    for i in 0..4usize {
        let m = m0 + ty + UNITS * i as u32;
        #[unroll]
        for j in 0..4usize {
            let n = n0 + tx + UNITS * j as u32;
            if m < d.m && n < d.n {
                out[out_index(&d, m, n, pass) as usize] = acc[i * 4 + j];
            }
        }
    }
}

/// A convolution's launches: its products' sizes, K splits and cube
/// counts.
impl ConvGeometry {
    /// The product's (M, N, K) for `pass`.
    pub fn product(&self, pass: Pass) -> (usize, usize, usize) {
        let taps = self.kernel[0] * self.kernel[1];
        let out_pixels = self.batch * self.out_height() * self.out_width();
        match pass {
            Pass::Forward => (self.out_channels, out_pixels, self.in_channels * taps),
            Pass::InputGrad => (self.in_channels, self.batch * self.in_height * self.in_width, self.out_channels * taps),
            Pass::WeightGrad => (self.out_channels, self.in_channels * taps, out_pixels),
        }
    }

    /// How many K chunks `pass` splits into: one for the passes whose
    /// output already fills the GPU, and for the weight gradient enough
    /// to give about 512 cubes, each chunk at least 256 long (a multiple
    /// of `TILE_K`). Returns (chunks, chunk length).
    pub fn k_split(&self, pass: Pass) -> (usize, usize) {
        let (m, n, k) = self.product(pass);
        let step = TILE_K as usize;
        let whole = k.div_ceil(step) * step;
        if pass != Pass::WeightGrad {
            return (1, whole.max(step));
        }
        let tiles = m.div_ceil(TILE as usize) * n.div_ceil(TILE as usize);
        let wanted = (512 / tiles).max(1);
        let chunk = k.div_ceil(wanted).max(256).div_ceil(step) * step;
        (k.div_ceil(chunk).max(1), chunk)
    }

    /// The kernel's view of the shapes for `pass`.
    pub fn dims(&self, pass: Pass) -> DimsLaunch {
        let (m, n, k) = self.product(pass);
        let (_, chunk) = self.k_split(pass);
        let u = |v: usize| v as u32;
        DimsLaunch::new(
            u(self.batch),
            u(self.in_channels),
            u(self.in_height),
            u(self.in_width),
            u(self.out_channels),
            u(self.out_height()),
            u(self.out_width()),
            u(self.kernel[0]),
            u(self.kernel[1]),
            u(self.stride[0]),
            u(self.stride[1]),
            u(self.padding[0]),
            u(self.padding[1]),
            u(m),
            u(n),
            u(k),
            u(chunk),
        )
    }

    /// The cube count for `pass`.
    pub fn cubes(&self, pass: Pass) -> CubeCount {
        let (m, n, _) = self.product(pass);
        let (chunks, _) = self.k_split(pass);
        let t = TILE as usize;
        CubeCount::Static(n.div_ceil(t) as u32, m.div_ceil(t) as u32, chunks as u32)
    }

    /// Whether the kernels can run this convolution: every index they form
    /// fits their 32-bit arithmetic, and every launch's cube count fits
    /// wgpu's limit per axis (large images at large batches do not: burn's
    /// convolution runs them).
    pub fn fits_kernels(&self) -> bool {
        let x = self.batch * self.in_channels * (self.in_height + 2 * self.padding[0]) * (self.in_width + 2 * self.padding[1]);
        let y = self.batch * self.out_channels * self.out_height() * self.out_width();
        let (m, n, _) = self.product(Pass::WeightGrad);
        let partials = self.k_split(Pass::WeightGrad).0 * m * n;
        let indices = [x, y, partials].iter().all(|&v| v < u32::MAX as usize / 2);
        let grid = [Pass::Forward, Pass::InputGrad, Pass::WeightGrad].iter().all(|&pass| {
            let (m, n, _) = self.product(pass);
            let t = TILE as usize;
            n.div_ceil(t) <= MAX_CUBES && m.div_ceil(t) <= MAX_CUBES && self.k_split(pass).0 <= MAX_CUBES
        });
        indices && grid
    }
}

/// The weight gradient's partial products (`chunks` of `len` values each,
/// one after the other) summed chunk by chunk, in chunk order, into `out`.
#[cube(launch)]
pub fn sum_partials(partials: &[f32], out: &mut [f32], chunks: u32, len: u32) {
    let i = ABSOLUTE_POS_X;
    if i < len {
        let mut sum = 0.0f32;
        for c in 0..chunks {
            sum += partials[(c * len + i) as usize];
        }
        out[i as usize] = sum;
    }
}

// ---------------------------------------------------------------------------
// The L2 norm of a gradient, for the probes, in one read of it.
//
// Squaring a vanishing gradient (1e-25) underflows f32, and GPUs through
// wgpu have no f64. So each unit keeps its values' norm as `m·√s`, with `m`
// the largest magnitude seen so far and `s` the sum of the squares of the
// values divided by `m²` (at least 1 once `m > 0`), rescaling `s` whenever
// a larger value arrives: one pass, and no square underflows or overflows.
// (GPUs may flush subnormal inputs, below about 1.2e-38, to zero.) The
// units' pairs are merged the same way, in a fixed order.

/// Units per cube of the norm's kernels.
pub const NORM_UNITS: u32 = 256;

/// `(m, s)` of two parts merged: `‖a ∪ b‖ = M·√s` with `M = max(m_a, m_b)`.
/// A NaN in either sum stays.
#[cube]
fn merge_norms(m_a: f32, s_a: f32, m_b: f32, s_b: f32) -> (f32, f32) {
    let mut m = m_a;
    if m_b > m_a {
        m = m_b;
    }
    let mut s = s_a + s_b;
    if m > 0.0f32 {
        // The larger part's ratio is 1 (never ∞/∞, which would be NaN).
        let mut ra = 1.0f32;
        let mut rb = 1.0f32;
        if m_a < m {
            ra = m_a / m;
        }
        if m_b < m {
            rb = m_b / m;
        }
        s = s_a * ra * ra + s_b * rb * rb;
    }
    (m, s)
}

/// The `(m, s)` pairs of a cube's units merged in unit order; the result
/// is valid on unit 0.
#[cube]
fn merge_units(m: f32, s: f32) -> (f32, f32) {
    let mut shared_m = Shared::<[f32]>::new_slice(256usize);
    let mut shared_s = Shared::<[f32]>::new_slice(256usize);
    shared_m[UNIT_POS_X as usize] = m;
    shared_s[UNIT_POS_X as usize] = s;
    sync_cube();
    let mut total_m = 0.0f32;
    let mut total_s = 0.0f32;
    if UNIT_POS_X == 0 {
        for u in 0..NORM_UNITS {
            let (mm, ss) = merge_norms(total_m, total_s, shared_m[u as usize], shared_s[u as usize]);
            total_m = mm;
            total_s = ss;
        }
    }
    (total_m, total_s)
}

/// Each cube's stretch of `per_cube` values of `x` (of `len`) reduced to
/// one `(m, s)` pair in `partial_m`, `partial_s` (one per cube).
#[cube(launch)]
pub fn norm_partials(x: &[f32], partial_m: &mut [f32], partial_s: &mut [f32], len: u32, per_cube: u32) {
    let begin = CUBE_POS_X * per_cube;
    let mut end = begin + per_cube;
    if end > len {
        end = len;
    }
    let mut m = 0.0f32;
    let mut s = 0.0f32;
    for i in range_stepped(begin + UNIT_POS_X, end, NORM_UNITS) {
        let value = x[i as usize];
        let a = f32::abs(value);
        if a > m {
            let r = m / a;
            s = s * r * r + 1.0f32;
            m = a;
        } else if a == m && a > 0.0f32 {
            // Its ratio is 1 (never ∞/∞).
            s += 1.0f32;
        } else if a > 0.0f32 {
            let r = a / m;
            s += r * r;
        } else if a.is_nan() {
            // NaN: the sum becomes NaN and stays so.
            s += a;
        }
    }
    let (total_m, total_s) = merge_units(m, s);
    if UNIT_POS_X == 0 {
        partial_m[CUBE_POS_X as usize] = total_m;
        partial_s[CUBE_POS_X as usize] = total_s;
    }
}

/// The partial pairs (`count` of them) merged into the norm `m·√s` in
/// `out[0]`; one cube.
#[cube(launch)]
pub fn norm_finish(partial_m: &[f32], partial_s: &[f32], out: &mut [f32], count: u32) {
    let mut m = 0.0f32;
    let mut s = 0.0f32;
    for i in range_stepped(UNIT_POS_X, count, NORM_UNITS) {
        let (mm, ss) = merge_norms(m, s, partial_m[i as usize], partial_s[i as usize]);
        m = mm;
        s = ss;
    }
    let (total_m, total_s) = merge_units(m, s);
    if UNIT_POS_X == 0 {
        out[0] = total_m * f32::sqrt(total_s);
    }
}

/// How [`norm_partials`] splits `len` values: (cubes, values per cube).
pub fn norm_split(len: usize) -> (usize, usize) {
    // Up to 1024 cubes of at least 4096 values.
    let per_cube = len.div_ceil(1024).max(4096);
    (len.div_ceil(per_cube).max(1), per_cube)
}
