//! Per-frame stage code compiled a second time for AVX2, chosen at run time on x86-64 CPUs that have
//! it; the binary itself stays baseline x86-64 (and ARM builds are untouched).
//!
//! A stage writes its body as an `#[inline(always)]` function and a twin marked
//! `#[cfg(target_arch = "x86_64")] #[target_feature(enable = "avx2")]` that only calls it, so the
//! body is inlined into the twin and compiled with 256-bit vectors and VEX encoding; [`avx2_or!`]
//! picks the twin when the CPU has AVX2. Only AVX2 is enabled, not FMA: Rust never fuses a multiply and
//! an add on its own, so both variants compute the same sums in the same order and give identical
//! results bit for bit.

/// Whether this CPU runs AVX2 code (the answer is cached by the standard library after the first call).
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// For tests comparing the two variants: whether they can both run here (says so when not).
#[cfg(all(test, target_arch = "x86_64"))]
pub fn both_variants_run() -> bool {
    let yes = has_avx2();
    if !yes {
        eprintln!("this CPU has no AVX2: only the baseline variant runs here");
    }
    yes
}

/// `avx2_or!(twin_call, plain_call)`: evaluates the first, a call to a `#[target_feature(enable =
/// "avx2")]` twin, when the CPU has AVX2 (x86-64 only), else the second.
macro_rules! avx2_or {
    ($avx2:expr, $plain:expr) => {{
        #[cfg(target_arch = "x86_64")]
        let out = if $crate::pipeline::simd::has_avx2() {
            // SAFETY: a `#[target_feature]` function's only requirement beyond its safe signature is
            // that the CPU supports the feature, checked just above.
            unsafe { $avx2 }
        } else {
            $plain
        };
        #[cfg(not(target_arch = "x86_64"))]
        let out = $plain;
        out
    }};
}
pub(crate) use avx2_or;
