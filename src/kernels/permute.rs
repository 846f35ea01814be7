//! Lane permutes of rows: the even cells of a stride-2 row (`out[r] = cells[2 r]`,
//! which the compiler leaves as scalar moves), the even/odd split and its inverse
//! interleave, and the four-way split and interleave of Winograd's 4-wide tiles.
//! On AVX-512 one two-register permute makes 16 (f32) or 8 (f64) outputs, with
//! masked loads and stores at the row's end.

use std::mem::MaybeUninit;

/// The row permutes of one element type.
pub trait Permute: Sized + Copy {
    /// Copy the even cells of `cells` into `out` (`cells` must hold at least
    /// `2 * out.len() - 1` elements).
    fn copy_even(cells: &[Self], out: &mut [Self]);

    /// `evens[k] = cells[2 * k]` and `odds[k] = cells[2 * k + 1]` (`cells` must
    /// hold at least `2 * evens.len() - 1` and `2 * odds.len()` elements).
    fn split_even_odd(cells: &[Self], evens: &mut [Self], odds: &mut [Self]);

    /// The inverse of [`Permute::split_even_odd`]: `out[2 * k] = evens[k]` and
    /// `out[2 * k + 1] = odds[k]` for every `out` element (`evens` must hold at
    /// least `ceil(out.len() / 2)` and `odds` `floor(out.len() / 2)` elements).
    fn interleave(evens: &[Self], odds: &[Self], out: &mut [Self]);

    /// `out[4 * t + s] = rows[s][t] + add` for every `out` element (every row must
    /// hold at least `ceil(out.len() / 4)` elements): two rounds of
    /// [`Permute::interleave`]'s permutes, straight into an uninitialised output.
    fn interleave4(rows: [&[Self]; 4], add: Self, out: &mut [MaybeUninit<Self>]);

    /// `outs[s][t] = cells[4 * t + s]` (`cells` must reach every such cell): the
    /// four phases of a stride-4 row, as two rounds of even/odd splits.
    fn split4(cells: &[Self], outs: [&mut [Self]; 4]);
}

fn check_split4<T>(cells: usize, outs: &[&mut [T]; 4]) {
    let needed = outs
        .iter()
        .enumerate()
        .map(|(s, out)| {
            if out.is_empty() {
                0
            } else {
                4 * (out.len() - 1) + s + 1
            }
        })
        .max()
        .unwrap_or(0);
    assert!(
        cells >= needed,
        "split4: {cells} cells cannot fill outputs that need {needed}"
    );
}

fn portable_split4<T: Copy>(cells: &[T], outs: [&mut [T]; 4]) {
    for (s, out) in outs.into_iter().enumerate() {
        for (t, o) in out.iter_mut().enumerate() {
            *o = cells[4 * t + s];
        }
    }
}

fn check_interleave4<T>(rows: &[&[T]; 4], out: usize) {
    assert!(
        rows.iter().all(|row| row.len() >= out.div_ceil(4)),
        "interleave4: rows too short for {out} outputs"
    );
}

