//! Unfolding an image into its patch matrix (im2col) and folding a patch
//! matrix back onto an image (its adjoint), for the convolution kernels.
//!
//! For an image, the patch matrix `col` is `K × P` with `K = C_in·k_h·k_w`
//! and `P = H_out·W_out`: row `(c, i, j)` holds input channel `c` shifted by
//! the kernel offset `(i, j)` and sampled at the stride, zero where it falls
//! in the padding. It is written and read once per image and pass, so it is
//! a large share of a step's memory traffic: the stride-1 path copies whole
//! rows of a zero-padded image in fixed-size blocks.

use super::conv::ConvGeometry;
use super::simd::vectorized;

/// Outputs `o` in `lo..hi` with `0 <= o·stride + offset − pad < size`.
pub(super) fn valid_range(offset: usize, stride: usize, pad: usize, size: usize, outputs: usize) -> (usize, usize) {
    // o·stride >= pad − offset
    let lo = if pad > offset { (pad - offset).div_ceil(stride) } else { 0 };
    // o·stride <= size − 1 + pad − offset
    let hi = if size + pad > offset { ((size - 1 + pad - offset) / stride + 1).min(outputs) } else { 0 };
    (lo.min(hi), hi)
}

/// Unfolds one image `[C_in, H, W]` into its patch matrix `col` (`K × P`),
/// for any stride and padding.
pub fn unfold(g: &ConvGeometry, image: &[f32], col: &mut [f32]) {
    let (wo, p) = (g.out_width(), g.out_plane());
    let (kh, kw) = (g.kernel[0], g.kernel[1]);
    for c in 0..g.in_channels {
        let plane = &image[c * g.in_plane()..(c + 1) * g.in_plane()];
        for i in 0..kh {
            let (row_lo, row_hi) = g.valid_rows(i);
            for j in 0..kw {
                let (col_lo, col_hi) = g.valid_columns(j);
                let row = &mut col[((c * kh + i) * kw + j) * p..][..p];
                row[..row_lo * wo].fill(0.0);
                row[row_hi * wo..].fill(0.0);
                for oh in row_lo..row_hi {
                    let ih = oh * g.stride[0] + i - g.padding[0];
                    let out = &mut row[oh * wo..(oh + 1) * wo];
                    out[..col_lo].fill(0.0);
                    out[col_hi..].fill(0.0);
                    if col_lo >= col_hi {
                        continue;
                    }
                    let first = ih * g.in_width + col_lo * g.stride[1] + j - g.padding[1];
                    if g.stride[1] == 1 {
                        out[col_lo..col_hi].copy_from_slice(&plane[first..first + (col_hi - col_lo)]);
                    } else {
                        for (k, o) in out[col_lo..col_hi].iter_mut().enumerate() {
                            *o = plane[first + k * g.stride[1]];
                        }
                    }
                }
            }
        }
    }
}

/// Copies `src` to `dst` (equal lengths) in fixed-size blocks, inline: the
/// rows of a patch matrix are a few dozen floats, and a call to `memcpy`
/// for each one cost more than the copy (the unfold was a third of a
/// training step that way).
#[inline(always)]
pub(super) fn copy_row(dst: &mut [f32], src: &[f32]) {
    let n = dst.len().min(src.len());
    let mut k = 0;
    while k + 16 <= n {
        let block: [f32; 16] = src[k..k + 16].try_into().expect("16 floats");
        dst[k..k + 16].copy_from_slice(&block);
        k += 16;
    }
    if k + 8 <= n {
        let block: [f32; 8] = src[k..k + 8].try_into().expect("8 floats");
        dst[k..k + 8].copy_from_slice(&block);
        k += 8;
    }
    if k + 4 <= n {
        let block: [f32; 4] = src[k..k + 4].try_into().expect("4 floats");
        dst[k..k + 4].copy_from_slice(&block);
        k += 4;
    }
    for t in 0..3 {
        if k + t < n {
            dst[k + t] = src[k + t];
        }
    }
}

/// A thread's scratch space for unfolding images and for the shifted copies
/// of [`super::shifted`], kept between calls (one per compute thread), so
/// that the buffers are neither allocated nor cleared for every image.
#[derive(Default)]
pub struct Patches {
    col: Vec<f32>,
    /// The image inside its zero padding (stride-1 convolutions only).
    padded: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Patches> = std::cell::RefCell::new(Patches::default());
}

impl Patches {
    /// Runs `f` with this thread's scratch space. `f` must not start
    /// parallel work that could land back on this thread (the kernels call
    /// single-threaded matrix multiplies inside).
    pub fn with<R>(f: impl FnOnce(&mut Patches) -> R) -> R {
        SCRATCH.with(|s| f(&mut s.borrow_mut()))
    }

