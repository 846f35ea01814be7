//! The seam between the SIMD kernels and an instruction set: [`Lanes`], a vector
//! register of `LANES` elements and the few operations the kernels are written in
//! (load, store, fused multiply-add, even/odd and interleave permutes), and
//! [`MaxLanes`], the compare-and-select steps of the max-pooling kernel.
//!
//! Each SIMD kernel body is written once, generic over these traits, and each
//! instruction set instantiates it in a thin `#[target_feature]` wrapper:
//!
//! ```text
//! #[inline(always)] unsafe fn body<V: Lanes>(..)         the kernel, once
//! #[target_feature(enable = "avx512f")]
//! unsafe fn kernel_f32(..) { body::<F32x16>(..) }        one wrapper per type and ISA
//! ```
//!
//! Every method is `#[inline(always)]`, so it is inlined into the body and the body
//! into the wrapper, where the instruction set is enabled and the intrinsics inline
//! in turn: the wrapper compiles to the same code as a kernel written with the
//! intrinsics directly. A method left as a call would cost a call per vector
//! operation (and pass its registers through memory).
//!
//! The signatures use no mask types: partial vectors are "the first `n` lanes",
//! which AVX-512 turns into a lane mask and AVX2 into a `maskload`/`maskstore`
//! mask.
//!
//! Implementations: [`avx512`] (`F32x16` over `__m512`, `F64x8` over `__m512d`)
//! and [`avx2`] (`F32x8` over `__m256`, `F64x4` over `__m256d`, with FMA).

use super::scalar::Scalar;

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;

/// A vector register of [`Lanes::LANES`] elements of type [`Lanes::Elem`].
///
/// Lane `l` of a register loaded from `ptr` holds `*ptr.add(l)`. Loads and stores
/// are unaligned.
///
/// Every method is unsafe for one shared reason, besides the memory contracts
/// stated per method: an implementation executes the instructions of its
/// instruction set, so the CPU must support it (AVX-512F for the [`avx512`]
/// types, AVX2 and FMA for the [`avx2`] ones). Kernels call these methods only
/// from inside a `#[target_feature]` wrapper entered after the runtime check of
/// `super::isa`.
pub(crate) trait Lanes: Copy {
    /// The element type of every lane.
    type Elem: Scalar;

    /// Elements per register.
    const LANES: usize;

    /// All lanes zero.
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set.
    unsafe fn zero() -> Self;

    /// Every lane `x`.
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set.
    unsafe fn splat(x: Self::Elem) -> Self;

    /// Lanes `0 .. LANES` from `ptr .. ptr + LANES`.
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set, and `ptr` must be
    /// valid for reading `LANES` elements.
    unsafe fn load(ptr: *const Self::Elem) -> Self;

    /// Lanes `0 .. min(n, LANES)` from `ptr`, zero in the lanes after them. Memory
    /// past the first `min(n, LANES)` elements is not read, so `ptr` may point
    /// anywhere when `n == 0`.
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set, and `ptr` must be
    /// valid for reading `min(n, LANES)` elements.
    unsafe fn load_first(ptr: *const Self::Elem, n: usize) -> Self;

    /// `v` into `ptr .. ptr + LANES`.
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set, and `ptr` must be
    /// valid for writing `LANES` elements.
    unsafe fn store(ptr: *mut Self::Elem, v: Self);

    /// Lanes `0 .. min(n, LANES)` of `v` into `ptr`; memory past them is not
    /// touched.
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set, and `ptr` must be
    /// valid for writing `min(n, LANES)` elements.
    unsafe fn store_first(ptr: *mut Self::Elem, n: usize, v: Self);

    /// `a + b` per lane.
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set.
    unsafe fn add(a: Self, b: Self) -> Self;

    /// `a * b + c` per lane, rounded once (a fused multiply-add).
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set.
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self;

    /// The even lanes of the pair `lo, hi` read as one `2 * LANES` row:
    /// `[lo[0], lo[2], .., hi[0], hi[2], ..]`.
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set.
    unsafe fn even(lo: Self, hi: Self) -> Self;

    /// The odd lanes of the pair `lo, hi`: `[lo[1], lo[3], .., hi[1], hi[3], ..]`.
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set.
    unsafe fn odd(lo: Self, hi: Self) -> Self;

