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
    ($t:ty, $simd:ident, $split:ident) => {
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
        }
    };
}
copy_even_impl!(f32, copy_even_f32, split_even_odd_f32);
copy_even_impl!(f64, copy_even_f64, split_even_odd_f64);

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
            }
        }
    }

    #[test]
    fn copy_even_takes_every_other_cell_and_stops_at_the_end() {
        check_type::<f32>();
        check_type::<f64>();
    }
}
