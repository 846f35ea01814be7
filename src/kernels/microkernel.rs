//! The register-blocked GEMM micro-kernel: `acc (MR x NR) = A_panel . B_panel` over
//! packed panels, summing over `k` in order (so the result of an element never
//! depends on how the problem was tiled or threaded).
//!
//! Packed layouts (see [`super::pack`]):
//! - an A panel holds `MR` rows: element `(r, p)` at `p * MR + r`;
//! - a B panel holds `NR` columns: element `(p, j)` at `p * ldb + j` (`ldb == NR`
//!   for a packed panel; a row-major matrix of `ldb`-long rows is read in place).
//!
//! On x86-64 with AVX-512F the kernel keeps the `8 x 48` (f32) or `8 x 24` (f64)
//! accumulator block in 24 zmm registers and does 24 FMAs per step of `k`; elsewhere
//! a portable kernel computes the same sums (with separate multiply and add, so its
//! last bits differ from the FMA kernel; one machine always uses the same kernel).

use super::scalar::Scalar;

/// Rows of an A panel (output channels per micro-tile).
pub const MR: usize = 8;

/// Lanes of the widest vector register the kernel uses, per element type.
pub trait MicroKernel: Scalar {
    /// Columns of a B panel (output positions per micro-tile).
    const NR: usize;

    /// `acc[r * NR + j] = sum_p a[p * MR + r] * b[p * ldb + j]` for `p < k`.
    fn kernel(k: usize, a: &[Self], b: &[Self], ldb: usize, acc: &mut [Self]);

    /// `acc[r * NR + j] = sum_p a[p * MR + r] * b[rows[p] + j]` for `p < k`: B's
    /// rows are read wherever `rows` says (an implicit GEMM's input taps).
    fn kernel_indirect(k: usize, a: &[Self], b: &[Self], rows: &RowTable, acc: &mut [Self]);
}

/// Where each row of an indirect GEMM's B starts, with the largest offset kept
/// alongside so a kernel call checks its bounds in O(1).
pub struct RowTable {
    rows: Vec<usize>,
    last: usize,
}

impl RowTable {
    pub fn new(rows: Vec<usize>) -> Self {
        let last = rows.iter().copied().max().unwrap_or(0);
        RowTable { rows, last }
    }

    pub fn rows(&self) -> &[usize] {
        &self.rows
    }
}

fn check_indirect<T>(k: usize, nr: usize, a: &[T], b: &[T], rows: &RowTable, acc: &[T]) {
    assert!(
        a.len() >= k * MR
            && acc.len() >= MR * nr
            && rows.rows.len() >= k
            && (k == 0 || rows.last.saturating_add(nr) <= b.len()),
        "indirect micro-kernel buffers too short: k={k}, a={}, b={}, rows={}, acc={}",
        a.len(),
        b.len(),
        rows.rows.len(),
        acc.len()
    );
}

fn check_lengths<T>(k: usize, nr: usize, a: &[T], b: &[T], ldb: usize, acc: &[T]) {
    let b_len = if k == 0 { 0 } else { (k - 1) * ldb + nr };
    assert!(
        a.len() >= k * MR && b.len() >= b_len && ldb >= nr && acc.len() >= MR * nr,
        "micro-kernel buffers too short: k={k}, a={}, b={}, acc={}",
        a.len(),
        b.len(),
        acc.len()
    );
}

/// The kernel in plain Rust, for CPUs without AVX-512 (and as the reference the
/// SIMD kernel is tested against).
pub fn portable_kernel<T: Scalar, const NR: usize>(
    k: usize,
    a: &[T],
    b: &[T],
    ldb: usize,
    acc: &mut [T],
) {
    check_lengths(k, NR, a, b, ldb, acc);
    let mut block = [[T::zero(); NR]; MR];
    let b_steps = (0..k).map(|p| &b[p * ldb..p * ldb + NR]);
    for (a_step, b_step) in a.chunks_exact(MR).zip(b_steps) {
        for (row, &a_value) in block.iter_mut().zip(a_step) {
            for (c, &b_value) in row.iter_mut().zip(b_step) {
                *c += a_value * b_value;
            }
        }
    }
    for (dst, row) in acc.chunks_exact_mut(NR).zip(&block) {
        dst.copy_from_slice(row);
    }
}

