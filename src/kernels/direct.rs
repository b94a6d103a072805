//! 3×3 convolutions with padding 1 — every convolution of the CIFAR ResNets
//! — without a patch matrix or shifted copies: an AVX-512 micro-kernel that
//! reads the image in place and writes each output where it belongs.
//!
//! At stride 1 with more than 16 output channels, [`Forward`] runs
//! [`super::channels`]' kernel instead, vectorised over output channels
//! with no masked loads (64 channels at 8×8: 1.7 against 2.15 ms for 128
//! images); this tap kernel keeps the rest: 16 output channels, stride 2,
//! the stride-2 input gradient and Winograd's products.
//!
//! The kernel sees a convolution as a list of taps over an output grid:
//! output position `q = oh·W_out + ow` of every channel reads input
//! position `q + offset` of each tap, a constant for all positions, in a
//! copy of each input channel laid out so that this holds, with the lanes
//! whose column falls outside masked off in the load. So no position is
//! computed twice or thrown away (the shifted copies of [`super::shifted`]
//! computed two padding columns of every row and dropped them: 11 % of the
//! work at 16×16, 20 % at 8×8).
//!
//! - Stride 1: the image read in place; tap `(i, j)` reads
//!   `q + (i − 1)·W + j − 1`, with the lanes whose row or column falls
//!   outside the plane masked off in the load (row `i = 0` at `oh = 0`,
//!   `i = 2` at `oh = H − 1`, column `j = 0` at `ow = 0`, `j = 2` at
//!   `ow = W − 1`). The input gradient of a stride-1 convolution is one
//!   too (the flipped, transposed kernel). Copying each channel between
//!   zero rows instead, as this kernel first did, was 3 % of a training
//!   step in `memcpy` and `memset`.
//! - Stride 2 (even sizes): the image split into its four phases
//!   (even/odd rows × even/odd columns), each `H/2 × W/2` behind a zero row;
//!   tap `(i, j)` reads one phase at an offset of 0 or −1 row and column.
//! - The input gradient of a stride-2 convolution: each phase of the
//!   gradient is a stride-1 convolution of the output gradient with the
//!   one, two or four taps that reach it (offsets 0 or +1), interleaved
//!   afterwards.
//!
//! The micro-kernel holds a block of [`BLOCK_OUT`] output channels ×
//! [`BLOCK_VECTORS`] vectors of 16 positions in registers, and for each
//! input channel and tap loads the block's input vectors once and each
//! weight once (broadcast). Each output value is a sum over `(c, tap)` in
//! that order, whatever the number of threads (images are split between
//! threads, never sums).

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

/// Zeros before each input channel's copy, so that a tap one column to
/// the left of the first position reads inside the copy.
const FRONT: usize = LANES;

/// Whether the direct kernel computes this convolution's forward pass: a
/// 3×3 kernel with padding 1 at stride 1, or at stride 2 on an input of
/// even height and width, on a CPU with AVX-512 (elsewhere the shifted
/// copies or the patch matrix run), unless `DEPTHLAB_CONV_PATCHES` or
/// `DEPTHLAB_CONV_SHIFTED` asks for another path, to compare.
pub fn applies(g: &ConvGeometry) -> bool {
    let stride_fits = g.stride == [1, 1] || (g.stride == [2, 2] && g.in_height.is_multiple_of(2) && g.in_width.is_multiple_of(2));
    g.kernel == [3, 3]
        && g.padding == [1, 1]
        && stride_fits
        && super::simd::has_avx512()
        && !super::conv::patches_forced()
        && !super::conv::shifted_forced()
}

/// Whether the direct kernel computes this convolution's input gradient
/// itself: the stride-2 case of [`applies`] (at stride 1 the input
/// gradient is a forward convolution, which [`applies`] covers).
pub fn applies_to_input_grad(g: &ConvGeometry) -> bool {
    applies(g) && g.stride == [2, 2]
}