    /// The first half of the lanes of `a` and `b`, interleaved:
    /// `[a[0], b[0], a[1], b[1], .., a[LANES / 2 - 1], b[LANES / 2 - 1]]` (across
    /// the whole register, not within 128-bit blocks).
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set.
    unsafe fn interleave_low(a: Self, b: Self) -> Self;

    /// The second half of the lanes of `a` and `b`, interleaved:
    /// `[a[LANES / 2], b[LANES / 2], .., a[LANES - 1], b[LANES - 1]]`.
    /// `interleave_low` and `interleave_high` invert `even` and `odd`.
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set.
    unsafe fn interleave_high(a: Self, b: Self) -> Self;
}

/// The steps of the stride-2 max-pooling kernel on top of [`Lanes`]: PyTorch's
/// "larger or NaN" choice per lane and the tap offsets each lane remembers.
///
/// The offsets live in a register of their own type so that each element type
/// can keep them as narrow as its lanes allow: `f32` lanes keep 32-bit offsets
/// (the caller checks the plane fits), `f64` lanes 64-bit ones, and both widen
/// to `i64` plane indices only when storing.
pub(crate) trait MaxLanes: Lanes {
    /// The lanes a comparison chose (a mask register on AVX-512; a vector of
    /// all-ones lanes elsewhere).
    type Take: Copy;

    /// One tap offset per lane.
    type Taps: Copy;

    /// The lanes where `v` replaces `best` under PyTorch's rule: `v > best`, or `v`
    /// is NaN.
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set.
    unsafe fn greater_or_nan(v: Self, best: Self) -> Self::Take;

    /// `new` in the lanes of `take`, `keep` in the others.
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set.
    unsafe fn select(take: Self::Take, keep: Self, new: Self) -> Self;

    /// Every lane the tap offset `offset` (offsets the caller has checked to fit
    /// the lanes: below `2^32` for `f32`).
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set.
    unsafe fn splat_tap(offset: usize) -> Self::Taps;

    /// `new` in the lanes of `take`, `keep` in the others.
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set.
    unsafe fn select_taps(take: Self::Take, keep: Self::Taps, new: Self::Taps) -> Self::Taps;

    /// The plane index of each lane's winning tap in a stride-2 window run,
    /// `dst[l] = taps[l] + first + 2 * l` for `l < LANES`, as `i64`.
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set, and `dst` must be
    /// valid for writing `LANES` elements.
    unsafe fn store_stride2_indices(dst: *mut i64, taps: Self::Taps, first: usize);
}

#[cfg(test)]
mod tests {
    //! What every implementation must do, lane by lane (the kernels' own tests
    //! compare whole kernels with their portable twins).

    use super::{Lanes, MaxLanes};
    use num_traits::{Float, NumCast};

    fn elem<V: Lanes>(x: f64) -> V::Elem {
        <V::Elem as NumCast>::from(x).unwrap()
    }

    /// The lanes of `v`.
    ///
    /// # Safety
    /// The CPU must support `V`'s instruction set.
    unsafe fn lanes<V: Lanes>(v: V) -> Vec<V::Elem> {
        let mut out = vec![elem::<V>(0.0); V::LANES];
        // SAFETY: `out` holds LANES elements; the instruction set is the caller's.
        unsafe { V::store(out.as_mut_ptr(), v) };
        out
    }

