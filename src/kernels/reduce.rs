//! Reductions for the gradient probes.

use super::simd::{LANES, vectorized};

vectorized! {
    /// Σ v², in f64 lanes (a square of 1e-25 is far inside f64's range).
    fn sum_squares(values: &[f32]) -> f64 {
        let mut acc = [0.0f64; LANES];
        let mut chunks = values.chunks_exact(LANES);
        for chunk in &mut chunks {
            for l in 0..LANES {
                let v = chunk[l] as f64;
                acc[l] += v * v;
            }
        }
        for (l, &v) in chunks.remainder().iter().enumerate() {
            acc[l] += (v as f64) * (v as f64);
        }
        acc.iter().sum()
    }
}

/// Values per parallel piece: fixed, so the sum is the same on any number
/// of threads.
const PIECE: usize = 1 << 16;

/// The L2 norm of `values` in one pass, without underflow or overflow for
/// any f32 input (NaN and infinity propagate).
pub fn l2_norm(values: &[f32]) -> f32 {
    let pieces = super::team::map_chunks(values, PIECE, |_, piece| sum_squares(piece));
    pieces.iter().sum::<f64>().sqrt() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norms_of_tiny_huge_and_odd_inputs() {
        assert_eq!(l2_norm(&[3.0, 4.0]), 5.0);
        assert_eq!(l2_norm(&[]), 0.0);
        let tiny = l2_norm(&[3e-25, -4e-25, 0.0]);
        assert!((tiny / 5e-25 - 1.0).abs() < 1e-6, "{tiny}");
        let huge = l2_norm(&[3e30, 4e30]);
        assert!((huge / 5e30 - 1.0).abs() < 1e-6, "{huge}");
        assert!(l2_norm(&[1.0, f32::NAN]).is_nan());
        assert_eq!(l2_norm(&[f32::INFINITY]), f32::INFINITY);
        // Long enough to be split over threads, with a remainder.
        let long = vec![0.5f32; 3 * PIECE + 17];
        assert!((l2_norm(&long) as f64 - 0.5 * ((3 * PIECE + 17) as f64).sqrt()).abs() < 1e-3);
    }
}
