//! [`Lanes`] and [`MaxLanes`] on AVX-512F: 16 `f32` lanes in a `__m512`, 8 `f64`
//! lanes in a `__m512d`, 32 registers.
//!
//! Partial vectors use lane masks (`first16`, `first8`); a full-width mask that is
//! a constant, as in `load_first(ptr, LANES)`, folds into a plain load. The
//! permutes are one two-register `vpermt2ps`/`vpermt2pd` each, whose index vector
//! is a constant the compiler keeps in a register across a kernel's loop.
//!
//! Every unsafe block below calls AVX-512F intrinsics, which the traits' contract
//! allows: the caller guarantees the CPU supports AVX-512F.

use super::{Lanes, MaxLanes};
use std::arch::x86_64::*;

/// 16 `f32` lanes in one zmm register.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(crate) struct F32x16(__m512);

/// 8 `f64` lanes in one zmm register.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(crate) struct F64x8(__m512d);

/// The mask of lanes `0 .. min(n, 16)`.
#[inline(always)]
fn first16(n: usize) -> __mmask16 {
    ((1u32 << n.min(16)) - 1) as __mmask16
}

/// The mask of lanes `0 .. min(n, 8)`.
#[inline(always)]
fn first8(n: usize) -> __mmask8 {
    ((1u32 << n.min(8)) - 1) as __mmask8
}

impl Lanes for F32x16 {
    type Elem = f32;
    const LANES: usize = 16;

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: AVX-512F is available (the trait's contract).
        Self(unsafe { _mm512_setzero_ps() })
    }

    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: AVX-512F is available (the trait's contract).
        Self(unsafe { _mm512_set1_ps(x) })
    }

    #[inline(always)]
    unsafe fn load(ptr: *const f32) -> Self {
        // SAFETY: AVX-512F is available and `ptr` is readable for 16 elements (the
        // trait's contract).
        Self(unsafe { _mm512_loadu_ps(ptr) })
    }

    #[inline(always)]
    unsafe fn load_first(ptr: *const f32, n: usize) -> Self {
        // SAFETY: AVX-512F is available; the mask enables only the first
        // `min(n, 16)` lanes, which the caller promised are readable, and masked-off
        // lanes are not read.
        Self(unsafe { _mm512_maskz_loadu_ps(first16(n), ptr) })
    }

    #[inline(always)]
    unsafe fn store(ptr: *mut f32, v: Self) {
        // SAFETY: AVX-512F is available and `ptr` is writable for 16 elements (the
        // trait's contract).
        unsafe { _mm512_storeu_ps(ptr, v.0) }
    }

    #[inline(always)]
    unsafe fn store_first(ptr: *mut f32, n: usize, v: Self) {
        // SAFETY: AVX-512F is available; the mask enables only the first
        // `min(n, 16)` lanes, which the caller promised are writable, and
        // masked-off lanes are not written.
        unsafe { _mm512_mask_storeu_ps(ptr, first16(n), v.0) }
    }

    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        // SAFETY: AVX-512F is available (the trait's contract).
        Self(unsafe { _mm512_add_ps(a.0, b.0) })
    }

    #[inline(always)]
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: AVX-512F is available (the trait's contract).
        Self(unsafe { _mm512_fmadd_ps(a.0, b.0, c.0) })
    }

    #[inline(always)]
    unsafe fn even(lo: Self, hi: Self) -> Self {
        // SAFETY: AVX-512F is available (the trait's contract).
        Self(unsafe {
            let index =
                _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            _mm512_permutex2var_ps(lo.0, index, hi.0)
        })
    }

    #[inline(always)]
    unsafe fn odd(lo: Self, hi: Self) -> Self {
        // SAFETY: AVX-512F is available (the trait's contract).
        Self(unsafe {
            let index =
                _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
            _mm512_permutex2var_ps(lo.0, index, hi.0)
        })
    }

    #[inline(always)]
    unsafe fn interleave_low(a: Self, b: Self) -> Self {
        // SAFETY: AVX-512F is available (the trait's contract).
        Self(unsafe {
            let index = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            _mm512_permutex2var_ps(a.0, index, b.0)
        })
    }

    #[inline(always)]
    unsafe fn interleave_high(a: Self, b: Self) -> Self {
        // SAFETY: AVX-512F is available (the trait's contract).
        Self(unsafe {
            let index =
                _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
            _mm512_permutex2var_ps(a.0, index, b.0)
        })
    }
}

