//! [`Lanes`] and [`MaxLanes`] on AVX2 with FMA: 8 `f32` lanes in a `__m256`, 4
//! `f64` lanes in a `__m256d`, 16 registers.
//!
//! Partial vectors use `vmaskmov` loads and stores with a lane mask built from
//! `n` (masked-off lanes are neither read nor written, and cannot fault); a
//! whole vector (`n >= LANES`, a constant in the kernels' main loops) takes a
//! plain load or store instead. AVX2 permutes stay within 128-bit halves, so the
//! cross-register permutes are an in-half shuffle followed by a 64-bit lane
//! permute (`even`, `odd`) or a half swap (`interleave_*`).
//!
//! Every unsafe block below calls AVX, AVX2 or FMA intrinsics, which the traits'
//! contract allows: the caller guarantees the CPU supports AVX2 and FMA.

use super::{Lanes, MaxLanes};
use std::arch::x86_64::*;

/// 8 `f32` lanes in one ymm register.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(crate) struct F32x8(__m256);

/// 4 `f64` lanes in one ymm register.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(crate) struct F64x4(__m256d);

/// All-ones in the 32-bit lanes `0 .. min(n, 8)`, zero in the others.
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
unsafe fn first8(n: usize) -> __m256i {
    // SAFETY: AVX2 is available (the caller's contract).
    unsafe {
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_cmpgt_epi32(_mm256_set1_epi32(n.min(8) as i32), lanes)
    }
}

/// All-ones in the 64-bit lanes `0 .. min(n, 4)`, zero in the others.
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
unsafe fn first4(n: usize) -> __m256i {
    // SAFETY: AVX2 is available (the caller's contract).
    unsafe {
        let lanes = _mm256_setr_epi64x(0, 1, 2, 3);
        _mm256_cmpgt_epi64(_mm256_set1_epi64x(n.min(4) as i64), lanes)
    }
}

impl Lanes for F32x8 {
    type Elem = f32;
    const LANES: usize = 8;

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: AVX is available (the trait's contract).
        Self(unsafe { _mm256_setzero_ps() })
    }

    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: AVX is available (the trait's contract).
        Self(unsafe { _mm256_set1_ps(x) })
    }

    #[inline(always)]
    unsafe fn load(ptr: *const f32) -> Self {
        // SAFETY: AVX is available and `ptr` is readable for 8 elements (the
        // trait's contract).
        Self(unsafe { _mm256_loadu_ps(ptr) })
    }

    #[inline(always)]
    unsafe fn load_first(ptr: *const f32, n: usize) -> Self {
        if n >= Self::LANES {
            // SAFETY: `ptr` is readable for 8 elements (the trait's contract).
            return unsafe { Self::load(ptr) };
        }
        // SAFETY: AVX2 is available; the mask enables only the first `n` lanes,
        // which the caller promised are readable, and masked-off lanes are not
        // read (nor can they fault).
        Self(unsafe { _mm256_maskload_ps(ptr, first8(n)) })
    }

    #[inline(always)]
    unsafe fn store(ptr: *mut f32, v: Self) {
        // SAFETY: AVX is available and `ptr` is writable for 8 elements (the
        // trait's contract).
        unsafe { _mm256_storeu_ps(ptr, v.0) }
    }

    #[inline(always)]
    unsafe fn store_first(ptr: *mut f32, n: usize, v: Self) {
        if n >= Self::LANES {
            // SAFETY: `ptr` is writable for 8 elements (the trait's contract).
            return unsafe { Self::store(ptr, v) };
        }
        // SAFETY: AVX2 is available; the mask enables only the first `n` lanes,
        // which the caller promised are writable, and masked-off lanes are not
        // written.
        unsafe { _mm256_maskstore_ps(ptr, first8(n), v.0) }
    }

    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        // SAFETY: AVX is available (the trait's contract).
        Self(unsafe { _mm256_add_ps(a.0, b.0) })
    }

    #[inline(always)]
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: FMA is available (the trait's contract).
        Self(unsafe { _mm256_fmadd_ps(a.0, b.0, c.0) })
    }

    #[inline(always)]
    unsafe fn even(lo: Self, hi: Self) -> Self {
        // SAFETY: AVX2 is available (the trait's contract).
        Self(unsafe {
            // [lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6], then the 64-bit pairs reordered.
            let pairs = _mm256_shuffle_ps::<0b10_00_10_00>(lo.0, hi.0);
            _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(
                pairs,
            )))
        })
    }

    #[inline(always)]
    unsafe fn odd(lo: Self, hi: Self) -> Self {
        // SAFETY: AVX2 is available (the trait's contract).
        Self(unsafe {
            let pairs = _mm256_shuffle_ps::<0b11_01_11_01>(lo.0, hi.0);
            _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(
                pairs,
            )))
        })
    }

    #[inline(always)]
    unsafe fn interleave_low(a: Self, b: Self) -> Self {
        // SAFETY: AVX is available (the trait's contract).
        Self(unsafe {
            // [a0 b0 a1 b1 | a4 b4 a5 b5] and [a2 b2 a3 b3 | a6 b6 a7 b7]: their
            // low halves.
            let (lo, hi) = (_mm256_unpacklo_ps(a.0, b.0), _mm256_unpackhi_ps(a.0, b.0));
            _mm256_permute2f128_ps::<0x20>(lo, hi)
        })
    }

    #[inline(always)]
    unsafe fn interleave_high(a: Self, b: Self) -> Self {
        // SAFETY: AVX is available (the trait's contract).
        Self(unsafe {
            let (lo, hi) = (_mm256_unpacklo_ps(a.0, b.0), _mm256_unpackhi_ps(a.0, b.0));
            _mm256_permute2f128_ps::<0x31>(lo, hi)
        })
    }
}

