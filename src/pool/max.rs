//! The max-pooling kernel of one plane (strided, adaptive and global pooling all
//! use it with different window tables).
//!
//! PyTorch's rule, in scan order (row-major over the window): a cell replaces the
//! maximum when it is larger or NaN. So ties keep the first cell, a NaN always
//! wins (and a later NaN replaces an earlier one), and a window of -inf keeps its
//! first cell. Padded cells are never read, which is the same as -inf padding.
//!
//! Runs of full-width windows (the interior of strided pooling) are computed
//! `lanes` output columns at a time: every lane follows the same scan order, the
//! cells of one tap are read at a constant stride, and a lane remembers the offset
//! of its winning tap (one `u32` select per tap), so the compiler turns the chunk
//! into vector compares and blends. Border windows use the scalar scan.

use super::windows::Windows;
use crate::element::Element;
use crate::geometry::AxisWindow;
use crate::kernels::dispatch;
use std::mem::MaybeUninit;

/// Max of every window of `plane` into `values`, and the flat index (into the
/// plane) of each maximum into `indices` unless it is empty.
pub(crate) fn max_plane<T: Element>(
    windows: &Windows,
    plane: &[T],
    values: &mut [MaybeUninit<T>],
    indices: &mut [MaybeUninit<i64>],
) {
    dispatch!(
        max_plane_any,
        max_plane_avx512,
        windows,
        plane,
        values,
        indices
    )
}

/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn max_plane_avx512<T: Element>(
    windows: &Windows,
    plane: &[T],
    values: &mut [MaybeUninit<T>],
    indices: &mut [MaybeUninit<i64>],
) {
    max_plane_any(windows, plane, values, indices)
}

#[inline(always)]
fn max_plane_any<T: Element>(
    windows: &Windows,
    plane: &[T],
    values: &mut [MaybeUninit<T>],
    indices: &mut [MaybeUninit<i64>],
) {
    let out_w = windows.output[2];
    let step_w = windows.step[2];
    let row_windows = &windows.axes[2];
    // Winning taps are remembered as u32 offsets into the plane.
    let vectors = u32::try_from(plane.len()).is_ok();
    let (lanes, lo, hi) = windows.vector_run(vectors);
    let pitch = windows.pitch.unwrap_or(1);
    let mut rows = Vec::new();
    let mut out_start = 0;
    for wd in &windows.axes[0] {
        for wh in &windows.axes[1] {
            windows.row_starts(wd, wh, &mut rows);
            let out = &mut values[out_start..out_start + out_w];
            let at: &mut [MaybeUninit<i64>] = if indices.is_empty() {
                &mut []
            } else {
                &mut indices[out_start..out_start + out_w]
            };
            for ow in (0..lo).chain(hi..out_w) {
                let (best, best_at) = max_of_window(plane, &rows, &row_windows[ow], step_w);
                out[ow].write(best);
                if let Some(slot) = at.get_mut(ow) {
                    slot.write(best_at);
                }
            }
            for start in windows.interior_chunks(lanes) {
                let run = Run {
                    rows: &rows,
                    first: row_windows[start].first,
                    count: row_windows[start].count,
                    step: step_w,
                };
                let at = if at.is_empty() {
                    &mut []
                } else {
                    &mut at[start..start + lanes]
                };
                let out = &mut out[start..start + lanes];
                match (lanes, pitch) {
                    (16, 1) => run.max_chunk::<T, 16>(plane, 1, out, at),
                    (16, 2) => run.max_chunk::<T, 16>(plane, 2, out, at),
                    (16, p) => run.max_chunk::<T, 16>(plane, p, out, at),
                    (_, 1) => run.max_chunk::<T, 8>(plane, 1, out, at),
                    (_, 2) => run.max_chunk::<T, 8>(plane, 2, out, at),
                    (_, p) => run.max_chunk::<T, 8>(plane, p, out, at),
                }
            }
            out_start += out_w;
        }
    }
}

/// PyTorch's step, written as selects rather than a branch (random data would
/// mispredict it about once per window): the non-short-circuit `|` keeps the
/// compiler from branching on the first comparison.
#[inline(always)]
fn update<T: Element, I: Copy>(value: T, at: I, best: &mut T, best_at: &mut I) {
    let take = (value > *best) | value.is_nan();
    *best = if take { value } else { *best };
    *best_at = if take { at } else { *best_at };
}