/// One tap: where it reads, relative to the output position (and to the
/// start of the channel's plane, after the plan's `front` floats), and
/// which lanes it masks off.
#[derive(Clone, Copy, Debug)]
struct Tap {
    offset: isize,
    /// `3·r + c`. Columns, `c`: 0 masks the lanes at `ow = 0` off (the tap
    /// reads a column to the left), 1 none, 2 those at `ow = W_out − 1` (a
    /// column to the right). Rows, `r`, the same for `oh` (a tap that
    /// reads the image in place, where no zero row lies above or below).
    /// Lanes past the plane are always masked off.
    mask: usize,
}

/// The mask of every lane inside the plane (a tap with no row or column
/// masked; the stores).
const INSIDE: usize = 4;

impl Tap {
    /// The tap that reads `rows` rows and `columns` columns (each −1, 0 or
    /// +1) away from the output position, in a plane that starts `base`
    /// floats after the copy's [`FRONT`] zeros, on rows `width` floats long,
    /// with zero rows around it (so only columns are masked).
    fn new(base: usize, width: usize, rows: isize, columns: isize) -> Tap {
        Tap { offset: base as isize + rows * width as isize + columns, mask: 3 + (columns + 1) as usize }
    }

    /// The same on a plane read in place: the rows outside masked too.
    fn in_place(width: usize, rows: isize, columns: isize) -> Tap {
        Tap { offset: rows * width as isize + columns, mask: 3 * (rows + 1) as usize + (columns + 1) as usize }
    }
}

/// The masks of one vector of output positions, by [`Tap::mask`].
type Masks = [u16; 9];

/// One convolution as the micro-kernel sees it.
#[derive(Clone, Debug)]
struct Plan {
    /// Floats per input channel's copy (or plane, read in place).
    channel: usize,
    /// Floats before each channel's plane: [`FRONT`] zeros in a copy, 0
    /// in place.
    front: usize,
    out_plane: usize,
    /// Vectors of output positions per channel (the last may be partly
    /// outside the plane).
    vectors: usize,
    taps: Vec<Tap>,
    masks: Vec<Masks>,
}

impl Plan {
    /// Taps over copies of `channel` floats, each plane [`FRONT`] floats
    /// in.
    fn new(channel: usize, out_height: usize, out_width: usize, taps: Vec<Tap>) -> Plan {
        let plan = Plan::unchecked(channel, FRONT, out_height, out_width, taps);
        // Every load of every tap stays inside its channel's copy.
        for tap in &plan.taps {
            assert!(tap.offset >= -(FRONT as isize), "a tap reads before its channel's copy");
            assert!(
                FRONT as isize + (plan.vectors * LANES) as isize + tap.offset <= channel as isize,
                "a tap reads past its channel's copy"
            );
        }
        plan
    }

    fn unchecked(channel: usize, front: usize, out_height: usize, out_width: usize, taps: Vec<Tap>) -> Plan {
        let out_plane = out_height * out_width;
        let vectors = out_plane.div_ceil(LANES);
        let masks = (0..vectors)
            .map(|v| {
                let mut m = [0u16; 9];
                for lane in 0..LANES.min(out_plane - v * LANES) {
                    let (oh, ow) = ((v * LANES + lane) / out_width, (v * LANES + lane) % out_width);
                    let rows = [oh >= 1, true, oh + 1 < out_height];
                    let columns = [ow >= 1, true, ow + 1 < out_width];
                    for (k, m) in m.iter_mut().enumerate() {
                        *m |= u16::from(rows[k / 3] && columns[k % 3]) << lane;
                    }
                }
                m
            })
            .collect();
        Plan { channel, front, out_plane, vectors, taps, masks }
    }

    /// Whether, on vectors `range`, nine taps in the order `(i, j)` (tap
    /// `k` in column `k % 3`) need no row masks: each tap's mask equals
    /// its column's mask on the middle row. True on every vector of a
    /// copy with zero rows, and in place on the vectors away from the
    /// first and last rows.
    fn columns_only(&self, range: std::ops::Range<usize>) -> bool {
        self.taps.len() == 9
            && self.taps.iter().enumerate().all(|(k, tap)| tap.mask % 3 == k % 3)
            && self.masks[range].iter().all(|m| self.taps.iter().enumerate().all(|(k, tap)| m[tap.mask] == m[3 + k % 3]))
    }

