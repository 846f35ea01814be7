//! The dot-product micro-kernel of backward-weight: `DR x DC` long dot products
//! between rows of `grad_out` (one output channel each) and rows of the column
//! matrix (one tap each), both contiguous over output positions, so neither
//! operand is packed or transposed.
//!
//! Sums are kept per lane (`LANES` partial sums per dot product, lane `l` holding
//! positions `p` with `p % LANES == l` of each call) in an accumulator the caller
//! owns between calls, and reduced once at the end: a fixed order for a fixed
//! tiling, whatever the thread count.
//!
//! On x86-64 with AVX-512F the `4 x 6` block keeps its 24 vector accumulators in
//! registers (4 + 1 more for the operands) and does 24 FMAs per 10 loads; elsewhere
//! a portable kernel computes the same lane sums with separate multiply and add.

use super::scalar::Scalar;

/// Rows of `grad_out` (output channels) per block.
pub const DR: usize = 4;
/// Rows of the column matrix (taps) per block.
pub const DC: usize = 6;

/// A dot-product kernel for one element type.
pub trait DotKernel: Scalar {
    /// Partial sums per dot product (the SIMD width).
    const LANES: usize;

    /// `acc[(r * DC + c) * LANES + l] += sum a[r][p] * b[c][p]` over the positions
    /// `p < len` with `p % LANES == l`.
    fn dot_block(len: usize, a: [&[Self]; DR], b: [&[Self]; DC], acc: &mut [Self]);
}

/// Elements of one block's accumulator.
pub fn dot_acc_len<T: DotKernel>() -> usize {
    DR * DC * T::LANES
}

fn check<T>(len: usize, lanes: usize, a: &[&[T]; DR], b: &[&[T]; DC], acc: &[T]) {
    let short = a.iter().chain(b).any(|row| row.len() < len);
    assert!(
        !short && acc.len() >= DR * DC * lanes,
        "dot kernel operands too short for len {len}"
    );
}

