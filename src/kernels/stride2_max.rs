//! The max-pooling kernel of windows two columns apart (the common 3x3 and 2x2
//! stride-2 layers), and the scan step every max-pooling kernel shares.
//!
//! PyTorch's rule, in scan order (row-major over the window): a cell replaces the
//! maximum when it is larger or NaN. So ties keep the first cell, a NaN always
//! wins (and a later NaN replaces an earlier one), and a window of -inf keeps its
//! first cell.

use super::scalar::Scalar;
use std::mem::MaybeUninit;

/// PyTorch's step, written as selects rather than a branch (random data would
/// mispredict it about once per window): the non-short-circuit `|` keeps the
/// compiler from branching on the first comparison.
#[inline(always)]
pub fn update_max<T: Scalar, I: Copy>(value: T, at: I, best: &mut T, best_at: &mut I) {
    let take = (value > *best) | value.is_nan();
    *best = if take { value } else { *best };
    *best_at = if take { at } else { *best_at };
}

/// Full-width windows of one output row: `rows` as in [`max_of_window`], each
/// window `count` cells `step` apart from its first column.
pub struct Run<'a> {
    pub rows: &'a [usize],
    pub first: usize,
    pub count: usize,
    pub step: usize,
}

/// Max-pooling of windows two columns apart with AVX-512: each tap's cells are
/// one load pair and an even-lane permute, then one compare pair and two selects,
/// everything in registers from the first tap to the stores (the compiler's
/// version of the generic loop took about three times the instructions, keeping
/// the tap offsets in four registers).
pub trait Stride2Max: Scalar {
    /// Windows per register.
    const MAX_LANES: usize;

    /// Whether [`Stride2Max::stride2_max`] has a SIMD kernel on this CPU.
    fn has_stride2_max() -> bool;

    /// The maxima of the `MAX_LANES` windows of `run` whose first columns are
    /// `first, first + 2, ...` into `values`, and their plane indices into
    /// `indices` unless it is empty (as `Run::max_chunk`).
    fn stride2_max(
        plane: &[Self],
        run: &Run<'_>,
        first: usize,
        values: &mut [MaybeUninit<Self>],
        indices: &mut [MaybeUninit<i64>],
    );
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::Run;
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn stride2_max_f32(
        plane: &[f32],
        run: &Run<'_>,
        first: usize,
        values: &mut [MaybeUninit<f32>],
        indices: &mut [MaybeUninit<i64>],
    ) {
        assert!(values.len() == 16 && (indices.is_empty() || indices.len() == 16));
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let mut best = _mm512_set1_ps(f32::NEG_INFINITY);
        let mut at = _mm512_set1_epi32(run.rows.first().copied().unwrap_or(0) as i32);
        for &row in run.rows {
            for c in 0..run.count {
                let offset = row + c * run.step;
                let cells = &plane[offset + first..][..31];
                // SAFETY: `cells` holds 31 elements: 16 from its start, 15 more.
                let v = unsafe {
                    let lo = _mm512_loadu_ps(cells.as_ptr());
                    let hi = _mm512_maskz_loadu_ps(0x7fff, cells.as_ptr().add(16));
                    _mm512_permutex2var_ps(lo, even, hi)
                };
                // PyTorch's step: take `v` if it is larger or NaN.
                let take = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, best)
                    | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
                best = _mm512_mask_blend_ps(take, best, v);
                at = _mm512_mask_blend_epi32(take, at, _mm512_set1_epi32(offset as i32));
            }
        }
        // SAFETY: `values` holds 16 elements, `indices` 16 when not empty.
        unsafe {
            _mm512_storeu_ps(values.as_mut_ptr().cast(), best);
            if !indices.is_empty() {
                // Plane index = tap offset + first + 2 * lane (offsets are u32).
                let base = _mm512_set1_epi64(first as i64);
                let lanes_lo = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
                let lanes_hi = _mm512_setr_epi64(16, 18, 20, 22, 24, 26, 28, 30);
                let lo = _mm512_cvtepu32_epi64(_mm512_castsi512_si256(at));
                let hi = _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64::<1>(at));
                let dst = indices.as_mut_ptr().cast::<i64>();
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

    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn stride2_max_f64(
        plane: &[f64],
        run: &Run<'_>,
        first: usize,
        values: &mut [MaybeUninit<f64>],
        indices: &mut [MaybeUninit<i64>],
    ) {
        assert!(values.len() == 8 && (indices.is_empty() || indices.len() == 8));
        let even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
        let mut best = _mm512_set1_pd(f64::NEG_INFINITY);
        // Tap offsets as i64 lanes, one per window.
        let mut at = _mm512_set1_epi64(run.rows.first().copied().unwrap_or(0) as i64);
        for &row in run.rows {
            for c in 0..run.count {
                let offset = row + c * run.step;
                let cells = &plane[offset + first..][..15];
                // SAFETY: `cells` holds 15 elements: 8 from its start, 7 more.
                let v = unsafe {
                    let lo = _mm512_loadu_pd(cells.as_ptr());
                    let hi = _mm512_maskz_loadu_pd(0x7f, cells.as_ptr().add(8));
                    _mm512_permutex2var_pd(lo, even, hi)
                };
                let take = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(v, best)
                    | _mm512_cmp_pd_mask::<_CMP_UNORD_Q>(v, v);
                best = _mm512_mask_blend_pd(take, best, v);
                at = _mm512_mask_blend_epi64(take, at, _mm512_set1_epi64(offset as i64));
            }
        }
        // SAFETY: `values` holds 8 elements, `indices` 8 when not empty.
        unsafe {
            _mm512_storeu_pd(values.as_mut_ptr().cast(), best);
            if !indices.is_empty() {
                let lanes = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
                let index =
                    _mm512_add_epi64(at, _mm512_add_epi64(_mm512_set1_epi64(first as i64), lanes));
                _mm512_storeu_si512(indices.as_mut_ptr().cast(), index);
            }
        }
    }
}

/// The scan of [`Stride2Max::stride2_max`] in plain Rust.
fn portable_stride2_max<T: Scalar>(
    plane: &[T],
    run: &Run<'_>,
    first: usize,
    values: &mut [MaybeUninit<T>],
    indices: &mut [MaybeUninit<i64>],
) {
    for (j, slot) in values.iter_mut().enumerate() {
        let mut best = T::neg_infinity();
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
        impl Stride2Max for $t {
            const MAX_LANES: usize = $lanes;

            fn has_stride2_max() -> bool {
                super::isa::avx512()
            }

            fn stride2_max(
                plane: &[$t],
                run: &Run<'_>,
                first: usize,
                values: &mut [MaybeUninit<$t>],
                indices: &mut [MaybeUninit<i64>],
            ) {
                #[cfg(target_arch = "x86_64")]
                if super::isa::avx512() {
                    // SAFETY: AVX-512F is available; the kernel checks the lengths.
                    unsafe { avx512::$simd(plane, run, first, values, indices) };
                    return;
                }
                portable_stride2_max(plane, run, first, values, indices)
            }
        }
    };
}
stride2_max_impl!(f32, 16, stride2_max_f32);
stride2_max_impl!(f64, 8, stride2_max_f64);

#[cfg(test)]
mod tests {
    use super::*;

    /// The SIMD stride-2 kernel against the plain scan, with ties, NaNs and -inf
    /// planted, every tap count and a dilated column step, with and without indices.
    fn check<T: Stride2Max>() {
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
    fn stride2_kernel_matches_the_plain_scan() {
        check::<f32>();
        check::<f64>();
    }
}