impl Lanes for F64x4 {
    type Elem = f64;
    const LANES: usize = 4;

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: AVX is available (the trait's contract).
        Self(unsafe { _mm256_setzero_pd() })
    }

    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        // SAFETY: AVX is available (the trait's contract).
        Self(unsafe { _mm256_set1_pd(x) })
    }

    #[inline(always)]
    unsafe fn load(ptr: *const f64) -> Self {
        // SAFETY: AVX is available and `ptr` is readable for 4 elements (the
        // trait's contract).
        Self(unsafe { _mm256_loadu_pd(ptr) })
    }

    #[inline(always)]
    unsafe fn load_first(ptr: *const f64, n: usize) -> Self {
        if n >= Self::LANES {
            // SAFETY: `ptr` is readable for 4 elements (the trait's contract).
            return unsafe { Self::load(ptr) };
        }
        // SAFETY: AVX2 is available; the mask enables only the first `n` lanes,
        // which the caller promised are readable, and masked-off lanes are not
        // read (nor can they fault).
        Self(unsafe { _mm256_maskload_pd(ptr, first4(n)) })
    }

    #[inline(always)]
    unsafe fn store(ptr: *mut f64, v: Self) {
        // SAFETY: AVX is available and `ptr` is writable for 4 elements (the
        // trait's contract).
        unsafe { _mm256_storeu_pd(ptr, v.0) }
    }

    #[inline(always)]
    unsafe fn store_first(ptr: *mut f64, n: usize, v: Self) {
        if n >= Self::LANES {
            // SAFETY: `ptr` is writable for 4 elements (the trait's contract).
            return unsafe { Self::store(ptr, v) };
        }
        // SAFETY: AVX2 is available; the mask enables only the first `n` lanes,
        // which the caller promised are writable, and masked-off lanes are not
        // written.
        unsafe { _mm256_maskstore_pd(ptr, first4(n), v.0) }
    }

    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        // SAFETY: AVX is available (the trait's contract).
        Self(unsafe { _mm256_add_pd(a.0, b.0) })
    }

    #[inline(always)]
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: FMA is available (the trait's contract).
        Self(unsafe { _mm256_fmadd_pd(a.0, b.0, c.0) })
    }

    #[inline(always)]
    unsafe fn even(lo: Self, hi: Self) -> Self {
        // SAFETY: AVX2 is available (the trait's contract).
        Self(unsafe {
            // [lo0 hi0 | lo2 hi2] -> [lo0 lo2 hi0 hi2].
            _mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_unpacklo_pd(lo.0, hi.0))
        })
    }

    #[inline(always)]
    unsafe fn odd(lo: Self, hi: Self) -> Self {
        // SAFETY: AVX2 is available (the trait's contract).
        Self(unsafe { _mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_unpackhi_pd(lo.0, hi.0)) })
    }

    #[inline(always)]
    unsafe fn interleave_low(a: Self, b: Self) -> Self {
        // SAFETY: AVX is available (the trait's contract).
        Self(unsafe {
            // [a0 b0 | a2 b2] and [a1 b1 | a3 b3]: their low halves.
            let (lo, hi) = (_mm256_unpacklo_pd(a.0, b.0), _mm256_unpackhi_pd(a.0, b.0));
            _mm256_permute2f128_pd::<0x20>(lo, hi)
        })
    }

    #[inline(always)]
    unsafe fn interleave_high(a: Self, b: Self) -> Self {
        // SAFETY: AVX is available (the trait's contract).
        Self(unsafe {
            let (lo, hi) = (_mm256_unpacklo_pd(a.0, b.0), _mm256_unpackhi_pd(a.0, b.0));
            _mm256_permute2f128_pd::<0x31>(lo, hi)
        })
    }
}

