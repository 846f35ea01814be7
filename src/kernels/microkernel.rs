//! The register-blocked GEMM micro-kernel: `acc (MR x NR) = A_panel . B_panel` over
//! packed panels, summing over `k` in order (so the result of an element never
//! depends on how the problem was tiled or threaded).
//!
//! Packed layouts (see [`super::packing`]):
//! - an A panel holds `MR` rows: element `(r, p)` at `p * MR + r`;
//! - a B panel holds `NR` columns: element `(p, j)` at `p * ldb + j` (`ldb == NR`
//!   for a packed panel; a row-major matrix of `ldb`-long rows is read in place).
//!
//! On x86-64 with AVX-512F the kernel keeps the `8 x 48` (f32) or `8 x 24` (f64)
//! accumulator block in 24 zmm registers and does 24 FMAs per step of `k`; elsewhere
//! a portable kernel computes the same sums (with separate multiply and add, so its
//! last bits differ from the FMA kernel; one machine always uses the same kernel).

#[cfg(target_arch = "x86_64")]
use super::lanes::Lanes;
use super::scalar::Scalar;

/// Rows of an A panel (output channels per micro-tile).
pub const MR: usize = 8;

/// Lanes of the widest vector register the kernel uses, per element type.
pub trait MicroKernel: Scalar {
    /// Columns of a B panel (output positions per micro-tile).
    const NR: usize;

    /// `acc[r * NR + j] = sum_p a[p * MR + r] * b[p * ldb + j]` for `p < k` and
    /// at least the columns `j < cols` (a narrow last panel is computed in as few
    /// whole vector registers as cover `cols`; the other columns of `acc` are left
    /// unspecified). The sum of an element is the same whatever `cols` is.
    fn kernel(k: usize, a: &[Self], b: &[Self], ldb: usize, acc: &mut [Self], cols: usize);