/// [`MicroKernel::kernel_indirect`] in plain Rust (same order of sums as
/// [`portable_kernel`]).
pub fn portable_kernel_indirect<T: Scalar, const NR: usize>(
    k: usize,
    a: &[T],
    b: &[T],
    rows: &RowTable,
    acc: &mut [T],
) {
    check_indirect(k, NR, a, b, rows, acc);
    let mut block = [[T::zero(); NR]; MR];
    let b_steps = rows.rows[..k].iter().map(|&at| &b[at..at + NR]);
    for (a_step, b_step) in a.chunks_exact(MR).zip(b_steps) {
        for (row, &a_value) in block.iter_mut().zip(a_step) {
            for (c, &b_value) in row.iter_mut().zip(b_step) {
                *c += a_value * b_value;
            }
        }
    }
    for (dst, row) in acc.chunks_exact_mut(NR).zip(&block) {
        dst.copy_from_slice(row);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::MR;
    use std::arch::x86_64::*;

    pub const NR_F32: usize = 48;
    pub const NR_F64: usize = 24;

    /// # Safety
    /// The CPU must support AVX-512F; `a` and `acc` must hold at least `k * MR`
    /// and `MR * NR_F32` elements, `b` at least `(k - 1) * ldb + NR_F32`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn kernel_f32(k: usize, a: *const f32, b: *const f32, ldb: usize, acc: *mut f32) {
        let mut c = [[_mm512_setzero_ps(); 3]; MR];
        for p in 0..k {
            // SAFETY: p < k, so the reads (p * ldb + NR at most) stay inside the
            // lengths promised above.
            unsafe {
                let bp = b.add(p * ldb);
                let b0 = _mm512_loadu_ps(bp);
                let b1 = _mm512_loadu_ps(bp.add(16));
                let b2 = _mm512_loadu_ps(bp.add(32));
                let ap = a.add(p * MR);
                for (r, row) in c.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(*ap.add(r));
                    row[0] = _mm512_fmadd_ps(av, b0, row[0]);
                    row[1] = _mm512_fmadd_ps(av, b1, row[1]);
                    row[2] = _mm512_fmadd_ps(av, b2, row[2]);
                }
            }
        }
        for (r, row) in c.iter().enumerate() {
            // SAFETY: r < MR and each store covers 16 of the row's NR_F32 elements.
            unsafe {
                let dst = acc.add(r * NR_F32);
                _mm512_storeu_ps(dst, row[0]);
                _mm512_storeu_ps(dst.add(16), row[1]);
                _mm512_storeu_ps(dst.add(32), row[2]);
            }
        }
    }

    /// # Safety
    /// As [`kernel_f32`] with `NR_F64`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn kernel_f64(k: usize, a: *const f64, b: *const f64, ldb: usize, acc: *mut f64) {
        let mut c = [[_mm512_setzero_pd(); 3]; MR];
        for p in 0..k {
            // SAFETY: p < k, so the reads (p * ldb + NR at most) stay inside the
            // lengths promised above.
            unsafe {
                let bp = b.add(p * ldb);
                let b0 = _mm512_loadu_pd(bp);
                let b1 = _mm512_loadu_pd(bp.add(8));
                let b2 = _mm512_loadu_pd(bp.add(16));
                let ap = a.add(p * MR);
                for (r, row) in c.iter_mut().enumerate() {
                    let av = _mm512_set1_pd(*ap.add(r));
                    row[0] = _mm512_fmadd_pd(av, b0, row[0]);
                    row[1] = _mm512_fmadd_pd(av, b1, row[1]);
                    row[2] = _mm512_fmadd_pd(av, b2, row[2]);
                }
            }
        }
        for (r, row) in c.iter().enumerate() {
            // SAFETY: r < MR and each store covers 8 of the row's NR_F64 elements.
            unsafe {
                let dst = acc.add(r * NR_F64);
                _mm512_storeu_pd(dst, row[0]);
                _mm512_storeu_pd(dst.add(8), row[1]);
                _mm512_storeu_pd(dst.add(16), row[2]);
            }
        }
    }

    /// # Safety
    /// The CPU must support AVX-512F; `a` and `acc` must hold at least `k * MR`
    /// and `MR * NR_F32` elements, `rows` at least `k` offsets, and `b` at least
    /// `rows[p] + NR_F32` elements for every `p < k`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn kernel_indirect_f32(
        k: usize,
        a: *const f32,
        b: *const f32,
        rows: *const usize,
        acc: *mut f32,
    ) {
        let mut c = [[_mm512_setzero_ps(); 3]; MR];
        for p in 0..k {
            // SAFETY: p < k, so `rows[p]` exists and the row it names has NR_F32
            // elements inside `b` (promised above).
            unsafe {
                let bp = b.add(*rows.add(p));
                let b0 = _mm512_loadu_ps(bp);
                let b1 = _mm512_loadu_ps(bp.add(16));
                let b2 = _mm512_loadu_ps(bp.add(32));
                let ap = a.add(p * MR);
                for (r, row) in c.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(*ap.add(r));
                    row[0] = _mm512_fmadd_ps(av, b0, row[0]);
                    row[1] = _mm512_fmadd_ps(av, b1, row[1]);
                    row[2] = _mm512_fmadd_ps(av, b2, row[2]);
                }
            }
        }
        for (r, row) in c.iter().enumerate() {
            // SAFETY: r < MR and each store covers 16 of the row's NR_F32 elements.
            unsafe {
                let dst = acc.add(r * NR_F32);
                _mm512_storeu_ps(dst, row[0]);
                _mm512_storeu_ps(dst.add(16), row[1]);
                _mm512_storeu_ps(dst.add(32), row[2]);
            }
        }
    }

    /// # Safety
    /// As [`kernel_indirect_f32`] with `NR_F64`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn kernel_indirect_f64(
        k: usize,
        a: *const f64,
        b: *const f64,
        rows: *const usize,
        acc: *mut f64,
    ) {
        let mut c = [[_mm512_setzero_pd(); 3]; MR];
        for p in 0..k {
            // SAFETY: p < k, so `rows[p]` exists and the row it names has NR_F64
            // elements inside `b` (promised above).
            unsafe {
                let bp = b.add(*rows.add(p));
                let b0 = _mm512_loadu_pd(bp);
                let b1 = _mm512_loadu_pd(bp.add(8));
                let b2 = _mm512_loadu_pd(bp.add(16));
                let ap = a.add(p * MR);
                for (r, row) in c.iter_mut().enumerate() {
                    let av = _mm512_set1_pd(*ap.add(r));
                    row[0] = _mm512_fmadd_pd(av, b0, row[0]);
                    row[1] = _mm512_fmadd_pd(av, b1, row[1]);
                    row[2] = _mm512_fmadd_pd(av, b2, row[2]);
                }
            }
        }
        for (r, row) in c.iter().enumerate() {
            // SAFETY: r < MR and each store covers 8 of the row's NR_F64 elements.
            unsafe {
                let dst = acc.add(r * NR_F64);
                _mm512_storeu_pd(dst, row[0]);
                _mm512_storeu_pd(dst.add(8), row[1]);
                _mm512_storeu_pd(dst.add(16), row[2]);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
const NR_F32: usize = avx512::NR_F32;
#[cfg(not(target_arch = "x86_64"))]
const NR_F32: usize = 48;
#[cfg(target_arch = "x86_64")]
const NR_F64: usize = avx512::NR_F64;
#[cfg(not(target_arch = "x86_64"))]
const NR_F64: usize = 24;

impl MicroKernel for f32 {
    const NR: usize = NR_F32;

    fn kernel(k: usize, a: &[f32], b: &[f32], ldb: usize, acc: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if super::isa::avx512() {
            check_lengths(k, Self::NR, a, b, ldb, acc);
            // SAFETY: AVX-512F was detected and the lengths were checked just above.
            unsafe { avx512::kernel_f32(k, a.as_ptr(), b.as_ptr(), ldb, acc.as_mut_ptr()) };
            return;
        }
        portable_kernel::<f32, NR_F32>(k, a, b, ldb, acc)
    }

    fn kernel_indirect(k: usize, a: &[f32], b: &[f32], rows: &RowTable, acc: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if super::isa::avx512() {
            check_indirect(k, Self::NR, a, b, rows, acc);
            // SAFETY: AVX-512F was detected and the lengths and row offsets were
            // checked just above.
            unsafe {
                avx512::kernel_indirect_f32(
                    k,
                    a.as_ptr(),
                    b.as_ptr(),
                    rows.rows.as_ptr(),
                    acc.as_mut_ptr(),
                )
            };
            return;
        }
        portable_kernel_indirect::<f32, NR_F32>(k, a, b, rows, acc)
    }
}

impl MicroKernel for f64 {
    const NR: usize = NR_F64;

    fn kernel(k: usize, a: &[f64], b: &[f64], ldb: usize, acc: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if super::isa::avx512() {
            check_lengths(k, Self::NR, a, b, ldb, acc);
            // SAFETY: AVX-512F was detected and the lengths were checked just above.
            unsafe { avx512::kernel_f64(k, a.as_ptr(), b.as_ptr(), ldb, acc.as_mut_ptr()) };
            return;
        }
        portable_kernel::<f64, NR_F64>(k, a, b, ldb, acc)
    }

    fn kernel_indirect(k: usize, a: &[f64], b: &[f64], rows: &RowTable, acc: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if super::isa::avx512() {
            check_indirect(k, Self::NR, a, b, rows, acc);
            // SAFETY: AVX-512F was detected and the lengths and row offsets were
            // checked just above.
            unsafe {
                avx512::kernel_indirect_f64(
                    k,
                    a.as_ptr(),
                    b.as_ptr(),
                    rows.rows.as_ptr(),
                    acc.as_mut_ptr(),
                )
            };
            return;
        }
        portable_kernel_indirect::<f64, NR_F64>(k, a, b, rows, acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: MicroKernel, const NR: usize>(tolerance: f64) {
        for (k, ldb) in [
            (0usize, NR),
            (1, NR),
            (5, NR),
            (37, NR),
            (5, NR + 3),
            (9, 3 * NR),
        ] {
            let a: Vec<T> = (0..k * MR)
                .map(|i| T::from((i % 7) as f64 - 3.0).unwrap())
                .collect();
            let b: Vec<T> = (0..k * ldb)
                .map(|i| T::from((i % 5) as f64 * 0.25).unwrap())
                .collect();
            let mut fast = vec![T::zero(); MR * NR];
            let mut slow = vec![T::zero(); MR * NR];
            T::kernel(k, &a, &b, ldb, &mut fast);
            portable_kernel::<T, NR>(k, &a, &b, ldb, &mut slow);
            // The indirect kernels, told where each row of the same B starts.
            let rows = RowTable::new((0..k).map(|p| p * ldb).collect());
            let mut fast_indirect = vec![T::zero(); MR * NR];
            let mut slow_indirect = vec![T::zero(); MR * NR];
            T::kernel_indirect(k, &a, &b, &rows, &mut fast_indirect);
            portable_kernel_indirect::<T, NR>(k, &a, &b, &rows, &mut slow_indirect);
            assert!(fast_indirect == fast && slow_indirect == slow);
            for r in 0..MR {
                for j in 0..NR {
                    let want: f64 = (0..k)
                        .map(|p| a[p * MR + r].to_f64().unwrap() * b[p * ldb + j].to_f64().unwrap())
                        .sum();
                    let got = fast[r * NR + j].to_f64().unwrap();
                    assert!(
                        (got - want).abs() <= tolerance * (1.0 + want.abs()),
                        "{got} vs {want}"
                    );
                    assert!(
                        (slow[r * NR + j].to_f64().unwrap() - want).abs()
                            <= tolerance * (1.0 + want.abs())
                    );
                }
            }
        }
    }

    #[test]
    fn kernels_compute_the_panel_product() {
        check::<f32, NR_F32>(1e-6);
        check::<f64, NR_F64>(1e-14);
    }
}