    /// Stride-1 taps over `h × w` planes read in place, each given by its
    /// row and column offset (−1, 0 or +1) from the output position. Every
    /// lane whose input position lies outside the plane is masked off, so
    /// no copy with zero rows around each plane is needed: a load may
    /// start before or end after the plane (even the image), but reads
    /// only lanes inside it.
    fn in_place(h: usize, w: usize, taps: impl IntoIterator<Item = (isize, isize)>) -> Plan {
        let taps: Vec<Tap> = taps
            .into_iter()
            .map(|(di, dj)| {
                assert!(di.abs() <= 1 && dj.abs() <= 1, "an in-place tap reaches one row and column at most");
                Tap::in_place(w, di, dj)
            })
            .collect();
        Plan::unchecked(h * w, 0, h, w, taps)
    }
}

/// The four phases of each `h × w` channel (`h`, `w` even): phase
/// `2·pr + pc` holds rows `2r + pr`, columns `2c + pc`, `h/2 × w/2`, each
/// behind a zero row, after [`FRONT`] zeros; a zero row and [`LANES`]
/// zeros close the channel.
fn copy_phases(image: &[f32], h: usize, w: usize, dst: &mut [f32]) {
    let (h2, w2) = (h / 2, w / 2);
    let phase = w2 + h2 * w2;
    let channel = phases_channel(h, w);
    for (src, dst) in image.chunks_exact(h * w).zip(dst.chunks_exact_mut(channel)) {
        dst[..FRONT].fill(0.0);
        for ph in 0..4 {
            let (pr, pc) = (ph / 2, ph % 2);
            let out = &mut dst[FRONT + ph * phase..FRONT + (ph + 1) * phase];
            out[..w2].fill(0.0);
            for (r, row) in out[w2..].chunks_exact_mut(w2).enumerate() {
                let line = &src[(2 * r + pr) * w..(2 * r + pr + 1) * w];
                for (c, v) in row.iter_mut().enumerate() {
                    *v = line[2 * c + pc];
                }
            }
        }
        dst[FRONT + 4 * phase..].fill(0.0);
    }
}

/// Floats per channel copied by [`copy_phases`].
fn phases_channel(h: usize, w: usize) -> usize {
    let (h2, w2) = (h / 2, w / 2);
    FRONT + 4 * (w2 + h2 * w2) + w2 + LANES
}

/// A row or column `k` of a stride-2 3×3 kernel: the phase it reads
/// (0 even, 1 odd) and its offset on the phase's grid.
fn stride2_tap(k: usize) -> (usize, isize) {
    [(1, -1), (0, 0), (1, 0)][k]
}

/// The weights in blocks of [`BLOCK_OUT`] output channels (the last block
/// smaller), each laid `[c][tap][b]` so that the micro-kernel reads them in
/// order: `weight(o, c, k)` for tap `k` of `taps`.
fn pack_weights(cout: usize, cin: usize, taps: usize, weight: impl Fn(usize, usize, usize) -> f32) -> Vec<f32> {
    let blocks = (0..cout).step_by(BLOCK_OUT).map(|o0| (o0, BLOCK_OUT.min(cout - o0)));
    pack_blocks(cout, cin, taps, blocks, weight)
}

/// The weights in blocks of output channels `o0..o0 + width`, given in
/// order, each laid `[c][tap][b]` (`width` values of one channel and tap
/// side by side) so that a micro-kernel reads them in order:
/// `weight(o, c, k)` for tap `k` of `taps`, zeros for the channels `o ≥
/// cout` of a block wider than what is left. [`super::channels`] packs its
/// blocks of vectors (padded to 16 channels) with it too.
pub(super) fn pack_blocks(
    cout: usize,
    cin: usize,
    taps: usize,
    blocks: impl IntoIterator<Item = (usize, usize)>,
    weight: impl Fn(usize, usize, usize) -> f32,
) -> Vec<f32> {
    let mut out = Vec::new();
    for (o0, width) in blocks {
        let start = out.len();
        out.resize(start + width * cin * taps, 0.0);
        let block = &mut out[start..];
        for b in 0..width.min(cout.saturating_sub(o0)) {
            for c in 0..cin {
                for k in 0..taps {
                    block[(c * taps + k) * width + b] = weight(o0 + b, c, k);
                }
            }
        }
    }
    out
}

