//! He et al.'s option-A shortcut (2016, §4.2): where a residual stage halves
//! the image and widens the channels, the shortcut takes every `stride`-th
//! row and column of its input and pads the new channels with zeros, so it
//! adds no parameter. Composed from burn's steps this was a stepped slice
//! (a view), a copy to make it contiguous, a zero tensor and a
//! concatenation forward, and a zero tensor and a stepped slice assignment
//! backward — five serial passes over the activations while the second
//! core waited. Here each way is one pass, parallel over the images.

use std::mem::MaybeUninit;

use super::par_filled;

/// The shapes of one option-A shortcut: input `[batch, channels, height,
/// width]`, output `[batch, channels + extra, ⌈height / stride⌉, ⌈width /
/// stride⌉]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZeroPad {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub stride: usize,
    pub extra: usize,
}

impl ZeroPad {
    pub fn out_height(&self) -> usize {
        self.height.div_ceil(self.stride.max(1))
    }

    pub fn out_width(&self) -> usize {
        self.width.div_ceil(self.stride.max(1))
    }

    pub fn out_channels(&self) -> usize {
        self.channels + self.extra
    }

    pub fn input_len(&self) -> usize {
        self.batch * self.channels * self.height * self.width
    }

    pub fn output_len(&self) -> usize {
        self.batch * self.out_channels() * self.out_height() * self.out_width()
    }

    /// The shortcut's output: the subsampled input, then `extra` channels
    /// of zeros.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        assert_eq!(x.len(), self.input_len(), "option-A shortcut: the input is not [batch, channels, height, width]");
        let (s, w, oh, ow) = (self.stride.max(1), self.width, self.out_height(), self.out_width());
        let image_in = self.channels * self.height * w;
        let fill = |n: usize, out: &mut [MaybeUninit<f32>]| {
            let (kept, padded) = out.split_at_mut(self.channels * oh * ow);
            let x = &x[n * image_in..(n + 1) * image_in];
            for (c, plane) in kept.chunks_exact_mut(oh * ow).enumerate() {
                let x = &x[c * self.height * w..];
                for (i, row) in plane.chunks_exact_mut(ow).enumerate() {
                    let x = &x[i * s * w..];
                    for (j, v) in row.iter_mut().enumerate() {
                        v.write(x[j * s]);
                    }
                }
            }
            padded.fill(MaybeUninit::new(0.0));
        };
        // SAFETY: `fill` writes every element of its image.
        unsafe { par_filled(self.output_len(), self.out_channels() * oh * ow, fill) }
    }

    /// The input's gradient: the output gradient of the kept channels back
    /// at the rows and columns they were taken from, zero elsewhere (the
    /// padded channels' gradient goes nowhere).
    pub fn backward(&self, dy: &[f32]) -> Vec<f32> {
        assert_eq!(dy.len(), self.output_len(), "option-A shortcut: the output gradient has the wrong shape");
        let (s, h, w, oh, ow) = (self.stride.max(1), self.height, self.width, self.out_height(), self.out_width());
        let image_out = self.out_channels() * oh * ow;
        let fill = |n: usize, out: &mut [MaybeUninit<f32>]| {
            let dy = &dy[n * image_out..];
            for (c, plane) in out.chunks_exact_mut(h * w).enumerate() {
                let dy = &dy[c * oh * ow..(c + 1) * oh * ow];
                for (r, row) in plane.chunks_exact_mut(w).enumerate() {
                    if r % s != 0 {
                        row.fill(MaybeUninit::new(0.0));
                        continue;
                    }
                    let dy = &dy[(r / s) * ow..(r / s + 1) * ow];
                    for (col, v) in row.iter_mut().enumerate() {
                        v.write(if col % s == 0 { dy[col / s] } else { 0.0 });
                    }
                }
            }
        };
        // SAFETY: `fill` writes every element of its image.
        unsafe { par_filled(self.input_len(), self.channels * h * w, fill) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, index by index.
    fn reference(p: &ZeroPad, x: &[f32]) -> Vec<f32> {
        let (oh, ow) = (p.out_height(), p.out_width());
        let mut y = vec![0.0; p.output_len()];
        for n in 0..p.batch {
            for c in 0..p.channels {
                for i in 0..oh {
                    for j in 0..ow {
                        y[((n * p.out_channels() + c) * oh + i) * ow + j] =
                            x[((n * p.channels + c) * p.height + i * p.stride) * p.width + j * p.stride];
                    }
                }
            }
        }
        y
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len).map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32 / (1u32 << 24) as f32 - 0.5).collect()
    }

    #[test]
    fn forward_is_the_definition_and_backward_its_adjoint() {
        for p in [
            ZeroPad { batch: 3, channels: 2, height: 7, width: 5, stride: 2, extra: 3 },
            ZeroPad { batch: 1, channels: 1, height: 1, width: 1, stride: 2, extra: 1 },
            ZeroPad { batch: 2, channels: 4, height: 8, width: 8, stride: 2, extra: 4 },
            ZeroPad { batch: 2, channels: 3, height: 9, width: 6, stride: 3, extra: 0 },
            ZeroPad { batch: 2, channels: 3, height: 4, width: 5, stride: 1, extra: 2 },
        ] {
            let x = values(p.input_len(), 1);
            let y = p.forward(&x);
            assert_eq!(y, reference(&p, &x), "{p:?}: forward");
            // ⟨forward(x), dy⟩ = ⟨x, backward(dy)⟩ for every x and dy: a
            // linear map's adjoint, which is its input gradient.
            let dy = values(p.output_len(), 7);
            let dx = p.backward(&dy);
            assert_eq!(dx.len(), x.len());
            let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| (a * b) as f64).sum::<f64>();
            assert!((dot(&y, &dy) - dot(&x, &dx)).abs() < 1e-9, "{p:?}: adjoint");
            // Positions the forward never reads get no gradient.
            let read = p.backward(&vec![1.0; p.output_len()]);
            let hits = read.iter().filter(|&&v| v == 1.0).count();
            assert_eq!(hits, p.batch * p.channels * p.out_height() * p.out_width(), "{p:?}: one gradient per read value");
            assert!(read.iter().all(|&v| v == 0.0 || v == 1.0));
        }
    }

    #[test]
    fn an_empty_batch_gives_empty_tensors() {
        let p = ZeroPad { batch: 0, channels: 2, height: 4, width: 4, stride: 2, extra: 2 };
        assert!(p.forward(&[]).is_empty());
        assert!(p.backward(&[]).is_empty());
    }
}
