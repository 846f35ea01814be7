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
//! registers (4 + 1 more for the operands) and does 24 FMAs per 10 loads; with
//! AVX2 and FMA it runs as four `2 x 6` sub-blocks of half the lanes, each lane
//! sum the same FMA chain (so the sums equal the AVX-512 kernel's); elsewhere a
//! portable kernel computes the same lane sums with separate multiply and add.

use super::isa::{self, Isa};
#[cfg(target_arch = "x86_64")]
use super::lanes::Lanes;
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
    fn dot_block(len: usize, a: [&[Self]; DR], b: [&[Self]; DC], acc: &mut [Self]) {
        Self::dot_block_on(isa::active(), len, a, b, acc)
    }

    /// [`DotKernel::dot_block`] on the path `isa` (or the CPU's best, if it lacks
    /// `isa`), whatever the process-wide cap says: for tests comparing paths.
    fn dot_block_on(isa: Isa, len: usize, a: [&[Self]; DR], b: [&[Self]; DC], acc: &mut [Self]);
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

/// The SIMD dot-product block, written once for any [`Lanes`]: the `DR x DC`
/// lane sums stay in registers over the whole length, each step loading `DR + DC`
/// vectors and doing `DR * DC` FMAs; the last partial vector reads only the
/// positions below `len` (zeros in its other lanes add nothing).
///
/// # Safety
/// The CPU must support `V`'s instruction set; every `a[r]` and `b[c]` must be
/// readable for `len` elements and `acc` readable and writable for
/// `DR * DC * V::LANES`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn dot_body<V: Lanes>(
    len: usize,
    a: [*const V::Elem; DR],
    b: [*const V::Elem; DC],
    acc: *mut V::Elem,
) {
    // SAFETY: zeroing registers needs only the instruction set (the caller's
    // contract).
    let mut sums = [[unsafe { V::zero() }; DC]; DR];
    for (r, row) in sums.iter_mut().enumerate() {
        for (c, sum) in row.iter_mut().enumerate() {
            // SAFETY: (r * DC + c + 1) * LANES <= DR * DC * LANES (promised above).
            *sum = unsafe { V::load(acc.add((r * DC + c) * V::LANES)) };
        }
    }
    let whole = len / V::LANES;
    for i in 0..whole {
        // SAFETY: positions `i * LANES ..` up to `whole * LANES <= len`. Whole
        // vectors ask for all LANES lanes, a constant mask that compiles to a
        // plain load.
        unsafe { dot_step(&mut sums, &a, &b, i * V::LANES, V::LANES) };
    }
    let rest = len % V::LANES;
    if rest > 0 {
        // SAFETY: positions `whole * LANES .. len`.
        unsafe { dot_step(&mut sums, &a, &b, whole * V::LANES, rest) };
    }
    for (r, row) in sums.iter().enumerate() {
        for (c, sum) in row.iter().enumerate() {
            // SAFETY: as for the loads from `acc` above.
            unsafe { V::store(acc.add((r * DC + c) * V::LANES), *sum) };
        }
    }
}

/// One step of [`dot_body`]: the positions `offset .. offset + min(n, LANES)` of
/// every row, multiplied into the lane sums. A function rather than a closure
/// (which would not inherit the wrapper's `#[target_feature]` and would stay a
/// call).
///
/// # Safety
/// The CPU must support `V`'s instruction set, and every `a[r]` and `b[c]` must be
/// readable at the positions `offset .. offset + min(n, LANES)`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn dot_step<V: Lanes>(
    sums: &mut [[V; DC]; DR],
    a: &[*const V::Elem; DR],
    b: &[*const V::Elem; DC],
    offset: usize,
    n: usize,
) {
    // SAFETY: the positions read are those the caller promised are readable.
    unsafe {
        let mut av = [V::zero(); DR];
        for (v, &row) in av.iter_mut().zip(a) {
            *v = V::load_first(row.add(offset), n);
        }
        for (c, &row) in b.iter().enumerate() {
            let bv = V::load_first(row.add(offset), n);
            for r in 0..DR {
                sums[r][c] = V::mul_add(av[r], bv, sums[r][c]);
            }
        }
    }
}