/// A forward convolution ready to run image by image: its kernel and
/// packed weights.
pub struct Forward {
    kernel: Kernel,
    out_plane: usize,
}

/// Which micro-kernel a [`Forward`] runs.
enum Kernel {
    /// The tap kernel over the image read in place (stride 1) or over its
    /// phases (stride 2).
    Taps { plan: Plan, packed: Vec<f32>, stride: usize },
    /// The stride-1 kernel vectorised over output channels
    /// ([`super::channels`]), where it applies.
    Channels(super::channels::Stride1),
}

impl Forward {
    /// The kernel of `g` (where [`applies`] holds) with its weights
    /// `[C_out, C_in, 3, 3]`: the channel-vectorised kernel where
    /// [`super::channels::applies`] (unless `DEPTHLAB_CONV_TAPS` asks for
    /// the tap kernel, to compare), else the tap kernel.
    pub fn new(g: &ConvGeometry, weight: &[f32]) -> Forward {
        assert!(applies(g), "the direct convolution does not take {g:?}");
        assert_eq!(weight.len(), g.weight_len());
        let out_plane = g.out_plane();
        if super::channels::applies(g) && !super::conv::taps_forced() {
            return Forward { kernel: Kernel::Channels(super::channels::forward(g, weight)), out_plane };
        }
        let (h, w) = (g.in_height, g.in_width);
        let plan = if g.stride == [1, 1] {
            Plan::in_place(h, w, (0..9).map(|t| (t as isize / 3 - 1, t as isize % 3 - 1)))
        } else {
            let (h2, w2) = (h / 2, w / 2);
            let taps = (0..9)
                .map(|t| {
                    let ((pr, di), (pc, dj)) = (stride2_tap(t / 3), stride2_tap(t % 3));
                    let ph = 2 * pr + pc;
                    Tap::new(ph * (w2 + h2 * w2) + w2, w2, di, dj)
                })
                .collect();
            Plan::new(phases_channel(h, w), h2, w2, taps)
        };
        let cin = g.in_channels;
        let packed = pack_weights(g.out_channels, cin, 9, |o, c, t| weight[(o * cin + c) * 9 + t]);
        Forward { kernel: Kernel::Taps { plan, packed, stride: g.stride[0] }, out_plane }
    }

    /// The convolution of one image `[C_in, H, W]` into `out`
    /// (`[C_out, H_out, W_out]`, every element written), through this
    /// image's epilogue ([`Epilogue::for_image`]). `scratch` is space of any
    /// contents.
    pub fn image(&self, g: &ConvGeometry, image: &[f32], out: &mut [MaybeUninit<f32>], epilogue: &Epilogue, scratch: &mut Vec<f32>) {
        let (cin, cout) = (g.in_channels, g.out_channels);
        assert_eq!(image.len(), g.in_image());
        assert_eq!(out.len(), cout * self.out_plane);
        match &self.kernel {
            Kernel::Channels(kernel) => kernel.image(image, out),
            Kernel::Taps { plan, packed, stride: 1 } => convolve(plan, image, cin, cout, packed, out),
            Kernel::Taps { plan, packed, .. } => {
                let copy = super::grown(scratch, cin * plan.channel);
                copy_phases(image, g.in_height, g.in_width, copy);
                convolve(plan, copy, cin, cout, packed, out);
            }
        }
        // SAFETY: the kernel wrote every element of `out`.
        super::conv::finish_image(unsafe { super::assume_written(out) }, self.out_plane, epilogue);
    }
}

/// The input gradient of a stride-2 convolution ([`applies_to_input_grad`])
/// ready to run image by image: a plan and packed weights per phase.
pub struct InputGrad {
    phases: Vec<(Plan, Vec<f32>)>,
}

