//! `out[r] = cells[2 * r]`: the even cells of a stride-2 row, which the compiler
//! leaves as scalar moves; on AVX-512 one two-register permute makes 16 (f32) or
//! 8 (f64) outputs, with masked loads and stores at the row's end.

/// Copy the even cells of `cells` into `out` (`cells` must hold at least
/// `2 * out.len() - 1` elements).
pub trait CopyEven: Sized + Copy {
    fn copy_even(cells: &[Self], out: &mut [Self]);

    /// `evens[k] = cells[2 * k]` and `odds[k] = cells[2 * k + 1]` (`cells` must
    /// hold at least `2 * evens.len() - 1` and `2 * odds.len()` elements).
    fn split_even_odd(cells: &[Self], evens: &mut [Self], odds: &mut [Self]);

    /// The inverse of [`CopyEven::split_even_odd`]: `out[2 * k] = evens[k]` and
    /// `out[2 * k + 1] = odds[k]` for every `out` element (`evens` must hold at
    /// least `ceil(out.len() / 2)` and `odds` `floor(out.len() / 2)` elements).
    fn interleave(evens: &[Self], odds: &[Self], out: &mut [Self]);
}

fn check_interleave(evens: usize, odds: usize, out: usize) {
    assert!(
        evens >= out.div_ceil(2) && odds >= out / 2,
        "interleave: {evens} even and {odds} odd values cannot fill {out} outputs"
    );
}

fn portable_interleave<T: Copy>(evens: &[T], odds: &[T], out: &mut [T]) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = if i % 2 == 0 {
            evens[i / 2]
        } else {
            odds[i / 2]
        };
    }
}

fn check_split(cells: usize, evens: usize, odds: usize) {
    assert!(
        (evens == 0 || cells >= 2 * evens - 1) && cells >= 2 * odds,
        "split_even_odd: {cells} cells cannot fill {evens} even and {odds} odd outputs"
    );
}

fn portable_split<T: Copy>(cells: &[T], evens: &mut [T], odds: &mut [T]) {
    for (k, e) in evens.iter_mut().enumerate() {
        *e = cells[2 * k];
    }
    for (k, o) in odds.iter_mut().enumerate() {
        *o = cells[2 * k + 1];
    }
}

fn check(cells: usize, out: usize) {
    assert!(
        out == 0 || cells >= 2 * out - 1,
        "copy_even: {cells} cells cannot fill {out} outputs"
    );
}

