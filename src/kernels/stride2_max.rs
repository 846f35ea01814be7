//! The element types max pooling runs on ([`MaxElement`]: the floats and the
//! integers), the scan step every max-pooling kernel shares, and the kernel of
//! windows two columns apart (the common 3x3 and 2x2 stride-2 layers).
//!
//! PyTorch's rule, in scan order (row-major over the window): a cell replaces the
//! maximum when it is larger or NaN. So ties keep the first cell, a NaN always
//! wins (and a later NaN replaces an earlier one), and a window of -inf (or of
//! an integer type's minimum) keeps its first cell.

use super::isa::Isa;
#[cfg(target_arch = "x86_64")]
use super::lanes::MaxLanes;
use std::mem::MaybeUninit;

/// PyTorch's step, written as selects rather than a branch (random data would
/// mispredict it about once per window).
#[inline(always)]
pub fn update_max<T: MaxElement, I: Copy>(value: T, at: I, best: &mut T, best_at: &mut I) {
    let take = value.beats(*best);
    *best = if take { value } else { *best };
    *best_at = if take { at } else { *best_at };
}

/// Full-width windows of one output row: `rows` as in `max_of_window`, each
/// window `count` cells `step` apart from its first column.
pub struct Run<'a> {
    pub rows: &'a [usize],
    pub first: usize,
    pub count: usize,
    pub step: usize,
}

/// A type max pooling runs on: `f32` and `f64` (NaN wins; windows start from
/// -inf) and the integers `i32` and `i64` (windows start from the type's
/// minimum: a window of minima keeps its first cell, as a window of -inf does;
/// narrower integers are compared in `i32`), with the max-pooling kernel of
/// windows two columns apart.
///
/// Floats run that kernel with AVX-512 (or AVX2, a chunk in two halves): each
/// tap's cells are one load pair and an even-lane permute, then one compare pair
/// and two selects, everything in registers from the first tap to the stores
/// (the compiler's version of the generic loop took about three times the
/// instructions, keeping the tap offsets in four registers).
pub trait MaxElement: Copy + PartialOrd + Send + Sync + 'static {
    /// The value no cell is below: where every window's scan starts.
    const LOWEST: Self;

    /// Windows per call of [`MaxElement::stride2_max`].
    const MAX_LANES: usize;

    /// Whether `self` replaces the maximum `best` so far: it is larger, or NaN.
    fn beats(self, best: Self) -> bool;

    /// Whether [`MaxElement::stride2_max`] has a SIMD kernel on this CPU (by
    /// default none: the pooling plan then takes the generic chunk kernel).
    fn has_stride2_max() -> bool {
        false
    }

    /// The maxima of the `MAX_LANES` windows of `run` whose first columns are
    /// `first, first + 2, ...` into `values`, and their plane indices into
    /// `indices` unless it is empty (as `Run::max_chunk`). The plane must hold
    /// fewer than 2^32 cells: the f32 kernel keeps tap offsets in 32-bit lanes
    /// (the pooling plan sends larger planes to the scalar scan). By default the
    /// plain scan.
    fn stride2_max(
        plane: &[Self],
        run: &Run<'_>,
        first: usize,
        values: &mut [MaybeUninit<Self>],
        indices: &mut [MaybeUninit<i64>],
    ) {
        portable_stride2_max(plane, run, first, values, indices)
    }
}

/// [`MaxElement::stride2_max`], written once for any [`MaxLanes`]: lane `j`
/// follows the window whose first column is `first + 2 * j`. Each tap is one
/// whole and one partial load of the `2 * LANES - 1` cells from the tap's first
/// column and an even-lane permute, then the "larger or NaN" compare and two
/// selects; the maxima and the winning taps stay in registers from the first tap
/// to the stores.
///
/// # Safety
/// The CPU must support `V`'s instruction set (the plane and output lengths are
/// checked here).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn stride2_max_body<V: MaxLanes>(
    plane: &[V::Elem],
    run: &Run<'_>,
    first: usize,
    values: &mut [MaybeUninit<V::Elem>],
    indices: &mut [MaybeUninit<i64>],
) {
    assert!(values.len() == V::LANES && (indices.is_empty() || indices.len() == V::LANES));
    // SAFETY: setting registers needs only the instruction set (the caller's
    // contract).
    let (mut best, mut at) = unsafe {
        (
            V::splat(num_traits::Float::neg_infinity()),
            V::splat_tap(run.rows.first().copied().unwrap_or(0)),
        )
    };
    for &row in run.rows {
        for c in 0..run.count {
            let offset = row + c * run.step;
            let cells = &plane[offset + first..][..2 * V::LANES - 1];
            // SAFETY: `cells` holds 2 * LANES - 1 elements: LANES from its start,
            // LANES - 1 more; the rest is register arithmetic.
            unsafe {
                let lo = V::load(cells.as_ptr());
                let hi = V::load_first(cells.as_ptr().add(V::LANES), V::LANES - 1);
                let v = V::even(lo, hi);
                // PyTorch's step: take `v` if it is larger or NaN.
                let take = V::greater_or_nan(v, best);
                best = V::select(take, best, v);
                at = V::select_taps(take, at, V::splat_tap(offset));
            }
        }
    }
    // SAFETY: `values` holds LANES elements, `indices` LANES when not empty
    // (asserted above).
    unsafe {
        V::store(values.as_mut_ptr().cast(), best);
        if !indices.is_empty() {
            V::store_stride2_indices(indices.as_mut_ptr().cast(), at, first);
        }
    }
}