impl InputGrad {
    pub fn new(g: &ConvGeometry, weight: &[f32]) -> InputGrad {
        assert!(applies_to_input_grad(g), "the direct input gradient does not take {g:?}");
        assert_eq!(weight.len(), g.weight_len());
        let (h2, w2) = (g.out_height(), g.out_width());
        let (cin, cout) = (g.in_channels, g.out_channels);
        // Input row `2r + pr` meets kernel rows `i` with `2·oh + i − 1 =
        // 2r + pr`: `i = 1` at `oh = r` for even rows; `i = 0` at `oh = r + 1`
        // and `i = 2` at `oh = r` for odd ones. The same for columns.
        let reach = |parity: usize| -> &'static [(usize, isize)] { if parity == 0 { &[(1, 0)] } else { &[(0, 1), (2, 0)] } };
        let phases = (0..4)
            .map(|ph| {
                let mut taps = Vec::new();
                for &(i, di) in reach(ph / 2) {
                    for &(j, dj) in reach(ph % 2) {
                        taps.push((i * 3 + j, di, dj));
                    }
                }
                let plan = Plan::in_place(h2, w2, taps.iter().map(|&(_, di, dj)| (di, dj)));
                // The gradient's "input channels" are the convolution's
                // outputs, its "outputs" the convolution's inputs.
                let packed = pack_weights(cin, cout, taps.len(), |c, o, k| weight[(o * cin + c) * 9 + taps[k].0]);
                (plan, packed)
            })
            .collect();
        InputGrad { phases }
    }

    /// The input gradient of one image (`dy`: `[C_out, H/2, W/2]`) into
    /// `dx` (`[C_in, H, W]`, every element written). `phase` is scratch
    /// space of any contents.
    pub fn image(&self, g: &ConvGeometry, dy: &[f32], dx: &mut [MaybeUninit<f32>], phase: &mut Vec<f32>) {
        let (cin, cout) = (g.in_channels, g.out_channels);
        let (h2, w2) = (g.out_height(), g.out_width());
        let (w, p2) = (g.in_width, h2 * w2);
        assert_eq!(dy.len(), cout * p2);
        assert_eq!(dx.len(), g.in_image());
        let phase = super::grown(phase, cin * p2);
        for (ph, (plan, packed)) in self.phases.iter().enumerate() {
            let (pr, pc) = (ph / 2, ph % 2);
            // SAFETY: `MaybeUninit<f32>` has the layout of `f32`; the
            // buffer is initialised floats.
            let out = unsafe { std::slice::from_raw_parts_mut(phase.as_mut_ptr().cast::<MaybeUninit<f32>>(), phase.len()) };
            convolve(plan, dy, cout, cin, packed, out);
            for (src, dst) in phase.chunks_exact(p2).zip(dx.chunks_exact_mut(g.in_plane())) {
                for (r, line) in src.chunks_exact(w2).enumerate() {
                    let row = &mut dst[(2 * r + pr) * w..(2 * r + pr + 1) * w];
                    for (c, &v) in line.iter().enumerate() {
                        row[2 * c + pc].write(v);
                    }
                }
            }
        }
    }
}