fn portable<T: Copy>(cells: &[T], out: &mut [T]) {
    for (r, o) in out.iter_mut().enumerate() {
        *o = cells[2 * r];
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// Lanes `0 .. n` of a mask (`n <= 16`).
    fn mask16(n: usize) -> __mmask16 {
        ((1u32 << n.min(16)) - 1) as __mmask16
    }

    /// # Safety
    /// The CPU must support AVX-512F, and `cells` must hold at least
    /// `2 * out.len() - 1` elements.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn copy_even_f32(cells: &[f32], out: &mut [f32]) {
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let mut i = 0;
        while i < out.len() {
            let outputs = (out.len() - i).min(16);
            let avail = (cells.len() - 2 * i).min(32);
            let src = cells.as_ptr().wrapping_add(2 * i);
            // SAFETY: the masks enable only cells inside `cells` (`avail` of them
            // from `2 * i`) and outputs inside `out`; masked-off lanes are not read
            // or written.
            unsafe {
                let lo = _mm512_maskz_loadu_ps(mask16(avail), src);
                let hi =
                    _mm512_maskz_loadu_ps(mask16(avail.saturating_sub(16)), src.wrapping_add(16));
                let packed = _mm512_permutex2var_ps(lo, even, hi);
                _mm512_mask_storeu_ps(out.as_mut_ptr().add(i), mask16(outputs), packed);
            }
            i += 16;
        }
    }

    /// # Safety
    /// The CPU must support AVX-512F, and `cells` must hold at least
    /// `2 * evens.len() - 1` and `2 * odds.len()` elements.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn split_even_odd_f32(cells: &[f32], evens: &mut [f32], odds: &mut [f32]) {
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        let mut i = 0;
        while i < evens.len().max(odds.len()) {
            let avail = (cells.len() - 2 * i).min(32);
            let src = cells.as_ptr().wrapping_add(2 * i);
            // SAFETY: the masks enable only cells inside `cells` (`avail` of them
            // from `2 * i`) and outputs inside `evens` and `odds`.
            unsafe {
                let lo = _mm512_maskz_loadu_ps(mask16(avail), src);
                let hi =
                    _mm512_maskz_loadu_ps(mask16(avail.saturating_sub(16)), src.wrapping_add(16));
                let e = _mm512_permutex2var_ps(lo, even, hi);
                let o = _mm512_permutex2var_ps(lo, odd, hi);
                let (ne, no) = (evens.len().saturating_sub(i), odds.len().saturating_sub(i));
                _mm512_mask_storeu_ps(evens.as_mut_ptr().wrapping_add(i), mask16(ne), e);
                _mm512_mask_storeu_ps(odds.as_mut_ptr().wrapping_add(i), mask16(no), o);
            }
            i += 16;
        }
    }

    /// # Safety
    /// As [`split_even_odd_f32`].
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn split_even_odd_f64(cells: &[f64], evens: &mut [f64], odds: &mut [f64]) {
        let even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
        let odd = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);
        let mut i = 0;
        while i < evens.len().max(odds.len()) {
            let avail = (cells.len() - 2 * i).min(16);
            let src = cells.as_ptr().wrapping_add(2 * i);
            // SAFETY: as in `split_even_odd_f32`, with 8 lanes per register.
            unsafe {
                let lo = _mm512_maskz_loadu_pd(mask16(avail.min(8)) as __mmask8, src);
                let hi = _mm512_maskz_loadu_pd(
                    mask16(avail.saturating_sub(8)) as __mmask8,
                    src.wrapping_add(8),
                );
                let e = _mm512_permutex2var_pd(lo, even, hi);
                let o = _mm512_permutex2var_pd(lo, odd, hi);
                let (ne, no) = (evens.len().saturating_sub(i), odds.len().saturating_sub(i));
                _mm512_mask_storeu_pd(
                    evens.as_mut_ptr().wrapping_add(i),
                    mask16(ne.min(8)) as __mmask8,
                    e,
                );
                _mm512_mask_storeu_pd(
                    odds.as_mut_ptr().wrapping_add(i),
                    mask16(no.min(8)) as __mmask8,
                    o,
                );
            }
            i += 8;
        }
    }

    /// # Safety
    /// The CPU must support AVX-512F, `evens` must hold at least
    /// `ceil(out.len() / 2)` and `odds` at least `floor(out.len() / 2)` elements.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn interleave_f32(evens: &[f32], odds: &[f32], out: &mut [f32]) {
        let lo_index = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let hi_index =
            _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        let mut k = 0;
        while 2 * k < out.len() {
            let (ne, no) = (evens.len().saturating_sub(k), odds.len().saturating_sub(k));
            let left = out.len() - 2 * k;
            // SAFETY: the masks enable only values inside `evens` and `odds` and
            // outputs inside `out` (`left` of them from `2 * k`).
            unsafe {
                let e = _mm512_maskz_loadu_ps(mask16(ne), evens.as_ptr().wrapping_add(k));
                let o = _mm512_maskz_loadu_ps(mask16(no), odds.as_ptr().wrapping_add(k));
                let dst = out.as_mut_ptr().wrapping_add(2 * k);
                _mm512_mask_storeu_ps(dst, mask16(left), _mm512_permutex2var_ps(e, lo_index, o));
                _mm512_mask_storeu_ps(
                    dst.wrapping_add(16),
                    mask16(left.saturating_sub(16)),
                    _mm512_permutex2var_ps(e, hi_index, o),
                );
            }
            k += 16;
        }
    }

    /// # Safety
    /// As [`interleave_f32`].
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn interleave_f64(evens: &[f64], odds: &[f64], out: &mut [f64]) {
        let lo_index = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11);
        let hi_index = _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15);
        let mut k = 0;
        while 2 * k < out.len() {
            let (ne, no) = (evens.len().saturating_sub(k), odds.len().saturating_sub(k));
            let left = out.len() - 2 * k;
            // SAFETY: as in `interleave_f32`, with 8 lanes per register.
            unsafe {
                let e = _mm512_maskz_loadu_pd(
                    mask16(ne.min(8)) as __mmask8,
                    evens.as_ptr().wrapping_add(k),
                );
                let o = _mm512_maskz_loadu_pd(
                    mask16(no.min(8)) as __mmask8,
                    odds.as_ptr().wrapping_add(k),
                );
                let dst = out.as_mut_ptr().wrapping_add(2 * k);
                _mm512_mask_storeu_pd(
                    dst,
                    mask16(left.min(8)) as __mmask8,
                    _mm512_permutex2var_pd(e, lo_index, o),
                );
                _mm512_mask_storeu_pd(
                    dst.wrapping_add(8),
                    mask16(left.saturating_sub(8).min(8)) as __mmask8,
                    _mm512_permutex2var_pd(e, hi_index, o),
                );
            }
            k += 8;
        }
    }

    /// # Safety
    /// As [`copy_even_f32`].
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn copy_even_f64(cells: &[f64], out: &mut [f64]) {
        let even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
        let mut i = 0;
        while i < out.len() {
            let outputs = (out.len() - i).min(8);
            let avail = (cells.len() - 2 * i).min(16);
            let src = cells.as_ptr().wrapping_add(2 * i);
            // SAFETY: as in `copy_even_f32`, with 8 lanes per register.
            unsafe {
                let lo = _mm512_maskz_loadu_pd(mask16(avail.min(8)) as __mmask8, src);
                let hi = _mm512_maskz_loadu_pd(
                    mask16(avail.saturating_sub(8)) as __mmask8,
                    src.wrapping_add(8),
                );
                let packed = _mm512_permutex2var_pd(lo, even, hi);
                _mm512_mask_storeu_pd(out.as_mut_ptr().add(i), mask16(outputs) as __mmask8, packed);
            }
            i += 8;
        }
    }
}