    /// The patch matrix (`K × P`) of one image: the image itself for a
    /// pointwise convolution, else unfolded into this scratch space.
    pub fn of<'a>(&'a mut self, g: &ConvGeometry, image: &'a [f32]) -> &'a [f32] {
        if g.is_pointwise() {
            return image;
        }
        let col = super::grown(&mut self.col, g.patch_len() * g.out_plane());
        if g.stride == [1, 1] {
            let padded_len = g.in_channels * (g.in_height + 2 * g.padding[0]) * (g.in_width + 2 * g.padding[1]);
            unfold_stride1(g, image, super::grown(&mut self.padded, padded_len), col);
        } else {
            unfold(g, image, col);
        }
        col
    }

    /// A buffer of `len` floats with no particular contents.
    pub(super) fn buffer(&mut self, len: usize) -> &mut [f32] {
        super::grown(&mut self.col, len)
    }

    /// The two buffers themselves, to size as needed (for [`super::direct`]:
    /// the input's copy and a phase of the input gradient; for
    /// [`super::outer`]: the padded images and transposed output gradients
    /// of a group).
    pub(super) fn vectors(&mut self) -> (&mut Vec<f32>, &mut Vec<f32>) {
        (&mut self.padded, &mut self.col)
    }

    /// Two buffers of `first` and `second` floats with no particular
    /// contents (for [`super::shifted`]: the shifted copies and the output
    /// on the padded width).
    pub(super) fn buffers(&mut self, first: usize, second: usize) -> (&mut [f32], &mut [f32]) {
        (super::grown(&mut self.padded, first), super::grown(&mut self.col, second))
    }
}

vectorized! {
    /// At stride 1 every row of the patch matrix is a run of consecutive
    /// values of the padded image: one block copy per output row.
    fn unfold_stride1(g: &ConvGeometry, image: &[f32], padded: &mut [f32], col: &mut [f32]) {
        let (ph, pw) = (g.padding[0], g.padding[1]);
        let (hp, wp) = (g.in_height + 2 * ph, g.in_width + 2 * pw);
        let (h, w, in_plane) = (g.in_height, g.in_width, g.in_plane());
        for c in 0..g.in_channels {
            let plane = &image[c * in_plane..(c + 1) * in_plane];
            let padded = &mut padded[c * hp * wp..(c + 1) * hp * wp];
            // The buffer is reused: its border is cleared each time.
            padded[..ph * wp].fill(0.0);
            padded[(ph + h) * wp..].fill(0.0);
            for (r, src) in plane.chunks_exact(w).enumerate() {
                let row = &mut padded[(r + ph) * wp..(r + ph + 1) * wp];
                row[..pw].fill(0.0);
                row[pw + w..].fill(0.0);
                copy_row(&mut row[pw..pw + w], src);
            }
        }
        let (ho, wo, p) = (g.out_height(), g.out_width(), g.out_plane());
        let (kh, kw) = (g.kernel[0], g.kernel[1]);
        for c in 0..g.in_channels {
            let padded = &padded[c * hp * wp..(c + 1) * hp * wp];
            for i in 0..kh {
                for j in 0..kw {
                    let row = &mut col[((c * kh + i) * kw + j) * p..][..p];
                    for oh in 0..ho {
                        copy_row(&mut row[oh * wo..(oh + 1) * wo], &padded[(oh + i) * wp + j..][..wo]);
                    }
                }
            }
        }
    }
}

/// Adds the patch matrix `col` (`K × P`) back onto one image `[C_in, H, W]`:
/// the adjoint of [`unfold`].
pub fn fold_add(g: &ConvGeometry, col: &[f32], image: &mut [f32]) {
    let (wo, p) = (g.out_width(), g.out_plane());
    let (kh, kw) = (g.kernel[0], g.kernel[1]);
    let in_plane = g.in_plane();
    for c in 0..g.in_channels {
        let plane = &mut image[c * in_plane..(c + 1) * in_plane];
        for i in 0..kh {
            let (row_lo, row_hi) = g.valid_rows(i);
            for j in 0..kw {
                let (col_lo, col_hi) = g.valid_columns(j);
                if col_lo >= col_hi {
                    continue;
                }
                let row = &col[((c * kh + i) * kw + j) * p..][..p];
                for oh in row_lo..row_hi {
                    let ih = oh * g.stride[0] + i - g.padding[0];
                    let src = &row[oh * wo + col_lo..oh * wo + col_hi];
                    let first = ih * g.in_width + col_lo * g.stride[1] + j - g.padding[1];
                    if g.stride[1] == 1 {
                        for (d, s) in plane[first..first + src.len()].iter_mut().zip(src) {
                            *d += s;
                        }
                    } else {
                        for (k, s) in src.iter().enumerate() {
                            plane[first + k * g.stride[1]] += s;
                        }
                    }
                }
            }
        }
    }
}