/// `out[o][q] = Σ_c Σ_k W[o, c, k] · input[c][q + offset_k]` (masked) for
/// every output channel and position of the plan, every element of `out`
/// (`cout` planes) written.
fn convolve(plan: &Plan, input: &[f32], cin: usize, cout: usize, packed: &[f32], out: &mut [MaybeUninit<f32>]) {
    assert!(super::simd::has_avx512(), "the direct convolution needs AVX-512");
    let taps = plan.taps.len();
    assert_eq!(input.len(), cin * plan.channel);
    assert_eq!(packed.len(), cout * cin * taps);
    assert_eq!(out.len(), cout * plan.out_plane);
    if plan.out_plane == 0 {
        return;
    }
    let out_ptr = out.as_mut_ptr().cast::<f32>();
    // Positions outside, output channels inside: the input rows a block of
    // positions reads are read again, from L1, by the next block of
    // channels (an image of 16 channels at 32×32, 64 KB, does not fit L1).
    let mut v0 = 0;
    while v0 < plan.vectors {
        let nv = BLOCK_VECTORS.min(plan.vectors - v0);
        let columns_only = plan.columns_only(v0..v0 + nv);
        let mut o0 = 0;
        while o0 < cout {
            let nb = BLOCK_OUT.min(cout - o0);
            let block = Block {
                input: input.as_ptr(),
                plan,
                cin,
                first: v0 * LANES,
                masks: &plan.masks[v0..v0 + nv],
                columns_only,
                weights: packed[o0 * cin * taps..(o0 + nb) * cin * taps].as_ptr(),
                // SAFETY (of the offset): `o0 < cout`, inside `out`.
                out: unsafe { out_ptr.add(o0 * plan.out_plane) },
            };
            // SAFETY: AVX-512F is present (asserted); the reads stay inside
            // the channels' copies (checked by `Plan::new`) and the weights
            // block, and the masked stores write positions `< out_plane` of
            // channels `o0..o0 + nb` (see `Block::run`).
            unsafe { dispatch(&block, nb, nv) };
            o0 += nb;
        }
        v0 += nv;
    }
}

/// One register block's operands.
struct Block<'a> {
    /// The input channels' copies (channel `c` at `c · plan.channel`).
    input: *const f32,
    plan: &'a Plan,
    cin: usize,
    /// The first position of the block.
    first: usize,
    /// The masks of the block's vectors.
    masks: &'a [Masks],
    /// The block's packed weights, `[c][tap][b]`.
    weights: *const f32,
    /// Whether the block's taps need column masks alone ([`Plan::columns_only`]).
    columns_only: bool,
    /// Output channel `o0`'s plane.
    out: *mut f32,
}

/// Runs the micro-kernel instantiated for `nb` output channels, `nv`
/// vectors and the plan's number of taps.
///
/// # Safety
/// As [`Block::run`], with `1 ≤ nb ≤ BLOCK_OUT`, `1 ≤ nv ≤ BLOCK_VECTORS`
/// and 1, 2, 4 or 9 taps.
unsafe fn dispatch(block: &Block, nb: usize, nv: usize) {
    macro_rules! by_taps {
        ($b:literal, $v:literal) => {
            match (block.plan.taps.len(), block.columns_only) {
                (9, true) => unsafe { block.run::<$b, $v, 9, true>() },
                (9, false) => unsafe { block.run::<$b, $v, 9, false>() },
                (4, _) => unsafe { block.run::<$b, $v, 4, false>() },
                (2, _) => unsafe { block.run::<$b, $v, 2, false>() },
                _ => unsafe { block.run::<$b, $v, 1, false>() },
            }
        };
    }
    super::by_block_shape!(nb, nv, by_taps)
}

