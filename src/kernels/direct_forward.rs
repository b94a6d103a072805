//! The stride-1 3×3 convolution with padding 1 (the shape of every
//! convolution in the CIFAR ResNets but the downsampling ones, and of their
//! input gradients) without a patch matrix or shifted copies: an AVX-512
//! micro-kernel that reads the image in place and writes the output where
//! it belongs.
//!
//! With padding 1 the output has the image's shape, so output position
//! `q = oh·W + ow` reads tap `(i, j)` at `q + (i − 1)·W + (j − 1)` of the
//! same channel: a constant offset for every position. Each channel is
//! copied once between a zero row above and below (so rows outside the
//! image read zeros), and the columns outside it are masked off in the
//! load (`ow + j − 1` outside `0..W`), so no position is computed twice or
//! thrown away — where the shifted copies ([`super::shifted`]) computed the
//! two padding columns of every row and dropped them (11 % of the work at
//! 16×16, 20 % at 8×8), wrote three copies of the image and narrowed the
//! output afterwards.
//!
//! The micro-kernel holds a block of [`BLOCK_OUT`] output channels ×
//! [`BLOCK_VECTORS`] vectors of 16 positions in registers, and for each
//! input channel and tap loads the block's image vectors once and each
//! weight once (broadcast), for 16 multiply-adds. Each output
//! value is a sum over `(c, i, j)` in that order, whatever the number of
//! threads (images are split between threads, never sums).

use std::mem::MaybeUninit;

use super::conv::{ConvGeometry, Epilogue};

/// The vector width.
const LANES: usize = 16;

/// Output channels per register block. Measured on resnet-20's three
/// shapes (128 images, two threads, GFLOP/s at 32×32 / 16×16 / 8×8),
/// blocks of channels × vectors: 8 × 2 256 / 271 / 283; 8 × 3 241 / 263 /
/// 249; 6 × 4 222 / 223 / 254; 12 × 2 215 / 267 / 290; 16 × 1 240 / 270 /
/// 247. Wider blocks load fewer values per multiply-add but hold more
/// masks than the CPU has mask registers.
const BLOCK_OUT: usize = 8;

/// Vectors of output positions per register block.
const BLOCK_VECTORS: usize = 2;

/// Zeros before each padded channel: tap column 0 of the first position
/// reads one value before the top padding row.
const FRONT: usize = LANES;

/// Whether this kernel computes the convolution: 3×3, stride 1, padding 1,
/// on a CPU with AVX-512 (elsewhere the shifted copies run), unless
/// `DEPTHLAB_CONV_PATCHES` or `DEPTHLAB_CONV_SHIFTED` asks for another
/// path, to compare.
pub fn applies(g: &ConvGeometry) -> bool {
    g.kernel == [3, 3]
        && g.stride == [1, 1]
        && g.padding == [1, 1]
        && super::simd::has_avx512()
        && !super::conv::patches_forced()
        && !shifted_forced()
}

/// Whether the environment variable `DEPTHLAB_CONV_SHIFTED` asks for the
/// shifted copies where this kernel would run.
fn shifted_forced() -> bool {
    static SHIFTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SHIFTED.get_or_init(|| std::env::var_os("DEPTHLAB_CONV_SHIFTED").is_some())
}

/// Where things lie for one geometry.
#[derive(Clone, Copy, Debug)]
struct Layout {
    width: usize,
    /// Positions per channel, `H·W` (the output's too).
    plane: usize,
    /// Vectors of positions per channel (the last may be partly outside).
    vectors: usize,
    /// Floats per padded channel: [`FRONT`] zeros, a zero row, the image,
    /// a zero row, then zeros that the last vector of tap `(2, 2)` reads.
    channel: usize,
}

impl Layout {
    fn of(g: &ConvGeometry) -> Layout {
        let (width, plane) = (g.in_width, g.in_plane());
        let vectors = plane.div_ceil(LANES);
        Layout { width, plane, vectors, channel: FRONT + plane + 2 * width + LANES }
    }
}

/// The masks of one vector of positions: lanes inside the plane whose tap
/// column `j` falls inside the image (`[1]` is the lanes inside the plane).
type Masks = [u16; 3];