/// The dot-product block for registers of half the accumulator's lanes (AVX2:
/// 16 registers, `LANES` 8 or 4 against 16 or 8 lane sums per dot product).
/// The `DR x DC` block would need 48 registers, so it runs as four sub-blocks:
/// for each half of the lane sums, for each pair of `a` rows, the pair's `DC`
/// lane sums (12 registers) stream over the positions of that half (`LANES` of
/// every `2 * LANES`), loading 2 + `DC` vectors for `2 * DC` FMAs per step. Each
/// lane sum adds the same products in the same order as [`dot_body`] with
/// registers of the accumulator's width, one FMA each.
///
/// # Safety
/// As [`dot_body`], with `acc` holding `2 * V::LANES` lane sums per dot product.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn dot_halves<V: Lanes>(
    len: usize,
    a: [*const V::Elem; DR],
    b: [*const V::Elem; DC],
    acc: *mut V::Elem,
) {
    let (lanes, wide) = (V::LANES, 2 * V::LANES);
    for half in 0..2 {
        for r0 in (0..DR).step_by(2) {
            let sum_at = |r: usize, c: usize| ((r0 + r) * DC + c) * wide + half * lanes;
            // SAFETY: zeroing registers needs only the instruction set; the
            // lane sums read lie inside `acc` (the caller's contract).
            let mut sums = unsafe { [[V::zero(); DC]; 2] };
            for (r, row) in sums.iter_mut().enumerate() {
                for (c, sum) in row.iter_mut().enumerate() {
                    // SAFETY: as above.
                    *sum = unsafe { V::load(acc.add(sum_at(r, c))) };
                }
            }
            let rows = [a[r0], a[r0 + 1]];
            let mut q = half * lanes;
            while q + lanes <= len {
                // SAFETY: positions `q .. q + LANES` lie below `len`.
                unsafe { dot_pair_step(&mut sums, rows, &b, q, lanes) };
                q += wide;
            }
            if q < len {
                // SAFETY: positions `q .. len`.
                unsafe { dot_pair_step(&mut sums, rows, &b, q, len - q) };
            }
            for (r, row) in sums.iter().enumerate() {
                for (c, sum) in row.iter().enumerate() {
                    // SAFETY: as for the loads from `acc` above.
                    unsafe { V::store(acc.add(sum_at(r, c)), *sum) };
                }
            }
        }
    }
}

/// One step of [`dot_halves`]: positions `offset .. offset + min(n, LANES)` of
/// two `a` rows and every `b` row into the pair's lane sums, streaming `b` one
/// register at a time.
///
/// # Safety
/// The CPU must support `V`'s instruction set, and the rows must be readable at
/// those positions.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn dot_pair_step<V: Lanes>(
    sums: &mut [[V; DC]; 2],
    a: [*const V::Elem; 2],
    b: &[*const V::Elem; DC],
    offset: usize,
    n: usize,
) {
    // SAFETY: the positions read are those the caller promised are readable.
    unsafe {
        let a0 = V::load_first(a[0].add(offset), n);
        let a1 = V::load_first(a[1].add(offset), n);
        for (c, &row) in b.iter().enumerate() {
            let bv = V::load_first(row.add(offset), n);
            sums[0][c] = V::mul_add(a0, bv, sums[0][c]);
            sums[1][c] = V::mul_add(a1, bv, sums[1][c]);
        }
    }
}

/// [`dot_halves`] instantiated for AVX2 and FMA, per element type.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{dot_halves, DC, DR};
    use crate::kernels::lanes::avx2::{F32x8, F64x4};
    use crate::kernels::lanes::Lanes;

    // The accumulator layout is the AVX-512 one on every path.
    const _: () = assert!(2 * F32x8::LANES == super::avx512::LANES_F32);
    const _: () = assert!(2 * F64x4::LANES == super::avx512::LANES_F64);

    /// # Safety
    /// The CPU must support AVX2 and FMA; every `a[r]` and `b[c]` must be
    /// readable for `len` elements and `acc` for `DR * DC * LANES_F32`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_f32(len: usize, a: [*const f32; DR], b: [*const f32; DC], acc: *mut f32) {
        // SAFETY: AVX2 and FMA are enabled and the lengths are those promised above.
        unsafe { dot_halves::<F32x8>(len, a, b, acc) }
    }

    /// # Safety
    /// As [`dot_f32`], with `acc` readable for `DR * DC * LANES_F64` elements.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_f64(len: usize, a: [*const f64; DR], b: [*const f64; DC], acc: *mut f64) {
        // SAFETY: as in `dot_f32`.
        unsafe { dot_halves::<F64x4>(len, a, b, acc) }
    }
}

/// [`dot_body`] instantiated for AVX-512F, per element type.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{dot_body, DC, DR};
    use crate::kernels::lanes::avx512::{F32x16, F64x8};
    use crate::kernels::lanes::Lanes;

    pub const LANES_F32: usize = F32x16::LANES;
    pub const LANES_F64: usize = F64x8::LANES;

    /// # Safety
    /// The CPU must support AVX-512F; every `a[r]` and `b[c]` must be readable for
    /// `len` elements and `acc` for `DR * DC * LANES_F32`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn dot_f32(len: usize, a: [*const f32; DR], b: [*const f32; DC], acc: *mut f32) {
        // SAFETY: AVX-512F is enabled and the lengths are those promised above.
        unsafe { dot_body::<F32x16>(len, a, b, acc) }
    }

    /// # Safety
    /// As [`dot_f32`], with `acc` readable for `DR * DC * LANES_F64` elements.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn dot_f64(len: usize, a: [*const f64; DR], b: [*const f64; DC], acc: *mut f64) {
        // SAFETY: as in `dot_f32`.
        unsafe { dot_body::<F64x8>(len, a, b, acc) }
    }
}

