//! Lane permutes of rows: the even cells of a stride-2 row (`out[r] = cells[2 r]`,
//! which the compiler leaves as scalar moves), the even/odd split and its inverse
//! interleave, and the four-way split and interleave of Winograd's 4-wide tiles.
//! The SIMD versions are written once over the `Lanes` trait (`super::lanes`); on
//! AVX-512 one two-register permute makes 16 (f32) or 8 (f64) outputs, with
//! masked loads and stores at the row's end; on AVX2 a shuffle and a lane
//! permute make 8 or 4.

#[cfg(target_arch = "x86_64")]
use super::isa::Isa;
#[cfg(target_arch = "x86_64")]
use super::lanes::Lanes;
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

// The SIMD permutes, each written once for any [`Lanes`] and instantiated per
// element type for AVX-512F in `avx512` and for AVX2 in `avx2` below. Every loop step moves one or two
// registers of outputs; the row's last step loads and stores only the lanes
// inside the slices (`load_first`/`store_first`), so nothing past a row's end is
// read or written.

/// [`Permute::copy_even`] over [`Lanes`].
///
/// # Safety
/// The CPU must support `V`'s instruction set, and `cells` must hold at least
/// `2 * out.len() - 1` elements.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn copy_even_body<V: Lanes>(cells: &[V::Elem], out: &mut [V::Elem]) {
    let mut i = 0;
    while i < out.len() {
        let outputs = (out.len() - i).min(V::LANES);
        let avail = (cells.len() - 2 * i).min(2 * V::LANES);
        let src = cells.as_ptr().wrapping_add(2 * i);
        // SAFETY: the loads take only cells inside `cells` (`avail` of them from
        // `2 * i`) and the store only outputs inside `out`.
        unsafe {
            let lo = V::load_first(src, avail);
            let hi = V::load_first(src.wrapping_add(V::LANES), avail.saturating_sub(V::LANES));
            V::store_first(out.as_mut_ptr().add(i), outputs, V::even(lo, hi));
        }
        i += V::LANES;
    }
}

/// [`Permute::split_even_odd`] over [`Lanes`].
///
/// # Safety
/// The CPU must support `V`'s instruction set, and `cells` must hold at least
/// `2 * evens.len() - 1` and `2 * odds.len()` elements.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn split_even_odd_body<V: Lanes>(
    cells: &[V::Elem],
    evens: &mut [V::Elem],
    odds: &mut [V::Elem],
) {
    let mut i = 0;
    while i < evens.len().max(odds.len()) {
        let avail = (cells.len() - 2 * i).min(2 * V::LANES);
        let src = cells.as_ptr().wrapping_add(2 * i);
        // SAFETY: the loads take only cells inside `cells` (`avail` of them from
        // `2 * i`) and the stores only outputs inside `evens` and `odds`.
        unsafe {
            let lo = V::load_first(src, avail);
            let hi = V::load_first(src.wrapping_add(V::LANES), avail.saturating_sub(V::LANES));
            let (e, o) = (V::even(lo, hi), V::odd(lo, hi));
            let (ne, no) = (evens.len().saturating_sub(i), odds.len().saturating_sub(i));
            V::store_first(evens.as_mut_ptr().wrapping_add(i), ne, e);
            V::store_first(odds.as_mut_ptr().wrapping_add(i), no, o);
        }
        i += V::LANES;
    }
}

/// [`Permute::interleave`] over [`Lanes`].
///
/// # Safety
/// The CPU must support `V`'s instruction set, `evens` must hold at least
/// `ceil(out.len() / 2)` and `odds` at least `floor(out.len() / 2)` elements.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn interleave_body<V: Lanes>(evens: &[V::Elem], odds: &[V::Elem], out: &mut [V::Elem]) {
    let mut k = 0;
    while 2 * k < out.len() {
        let (ne, no) = (evens.len().saturating_sub(k), odds.len().saturating_sub(k));
        let left = out.len() - 2 * k;
        // SAFETY: the loads take only values inside `evens` and `odds` and the
        // stores only outputs inside `out` (`left` of them from `2 * k`).
        unsafe {
            let e = V::load_first(evens.as_ptr().wrapping_add(k), ne);
            let o = V::load_first(odds.as_ptr().wrapping_add(k), no);
            let dst = out.as_mut_ptr().wrapping_add(2 * k);
            V::store_first(dst, left, V::interleave_low(e, o));
            V::store_first(
                dst.wrapping_add(V::LANES),
                left.saturating_sub(V::LANES),
                V::interleave_high(e, o),
            );
        }
        k += V::LANES;
    }
}

