//! The machine's measured float32 multiply-add rate: every thread of the
//! run's pool runs independent chains of fused multiply-adds on the widest
//! vectors the CPU has (AVX-512, else AVX2 + FMA) for a moment. The bench
//! divides what a training step achieves by this to say how much of the
//! machine it uses.

use std::time::{Duration, Instant};

/// How long each thread multiplies.
const BURN: Duration = Duration::from_millis(200);

/// Measured FLOP/s (a fused multiply-add counts two) on `threads` threads
/// at once, or `None` where neither vector unit is there.
pub fn fma_flops_per_sec(threads: usize) -> Option<f64> {
    let per_call = flops_per_call()?;
    let totals: Vec<f64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(move || {
                    let started = Instant::now();
                    let mut calls = 0u64;
                    let mut sink = 0.0f32;
                    while started.elapsed() < BURN {
                        sink += burn_once();
                        calls += 1;
                    }
                    std::hint::black_box(sink);
                    calls as f64 * per_call / started.elapsed().as_secs_f64()
                })
            })
            .collect();
        workers.into_iter().filter_map(|w| w.join().ok()).collect()
    });
    Some(totals.iter().sum())
}

/// Chains and iterations of one [`burn_once`] call.
const CHAINS: usize = 12;
const ITERATIONS: usize = 4096;

fn flops_per_call() -> Option<f64> {
    let lanes = lanes()?;
    Some((CHAINS * ITERATIONS * lanes * 2) as f64)
}

#[cfg(target_arch = "x86_64")]
fn lanes() -> Option<usize> {
    if std::arch::is_x86_feature_detected!("avx512f") {
        Some(16)
    } else if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        Some(8)
    } else {
        None
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn lanes() -> Option<usize> {
    None
}

#[cfg(target_arch = "x86_64")]
fn burn_once() -> f32 {
    // SAFETY: each function is called only when `lanes` found its features.
    unsafe { if std::arch::is_x86_feature_detected!("avx512f") { burn_avx512() } else { burn_avx2() } }
}

#[cfg(not(target_arch = "x86_64"))]
fn burn_once() -> f32 {
    0.0
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn burn_avx512() -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
    let mut acc = [_mm512_set1_ps(1.0); CHAINS];
    for _ in 0..ITERATIONS {
        for chain in &mut acc {
            *chain = _mm512_fmadd_ps(*chain, a, b);
        }
    }
    acc.iter().map(|&v| _mm512_reduce_add_ps(v)).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn burn_avx2() -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
    let mut acc = [_mm256_set1_ps(1.0); CHAINS];
    for _ in 0..ITERATIONS {
        for chain in &mut acc {
            *chain = _mm256_fmadd_ps(*chain, a, b);
        }
    }
    let mut lanes = [0.0f32; 8];
    acc.iter()
        .map(|&v| {
            // SAFETY: `lanes` holds 8 floats.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
            lanes.iter().sum::<f32>()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_rate_is_measured_and_plausible() {
        let Some(one) = super::fma_flops_per_sec(1) else {
            return; // no AVX2/AVX-512 on this machine: nothing to measure
        };
        // Any x86 core with these units does 10-500 GFLOP/s.
        assert!((1e10..5e11).contains(&one), "{one}");
    }
}