impl Lanes for F64x8 {
    type Elem = f64;
    const LANES: usize = 8;

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: AVX-512F is available (the trait's contract).
        Self(unsafe { _mm512_setzero_pd() })
    }

    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        // SAFETY: AVX-512F is available (the trait's contract).
        Self(unsafe { _mm512_set1_pd(x) })
    }

    #[inline(always)]
    unsafe fn load(ptr: *const f64) -> Self {
        // SAFETY: AVX-512F is available and `ptr` is readable for 8 elements (the
        // trait's contract).
        Self(unsafe { _mm512_loadu_pd(ptr) })
    }

    #[inline(always)]
    unsafe fn load_first(ptr: *const f64, n: usize) -> Self {
        // SAFETY: AVX-512F is available; the mask enables only the first
        // `min(n, 8)` lanes, which the caller promised are readable, and masked-off
        // lanes are not read.
        Self(unsafe { _mm512_maskz_loadu_pd(first8(n), ptr) })
    }

    #[inline(always)]
    unsafe fn store(ptr: *mut f64, v: Self) {
        // SAFETY: AVX-512F is available and `ptr` is writable for 8 elements (the
        // trait's contract).
        unsafe { _mm512_storeu_pd(ptr, v.0) }
    }

    #[inline(always)]
    unsafe fn store_first(ptr: *mut f64, n: usize, v: Self) {
        // SAFETY: AVX-512F is available; the mask enables only the first
        // `min(n, 8)` lanes, which the caller promised are writable, and masked-off
        // lanes are not written.
        unsafe { _mm512_mask_storeu_pd(ptr, first8(n), v.0) }
    }

    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        // SAFETY: AVX-512F is available (the trait's contract).
        Self(unsafe { _mm512_add_pd(a.0, b.0) })
    }

    #[inline(always)]
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: AVX-512F is available (the trait's contract).
        Self(unsafe { _mm512_fmadd_pd(a.0, b.0, c.0) })
    }

    #[inline(always)]
    unsafe fn even(lo: Self, hi: Self) -> Self {
        // SAFETY: AVX-512F is available (the trait's contract).
        Self(unsafe {
            let index = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
            _mm512_permutex2var_pd(lo.0, index, hi.0)
        })
    }

    #[inline(always)]
    unsafe fn odd(lo: Self, hi: Self) -> Self {
        // SAFETY: AVX-512F is available (the trait's contract).
        Self(unsafe {
            let index = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);
            _mm512_permutex2var_pd(lo.0, index, hi.0)
        })
    }

    #[inline(always)]
    unsafe fn interleave_low(a: Self, b: Self) -> Self {
        // SAFETY: AVX-512F is available (the trait's contract).
        Self(unsafe {
            let index = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11);
            _mm512_permutex2var_pd(a.0, index, b.0)
        })
    }

    #[inline(always)]
    unsafe fn interleave_high(a: Self, b: Self) -> Self {
        // SAFETY: AVX-512F is available (the trait's contract).
        Self(unsafe {
            let index = _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15);
            _mm512_permutex2var_pd(a.0, index, b.0)
        })
    }
}

/// `f32` lanes keep their tap offsets as 16 `u32` lanes of a `__m512i` (one
/// register, one 32-bit blend per tap) and widen them to `i64` when storing.
impl MaxLanes for F32x16 {
    type Take = __mmask16;
    type Taps = __m512i;