/// The kernel in plain Rust (CPUs without AVX-512, and the reference of the tests).
pub fn portable_dot<T: Scalar, const LANES: usize>(
    len: usize,
    a: [&[T]; DR],
    b: [&[T]; DC],
    acc: &mut [T],
) {
    check(len, LANES, &a, &b, acc);
    for (r, a_row) in a.iter().enumerate() {
        for (c, b_row) in b.iter().enumerate() {
            let lanes = &mut acc[(r * DC + c) * LANES..][..LANES];
            for (p, (&x, &y)) in a_row[..len].iter().zip(&b_row[..len]).enumerate() {
                lanes[p % LANES] += x * y;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{DC, DR};
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must support AVX-512F; every `a[r]` and `b[c]` must be readable for
    /// `len` elements and `acc` for `DR * DC * 16`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn dot_f32(len: usize, a: [*const f32; DR], b: [*const f32; DC], acc: *mut f32) {
        let mut sums = [[_mm512_setzero_ps(); DC]; DR];
        for (r, row) in sums.iter_mut().enumerate() {
            for (c, sum) in row.iter_mut().enumerate() {
                // SAFETY: (r * DC + c) * 16 + 16 <= DR * DC * 16 (promised above).
                *sum = unsafe { _mm512_loadu_ps(acc.add((r * DC + c) * 16)) };
            }
        }
        // Full vectors use an all-ones mask (as fast as a plain load).
        let mut step = |offset: usize, mask: __mmask16| {
            // SAFETY: the caller's mask covers only positions below `len`.
            let load = |row: *const f32| unsafe { _mm512_maskz_loadu_ps(mask, row.add(offset)) };
            let av = a.map(load);
            for (c, &row) in b.iter().enumerate() {
                let bv = load(row);
                for r in 0..DR {
                    sums[r][c] = _mm512_fmadd_ps(av[r], bv, sums[r][c]);
                }
            }
        };
        let whole = len / 16;
        for i in 0..whole {
            step(i * 16, u16::MAX);
        }
        let rest = len % 16;
        if rest > 0 {
            step(whole * 16, (1_u16 << rest) - 1);
        }
        for (r, row) in sums.iter().enumerate() {
            for (c, sum) in row.iter().enumerate() {
                // SAFETY: as for the loads above.
                unsafe { _mm512_storeu_ps(acc.add((r * DC + c) * 16), *sum) };
            }
        }
    }

    /// # Safety
    /// As [`dot_f32`], with `acc` readable for `DR * DC * 8` elements.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn dot_f64(len: usize, a: [*const f64; DR], b: [*const f64; DC], acc: *mut f64) {
        let mut sums = [[_mm512_setzero_pd(); DC]; DR];
        for (r, row) in sums.iter_mut().enumerate() {
            for (c, sum) in row.iter_mut().enumerate() {
                // SAFETY: (r * DC + c) * 8 + 8 <= DR * DC * 8 (promised above).
                *sum = unsafe { _mm512_loadu_pd(acc.add((r * DC + c) * 8)) };
            }
        }
        // Full vectors use an all-ones mask (as fast as a plain load).
        let mut step = |offset: usize, mask: __mmask8| {
            // SAFETY: the caller's mask covers only positions below `len`.
            let load = |row: *const f64| unsafe { _mm512_maskz_loadu_pd(mask, row.add(offset)) };
            let av = a.map(load);
            for (c, &row) in b.iter().enumerate() {
                let bv = load(row);
                for r in 0..DR {
                    sums[r][c] = _mm512_fmadd_pd(av[r], bv, sums[r][c]);
                }
            }
        };
        let whole = len / 8;
        for i in 0..whole {
            step(i * 8, u8::MAX);
        }
        let rest = len % 8;
        if rest > 0 {
            step(whole * 8, (1_u8 << rest) - 1);
        }
        for (r, row) in sums.iter().enumerate() {
            for (c, sum) in row.iter().enumerate() {
                // SAFETY: as for the loads above.
                unsafe { _mm512_storeu_pd(acc.add((r * DC + c) * 8), *sum) };
            }
        }
    }
}

impl DotKernel for f32 {
    const LANES: usize = 16;

    fn dot_block(len: usize, a: [&[f32]; DR], b: [&[f32]; DC], acc: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if super::isa::avx512() {
            check(len, Self::LANES, &a, &b, acc);
            // SAFETY: AVX-512F was detected and the lengths were checked just above.
            unsafe {
                avx512::dot_f32(
                    len,
                    a.map(<[f32]>::as_ptr),
                    b.map(<[f32]>::as_ptr),
                    acc.as_mut_ptr(),
                )
            };
            return;
        }
        portable_dot::<f32, 16>(len, a, b, acc)
    }
}

impl DotKernel for f64 {
    const LANES: usize = 8;

    fn dot_block(len: usize, a: [&[f64]; DR], b: [&[f64]; DC], acc: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if super::isa::avx512() {
            check(len, Self::LANES, &a, &b, acc);
            // SAFETY: AVX-512F was detected and the lengths were checked just above.
            unsafe {
                avx512::dot_f64(
                    len,
                    a.map(<[f64]>::as_ptr),
                    b.map(<[f64]>::as_ptr),
                    acc.as_mut_ptr(),
                )
            };
            return;
        }
        portable_dot::<f64, 8>(len, a, b, acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_against_portable<T: DotKernel, const LANES: usize>(tolerance: f64) {
        for len in [0usize, 1, 7, 16, 37, 100] {
            let rows = |seed: usize| -> Vec<Vec<T>> {
                (0..DC)
                    .map(|r| {
                        (0..len)
                            .map(|p| T::from(((p * 7 + r * 3 + seed) % 11) as f64 - 5.0).unwrap())
                            .collect()
                    })
                    .collect()
            };
            let (a_rows, b_rows) = (rows(1), rows(4));
            let a: [&[T]; DR] = std::array::from_fn(|r| &a_rows[r][..]);
            let b: [&[T]; DC] = std::array::from_fn(|c| &b_rows[c][..]);
            let start: Vec<T> = (0..DR * DC * LANES)
                .map(|i| T::from(i % 3).unwrap())
                .collect();
            let (mut fast, mut slow) = (start.clone(), start.clone());
            T::dot_block(len, a, b, &mut fast);
            portable_dot::<T, LANES>(len, a, b, &mut slow);
            for (i, (f, s)) in fast.iter().zip(&slow).enumerate() {
                let (f, s) = (f.to_f64().unwrap(), s.to_f64().unwrap());
                assert!(
                    (f - s).abs() <= tolerance,
                    "len {len} element {i}: {f} vs {s}"
                );
            }
            // The lane sums add up to the plain dot products.
            for r in 0..DR {
                for c in 0..DC {
                    let lanes = &slow[(r * DC + c) * LANES..][..LANES];
                    let got: f64 = lanes.iter().map(|v| v.to_f64().unwrap()).sum::<f64>()
                        - start[(r * DC + c) * LANES..][..LANES]
                            .iter()
                            .map(|v| v.to_f64().unwrap())
                            .sum::<f64>();
                    let want: f64 = (0..len)
                        .map(|p| a[r][p].to_f64().unwrap() * b[c][p].to_f64().unwrap())
                        .sum();
                    assert_eq!(got, want, "len {len} block ({r}, {c})");
                }
            }
        }
    }

    #[test]
    fn simd_dot_kernel_matches_the_portable_one() {
        // Small integers: every product and sum is exact, FMA or not.
        check_against_portable::<f32, 16>(0.0);
        check_against_portable::<f64, 8>(0.0);
    }
}