/// Max of one window whose rows start at `rows` (plane indices of column 0).
fn max_of_window<T: Element>(
    plane: &[T],
    rows: &[usize],
    ww: &AxisWindow,
    step_w: usize,
) -> (T, i64) {
    let mut best = T::neg_infinity();
    // Plane indices fit i64: the plane is part of an allocated array.
    let mut best_at = (rows.first().copied().unwrap_or(0) + ww.first) as i64;
    for &row in rows {
        let start = row + ww.first;
        let cells = plane[start..].iter().step_by(step_w).take(ww.count);
        for (c, &value) in cells.enumerate() {
            update(value, (start + c * step_w) as i64, &mut best, &mut best_at);
        }
    }
    (best, best_at)
}

/// Full-width windows of one output row: `rows` as in [`max_of_window`], each
/// window `count` cells `step` apart from its first column.
pub struct Run<'a> {
    rows: &'a [usize],
    first: usize,
    count: usize,
    step: usize,
}

impl Run<'_> {
    /// `L` neighbouring windows, the `j`-th starting `j * pitch` columns after the
    /// first (`pitch` is a constant after inlining for the common strides).
    #[inline(always)]
    fn max_chunk<T: Element, const L: usize>(
        &self,
        plane: &[T],
        pitch: usize,
        values: &mut [MaybeUninit<T>],
        indices: &mut [MaybeUninit<i64>],
    ) {
        if pitch == 2 && L.is_multiple_of(T::MAX_LANES) && T::has_stride2_max() {
            let lanes = T::MAX_LANES;
            for part in 0..L / lanes {
                let at = if indices.is_empty() {
                    &mut []
                } else {
                    &mut indices[part * lanes..][..lanes]
                };
                let out = &mut values[part * lanes..][..lanes];
                T::stride2_max(plane, self, self.first + 2 * lanes * part, out, at);
            }
            return;
        }
        let span = (L - 1) * pitch + 1;
        let mut best = [T::neg_infinity(); L];
        // Offsets of the winning taps; the plane length fits u32 (checked by the
        // caller), so every offset does.
        let mut best_at = [self.rows.first().copied().unwrap_or(0) as u32; L];
        for &row in self.rows {
            for c in 0..self.count {
                let offset = row + c * self.step;
                let cells = &plane[offset + self.first..][..span];
                let tap = offset as u32;
                for j in 0..L {
                    update(cells[j * pitch], tap, &mut best[j], &mut best_at[j]);
                }
            }
        }
        for (slot, &value) in values.iter_mut().zip(&best) {
            slot.write(value);
        }
        if !indices.is_empty() {
            for (j, (slot, &at)) in indices.iter_mut().zip(&best_at).enumerate() {
                slot.write((at as usize + self.first + j * pitch) as i64);
            }
        }
    }
}

/// Max-pooling of windows two columns apart with AVX-512: each tap's cells are
/// one load pair and an even-lane permute, then one compare pair and two selects,
/// everything in registers from the first tap to the stores (the compiler's
/// version of the generic loop took about three times the instructions, keeping
/// the tap offsets in four registers).
pub trait Stride2Max: Sized + Copy {
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
fn portable_stride2_max<T: Element>(
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
                update(
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
                #[cfg(target_arch = "x86_64")]
                {
                    crate::kernels::microkernel::simd_kernel_in_use()
                }
                #[cfg(not(target_arch = "x86_64"))]
                {
                    false
                }
            }

            fn stride2_max(
                plane: &[$t],
                run: &Run<'_>,
                first: usize,
                values: &mut [MaybeUninit<$t>],
                indices: &mut [MaybeUninit<i64>],
            ) {
                #[cfg(target_arch = "x86_64")]
                if crate::kernels::microkernel::simd_kernel_in_use() {
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
    fn check<T: Element>() {
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
                // SAFETY: every element was initialised above.
                let read = |v: &[MaybeUninit<T>]| -> Vec<u64> {
                    v.iter()
                        .map(|x| unsafe { x.assume_init() }.to_f64().unwrap_or(0.0).to_bits())
                        .collect()
                };
                // SAFETY: as above.
                let read_at = |v: &[MaybeUninit<i64>]| -> Vec<i64> {
                    v.iter().map(|x| unsafe { x.assume_init() }).collect()
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