    /// # Safety
    /// The CPU must support `V`'s instruction set.
    unsafe fn check_lanes<V: Lanes>() {
        let l = V::LANES;
        let row: Vec<V::Elem> = (0..2 * l).map(|i| elem::<V>(i as f64 + 1.0)).collect();
        let (zero, unset) = (elem::<V>(0.0), elem::<V>(-1.0));
        // SAFETY: every pointer below is read or written within its buffer, and the
        // instruction set is the caller's contract.
        unsafe {
            let (lo, hi) = (V::load(row.as_ptr()), V::load(row.as_ptr().add(l)));
            assert_eq!(lanes(lo), row[..l]);
            assert_eq!(lanes(V::zero()), vec![zero; l]);
            for n in 0..=l + 1 {
                // From a buffer holding only the lanes asked for.
                let src = row[..n.min(l)].to_vec();
                let got = lanes(V::load_first(src.as_ptr(), n));
                let want: Vec<_> = (0..l).map(|i| if i < n { row[i] } else { zero }).collect();
                assert_eq!(got, want, "load_first {n}");
                let mut dst = vec![unset; l + 1];
                V::store_first(dst.as_mut_ptr(), n, lo);
                let want: Vec<_> = (0..=l)
                    .map(|i| if i < n.min(l) { row[i] } else { unset })
                    .collect();
                assert_eq!(dst, want, "store_first {n}");
            }
            let (e, o) = (V::even(lo, hi), V::odd(lo, hi));
            assert_eq!(lanes(e), (0..l).map(|i| row[2 * i]).collect::<Vec<_>>());
            assert_eq!(lanes(o), (0..l).map(|i| row[2 * i + 1]).collect::<Vec<_>>());
            assert_eq!(lanes(V::interleave_low(e, o)), row[..l]);
            assert_eq!(lanes(V::interleave_high(e, o)), row[l..]);
            let half = elem::<V>(0.5);
            let sum: Vec<_> = row[..l].iter().map(|&x| x + half).collect();
            assert_eq!(lanes(V::add(lo, V::splat(half))), sum);
            // Small integers: the fused result is exact.
            let fma: Vec<_> = (0..l).map(|i| row[i] * row[l + i] + half).collect();
            assert_eq!(lanes(V::mul_add(lo, hi, V::splat(half))), fma);
        }
    }

    /// # Safety
    /// The CPU must support `V`'s instruction set.
    unsafe fn check_max<V: MaxLanes>() {
        let l = V::LANES;
        let best: Vec<V::Elem> = (0..l).map(|i| elem::<V>(i as f64)).collect();
        // Larger, tied, smaller, NaN, in turn.
        let v: Vec<V::Elem> = (0..l)
            .map(|i| match i % 4 {
                0 => elem::<V>(i as f64 + 1.0),
                1 => elem::<V>(i as f64),
                2 => elem::<V>(i as f64 - 1.0),
                _ => V::Elem::nan(),
            })
            .collect();
        let takes = |i: usize| matches!(i % 4, 0 | 3);
        // SAFETY: `best` and `v` hold LANES elements, `indices` LANES, and the
        // instruction set is the caller's contract.
        unsafe {
            let take = V::greater_or_nan(V::load(v.as_ptr()), V::load(best.as_ptr()));
            let got = lanes(V::select(take, V::load(best.as_ptr()), V::load(v.as_ptr())));
            for (i, &x) in got.iter().enumerate() {
                let want = if takes(i) { v[i] } else { best[i] };
                assert!(x == want || (x.is_nan() && want.is_nan()), "lane {i}");
            }
            let taps = V::select_taps(take, V::splat_tap(10), V::splat_tap(20));
            let mut indices = vec![-1i64; l];
            V::store_stride2_indices(indices.as_mut_ptr(), taps, 3);
            let want: Vec<i64> = (0..l as i64)
                .map(|i| if takes(i as usize) { 20 } else { 10 } + 3 + 2 * i)
                .collect();
            assert_eq!(indices, want);
        }
    }

    #[test]
    fn avx512_lanes_do_what_the_traits_say() {
        use super::avx512::{F32x16, F64x8};
        if crate::kernels::isa::best() < crate::kernels::Isa::Avx512 {
            return;
        }
        // SAFETY: AVX-512F was detected just above.
        unsafe {
            check_lanes::<F32x16>();
            check_lanes::<F64x8>();
            check_max::<F32x16>();
            check_max::<F64x8>();
        }
    }

    #[test]
    fn avx2_lanes_do_what_the_traits_say() {
        use super::avx2::{F32x8, F64x4};
        if crate::kernels::isa::best() < crate::kernels::Isa::Avx2 {
            return;
        }
        // SAFETY: AVX2 and FMA were detected just above.
        unsafe {
            check_lanes::<F32x8>();
            check_lanes::<F64x4>();
            check_max::<F32x8>();
            check_max::<F64x4>();
        }
    }
}