    /// `acc[r * NR + j] = sum_p a[p * MR + r] * b[rows[p] + j]` for `p < k` and
    /// `j < cols` as in [`MicroKernel::kernel`]: B's rows are read wherever `rows`
    /// says (an implicit GEMM's input taps).
    fn kernel_indirect(
        k: usize,
        a: &[Self],
        b: &[Self],
        rows: &RowTable,
        acc: &mut [Self],
        cols: usize,
    );
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

/// Panics unless the buffers of an indirect kernel call reading `width` columns
/// of each B row into an accumulator of `nr`-long rows are long enough.
fn check_indirect<T>(
    k: usize,
    width: usize,
    nr: usize,
    a: &[T],
    b: &[T],
    rows: &RowTable,
    acc: &[T],
) {
    assert!(
        a.len() >= k * MR
            && acc.len() >= MR * nr
            && rows.rows.len() >= k
            && (k == 0 || rows.last.saturating_add(width) <= b.len()),
        "indirect micro-kernel buffers too short: k={k}, a={}, b={}, rows={}, acc={}",
        a.len(),
        b.len(),
        rows.rows.len(),
        acc.len()
    );
}

/// Panics unless the buffers of a kernel call reading `width` columns of each
/// B row into an accumulator of `nr`-long rows are long enough.
fn check_lengths<T>(k: usize, width: usize, nr: usize, a: &[T], b: &[T], ldb: usize, acc: &[T]) {
    let b_len = if k == 0 { 0 } else { (k - 1) * ldb + width };
    assert!(
        a.len() >= k * MR && b.len() >= b_len && ldb >= width && acc.len() >= MR * nr,
        "micro-kernel buffers too short: k={k}, a={}, b={}, acc={}",
        a.len(),
        b.len(),
        acc.len()
    );
}

/// The kernel in plain Rust, for CPUs without SIMD kernels (and as the reference
/// the SIMD kernels are tested against). It reads the first `min(cols, NR)`
/// columns of each B row, so a narrow B (`ldb < NR`) may end right after them.
pub fn portable_kernel<T: Scalar, const NR: usize>(
    k: usize,
    a: &[T],
    b: &[T],
    ldb: usize,
    acc: &mut [T],
    cols: usize,
) {
    let width = cols.min(NR);
    check_lengths(k, width, NR, a, b, ldb, acc);
    let mut block = [[T::zero(); NR]; MR];
    let b_steps = (0..k).map(|p| &b[p * ldb..p * ldb + width]);
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
/// [`portable_kernel`], and like it reading `min(cols, NR)` columns per row).
pub fn portable_kernel_indirect<T: Scalar, const NR: usize>(
    k: usize,
    a: &[T],
    b: &[T],
    rows: &RowTable,
    acc: &mut [T],
    cols: usize,
) {
    let width = cols.min(NR);
    check_indirect(k, width, NR, a, b, rows, acc);
    let mut block = [[T::zero(); NR]; MR];
    let b_steps = rows.rows[..k].iter().map(|&at| &b[at..at + width]);
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

/// Accumulator registers per row of the SIMD micro-tile: `NR = ROW_REGS * LANES`.
#[cfg(target_arch = "x86_64")]
const ROW_REGS: usize = 3;

/// The SIMD micro-kernel, written once for any [`Lanes`]: the whole `MR x NR`
/// accumulator block stays in registers for all `k` steps and is stored once.
///
/// ```text
///                  B row p: NR = ROW_REGS x LANES columns, ROW_REGS loads
///                  +-----------+-----------+-----------+
///                  |   b[0]    |   b[1]    |   b[2]    |
///                  +-----------+-----------+-----------+
///  splat(a[p, 0])  |  c[0][0]  |  c[0][1]  |  c[0][2]  |
///  splat(a[p, 1])  |  c[1][0]  |  c[1][1]  |  c[1][2]  |
///       ...        |    ...    |    ...    |    ...    |   MR = 8 rows
///  splat(a[p, 7])  |  c[7][0]  |  c[7][1]  |  c[7][2]  |
///                  +-----------+-----------+-----------+
///
///  each step of k:  c[r][j] = mul_add(splat(a[p, r]), b[j], c[r][j])
/// ```
///
/// On AVX-512 (`LANES` 16 for f32, 8 for f64) that is 24 accumulators, 3 B
/// registers and 1 broadcast: 28 of the 32 zmm registers, 24 FMAs per 3 loads
/// and 8 broadcasts. B's row `p` starts at `b + b_row(p)`, which covers a packed
/// or row-major B (`p * ldb`) and an indirect one (a table of row offsets).
///
/// A narrow last panel (few output positions: small images at batch 1) runs with
/// `REGS < ROW_REGS` registers per row, so it does not pay for the columns it
/// drops; `acc` keeps its `ROW_REGS * LANES` row stride. Each element is the same
/// chain of FMAs for any `REGS`.
///
/// # Safety
/// The CPU must support `V`'s instruction set; `a` must be readable for `k * MR`
/// elements and `acc` writable for `MR * ROW_REGS * V::LANES`; for every `p < k`
/// (the only arguments `b_row` is called with), `b + b_row(p)` must be readable
/// for `REGS * V::LANES` elements; `REGS <= ROW_REGS`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn kernel_body<V: Lanes, const REGS: usize>(
    k: usize,
    a: *const V::Elem,
    b: *const V::Elem,
    b_row: impl Fn(usize) -> usize,
    acc: *mut V::Elem,
) {
    // SAFETY: zeroing registers needs only the instruction set (the caller's
    // contract).
    let zero = unsafe { V::zero() };
    let mut c = [[zero; REGS]; MR];
    for p in 0..k {
        // SAFETY: p < k, so B's row `p` holds REGS * LANES readable elements
        // from `bp` and A's step `p` holds MR from `ap` (the caller's contract).
        unsafe {
            let bp = b.add(b_row(p));
            let mut bv = [zero; REGS];
            for (j, v) in bv.iter_mut().enumerate() {
                *v = V::load(bp.add(j * V::LANES));
            }
            let ap = a.add(p * MR);
            for (r, row) in c.iter_mut().enumerate() {
                let av = V::splat(*ap.add(r));
                for (sum, &bj) in row.iter_mut().zip(&bv) {
                    *sum = V::mul_add(av, bj, *sum);
                }
            }
        }
    }
    for (r, row) in c.iter().enumerate() {
        // SAFETY: r < MR and each store covers LANES of the row's ROW_REGS * LANES
        // elements inside `acc` (the caller's contract; REGS <= ROW_REGS).
        unsafe {
            let dst = acc.add(r * ROW_REGS * V::LANES);
            for (j, &sum) in row.iter().enumerate() {
                V::store(dst.add(j * V::LANES), sum);
            }
        }
    }
}

/// [`kernel_body`] with `REGS` the fewest registers per row that cover `cols`.
///
/// # Safety
/// As [`kernel_body`] with `REGS = ceil(cols / LANES)` clamped to `1..=ROW_REGS`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn kernel_cols<V: Lanes>(
    k: usize,
    a: *const V::Elem,
    b: *const V::Elem,
    b_row: impl Fn(usize) -> usize,
    acc: *mut V::Elem,
    cols: usize,
) {
    // SAFETY: the caller's contract, for the REGS chosen here.
    unsafe {
        match registers_for::<V>(cols) {
            1 => kernel_body::<V, 1>(k, a, b, b_row, acc),
            2 => kernel_body::<V, 2>(k, a, b, b_row, acc),
            _ => kernel_body::<V, ROW_REGS>(k, a, b, b_row, acc),
        }
    }
}

/// Registers per row that cover `cols` columns (1 ..= ROW_REGS).
#[cfg(target_arch = "x86_64")]
fn registers_for<V: Lanes>(cols: usize) -> usize {
    cols.div_ceil(V::LANES).clamp(1, ROW_REGS)
}

/// [`kernel_cols`] instantiated for AVX-512F, per element type and B layout.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{kernel_cols, ROW_REGS};
    use crate::kernels::lanes::avx512::{F32x16, F64x8};
    use crate::kernels::lanes::Lanes;

