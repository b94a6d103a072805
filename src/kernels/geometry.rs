//! The shapes of one convolution: what every kernel of the lab's takes,
//! and what it checks its slices against. A leaf: it names nothing else of
//! the kernels.

/// The shapes of one convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvGeometry {
    pub batch: usize,
    pub in_channels: usize,
    pub in_height: usize,
    pub in_width: usize,
    pub out_channels: usize,
    /// `[k_h, k_w]`.
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Zero padding on each side, `[rows, columns]`.
    pub padding: [usize; 2],
}

/// A convolution that is not well formed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GeometryError {
    #[error("kernel {kernel:?} and stride {stride:?} must be positive")]
    NotPositive { kernel: [usize; 2], stride: [usize; 2] },
    #[error("a {}x{} kernel does not fit a {}x{} input padded by {padding:?}", kernel[0], kernel[1], input[0], input[1])]
    KernelTooLarge { kernel: [usize; 2], input: [usize; 2], padding: [usize; 2] },
}

impl ConvGeometry {
    /// Checks that the convolution is well formed (positive sizes, kernel
    /// no larger than the padded input).
    pub fn validate(&self) -> Result<(), GeometryError> {
        if self.kernel.contains(&0) || self.stride.contains(&0) {
            return Err(GeometryError::NotPositive { kernel: self.kernel, stride: self.stride });
        }
        if self.in_height + 2 * self.padding[0] < self.kernel[0] || self.in_width + 2 * self.padding[1] < self.kernel[1] {
            return Err(GeometryError::KernelTooLarge {
                kernel: self.kernel,
                input: [self.in_height, self.in_width],
                padding: self.padding,
            });
        }
        Ok(())
    }

    pub fn out_height(&self) -> usize {
        (self.in_height + 2 * self.padding[0] - self.kernel[0]) / self.stride[0] + 1
    }

    pub fn out_width(&self) -> usize {
        (self.in_width + 2 * self.padding[1] - self.kernel[1]) / self.stride[1] + 1
    }

    /// `K`: the length of one patch.
    pub fn patch_len(&self) -> usize {
        self.in_channels * self.kernel[0] * self.kernel[1]
    }

    /// `P`: output positions per channel.
    pub fn out_plane(&self) -> usize {
        self.out_height() * self.out_width()
    }

    pub fn in_plane(&self) -> usize {
        self.in_height * self.in_width
    }

    /// Elements of one input image.
    pub fn in_image(&self) -> usize {
        self.in_channels * self.in_plane()
    }

    /// Elements of one output image.
    pub fn out_image(&self) -> usize {
        self.out_channels * self.out_plane()
    }

    pub fn weight_len(&self) -> usize {
        self.out_channels * self.patch_len()
    }
}

/// Panics unless the slices have the lengths `g` gives them.
pub(super) fn check_lengths(g: &ConvGeometry, input: usize, weight: usize, output: usize) {
    assert_eq!(input, g.batch * g.in_image(), "input length does not match {g:?}");
    assert_eq!(weight, g.weight_len(), "weight length does not match {g:?}");
    assert_eq!(output, g.batch * g.out_image(), "output length does not match {g:?}");
}