impl Block<'_> {
    /// `out[b][q] = Σ_c Σ_k W[o0 + b, c, k] · input[c][front + q + offset_k]`
    /// for the `NB` channels and the `NV` vectors of positions of the block,
    /// with the tap's lanes masked, stored where the position lies inside
    /// the plane.
    ///
    /// # Safety
    /// The CPU must have AVX-512F. `input` holds `cin` channels of
    /// `plan.channel` floats; `weights` holds `cin · taps · NB` floats;
    /// `out` points at `NB` planes of `plan.out_plane` floats; `masks` has
    /// `NV` entries and the block's vectors exist. Then every lane a load
    /// reads lies inside channel `c`: in a copy every load starts at
    /// `front + q + offset ≥ 0` and ends inside it (`Plan::new` checks
    /// both); in place the masks keep exactly the lanes whose input
    /// position lies inside the plane (`Plan::in_place`), and a masked-off
    /// lane is never read. Every store is masked to lanes inside the plane.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::needless_range_loop)] // register blocks indexed [b][v], as in the formula
    unsafe fn run<const NB: usize, const NV: usize, const T: usize, const COLUMNS_ONLY: bool>(&self) {
        use std::arch::x86_64::*;
        let mut taps = [Tap { offset: 0, mask: INSIDE }; T];
        taps.copy_from_slice(&self.plan.taps[..T]);
        // Each tap's masks, by vector. Where only columns are masked, the
        // three taps of a column share one mask per vector (tap `k`'s
        // column is `k % 3`), so the 3·NV masks stay in mask registers
        // instead of being loaded again for every tap.
        let mut masks = [[0u16; NV]; T];
        for (k, tap) in taps.iter().enumerate() {
            for v in 0..NV {
                masks[k][v] = if COLUMNS_ONLY { self.masks[v][3 + k % 3] } else { self.masks[v][tap.mask] };
            }
        }
        let mut acc = [[_mm512_setzero_ps(); NV]; NB];
        for c in 0..self.cin {
            // Wrapping: in place, a tap above or to the left of the first
            // vector points before the image (those lanes are masked off).
            let x = self.input.wrapping_add(c * self.plan.channel + self.plan.front + self.first);
            let wc = unsafe { self.weights.add(c * T * NB) };
            for (k, tap) in taps.iter().enumerate() {
                let mut xv = [_mm512_setzero_ps(); NV];
                for v in 0..NV {
                    // SAFETY: as above: the lanes outside channel `c` are
                    // masked off, and masked-off lanes are not read.
                    xv[v] = unsafe { _mm512_maskz_loadu_ps(masks[k][v], x.wrapping_offset(tap.offset + (v * LANES) as isize)) };
                }
                for b in 0..NB {
                    // SAFETY: `k·NB + b < taps·NB`.
                    let wb = _mm512_set1_ps(unsafe { *wc.add(k * NB + b) });
                    for v in 0..NV {
                        acc[b][v] = _mm512_fmadd_ps(xv[v], wb, acc[b][v]);
                    }
                }
            }
        }
        for b in 0..NB {
            for v in 0..NV {
                // SAFETY: plane `b < NB` of the block; lanes past the plane masked off.
                unsafe {
                    _mm512_mask_storeu_ps(self.out.add(b * self.plan.out_plane + self.first + v * LANES), self.masks[v][INSIDE], acc[b][v])
                };
            }
        }
    }

    /// Never called: [`applies`] is false off x86-64.
    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn run<const NB: usize, const NV: usize, const T: usize, const COLUMNS_ONLY: bool>(&self) {
        unreachable!("the direct convolution needs AVX-512")
    }
}

/// A plain matrix product through the micro-kernel (one tap at offset 0):
/// `out[o][q] = Σ_c W[o, c] · rows[c][q]` for `n` positions `q`, the rows
/// a fixed stride apart, each starting [`FRONT`] floats in. The Winograd convolution ([`super::winograd`])
/// multiplies its transformed tiles with it.
pub(super) struct Product {
    plan: Plan,
}

impl Product {
    /// A product over rows of `n` values, row `c` starting `c · stride`
    /// floats after row 0 (`stride ≥ Product::row(n)`).
    pub(super) fn new(n: usize, stride: usize) -> Product {
        Product { plan: Plan::new(stride, 1, n.max(1), vec![Tap { offset: 0, mask: INSIDE }]) }
    }

    /// Floats per row of the product's input.
    pub(super) fn row(n: usize) -> usize {
        FRONT + n.div_ceil(LANES) * LANES
    }

    /// Where a row's values start in its [`Product::row`] floats.
    pub(super) const FRONT: usize = FRONT;

    /// The weights `W[o, c]` packed for [`Product::run`].
    pub(super) fn pack(cout: usize, cin: usize, weight: impl Fn(usize, usize) -> f32) -> Vec<f32> {
        pack_weights(cout, cin, 1, |o, c, _| weight(o, c))
    }

    /// The product of `packed` (`cout × cin`) and the `cin` rows of
    /// `input` (`cin · stride` floats) into `out` (`cout` rows of `n`,
    /// every element written).
    pub(super) fn run(&self, input: &[f32], cin: usize, cout: usize, packed: &[f32], out: &mut [MaybeUninit<f32>]) {
        convolve(&self.plan, input, cin, cout, packed, out);
    }
}