/// [`Permute::interleave4`] over [`Lanes`]: each step interleaves rows 0 and 2
/// and rows 1 and 3, then the two results, into four registers of outputs.
///
/// # Safety
/// The CPU must support `V`'s instruction set, and every row must hold at least
/// `ceil(out.len() / 4)` elements.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn interleave4_body<V: Lanes>(
    rows: [&[V::Elem]; 4],
    add: V::Elem,
    out: &mut [MaybeUninit<V::Elem>],
) {
    // SAFETY: a broadcast needs only the instruction set.
    let add = unsafe { V::splat(add) };
    let values = out.len().div_ceil(4);
    let mut t = 0;
    while t < values {
        let left = out.len() - 4 * t;
        // SAFETY: the loads take only values inside the rows (`values - t` of them
        // from `t`) and the stores only outputs inside `out` (`left` from `4 * t`).
        unsafe {
            let mut v = [add; 4];
            for (v, row) in v.iter_mut().zip(rows) {
                *v = V::add(V::load_first(row.as_ptr().wrapping_add(t), values - t), add);
            }
            // out = interleave(interleave(row 0, row 2), interleave(row 1, row 3)).
            let (p_lo, p_hi) = (
                V::interleave_low(v[0], v[2]),
                V::interleave_high(v[0], v[2]),
            );
            let (q_lo, q_hi) = (
                V::interleave_low(v[1], v[3]),
                V::interleave_high(v[1], v[3]),
            );
            let quads = [
                V::interleave_low(p_lo, q_lo),
                V::interleave_high(p_lo, q_lo),
                V::interleave_low(p_hi, q_hi),
                V::interleave_high(p_hi, q_hi),
            ];
            let dst = out.as_mut_ptr().wrapping_add(4 * t) as *mut V::Elem;
            for (k, quad) in quads.into_iter().enumerate() {
                let n = left.saturating_sub(V::LANES * k);
                V::store_first(dst.wrapping_add(V::LANES * k), n, quad);
            }
        }
        t += V::LANES;
    }
}

/// [`Permute::split4`] over [`Lanes`]: each step splits four registers of cells
/// into even and odd halves, then splits those again into the four phases.
///
/// # Safety
/// The CPU must support `V`'s instruction set, and `cells` must hold
/// `cells[4 * t + s]` for every `t < outs[s].len()`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn split4_body<V: Lanes>(cells: &[V::Elem], mut outs: [&mut [V::Elem]; 4]) {
    let most = outs.iter().map(|out| out.len()).max().unwrap_or(0);
    let mut t = 0;
    while t < most {
        let avail = cells.len() - 4 * t;
        // SAFETY: the loads take only cells inside `cells` (`avail` of them from
        // `4 * t`) and the stores only outputs inside each `outs[s]`.
        unsafe {
            let src = cells.as_ptr().wrapping_add(4 * t);
            let mut v = [V::zero(); 4];
            for (k, v) in v.iter_mut().enumerate() {
                let n = avail.saturating_sub(V::LANES * k);
                *v = V::load_first(src.wrapping_add(V::LANES * k), n);
            }
            let (e01, o01) = (V::even(v[0], v[1]), V::odd(v[0], v[1]));
            let (e23, o23) = (V::even(v[2], v[3]), V::odd(v[2], v[3]));
            let phases = [
                V::even(e01, e23),
                V::even(o01, o23),
                V::odd(e01, e23),
                V::odd(o01, o23),
            ];
            for (out, phase) in outs.iter_mut().zip(phases) {
                let n = out.len().saturating_sub(t);
                if n > 0 {
                    V::store_first(out.as_mut_ptr().wrapping_add(t), n, phase);
                }
            }
        }
        t += V::LANES;
    }
}