    #[inline(always)]
    unsafe fn greater_or_nan(v: Self, best: Self) -> __mmask16 {
        // SAFETY: AVX-512F is available (the trait's contract).
        unsafe {
            _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v.0, best.0)
                | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v.0, v.0)
        }
    }

    #[inline(always)]
    unsafe fn select(take: __mmask16, keep: Self, new: Self) -> Self {
        // SAFETY: AVX-512F is available (the trait's contract).
        Self(unsafe { _mm512_mask_blend_ps(take, keep.0, new.0) })
    }

    #[inline(always)]
    unsafe fn splat_tap(offset: usize) -> __m512i {
        // SAFETY: AVX-512F is available (the trait's contract).
        unsafe { _mm512_set1_epi32(offset as i32) }
    }

    #[inline(always)]
    unsafe fn select_taps(take: __mmask16, keep: __m512i, new: __m512i) -> __m512i {
        // SAFETY: AVX-512F is available (the trait's contract).
        unsafe { _mm512_mask_blend_epi32(take, keep, new) }
    }

    #[inline(always)]
    unsafe fn store_stride2_indices(dst: *mut i64, taps: __m512i, first: usize) {
        // SAFETY: AVX-512F is available and `dst` is writable for 16 elements (the
        // trait's contract): the two stores cover 8 each.
        unsafe {
            // Plane index = tap offset + first + 2 * lane (offsets are u32).
            let base = _mm512_set1_epi64(first as i64);
            let lanes_lo = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
            let lanes_hi = _mm512_setr_epi64(16, 18, 20, 22, 24, 26, 28, 30);
            let lo = _mm512_cvtepu32_epi64(_mm512_castsi512_si256(taps));
            let hi = _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64::<1>(taps));
            _mm512_storeu_si512(
                dst.cast(),
                _mm512_add_epi64(lo, _mm512_add_epi64(base, lanes_lo)),
            );
            _mm512_storeu_si512(
                dst.add(8).cast(),
                _mm512_add_epi64(hi, _mm512_add_epi64(base, lanes_hi)),
            );
        }
    }
}

/// `f64` lanes keep their tap offsets as 8 `i64` lanes, already the width of the
/// stored indices.
impl MaxLanes for F64x8 {
    type Take = __mmask8;
    type Taps = __m512i;

    #[inline(always)]
    unsafe fn greater_or_nan(v: Self, best: Self) -> __mmask8 {
        // SAFETY: AVX-512F is available (the trait's contract).
        unsafe {
            _mm512_cmp_pd_mask::<_CMP_GT_OQ>(v.0, best.0)
                | _mm512_cmp_pd_mask::<_CMP_UNORD_Q>(v.0, v.0)
        }
    }

    #[inline(always)]
    unsafe fn select(take: __mmask8, keep: Self, new: Self) -> Self {
        // SAFETY: AVX-512F is available (the trait's contract).
        Self(unsafe { _mm512_mask_blend_pd(take, keep.0, new.0) })
    }

    #[inline(always)]
    unsafe fn splat_tap(offset: usize) -> __m512i {
        // SAFETY: AVX-512F is available (the trait's contract).
        unsafe { _mm512_set1_epi64(offset as i64) }
    }

    #[inline(always)]
    unsafe fn select_taps(take: __mmask8, keep: __m512i, new: __m512i) -> __m512i {
        // SAFETY: AVX-512F is available (the trait's contract).
        unsafe { _mm512_mask_blend_epi64(take, keep, new) }
    }

    #[inline(always)]
    unsafe fn store_stride2_indices(dst: *mut i64, taps: __m512i, first: usize) {
        // SAFETY: AVX-512F is available and `dst` is writable for 8 elements (the
        // trait's contract).
        unsafe {
            let lanes = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
            let index = _mm512_add_epi64(
                taps,
                _mm512_add_epi64(_mm512_set1_epi64(first as i64), lanes),
            );
            _mm512_storeu_si512(dst.cast(), index);
        }
    }
}
