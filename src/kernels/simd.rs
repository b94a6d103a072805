//! Runtime choice of the widest vector instructions the CPU has.
//!
//! The binary is built for the baseline x86-64 so that it runs anywhere;
//! element-wise loops written plainly would then use 4-wide SSE2 only. A
//! function wrapped in [`vectorized!`] is compiled three times — for
//! AVX-512, for AVX2 with FMA, and for the baseline — and the widest version
//! the CPU supports runs.

/// Defines `pub fn $name(args) -> ret` that runs `$body` compiled for the
/// best instruction set available. The body must be free of closures that
/// outlive the call (they would not inherit the target features).
macro_rules! vectorized {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }

                if $crate::kernels::simd::has_avx512() {
                    // SAFETY: the CPU supports AVX-512F (checked at run time).
                    return unsafe { avx512($($arg),*) };
                }
                if $crate::kernels::simd::has_avx2_fma() {
                    // SAFETY: the CPU supports AVX2 and FMA (checked at run time).
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use vectorized;

/// Whether the CPU has AVX-512F (cached by the standard library).
#[inline]
pub fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the CPU has AVX2 and FMA.
#[inline]
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Lanes of the partial sums in reductions: wide enough for a 512-bit
/// register, and a fixed number so results do not depend on the CPU.
pub const LANES: usize = 16;

/// Sum of `values`, in `LANES` interleaved partial sums added at the end
/// in a fixed order (vectorises without reassociating floats freely).
#[inline(always)]
pub fn sum(values: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for l in 0..LANES {
            acc[l] += chunk[l];
        }
    }
    for (l, &v) in chunks.remainder().iter().enumerate() {
        acc[l] += v;
    }
    acc.iter().sum()
}