/// [`stride2_max_body`] instantiated for AVX-512F, per element type.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{stride2_max_body, Run};
    use crate::kernels::lanes::avx512::{F32x16, F64x8};
    use crate::kernels::lanes::Lanes;
    use std::mem::MaybeUninit;

    pub const LANES_F32: usize = F32x16::LANES;
    pub const LANES_F64: usize = F64x8::LANES;

    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    #[inline(never)]
    pub unsafe fn stride2_max_f32(
        plane: &[f32],
        run: &Run<'_>,
        first: usize,
        values: &mut [MaybeUninit<f32>],
        indices: &mut [MaybeUninit<i64>],
    ) {
        // SAFETY: AVX-512F is enabled; the body checks every length it relies on.
        unsafe { stride2_max_body::<F32x16>(plane, run, first, values, indices) }
    }

    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    #[inline(never)]
    pub unsafe fn stride2_max_f64(
        plane: &[f64],
        run: &Run<'_>,
        first: usize,
        values: &mut [MaybeUninit<f64>],
        indices: &mut [MaybeUninit<i64>],
    ) {
        // SAFETY: as in `stride2_max_f32`.
        unsafe { stride2_max_body::<F64x8>(plane, run, first, values, indices) }
    }
}

/// [`stride2_max_body`] instantiated for AVX2, per element type: a call covers
/// the windows of one AVX-512 register (the chunk size callers see on every
/// path) as two halves of 8 (f32) or 4 (f64) windows.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{stride2_max_body, Run};
    use crate::kernels::lanes::avx2::{F32x8, F64x4};
    use crate::kernels::lanes::{Lanes, MaxLanes};
    use std::mem::MaybeUninit;

    const _: () = assert!(2 * F32x8::LANES == super::LANES_F32);
    const _: () = assert!(2 * F64x4::LANES == super::LANES_F64);

    /// Both halves of a chunk of `2 * V::LANES` windows.
    ///
    /// # Safety
    /// The CPU must support `V`'s instruction set.
    #[inline(always)]
    unsafe fn halves<V: MaxLanes>(
        plane: &[V::Elem],
        run: &Run<'_>,
        first: usize,
        values: &mut [MaybeUninit<V::Elem>],
        indices: &mut [MaybeUninit<i64>],
    ) {
        assert!(
            values.len() == 2 * V::LANES && (indices.is_empty() || indices.len() == values.len())
        );
        let (values_lo, values_hi) = values.split_at_mut(V::LANES);
        let split = indices.len() / 2;
        let (indices_lo, indices_hi) = indices.split_at_mut(split);
        // SAFETY: the instruction set is the caller's contract; the body checks
        // every length it relies on. Window `V::LANES + j` starts 2 * LANES
        // columns after window `j`.
        unsafe {
            stride2_max_body::<V>(plane, run, first, values_lo, indices_lo);
            stride2_max_body::<V>(plane, run, first + 2 * V::LANES, values_hi, indices_hi);
        }
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    pub unsafe fn stride2_max_f32(
        plane: &[f32],
        run: &Run<'_>,
        first: usize,
        values: &mut [MaybeUninit<f32>],
        indices: &mut [MaybeUninit<i64>],
    ) {
        // SAFETY: AVX2 and FMA are enabled.
        unsafe { halves::<F32x8>(plane, run, first, values, indices) }
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    pub unsafe fn stride2_max_f64(
        plane: &[f64],
        run: &Run<'_>,
        first: usize,
        values: &mut [MaybeUninit<f64>],
        indices: &mut [MaybeUninit<i64>],
    ) {
        // SAFETY: as in `stride2_max_f32`.
        unsafe { halves::<F64x4>(plane, run, first, values, indices) }
    }
}

/// Windows per call: the AVX-512 register width, also on other CPUs (where the
/// kernel is the portable scan) so callers see one chunk size.
#[cfg(target_arch = "x86_64")]
const LANES_F32: usize = avx512::LANES_F32;
#[cfg(not(target_arch = "x86_64"))]
const LANES_F32: usize = 16;
#[cfg(target_arch = "x86_64")]
const LANES_F64: usize = avx512::LANES_F64;
#[cfg(not(target_arch = "x86_64"))]
const LANES_F64: usize = 8;

/// The scan of [`MaxElement::stride2_max`] in plain Rust.
fn portable_stride2_max<T: MaxElement>(
    plane: &[T],
    run: &Run<'_>,
    first: usize,
    values: &mut [MaybeUninit<T>],
    indices: &mut [MaybeUninit<i64>],
) {
    for (j, slot) in values.iter_mut().enumerate() {
        let mut best = T::LOWEST;
        let mut best_at = run.rows.first().copied().unwrap_or(0);
        for &row in run.rows {
            for c in 0..run.count {
                let offset = row + c * run.step;
                update_max(
                    plane[offset + first + 2 * j],
                    offset,
                    &mut best,
                    &mut best_at,
                );
            }
        }
        slot.write(best);
        if let Some(index) = indices.get_mut(j) {
            index.write((best_at + first + 2 * j) as i64);
        }
    }
}

macro_rules! stride2_max_impl {
    ($t:ty, $lanes:expr, $simd:ident) => {
        impl MaxElement for $t {
            const LOWEST: $t = <$t>::NEG_INFINITY;
            const MAX_LANES: usize = $lanes;

            #[inline(always)]
            fn beats(self, best: $t) -> bool {
                // the non-short-circuit `|` keeps the compiler from branching on
                // the first comparison
                (self > best) | self.is_nan()
            }

            fn has_stride2_max() -> bool {
                super::isa::active() != Isa::Portable
            }

            fn stride2_max(
                plane: &[$t],
                run: &Run<'_>,
                first: usize,
                values: &mut [MaybeUninit<$t>],
                indices: &mut [MaybeUninit<i64>],
            ) {
                match super::isa::active() {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the CPU supports AVX-512F (`active` never exceeds
                    // it); the kernel checks the lengths.
                    Isa::Avx512 => unsafe { avx512::$simd(plane, run, first, values, indices) },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the CPU supports AVX2 and FMA (as above); the kernel
                    // checks the lengths.
                    Isa::Avx2 => unsafe { avx2::$simd(plane, run, first, values, indices) },
                    _ => portable_stride2_max(plane, run, first, values, indices),
                }
            }
        }
    };
}
stride2_max_impl!(f32, LANES_F32, stride2_max_f32);
stride2_max_impl!(f64, LANES_F64, stride2_max_f64);

/// The integer types: a plain comparison (no NaN), and the stride-2 windows
/// through the generic chunk kernel, which the compiler vectorises.
macro_rules! int_max_impl {
    ($($t:ty),*) => {$(
        impl MaxElement for $t {
            const LOWEST: $t = <$t>::MIN;
            const MAX_LANES: usize = 16;

            #[inline(always)]
            fn beats(self, best: $t) -> bool {
                self > best
            }
        }
    )*};
}
int_max_impl!(i32, i64);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::Scalar;

    /// The SIMD stride-2 kernel against the plain scan, with ties, NaNs and -inf
    /// planted, every tap count and a dilated column step, with and without indices.
    fn check<T: MaxElement + Scalar>() {
        let (width, height) = (80usize, 5usize);
        let plane: Vec<T> = (0..width * height)
            .map(|i| match i % 23 {
                3 => T::nan(),
                7 | 8 => T::neg_infinity(),
                _ => T::from((i * 7 % 5) as f64 - 2.0).unwrap_or_else(T::zero),
            })
            .collect();
        let rows: Vec<usize> = (0..height - 1).map(|r| r * width + 1).collect();
        for (count, step) in [(1, 1), (2, 1), (3, 1), (3, 2)] {
            let run = Run {
                rows: &rows,
                first: 2,
                count,
                step,
            };
            for with_indices in [true, false] {
                let lanes = T::MAX_LANES;
                let mut fast = vec![MaybeUninit::new(T::zero()); lanes];
                let mut slow = fast.clone();
                let mut fast_at =
                    vec![MaybeUninit::new(-1i64); if with_indices { lanes } else { 0 }];
                let mut slow_at = fast_at.clone();
                T::stride2_max(&plane, &run, 3, &mut fast, &mut fast_at);
                portable_stride2_max(&plane, &run, 3, &mut slow, &mut slow_at);
                let read = |v: &[MaybeUninit<T>]| -> Vec<u64> {
                    v.iter()
                        .map(|x| {
                            // SAFETY: every element was initialised above.
                            unsafe { x.assume_init() }.to_f64().unwrap_or(0.0).to_bits()
                        })
                        .collect()
                };
                let read_at = |v: &[MaybeUninit<i64>]| -> Vec<i64> {
                    v.iter()
                        .map(|x| {
                            // SAFETY: as above.
                            unsafe { x.assume_init() }
                        })
                        .collect()
                };
                assert_eq!(
                    read(&fast),
                    read(&slow),
                    "values, count {count} step {step}"
                );
                assert_eq!(
                    read_at(&fast_at),
                    read_at(&slow_at),
                    "indices, count {count} step {step}"
                );
            }
        }
    }

    #[test]
    fn stride2_kernels_match_the_plain_scan_on_every_path() {
        for isa in crate::kernels::isa::tests::supported() {
            crate::kernels::isa::tests::on_path(isa, || {
                check::<f32>();
                check::<f64>();
            });
        }
    }
}