/// The five wrappers of one element type `$t` with lanes `$v`, compiled with
/// the target features `$features`.
#[cfg(target_arch = "x86_64")]
macro_rules! wrappers {
    ($features:literal, $v:ty, $t:ty, $copy_even:ident, $split:ident, $interleave:ident,
     $interleave4:ident, $split4:ident) => {
        /// # Safety
        /// The CPU must support the instruction set, and `cells` must hold at least
        /// `2 * out.len() - 1` elements.
        #[inline]
        #[target_feature(enable = $features)]
        pub unsafe fn $copy_even(cells: &[$t], out: &mut [$t]) {
            // SAFETY: the instruction set is enabled; the lengths are as promised above.
            unsafe { copy_even_body::<$v>(cells, out) }
        }

        /// # Safety
        /// The CPU must support the instruction set, and `cells` must hold at least
        /// `2 * evens.len() - 1` and `2 * odds.len()` elements.
        #[inline]
        #[target_feature(enable = $features)]
        pub unsafe fn $split(cells: &[$t], evens: &mut [$t], odds: &mut [$t]) {
            // SAFETY: the instruction set is enabled; the lengths are as promised above.
            unsafe { split_even_odd_body::<$v>(cells, evens, odds) }
        }

        /// # Safety
        /// The CPU must support the instruction set, `evens` must hold at least
        /// `ceil(out.len() / 2)` and `odds` at least `floor(out.len() / 2)`
        /// elements.
        #[inline]
        #[target_feature(enable = $features)]
        pub unsafe fn $interleave(evens: &[$t], odds: &[$t], out: &mut [$t]) {
            // SAFETY: the instruction set is enabled; the lengths are as promised above.
            unsafe { interleave_body::<$v>(evens, odds, out) }
        }

        /// # Safety
        /// The CPU must support the instruction set and every row must hold at
        /// least `ceil(out.len() / 4)` elements.
        #[inline]
        #[target_feature(enable = $features)]
        pub unsafe fn $interleave4(rows: [&[$t]; 4], add: $t, out: &mut [MaybeUninit<$t>]) {
            // SAFETY: the instruction set is enabled; the lengths are as promised above.
            unsafe { interleave4_body::<$v>(rows, add, out) }
        }

        /// # Safety
        /// The CPU must support the instruction set and `cells` must hold
        /// `cells[4 * t + s]` for every `t < outs[s].len()`.
        #[inline]
        #[target_feature(enable = $features)]
        pub unsafe fn $split4(cells: &[$t], outs: [&mut [$t]; 4]) {
            // SAFETY: the instruction set is enabled; the lengths are as promised above.
            unsafe { split4_body::<$v>(cells, outs) }
        }
    };
}

/// The permute bodies instantiated for AVX-512F, per element type.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{
        copy_even_body, interleave4_body, interleave_body, split4_body, split_even_odd_body,
    };
    use crate::kernels::lanes::avx512::{F32x16, F64x8};
    use std::mem::MaybeUninit;

    wrappers!(
        "avx512f",
        F32x16,
        f32,
        copy_even_f32,
        split_even_odd_f32,
        interleave_f32,
        interleave4_f32,
        split4_f32
    );
    wrappers!(
        "avx512f",
        F64x8,
        f64,
        copy_even_f64,
        split_even_odd_f64,
        interleave_f64,
        interleave4_f64,
        split4_f64
    );
}

/// The permute bodies instantiated for AVX2 and FMA, per element type.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{
        copy_even_body, interleave4_body, interleave_body, split4_body, split_even_odd_body,
    };
    use crate::kernels::lanes::avx2::{F32x8, F64x4};
    use std::mem::MaybeUninit;

    wrappers!(
        "avx2,fma",
        F32x8,
        f32,
        copy_even_f32,
        split_even_odd_f32,
        interleave_f32,
        interleave4_f32,
        split4_f32
    );
    wrappers!(
        "avx2,fma",
        F64x4,
        f64,
        copy_even_f64,
        split_even_odd_f64,
        interleave_f64,
        interleave4_f64,
        split4_f64
    );
}