macro_rules! copy_even_impl {
    ($t:ty, $simd:ident, $split:ident, $interleave:ident) => {
        impl CopyEven for $t {
            #[inline]
            fn copy_even(cells: &[$t], out: &mut [$t]) {
                check(cells.len(), out.len());
                #[cfg(target_arch = "x86_64")]
                if super::microkernel::simd_kernel_in_use() {
                    // SAFETY: AVX-512F is available and the lengths were checked.
                    unsafe { avx512::$simd(cells, out) };
                    return;
                }
                portable(cells, out)
            }

            #[inline]
            fn split_even_odd(cells: &[$t], evens: &mut [$t], odds: &mut [$t]) {
                check_split(cells.len(), evens.len(), odds.len());
                #[cfg(target_arch = "x86_64")]
                if super::microkernel::simd_kernel_in_use() {
                    // SAFETY: AVX-512F is available and the lengths were checked.
                    unsafe { avx512::$split(cells, evens, odds) };
                    return;
                }
                portable_split(cells, evens, odds)
            }

            #[inline]
            fn interleave(evens: &[$t], odds: &[$t], out: &mut [$t]) {
                check_interleave(evens.len(), odds.len(), out.len());
                #[cfg(target_arch = "x86_64")]
                if super::microkernel::simd_kernel_in_use() {
                    // SAFETY: AVX-512F is available and the lengths were checked.
                    unsafe { avx512::$interleave(evens, odds, out) };
                    return;
                }
                portable_interleave(evens, odds, out)
            }
        }
    };
}
copy_even_impl!(f32, copy_even_f32, split_even_odd_f32, interleave_f32);
copy_even_impl!(f64, copy_even_f64, split_even_odd_f64, interleave_f64);

#[cfg(test)]
mod tests {
    use super::*;

    fn check_type<T: CopyEven + From<u8> + PartialEq + std::fmt::Debug>() {
        for outputs in 0..40usize {
            for extra in [0usize, 1, 5] {
                let cells: Vec<T> = (0..(2 * outputs).saturating_sub(1) + extra)
                    .map(|i| T::from((i % 251) as u8))
                    .collect();
                let mut out: Vec<T> = (0..outputs + 3).map(|_| T::from(255)).collect();
                T::copy_even(&cells, &mut out[..outputs]);
                for r in 0..outputs {
                    assert_eq!(out[r], cells[2 * r], "output {r} of {outputs}");
                }
                assert!(
                    out[outputs..].iter().all(|&v| v == T::from(255)),
                    "wrote past the end"
                );
                // Splitting: as many odd outputs as the cells allow, or fewer.
                let odd_count = (cells.len() / 2).min(outputs);
                let mut evens: Vec<T> = (0..outputs + 2).map(|_| T::from(255)).collect();
                let mut odds: Vec<T> = (0..odd_count + 2).map(|_| T::from(255)).collect();
                T::split_even_odd(&cells, &mut evens[..outputs], &mut odds[..odd_count]);
                for r in 0..outputs {
                    assert_eq!(evens[r], cells[2 * r], "even {r} of {outputs}");
                }
                for r in 0..odd_count {
                    assert_eq!(odds[r], cells[2 * r + 1], "odd {r} of {odd_count}");
                }
                let rest = evens[outputs..].iter().chain(&odds[odd_count..]);
                assert!(
                    rest.copied().all(|v| v == T::from(255)),
                    "split past the end"
                );
                // Interleaving the halves back gives the cells.
                let n = (outputs + odd_count).min(cells.len());
                let mut back: Vec<T> = (0..n + 3).map(|_| T::from(255)).collect();
                T::interleave(&evens[..outputs], &odds[..odd_count], &mut back[..n]);
                assert_eq!(&back[..n], &cells[..n], "interleave of {n}");
                assert!(
                    back[n..].iter().all(|&v| v == T::from(255)),
                    "interleave past the end"
                );
            }
        }
    }

    #[test]
    fn copy_even_takes_every_other_cell_and_stops_at_the_end() {
        check_type::<f32>();
        check_type::<f64>();
    }
}
