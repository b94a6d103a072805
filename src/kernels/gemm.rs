//! A safe face on the `gemm` crate's matrix multiply, with explicit strides.
//!
//! The `gemm` crate is fast (120–160 GFLOP/s on one AVX-512 core for the
//! convolution shapes of a CIFAR ResNet) only when the large operand is laid
//! out the way its packing expects; measured on the lab's shapes, the wrong
//! orientation of the same product ran at 27 GFLOP/s. So callers spell out
//! the strides of each operand, and the comments at each call say which
//! orientation was measured fastest.

/// A read-only strided matrix: `rows × cols` elements of `data`, element
/// `(r, c)` at `r * row_stride + c * col_stride`.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> View<'a> {
    /// `rows × cols` stored row by row.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// `rows × cols` stored column by column (the transpose of a row-major
    /// `cols × rows` matrix).
    pub fn col_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self { data, rows, cols, row_stride: 1, col_stride: rows }
    }
}

/// Index of the last element of a strided `rows × cols` matrix.
fn last_index(rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> usize {
    (rows - 1) * row_stride + (cols - 1) * col_stride
}

/// `dst = lhs · rhs`, or `dst += lhs · rhs` when `accumulate`, where `dst`
/// is `lhs.rows × rhs.cols` with element `(r, c)` at
/// `r * dst_strides.0 + c * dst_strides.1`. Runs on the calling thread: the
/// kernels parallelise over images themselves.
pub fn matmul(dst: &mut [f32], dst_strides: (usize, usize), lhs: View, rhs: View, accumulate: bool) {
    // SAFETY: `dst` is initialised, so reading it when accumulating is fine.
    unsafe { gemm_raw(dst.as_mut_ptr(), dst.len(), dst_strides, lhs, rhs, accumulate) }
}

/// `dst = lhs · rhs` into memory that need not be initialised. `gemm` with
/// `read_dst` off never reads the destination (its kernels take the
/// "alpha is zero" path, which only writes), and it writes every element of
/// the `lhs.rows × rhs.cols` view.
pub fn matmul_uninit(dst: &mut [std::mem::MaybeUninit<f32>], dst_strides: (usize, usize), lhs: View, rhs: View) {
    // SAFETY: not accumulating, so nothing is read before it is written;
    // `MaybeUninit<f32>` has the layout of `f32`.
    unsafe { gemm_raw(dst.as_mut_ptr().cast::<f32>(), dst.len(), dst_strides, lhs, rhs, false) }
}

/// # Safety
/// `dst` must be valid for writes of `dst_len` floats, and for reads of
/// them when `accumulate`.
unsafe fn gemm_raw(dst: *mut f32, dst_len: usize, dst_strides: (usize, usize), lhs: View, rhs: View, accumulate: bool) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(rhs.rows, k, "inner dimensions differ");
    if m == 0 || n == 0 {
        return;
    }
    assert!(last_index(m, n, dst_strides.0, dst_strides.1) < dst_len, "destination view past the end of its slice");
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                for c in 0..n {
                    // SAFETY: inside the destination (checked above).
                    unsafe { dst.add(r * dst_strides.0 + c * dst_strides.1).write(0.0) };
                }
            }
        }
        return;
    }
    assert!(last_index(m, k, lhs.row_stride, lhs.col_stride) < lhs.data.len(), "left operand past the end of its slice");
    assert!(last_index(k, n, rhs.row_stride, rhs.col_stride) < rhs.data.len(), "right operand past the end of its slice");
    // SAFETY: every view was checked to lie inside its slice, the caller
    // vouches for `dst`, and the operands are shared borrows that cannot
    // alias the exclusively borrowed destination.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_strides.1 as isize,
            dst_strides.0 as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_orientation_gives_the_same_product() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| 1.0 - i as f32 * 0.25).collect();
        let mut want = vec![0.0f32; m * n];
        for r in 0..m {
            for c in 0..n {
                want[r * n + c] = (0..k).map(|i| a[r * k + i] * b[i * n + c]).sum();
            }
        }
        // The same matrices stored transposed.
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        for lhs in [View::row_major(&a, m, k), View::col_major(&at, m, k)] {
            for rhs in [View::row_major(&b, k, n), View::col_major(&bt, k, n)] {
                let mut row = vec![9.0f32; m * n];
                matmul(&mut row, (n, 1), lhs, rhs, false);
                assert_eq!(row, want);
                let mut col = vec![0.0f32; m * n];
                matmul(&mut col, (1, m), lhs, rhs, false);
                matmul(&mut col, (1, m), lhs, rhs, true);
                for r in 0..m {
                    for c in 0..n {
                        assert_eq!(col[c * m + r], 2.0 * want[r * n + c]);
                    }
                }
            }
        }
    }
}