/// `f32` lanes keep their tap offsets as 8 `u32` lanes of a `__m256i` and widen
/// them to `i64` when storing; a comparison's result is a vector of all-ones
/// lanes, which blends both the values and (bytewise) the offsets.
impl MaxLanes for F32x8 {
    type Take = __m256;
    type Taps = __m256i;

    #[inline(always)]
    unsafe fn greater_or_nan(v: Self, best: Self) -> __m256 {
        // SAFETY: AVX is available (the trait's contract).
        unsafe {
            _mm256_or_ps(
                _mm256_cmp_ps::<_CMP_GT_OQ>(v.0, best.0),
                _mm256_cmp_ps::<_CMP_UNORD_Q>(v.0, v.0),
            )
        }
    }

    #[inline(always)]
    unsafe fn select(take: __m256, keep: Self, new: Self) -> Self {
        // SAFETY: AVX is available (the trait's contract).
        Self(unsafe { _mm256_blendv_ps(keep.0, new.0, take) })
    }

    #[inline(always)]
    unsafe fn splat_tap(offset: usize) -> __m256i {
        // SAFETY: AVX is available (the trait's contract).
        unsafe { _mm256_set1_epi32(offset as i32) }
    }

    #[inline(always)]
    unsafe fn select_taps(take: __m256, keep: __m256i, new: __m256i) -> __m256i {
        // SAFETY: AVX2 is available (the trait's contract).
        unsafe { _mm256_blendv_epi8(keep, new, _mm256_castps_si256(take)) }
    }

    #[inline(always)]
    unsafe fn store_stride2_indices(dst: *mut i64, taps: __m256i, first: usize) {
        // SAFETY: AVX2 is available and `dst` is writable for 8 elements (the
        // trait's contract): the two stores cover 4 each.
        unsafe {
            // Plane index = tap offset + first + 2 * lane (offsets are u32).
            let base = _mm256_set1_epi64x(first as i64);
            let lanes_lo = _mm256_setr_epi64x(0, 2, 4, 6);
            let lanes_hi = _mm256_setr_epi64x(8, 10, 12, 14);
            let lo = _mm256_cvtepu32_epi64(_mm256_castsi256_si128(taps));
            let hi = _mm256_cvtepu32_epi64(_mm256_extracti128_si256::<1>(taps));
            _mm256_storeu_si256(
                dst.cast(),
                _mm256_add_epi64(lo, _mm256_add_epi64(base, lanes_lo)),
            );
            _mm256_storeu_si256(
                dst.add(4).cast(),
                _mm256_add_epi64(hi, _mm256_add_epi64(base, lanes_hi)),
            );
        }
    }
}

/// `f64` lanes keep their tap offsets as 4 `i64` lanes, already the width of the
/// stored indices.
impl MaxLanes for F64x4 {
    type Take = __m256d;
    type Taps = __m256i;

    #[inline(always)]
    unsafe fn greater_or_nan(v: Self, best: Self) -> __m256d {
        // SAFETY: AVX is available (the trait's contract).
        unsafe {
            _mm256_or_pd(
                _mm256_cmp_pd::<_CMP_GT_OQ>(v.0, best.0),
                _mm256_cmp_pd::<_CMP_UNORD_Q>(v.0, v.0),
            )
        }
    }

    #[inline(always)]
    unsafe fn select(take: __m256d, keep: Self, new: Self) -> Self {
        // SAFETY: AVX is available (the trait's contract).
        Self(unsafe { _mm256_blendv_pd(keep.0, new.0, take) })
    }

    #[inline(always)]
    unsafe fn splat_tap(offset: usize) -> __m256i {
        // SAFETY: AVX is available (the trait's contract).
        unsafe { _mm256_set1_epi64x(offset as i64) }
    }

    #[inline(always)]
    unsafe fn select_taps(take: __m256d, keep: __m256i, new: __m256i) -> __m256i {
        // SAFETY: AVX2 is available (the trait's contract).
        unsafe { _mm256_blendv_epi8(keep, new, _mm256_castpd_si256(take)) }
    }

    #[inline(always)]
    unsafe fn store_stride2_indices(dst: *mut i64, taps: __m256i, first: usize) {
        // SAFETY: AVX2 is available and `dst` is writable for 4 elements (the
        // trait's contract).
        unsafe {
            let lanes = _mm256_setr_epi64x(0, 2, 4, 6);
            let index = _mm256_add_epi64(
                taps,
                _mm256_add_epi64(_mm256_set1_epi64x(first as i64), lanes),
            );
            _mm256_storeu_si256(dst.cast(), index);
        }
    }
}