/// Lane sums per dot product: the AVX-512 register width, kept on other CPUs so
/// one accumulator layout serves both kernels.
#[cfg(target_arch = "x86_64")]
const LANES_F32: usize = avx512::LANES_F32;
#[cfg(not(target_arch = "x86_64"))]
const LANES_F32: usize = 16;
#[cfg(target_arch = "x86_64")]
const LANES_F64: usize = avx512::LANES_F64;
#[cfg(not(target_arch = "x86_64"))]
const LANES_F64: usize = 8;

/// [`DotKernel`] for one element type: the path `isa` resolves to.
macro_rules! dot_kernel_impl {
    ($t:ty, $lanes:ident, $simd:ident) => {
        impl DotKernel for $t {
            const LANES: usize = $lanes;

            fn dot_block_on(isa: Isa, len: usize, a: [&[$t]; DR], b: [&[$t]; DC], acc: &mut [$t]) {
                check(len, Self::LANES, &a, &b, acc);
                #[cfg(target_arch = "x86_64")]
                let (a_ptrs, b_ptrs) = (a.map(<[$t]>::as_ptr), b.map(<[$t]>::as_ptr));
                match isa::resolve(isa) {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the CPU supports AVX-512F (`resolve` never exceeds it)
                    // and the lengths were checked just above.
                    Isa::Avx512 => unsafe { avx512::$simd(len, a_ptrs, b_ptrs, acc.as_mut_ptr()) },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the CPU supports AVX2 and FMA (as above) and the
                    // lengths were checked just above.
                    Isa::Avx2 => unsafe { avx2::$simd(len, a_ptrs, b_ptrs, acc.as_mut_ptr()) },
                    _ => portable_dot::<$t, $lanes>(len, a, b, acc),
                }
            }
        }
    };
}
dot_kernel_impl!(f32, LANES_F32, dot_f32);
dot_kernel_impl!(f64, LANES_F64, dot_f64);

#[cfg(test)]
mod tests {
    use super::*;

    fn check_against_portable<T: DotKernel, const LANES: usize>(isa: Isa, tolerance: f64) {
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
            T::dot_block_on(isa, len, a, b, &mut fast);
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
    fn simd_dot_kernels_match_the_portable_one() {
        // Small integers: every product and sum is exact, FMA or not.
        for isa in crate::kernels::isa::tests::supported() {
            check_against_portable::<f32, 16>(isa, 0.0);
            check_against_portable::<f64, 8>(isa, 0.0);
        }
    }

    /// Inexact values: the FMA paths agree bit for bit (same lane sums, same
    /// order), the portable one to a rounding per product.
    fn check_paths_agree<T: DotKernel>() {
        let paths = crate::kernels::isa::tests::supported();
        for len in [3usize, 8, 21, 64, 203] {
            let row = |seed: usize| -> Vec<T> {
                (0..len)
                    .map(|p| T::from(((p * 37 + seed * 11) % 97) as f64 / 13.0 - 3.5).unwrap())
                    .collect()
            };
            let rows: Vec<Vec<T>> = (0..DR + DC).map(row).collect();
            let a: [&[T]; DR] = std::array::from_fn(|r| &rows[r][..]);
            let b: [&[T]; DC] = std::array::from_fn(|c| &rows[DR + c][..]);
            let start: Vec<T> = (0..dot_acc_len::<T>())
                .map(|i| T::from(i % 5).unwrap() / T::from(3).unwrap())
                .collect();
            let results: Vec<Vec<T>> = paths
                .iter()
                .map(|&isa| {
                    let mut acc = start.clone();
                    T::dot_block_on(isa, len, a, b, &mut acc);
                    acc
                })
                .collect();
            for (isa, got) in paths.iter().zip(&results) {
                if *isa != Isa::Portable {
                    assert!(*got == results[0], "{isa:?} len {len}");
                    continue;
                }
                let eps = T::epsilon().to_f64().unwrap();
                for (i, (x, y)) in got.iter().zip(&results[0]).enumerate() {
                    let (x, y) = (x.to_f64().unwrap(), y.to_f64().unwrap());
                    let bound = 64.0 * len as f64 * eps * (1.0 + y.abs() + 12.0 * len as f64);
                    assert!((x - y).abs() <= bound, "len {len} lane {i}: {x} vs {y}");
                }
            }
        }
    }

    #[test]
    fn fma_dot_kernels_agree_bit_for_bit() {
        check_paths_agree::<f32>();
        check_paths_agree::<f64>();
    }
}