fn portable_interleave4<T: Copy + std::ops::Add<Output = T>>(
    rows: [&[T]; 4],
    add: T,
    out: &mut [MaybeUninit<T>],
) {
    for (i, o) in out.iter_mut().enumerate() {
        o.write(rows[i % 4][i / 4] + add);
    }
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
    use std::mem::MaybeUninit;

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

    /// # Safety
    /// The CPU must support AVX-512F and every row must hold at least
    /// `ceil(out.len() / 4)` elements.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn interleave4_f32(rows: [&[f32]; 4], add: f32, out: &mut [MaybeUninit<f32>]) {
        let lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        let add = _mm512_set1_ps(add);
        let values = out.len().div_ceil(4);
        let mut t = 0;
        while t < values {
            let left = out.len() - 4 * t;
            // SAFETY: the masks enable only values inside the rows (`values - t` of
            // them from `t`) and outputs inside `out` (`left` from `4 * t`).
            unsafe {
                let v = rows.map(|row| {
                    let v = _mm512_maskz_loadu_ps(mask16(values - t), row.as_ptr().wrapping_add(t));
                    _mm512_add_ps(v, add)
                });
                // out = interleave(interleave(row 0, row 2), interleave(row 1, row 3)).
                let (p_lo, p_hi) = (
                    _mm512_permutex2var_ps(v[0], lo, v[2]),
                    _mm512_permutex2var_ps(v[0], hi, v[2]),
                );
                let (q_lo, q_hi) = (
                    _mm512_permutex2var_ps(v[1], lo, v[3]),
                    _mm512_permutex2var_ps(v[1], hi, v[3]),
                );
                let quads = [
                    _mm512_permutex2var_ps(p_lo, lo, q_lo),
                    _mm512_permutex2var_ps(p_lo, hi, q_lo),
                    _mm512_permutex2var_ps(p_hi, lo, q_hi),
                    _mm512_permutex2var_ps(p_hi, hi, q_hi),
                ];
                let dst = out.as_mut_ptr().wrapping_add(4 * t) as *mut f32;
                for (k, quad) in quads.into_iter().enumerate() {
                    let mask = mask16(left.saturating_sub(16 * k));
                    _mm512_mask_storeu_ps(dst.wrapping_add(16 * k), mask, quad);
                }
            }
            t += 16;
        }
    }

    /// # Safety
    /// As [`interleave4_f32`].
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn interleave4_f64(rows: [&[f64]; 4], add: f64, out: &mut [MaybeUninit<f64>]) {
        let lo = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11);
        let hi = _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15);
        let add = _mm512_set1_pd(add);
        let values = out.len().div_ceil(4);
        let mut t = 0;
        while t < values {
            let left = out.len() - 4 * t;
            // SAFETY: as in `interleave4_f32`, with 8 lanes per register.
            unsafe {
                let v = rows.map(|row| {
                    let mask = mask16((values - t).min(8)) as __mmask8;
                    let v = _mm512_maskz_loadu_pd(mask, row.as_ptr().wrapping_add(t));
                    _mm512_add_pd(v, add)
                });
                let (p_lo, p_hi) = (
                    _mm512_permutex2var_pd(v[0], lo, v[2]),
                    _mm512_permutex2var_pd(v[0], hi, v[2]),
                );
                let (q_lo, q_hi) = (
                    _mm512_permutex2var_pd(v[1], lo, v[3]),
                    _mm512_permutex2var_pd(v[1], hi, v[3]),
                );
                let quads = [
                    _mm512_permutex2var_pd(p_lo, lo, q_lo),
                    _mm512_permutex2var_pd(p_lo, hi, q_lo),
                    _mm512_permutex2var_pd(p_hi, lo, q_hi),
                    _mm512_permutex2var_pd(p_hi, hi, q_hi),
                ];
                let dst = out.as_mut_ptr().wrapping_add(4 * t) as *mut f64;
                for (k, quad) in quads.into_iter().enumerate() {
                    let mask = mask16(left.saturating_sub(8 * k).min(8)) as __mmask8;
                    _mm512_mask_storeu_pd(dst.wrapping_add(8 * k), mask, quad);
                }
            }
            t += 8;
        }
    }

    /// # Safety
    /// The CPU must support AVX-512F and `cells` must hold `cells[4 * t + s]` for
    /// every `t < outs[s].len()`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn split4_f32(cells: &[f32], mut outs: [&mut [f32]; 4]) {
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        let most = outs.iter().map(|out| out.len()).max().unwrap_or(0);
        let mut t = 0;
        while t < most {
            let avail = cells.len() - 4 * t;
            // SAFETY: the masks enable only cells inside `cells` (`avail` of them
            // from `4 * t`) and outputs inside each `outs[s]`.
            unsafe {
                let src = cells.as_ptr().wrapping_add(4 * t);
                let v: [__m512; 4] = std::array::from_fn(|k| {
                    let mask = mask16(avail.saturating_sub(16 * k));
                    _mm512_maskz_loadu_ps(mask, src.wrapping_add(16 * k))
                });
                let (e01, o01) = (
                    _mm512_permutex2var_ps(v[0], even, v[1]),
                    _mm512_permutex2var_ps(v[0], odd, v[1]),
                );
                let (e23, o23) = (
                    _mm512_permutex2var_ps(v[2], even, v[3]),
                    _mm512_permutex2var_ps(v[2], odd, v[3]),
                );
                let phases = [
                    _mm512_permutex2var_ps(e01, even, e23),
                    _mm512_permutex2var_ps(o01, even, o23),
                    _mm512_permutex2var_ps(e01, odd, e23),
                    _mm512_permutex2var_ps(o01, odd, o23),
                ];
                for (out, phase) in outs.iter_mut().zip(phases) {
                    let mask = mask16(out.len().saturating_sub(t));
                    if mask != 0 {
                        _mm512_mask_storeu_ps(out.as_mut_ptr().wrapping_add(t), mask, phase);
                    }
                }
            }
            t += 16;
        }
    }

    /// # Safety
    /// As [`split4_f32`].
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn split4_f64(cells: &[f64], mut outs: [&mut [f64]; 4]) {
        let even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
        let odd = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);
        let most = outs.iter().map(|out| out.len()).max().unwrap_or(0);
        let mut t = 0;
        while t < most {
            let avail = cells.len() - 4 * t;
            // SAFETY: as in `split4_f32`, with 8 lanes per register.
            unsafe {
                let src = cells.as_ptr().wrapping_add(4 * t);
                let v: [__m512d; 4] = std::array::from_fn(|k| {
                    let mask = mask16(avail.saturating_sub(8 * k).min(8)) as __mmask8;
                    _mm512_maskz_loadu_pd(mask, src.wrapping_add(8 * k))
                });
                let (e01, o01) = (
                    _mm512_permutex2var_pd(v[0], even, v[1]),
                    _mm512_permutex2var_pd(v[0], odd, v[1]),
                );
                let (e23, o23) = (
                    _mm512_permutex2var_pd(v[2], even, v[3]),
                    _mm512_permutex2var_pd(v[2], odd, v[3]),
                );
                let phases = [
                    _mm512_permutex2var_pd(e01, even, e23),
                    _mm512_permutex2var_pd(o01, even, o23),
                    _mm512_permutex2var_pd(e01, odd, e23),
                    _mm512_permutex2var_pd(o01, odd, o23),
                ];
                for (out, phase) in outs.iter_mut().zip(phases) {
                    let mask = mask16(out.len().saturating_sub(t).min(8)) as __mmask8;
                    if mask != 0 {
                        _mm512_mask_storeu_pd(out.as_mut_ptr().wrapping_add(t), mask, phase);
                    }
                }
            }
            t += 8;
        }
    }
}