fn masks(layout: &Layout) -> Vec<Masks> {
    (0..layout.vectors)
        .map(|v| {
            let mut m = [0u16; 3];
            for lane in 0..LANES {
                let q = v * LANES + lane;
                if q >= layout.plane {
                    break;
                }
                let ow = q % layout.width;
                m[0] |= u16::from(ow >= 1) << lane;
                m[1] |= 1 << lane;
                m[2] |= u16::from(ow + 1 < layout.width) << lane;
            }
            m
        })
        .collect()
}

/// The weights `[C_out, C_in, 3, 3]` in blocks of [`BLOCK_OUT`] output
/// channels (the last block smaller), each laid `[c][tap][b]` so that the
/// micro-kernel reads them in order.
pub fn pack_weights(g: &ConvGeometry, weight: &[f32]) -> Vec<f32> {
    let (cin, cout) = (g.in_channels, g.out_channels);
    let mut out = vec![0.0f32; weight.len()];
    let mut o0 = 0;
    while o0 < cout {
        let nb = BLOCK_OUT.min(cout - o0);
        let block = &mut out[o0 * cin * 9..(o0 + nb) * cin * 9];
        for b in 0..nb {
            for c in 0..cin {
                for t in 0..9 {
                    block[(c * 9 + t) * nb + b] = weight[((o0 + b) * cin + c) * 9 + t];
                }
            }
        }
        o0 += nb;
    }
    out
}

/// The convolution of one image `[C_in, H, W]` with the weights packed by
/// [`pack_weights`], into `out` (`[C_out, H, W]`, every element written),
/// through this image's epilogue ([`Epilogue::for_image`]). `scratch` is
/// space of any contents.
pub fn forward_image(
    g: &ConvGeometry,
    image: &[f32],
    packed: &[f32],
    out: &mut [MaybeUninit<f32>],
    epilogue: &Epilogue,
    scratch: &mut Vec<f32>,
) {
    assert!(
        g.kernel == [3, 3] && g.stride == [1, 1] && g.padding == [1, 1] && super::simd::has_avx512(),
        "the direct forward convolution takes 3x3 kernels at stride 1 with padding 1, with AVX-512"
    );
    let layout = Layout::of(g);
    let (cin, cout) = (g.in_channels, g.out_channels);
    assert_eq!(image.len(), cin * layout.plane);
    assert_eq!(out.len(), cout * layout.plane);
    assert_eq!(packed.len(), cout * cin * 9);
    if layout.plane == 0 || cout == 0 {
        return;
    }
    if scratch.len() < cin * layout.channel {
        scratch.resize(cin * layout.channel, 0.0);
    }
    let padded = &mut scratch[..cin * layout.channel];
    for (src, dst) in image.chunks_exact(layout.plane).zip(padded.chunks_exact_mut(layout.channel)) {
        let (w, p) = (layout.width, layout.plane);
        dst[..FRONT + w].fill(0.0);
        dst[FRONT + w..FRONT + w + p].copy_from_slice(src);
        dst[FRONT + w + p..].fill(0.0);
    }
    let masks = masks(&layout);
    let out_ptr = out.as_mut_ptr().cast::<f32>();
    let mut o0 = 0;
    while o0 < cout {
        let nb = BLOCK_OUT.min(cout - o0);
        let mut v0 = 0;
        while v0 < layout.vectors {
            let nv = BLOCK_VECTORS.min(layout.vectors - v0);
            let block = Block {
                image: padded.as_ptr(),
                layout: &layout,
                cin,
                first: v0 * LANES,
                masks: &masks[v0..v0 + nv],
                weights: packed[o0 * cin * 9..(o0 + nb) * cin * 9].as_ptr(),
                // SAFETY (of the offset): `o0 < cout`, inside `out`.
                out: unsafe { out_ptr.add(o0 * layout.plane) },
            };
            // SAFETY: AVX-512F is present (asserted); the reads stay inside
            // the padded channels and the weights block, and the masked
            // stores write positions `< plane` of channels `o0..o0 + nb`
            // (see `Block::run`).
            unsafe { dispatch(&block, nb, nv) };
            v0 += nv;
        }
        o0 += nb;
    }
    // SAFETY: the blocks covered every vector of every output channel, and
    // each vector's store wrote its lanes inside the plane.
    super::conv::finish_image(unsafe { super::assume_written(out) }, layout.plane, epilogue);
}