    pub const NR_F32: usize = ROW_REGS * F32x16::LANES;
    pub const NR_F64: usize = ROW_REGS * F64x8::LANES;
    pub type F32 = F32x16;
    pub type F64 = F64x8;

    /// # Safety
    /// The CPU must support AVX-512F; `a` and `acc` must hold at least `k * MR`
    /// and `MR * NR_F32` elements, `b` at least `(k - 1) * ldb + w` where `w` is
    /// `cols` rounded up to whole registers (at most `NR_F32`).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn kernel_f32(
        k: usize,
        a: *const f32,
        b: *const f32,
        ldb: usize,
        acc: *mut f32,
        cols: usize,
    ) {
        // SAFETY: AVX-512F is enabled, and row `p < k` of B at `p * ldb` holds
        // the elements read for `cols` (the lengths promised above).
        unsafe { kernel_cols::<F32x16>(k, a, b, |p| p * ldb, acc, cols) }
    }

    /// # Safety
    /// As [`kernel_f32`] with `NR_F64`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn kernel_f64(
        k: usize,
        a: *const f64,
        b: *const f64,
        ldb: usize,
        acc: *mut f64,
        cols: usize,
    ) {
        // SAFETY: as in `kernel_f32`, with NR_F64.
        unsafe { kernel_cols::<F64x8>(k, a, b, |p| p * ldb, acc, cols) }
    }

    /// # Safety
    /// The CPU must support AVX-512F; `a` and `acc` must hold at least `k * MR`
    /// and `MR * NR_F32` elements, `rows` at least `k` offsets, and `b` at least
    /// `rows[p] + w` elements for every `p < k` (`w` as in [`kernel_f32`]).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn kernel_indirect_f32(
        k: usize,
        a: *const f32,
        b: *const f32,
        rows: *const usize,
        acc: *mut f32,
        cols: usize,
    ) {
        // SAFETY: AVX-512F is enabled; the body asks only for rows `p < k`, which
        // `rows` holds, and each names the elements read inside `b` (promised above).
        unsafe { kernel_cols::<F32x16>(k, a, b, |p| *rows.add(p), acc, cols) }
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
        cols: usize,
    ) {
        // SAFETY: as in `kernel_indirect_f32`, with NR_F64.
        unsafe { kernel_cols::<F64x8>(k, a, b, |p| *rows.add(p), acc, cols) }
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

/// Columns a SIMD kernel call reads from each B row for `cols` valid columns.
#[cfg(target_arch = "x86_64")]
fn read_width<V: Lanes>(cols: usize) -> usize {
    registers_for::<V>(cols) * V::LANES
}

impl MicroKernel for f32 {
    const NR: usize = NR_F32;

    fn kernel(k: usize, a: &[f32], b: &[f32], ldb: usize, acc: &mut [f32], cols: usize) {
        #[cfg(target_arch = "x86_64")]
        if super::isa::avx512() {
            let width = read_width::<avx512::F32>(cols);
            check_lengths(k, width, Self::NR, a, b, ldb, acc);
            // SAFETY: AVX-512F was detected and the lengths were checked just above.
            unsafe { avx512::kernel_f32(k, a.as_ptr(), b.as_ptr(), ldb, acc.as_mut_ptr(), cols) };
            return;
        }
        portable_kernel::<f32, NR_F32>(k, a, b, ldb, acc, cols)
    }

    fn kernel_indirect(
        k: usize,
        a: &[f32],
        b: &[f32],
        rows: &RowTable,
        acc: &mut [f32],
        cols: usize,
    ) {
        #[cfg(target_arch = "x86_64")]
        if super::isa::avx512() {
            let width = read_width::<avx512::F32>(cols);
            check_indirect(k, width, Self::NR, a, b, rows, acc);
            // SAFETY: AVX-512F was detected and the lengths and row offsets were
            // checked just above.
            unsafe {
                avx512::kernel_indirect_f32(
                    k,
                    a.as_ptr(),
                    b.as_ptr(),
                    rows.rows.as_ptr(),
                    acc.as_mut_ptr(),
                    cols,
                )
            };
            return;
        }
        portable_kernel_indirect::<f32, NR_F32>(k, a, b, rows, acc, cols)
    }
}

impl MicroKernel for f64 {
    const NR: usize = NR_F64;

    fn kernel(k: usize, a: &[f64], b: &[f64], ldb: usize, acc: &mut [f64], cols: usize) {
        #[cfg(target_arch = "x86_64")]
        if super::isa::avx512() {
            let width = read_width::<avx512::F64>(cols);
            check_lengths(k, width, Self::NR, a, b, ldb, acc);
            // SAFETY: AVX-512F was detected and the lengths were checked just above.
            unsafe { avx512::kernel_f64(k, a.as_ptr(), b.as_ptr(), ldb, acc.as_mut_ptr(), cols) };
            return;
        }
        portable_kernel::<f64, NR_F64>(k, a, b, ldb, acc, cols)
    }

    fn kernel_indirect(
        k: usize,
        a: &[f64],
        b: &[f64],
        rows: &RowTable,
        acc: &mut [f64],
        cols: usize,
    ) {
        #[cfg(target_arch = "x86_64")]
        if super::isa::avx512() {
            let width = read_width::<avx512::F64>(cols);
            check_indirect(k, width, Self::NR, a, b, rows, acc);
            // SAFETY: AVX-512F was detected and the lengths and row offsets were
            // checked just above.
            unsafe {
                avx512::kernel_indirect_f64(
                    k,
                    a.as_ptr(),
                    b.as_ptr(),
                    rows.rows.as_ptr(),
                    acc.as_mut_ptr(),
                    cols,
                )
            };
            return;
        }
        portable_kernel_indirect::<f64, NR_F64>(k, a, b, rows, acc, cols)
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
            T::kernel(k, &a, &b, ldb, &mut fast, NR);
            portable_kernel::<T, NR>(k, &a, &b, ldb, &mut slow, NR);
            // The indirect kernels, told where each row of the same B starts.
            let rows = RowTable::new((0..k).map(|p| p * ldb).collect());
            let mut fast_indirect = vec![T::zero(); MR * NR];
            let mut slow_indirect = vec![T::zero(); MR * NR];
            T::kernel_indirect(k, &a, &b, &rows, &mut fast_indirect, NR);
            portable_kernel_indirect::<T, NR>(k, &a, &b, &rows, &mut slow_indirect, NR);
            assert!(fast_indirect == fast && slow_indirect == slow);
            // Narrow panels compute their columns bit for bit as the full one,
            // reading no further than the registers that cover them (B cut short
            // there, so a read past it would panic in the length check).
            for cols in [1, 5, NR / 3, NR / 3 + 1, 2 * NR / 3, NR - 1] {
                let width = cols.next_multiple_of(NR / 3);
                let short = if k == 0 { 0 } else { (k - 1) * ldb + width };
                let mut narrow = vec![T::zero(); MR * NR];
                let mut narrow_indirect = vec![T::zero(); MR * NR];
                T::kernel(k, &a, &b[..short], ldb, &mut narrow, cols);
                T::kernel_indirect(k, &a, &b[..short], &rows, &mut narrow_indirect, cols);
                // The portable kernels read exactly `cols` columns per row.
                let exact = if k == 0 { 0 } else { (k - 1) * ldb + cols };
                let mut narrow_slow = vec![T::zero(); MR * NR];
                let mut narrow_slow_indirect = vec![T::zero(); MR * NR];
                portable_kernel::<T, NR>(k, &a, &b[..exact], ldb, &mut narrow_slow, cols);
                portable_kernel_indirect::<T, NR>(
                    k,
                    &a,
                    &b[..exact],
                    &rows,
                    &mut narrow_slow_indirect,
                    cols,
                );
                for r in 0..MR {
                    let row = r * NR..r * NR + cols;
                    assert!(narrow[row.clone()] == fast[row.clone()], "cols {cols}");
                    assert!(
                        narrow_indirect[row.clone()] == fast[row.clone()],
                        "cols {cols}"
                    );
                    assert!(narrow_slow[row.clone()] == slow[row.clone()], "cols {cols}");
                    assert!(
                        narrow_slow_indirect[row.clone()] == slow[row],
                        "cols {cols}"
                    );
                }
            }
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