macro_rules! permute_impl {
    ($t:ty, $simd:ident, $split:ident, $interleave:ident, $interleave4:ident, $split4:ident) => {
        impl Permute for $t {
            #[inline]
            fn copy_even(cells: &[$t], out: &mut [$t]) {
                check(cells.len(), out.len());
                #[cfg(target_arch = "x86_64")]
                if super::isa::avx512() {
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
                if super::isa::avx512() {
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
                if super::isa::avx512() {
                    // SAFETY: AVX-512F is available and the lengths were checked.
                    unsafe { avx512::$interleave(evens, odds, out) };
                    return;
                }
                portable_interleave(evens, odds, out)
            }

            #[inline]
            fn interleave4(rows: [&[$t]; 4], add: $t, out: &mut [MaybeUninit<$t>]) {
                check_interleave4(&rows, out.len());
                #[cfg(target_arch = "x86_64")]
                if super::isa::avx512() {
                    // SAFETY: AVX-512F is available and the lengths were checked.
                    unsafe { avx512::$interleave4(rows, add, out) };
                    return;
                }
                portable_interleave4(rows, add, out)
            }

            #[inline]
            fn split4(cells: &[$t], outs: [&mut [$t]; 4]) {
                check_split4(cells.len(), &outs);
                #[cfg(target_arch = "x86_64")]
                if super::isa::avx512() {
                    // SAFETY: AVX-512F is available and the lengths were checked.
                    unsafe { avx512::$split4(cells, outs) };
                    return;
                }
                portable_split4(cells, outs)
            }
        }
    };
}
permute_impl!(
    f32,
    copy_even_f32,
    split_even_odd_f32,
    interleave_f32,
    interleave4_f32,
    split4_f32
);
permute_impl!(
    f64,
    copy_even_f64,
    split_even_odd_f64,
    interleave_f64,
    interleave4_f64,
    split4_f64
);

#[cfg(test)]
mod tests {
    use super::*;

    fn check_type<T: Permute + From<u8> + PartialEq + std::fmt::Debug>() {
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

    fn check_interleave4_type<T>()
    where
        T: Permute + From<u8> + PartialEq + std::fmt::Debug + std::ops::Add<Output = T>,
    {
        for outputs in 0..80usize {
            let values = outputs.div_ceil(4);
            let rows: Vec<Vec<T>> = (0..4)
                .map(|s| {
                    (0..values + s)
                        .map(|t| T::from((t * 4 + s) as u8))
                        .collect()
                })
                .collect();
            let rows: [&[T]; 4] = std::array::from_fn(|s| &rows[s][..]);
            let mut out = vec![MaybeUninit::new(T::from(255)); outputs + 5];
            T::interleave4(rows, T::from(1), &mut out[..outputs]);
            let mut want = vec![MaybeUninit::new(T::from(255)); outputs + 5];
            portable_interleave4(rows, T::from(1), &mut want[..outputs]);
            for (i, (o, w)) in out.iter().zip(&want).enumerate() {
                // SAFETY: both buffers were initialised in full above.
                let (o, w) = unsafe { (o.assume_init(), w.assume_init()) };
                let expected = if i < outputs {
                    T::from(i as u8 + 1)
                } else {
                    T::from(255)
                };
                assert_eq!((o, w), (expected, expected), "element {i} of {outputs}");
            }
        }
    }

    fn check_split4_type<T: Permute + From<u8> + PartialEq + std::fmt::Debug>() {
        for cells_len in 0..90usize {
            let cells: Vec<T> = (0..cells_len).map(|i| T::from(i as u8)).collect();
            // Every phase as long as the cells allow, then each one shorter.
            let full: [usize; 4] = std::array::from_fn(|s| cells_len.saturating_sub(s).div_ceil(4));
            for shorten in 0..5 {
                let lens: [usize; 4] =
                    std::array::from_fn(|s| if s == shorten { full[s] / 2 } else { full[s] });
                let mut bufs: Vec<Vec<T>> =
                    lens.iter().map(|&n| vec![T::from(255); n + 3]).collect();
                let [a, b, c, d] = &mut bufs[..] else {
                    unreachable!()
                };
                let outs = [
                    &mut a[..lens[0]],
                    &mut b[..lens[1]],
                    &mut c[..lens[2]],
                    &mut d[..lens[3]],
                ];
                T::split4(&cells, outs);
                for (s, buf) in bufs.iter().enumerate() {
                    for (t, &v) in buf.iter().enumerate() {
                        let want = if t < lens[s] {
                            cells[4 * t + s]
                        } else {
                            T::from(255)
                        };
                        assert_eq!(v, want, "phase {s} value {t} of {cells_len} cells");
                    }
                }
            }
        }
    }

    #[test]
    fn split4_takes_every_fourth_cell_and_stops_at_the_end() {
        check_split4_type::<f32>();
        check_split4_type::<f64>();
    }

    #[test]
    fn interleave4_puts_row_s_at_every_fourth_output_from_s() {
        check_interleave4_type::<f32>();
        check_interleave4_type::<f64>();
    }

    #[test]
    fn copy_even_takes_every_other_cell_and_stops_at_the_end() {
        check_type::<f32>();
        check_type::<f64>();
    }
}