/// One register block's operands.
struct Block<'a> {
    /// The padded image (channel `c` at `c · layout.channel`).
    image: *const f32,
    layout: &'a Layout,
    cin: usize,
    /// The first position of the block.
    first: usize,
    /// The masks of the block's vectors.
    masks: &'a [Masks],
    /// The block's packed weights, `[c][tap][b]`.
    weights: *const f32,
    /// Output channel `o0` of the image.
    out: *mut f32,
}

/// Runs the micro-kernel instantiated for `nb` output channels and `nv`
/// vectors.
///
/// # Safety
/// As [`Block::run`], with `1 ≤ nb ≤ BLOCK_OUT` and `1 ≤ nv ≤ BLOCK_VECTORS`.
unsafe fn dispatch(block: &Block, nb: usize, nv: usize) {
    macro_rules! by_vectors {
        ($b:literal) => {
            match nv {
                2 => unsafe { block.run::<$b, 2>() },
                _ => unsafe { block.run::<$b, 1>() },
            }
        };
    }
    match nb {
        8 => by_vectors!(8),
        7 => by_vectors!(7),
        6 => by_vectors!(6),
        5 => by_vectors!(5),
        4 => by_vectors!(4),
        3 => by_vectors!(3),
        2 => by_vectors!(2),
        _ => by_vectors!(1),
    }
}

impl Block<'_> {
    /// `out[b][q] = Σ_c Σ_(i, j) W[o0 + b, c, i, j] · X̃[c, q + i·W + j − 1]`
    /// for the `NB` channels and the `NV` vectors of positions of the block,
    /// stored where the position lies inside the plane.
    ///
    /// # Safety
    /// The CPU must have AVX-512F. `image` holds `cin` padded channels laid
    /// out by `layout`; `weights` holds `cin · 9 · NB` floats; `out` points
    /// at `NB` channels of `plane` floats; `masks` has `NV` entries and the
    /// block's vectors exist. Then every image load starts at
    /// `FRONT + q + i·W + j − 1 ≥ FRONT − 1` and ends before
    /// `FRONT + 16·vectors + 2·W + 1 ≤ channel`, and every store is masked
    /// to lanes `< plane`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run<const NB: usize, const NV: usize>(&self) {
        use std::arch::x86_64::*;
        let w = self.layout.width;
        let mut acc = [[_mm512_setzero_ps(); NV]; NB];
        let mut masks = [[0u16; 3]; NV];
        masks.copy_from_slice(&self.masks[..NV]);
        for c in 0..self.cin {
            // SAFETY: inside the padded channel `c` (see above).
            let x = unsafe { self.image.add(c * self.layout.channel + FRONT + self.first - 1) };
            let wc = unsafe { self.weights.add(c * 9 * NB) };
            for i in 0..3 {
                for j in 0..3 {
                    let mut xv = [_mm512_setzero_ps(); NV];
                    for v in 0..NV {
                        // SAFETY: as above; lanes outside the image are masked off.
                        xv[v] = unsafe { _mm512_maskz_loadu_ps(masks[v][j], x.add(i * w + j + v * LANES)) };
                    }
                    for b in 0..NB {
                        // SAFETY: `(i·3 + j)·NB + b < 9·NB`.
                        let wb = _mm512_set1_ps(unsafe { *wc.add((i * 3 + j) * NB + b) });
                        for v in 0..NV {
                            acc[b][v] = _mm512_fmadd_ps(xv[v], wb, acc[b][v]);
                        }
                    }
                }
            }
        }
        for b in 0..NB {
            for v in 0..NV {
                // SAFETY: channel `b < NB` of the block; lanes `≥ plane` masked off.
                unsafe { _mm512_mask_storeu_ps(self.out.add(b * self.layout.plane + self.first + v * LANES), masks[v][1], acc[b][v]) };
            }
        }
    }

    /// Never called: [`applies`] is false off x86-64.
    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn run<const NB: usize, const NV: usize>(&self) {
        unreachable!("the direct forward convolution needs AVX-512")
    }
}