macro_rules! permute_impl {
    ($t:ty, $simd:ident, $split:ident, $interleave:ident, $interleave4:ident, $split4:ident) => {
        impl Permute for $t {
            #[inline]
            fn copy_even(cells: &[$t], out: &mut [$t]) {
                check(cells.len(), out.len());
                match super::isa::active() {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the CPU supports AVX-512F (`active` never exceeds
                    // it) and the lengths were checked.
                    Isa::Avx512 => unsafe { avx512::$simd(cells, out) },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the CPU supports AVX2 and FMA (as above) and the
                    // lengths were checked.
                    Isa::Avx2 => unsafe { avx2::$simd(cells, out) },
                    _ => portable(cells, out),
                }
            }

            #[inline]
            fn split_even_odd(cells: &[$t], evens: &mut [$t], odds: &mut [$t]) {
                check_split(cells.len(), evens.len(), odds.len());
                match super::isa::active() {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the CPU supports AVX-512F (`active` never exceeds
                    // it) and the lengths were checked.
                    Isa::Avx512 => unsafe { avx512::$split(cells, evens, odds) },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the CPU supports AVX2 and FMA (as above) and the
                    // lengths were checked.
                    Isa::Avx2 => unsafe { avx2::$split(cells, evens, odds) },
                    _ => portable_split(cells, evens, odds),
                }
            }

            #[inline]
            fn interleave(evens: &[$t], odds: &[$t], out: &mut [$t]) {
                check_interleave(evens.len(), odds.len(), out.len());
                match super::isa::active() {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the CPU supports AVX-512F (`active` never exceeds
                    // it) and the lengths were checked.
                    Isa::Avx512 => unsafe { avx512::$interleave(evens, odds, out) },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the CPU supports AVX2 and FMA (as above) and the
                    // lengths were checked.
                    Isa::Avx2 => unsafe { avx2::$interleave(evens, odds, out) },
                    _ => portable_interleave(evens, odds, out),
                }
            }

            #[inline]
            fn interleave4(rows: [&[$t]; 4], add: $t, out: &mut [MaybeUninit<$t>]) {
                check_interleave4(&rows, out.len());
                match super::isa::active() {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the CPU supports AVX-512F (`active` never exceeds
                    // it) and the lengths were checked.
                    Isa::Avx512 => unsafe { avx512::$interleave4(rows, add, out) },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the CPU supports AVX2 and FMA (as above) and the
                    // lengths were checked.
                    Isa::Avx2 => unsafe { avx2::$interleave4(rows, add, out) },
                    _ => portable_interleave4(rows, add, out),
                }
            }

            #[inline]
            fn split4(cells: &[$t], outs: [&mut [$t]; 4]) {
                check_split4(cells.len(), &outs);
                match super::isa::active() {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the CPU supports AVX-512F (`active` never exceeds
                    // it) and the lengths were checked.
                    Isa::Avx512 => unsafe { avx512::$split4(cells, outs) },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the CPU supports AVX2 and FMA (as above) and the
                    // lengths were checked.
                    Isa::Avx2 => unsafe { avx2::$split4(cells, outs) },
                    _ => portable_split4(cells, outs),
                }
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

    /// `check` on every path this CPU supports.
    fn on_every_path(check: impl Fn()) {
        for isa in crate::kernels::isa::tests::supported() {
            crate::kernels::isa::tests::on_path(isa, &check);
        }
    }

    #[test]
    fn split4_takes_every_fourth_cell_and_stops_at_the_end() {
        on_every_path(|| {
            check_split4_type::<f32>();
            check_split4_type::<f64>();
        });
    }

    #[test]
    fn interleave4_puts_row_s_at_every_fourth_output_from_s() {
        on_every_path(|| {
            check_interleave4_type::<f32>();
            check_interleave4_type::<f64>();
        });
    }

    #[test]
    fn copy_even_takes_every_other_cell_and_stops_at_the_end() {
        on_every_path(|| {
            check_type::<f32>();
            check_type::<f64>();
        });
    }
}
