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
//! accumulator block in 24 zmm registers and does 24 FMAs per step of `k`; with
//! AVX2 and FMA it covers the block in four `2 x 48` (`2 x 24`) sub-blocks of 12
//! ymm registers each, with the same FMA chain per element, so its sums are
//! bit-identical to the AVX-512 kernel's. Elsewhere a portable kernel computes
//! the same sums with separate multiply and add (so its last bits differ from the
//! FMA kernels'; one path always uses the same kernel).

use super::isa::{self, Isa};
#[cfg(target_arch = "x86_64")]
use super::lanes::Lanes;
use super::scalar::Scalar;

/// Rows of an A panel (output channels per micro-tile).
pub const MR: usize = 8;

/// How a kernel call reads its `MR` rows of A.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ALayout {
    /// A packed panel: element `(r, p)` at `p * MR + r` (see [`super::packing`]).
    Packed,
    /// The first `rows` (1 ..= `MR`) rows of a row-major matrix read in place:
    /// element `(r, p)` at `r * lda + p`. Rows from `rows` to `MR` read the last
    /// one again (their sums are computed and dropped), so no row past the
    /// matrix is touched.
    Rows { lda: usize, rows: usize },
}

impl ALayout {
    /// Offset of element `(r, p)` (`r < MR`).
    #[inline(always)]
    pub fn at(self, p: usize, r: usize) -> usize {
        match self {
            ALayout::Packed => p * MR + r,
            ALayout::Rows { lda, rows } => r.min(rows.saturating_sub(1)) * lda + p,
        }
    }

    /// Elements a call over `k` steps reads from the start of A.
    fn reads(self, k: usize) -> usize {
        match self {
            _ if k == 0 => 0,
            ALayout::Packed => k * MR,
            ALayout::Rows { lda, rows } => rows.saturating_sub(1) * lda + k,
        }
    }

    fn valid(self) -> bool {
        match self {
            ALayout::Packed => true,
            ALayout::Rows { rows, .. } => (1..=MR).contains(&rows),
        }
    }
}

/// Lanes of the widest vector register the kernel uses, per element type.
pub trait MicroKernel: Scalar {
    /// Columns of a B panel (output positions per micro-tile).
    const NR: usize;

    /// `acc[r * NR + j] = sum_p A(r, p) * b[p * ldb + j]` for `p < k` and at
    /// least the columns `j < cols`, with `A(r, p)` read from `a` as `layout`
    /// says (a narrow last panel is computed in as few whole vector registers as
    /// cover `cols`; the other columns of `acc` are left unspecified). The sum of
    /// an element is the same whatever `cols` or the layout of A is.
    #[allow(clippy::too_many_arguments)]
    fn kernel(
        k: usize,
        (a, layout): (&[Self], ALayout),
        b: &[Self],
        ldb: usize,
        acc: &mut [Self],
        cols: usize,
    ) {
        Self::kernel_on(isa::active(), k, (a, layout), b, ldb, acc, cols)
    }

    /// [`MicroKernel::kernel`] on the path `isa` (or the CPU's best, if it lacks
    /// `isa`), whatever the process-wide cap says: for tests comparing paths.
    #[allow(clippy::too_many_arguments)]
    fn kernel_on(
        isa: Isa,
        k: usize,
        a: (&[Self], ALayout),
        b: &[Self],
        ldb: usize,
        acc: &mut [Self],
        cols: usize,
    );

    /// `acc[r * NR + j] = sum_p A(r, p) * b[rows[p] + j]` for `p < k` and
    /// `j < cols` as in [`MicroKernel::kernel`]: B's rows are read wherever `rows`
    /// says (an implicit GEMM's input taps).
    fn kernel_indirect(
        k: usize,
        a: (&[Self], ALayout),
        b: &[Self],
        rows: &RowTable,
        acc: &mut [Self],
        cols: usize,
    ) {
        Self::kernel_indirect_on(isa::active(), k, a, b, rows, acc, cols)
    }

    /// [`MicroKernel::kernel_indirect`] on the path `isa`, as
    /// [`MicroKernel::kernel_on`].
    #[allow(clippy::too_many_arguments)]
    fn kernel_indirect_on(
        isa: Isa,
        k: usize,
        a: (&[Self], ALayout),
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
    (a, layout): (&[T], ALayout),
    b: &[T],
    rows: &RowTable,
    acc: &[T],
) {
    assert!(
        layout.valid()
            && a.len() >= layout.reads(k)
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
fn check_lengths<T>(
    k: usize,
    width: usize,
    nr: usize,
    (a, layout): (&[T], ALayout),
    b: &[T],
    ldb: usize,
    acc: &[T],
) {
    let b_len = if k == 0 { 0 } else { (k - 1) * ldb + width };
    assert!(
        layout.valid()
            && a.len() >= layout.reads(k)
            && b.len() >= b_len
            && ldb >= width
            && acc.len() >= MR * nr,
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
    a: (&[T], ALayout),
    b: &[T],
    ldb: usize,
    acc: &mut [T],
    cols: usize,
) {
    let width = cols.min(NR);
    check_lengths(k, width, NR, a, b, ldb, acc);
    portable_sums::<T, NR>(a, (0..k).map(|p| &b[p * ldb..]), width, acc)
}

/// [`MicroKernel::kernel_indirect`] in plain Rust (same order of sums as
/// [`portable_kernel`], and like it reading `min(cols, NR)` columns per row).
pub fn portable_kernel_indirect<T: Scalar, const NR: usize>(
    k: usize,
    a: (&[T], ALayout),
    b: &[T],
    rows: &RowTable,
    acc: &mut [T],
    cols: usize,
) {
    let width = cols.min(NR);
    check_indirect(k, width, NR, a, b, rows, acc);
    portable_sums::<T, NR>(a, rows.rows[..k].iter().map(|&at| &b[at..]), width, acc)
}

/// The sums of the portable kernels over B's rows `b_steps` (each at least
/// `width` long). A full panel gets its own copy of the loop, whose constant
/// length the compiler unrolls and vectorises.
fn portable_sums<'b, T: Scalar, const NR: usize>(
    (a, layout): (&[T], ALayout),
    b_steps: impl Iterator<Item = &'b [T]>,
    width: usize,
    acc: &mut [T],
) {
    let mut block = [[T::zero(); NR]; MR];
    let steps = b_steps
        .enumerate()
        .map(|(p, b_step)| (std::array::from_fn(|r| a[layout.at(p, r)]), b_step));
    if width == NR {
        for (a_step, b_step) in steps {
            add_products(&mut block, &a_step, &b_step[..NR]);
        }
    } else {
        for (a_step, b_step) in steps {
            add_products(&mut block, &a_step, &b_step[..width]);
        }
    }
    for (dst, row) in acc.chunks_exact_mut(NR).zip(&block) {
        dst.copy_from_slice(row);
    }
}

/// `block[r][j] += a_step[r] * b_step[j]` for the columns of `b_step`.
#[inline(always)]
fn add_products<T: Scalar, const NR: usize>(
    block: &mut [[T; NR]; MR],
    a_step: &[T; MR],
    b_step: &[T],
) {
    for (row, &a_value) in block.iter_mut().zip(a_step) {
        for (c, &b_value) in row.iter_mut().zip(b_step) {
            *c += a_value * b_value;
        }
    }
}

/// Accumulator registers per row of a SIMD sub-block: `NR = ROW_REGS * LANES`
/// on AVX-512, `NR = 2 * ROW_REGS * LANES` on AVX2 (half the lanes, two column
/// halves).
#[cfg(target_arch = "x86_64")]
const ROW_REGS: usize = 3;

/// The SIMD micro-kernel on one sub-block of the `MR x NR` accumulator, written
/// once for any [`Lanes`]: rows `row0 .. row0 + ROWS` and the `REGS * LANES`
/// columns from `col0` stay in registers for all `k` steps and are stored once.
///
/// ```text
///                  B row p: REGS x LANES columns from col0, REGS loads
///                  +-----------+-----------+-----------+
///                  |   b[0]    |   b[1]    |   b[2]    |
///                  +-----------+-----------+-----------+
///  splat(a[p, 0])  |  c[0][0]  |  c[0][1]  |  c[0][2]  |
///  splat(a[p, 1])  |  c[1][0]  |  c[1][1]  |  c[1][2]  |
///       ...        |    ...    |    ...    |    ...    |   ROWS rows from row0
///  splat(a[p, 7])  |  c[7][0]  |  c[7][1]  |  c[7][2]  |
///                  +-----------+-----------+-----------+
///
///  each step of k:  c[r][j] = mul_add(splat(a[p, r]), b[j], c[r][j])
/// ```
///
/// On AVX-512 (`LANES` 16 for f32, 8 for f64; 32 registers) one sub-block is the
/// whole tile: `ROWS = MR = 8`, `REGS = ROW_REGS = 3`, 24 accumulators, 3 B
/// registers and 1 broadcast, 24 FMAs per 3 loads and 8 broadcasts. On AVX2
/// (`LANES` 8 or 4; 16 registers) the tile is four sub-blocks of `2 x 6`
/// registers (see [`kernel_pairs`]). B's row `p` starts at
/// `b + b_row(p)`, which covers a packed or row-major B (`p * ldb`) and an
/// indirect one (a table of row offsets).
///
/// A narrow last panel (few output positions: small images at batch 1) runs with
/// `REGS < ROW_REGS` registers per row, so it does not pay for the columns it
/// drops. Every element is the same chain of FMAs, in the order of `p` from
/// zero, for any `REGS`, sub-block or instruction set: the AVX2 and AVX-512
/// kernels compute bit-identical sums.
///
/// # Safety
/// The CPU must support `V`'s instruction set; `a` must be readable for `k * MR`
/// elements, and `acc` writable at `(row0 + r) * stride + col0 + j` for every
/// `r < ROWS` and `j < REGS * V::LANES`; for every `p < k` (the only arguments
/// `b_row` is called with), `b + b_row(p) + col0` must be readable for
/// `REGS * V::LANES` elements; `row0 + ROWS <= MR`. With `resume`, the sums
/// continue from the sub-block's values in `acc` (which must then be
/// initialised) instead of zero: the same FMA chain, cut into pieces of `k`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel_body<V: Lanes, const ROWS: usize, const REGS: usize>(
    k: usize,
    (a, a_at): (*const V::Elem, impl Fn(usize, usize) -> usize),
    b: *const V::Elem,
    b_row: impl Fn(usize) -> usize,
    acc: *mut V::Elem,
    (row0, col0): (usize, usize),
    stride: usize,
    resume: bool,
) {
    // SAFETY: zeroing registers needs only the instruction set (the caller's
    // contract).
    let zero = unsafe { V::zero() };
    let mut c = [[zero; REGS]; ROWS];
    if resume {
        for (r, row) in c.iter_mut().enumerate() {
            // SAFETY: the sub-block's elements of `acc` are readable and
            // initialised when resuming (the caller's contract).
            unsafe {
                let src = acc.add((row0 + r) * stride + col0);
                for (j, sum) in row.iter_mut().enumerate() {
                    *sum = V::load(src.add(j * V::LANES));
                }
            }
        }
    }
    for p in 0..k {
        // SAFETY: p < k, so B's row `p` holds REGS * LANES readable elements
        // from `bp` and A's step `p` holds MR from `a + p * MR`, of which rows
        // `row0 .. row0 + ROWS` are read (the caller's contract).
        unsafe {
            let bp = b.add(b_row(p) + col0);
            let ap = |r: usize| a.add(a_at(p, row0 + r));
            if ROWS < REGS {
                // Few rows, wide: broadcast the rows once, then stream B one
                // register at a time (AVX2: 12 + 2 + 1 registers).
                let mut av = [zero; ROWS];
                for (r, v) in av.iter_mut().enumerate() {
                    *v = V::splat(*ap(r));
                }
                for j in 0..REGS {
                    let bj = V::load(bp.add(j * V::LANES));
                    for (row, &ar) in c.iter_mut().zip(&av) {
                        row[j] = V::mul_add(ar, bj, row[j]);
                    }
                }
            } else {
                // Many rows: load B's registers once, then one broadcast per row
                // (AVX-512: 24 + 3 + 1 registers).
                let mut bv = [zero; REGS];
                for (j, v) in bv.iter_mut().enumerate() {
                    *v = V::load(bp.add(j * V::LANES));
                }
                for (r, row) in c.iter_mut().enumerate() {
                    let ar = V::splat(*ap(r));
                    for (sum, &bj) in row.iter_mut().zip(&bv) {
                        *sum = V::mul_add(ar, bj, *sum);
                    }
                }
            }
        }
    }
    for (r, row) in c.iter().enumerate() {
        // SAFETY: each store covers LANES of the elements of row `row0 + r` from
        // `col0` that the caller promised are writable.
        unsafe {
            let dst = acc.add((row0 + r) * stride + col0);
            for (j, &sum) in row.iter().enumerate() {
                V::store(dst.add(j * V::LANES), sum);
            }
        }
    }
}

/// [`kernel_body`] over the sub-block of `ROWS` rows from `row0` and `regs`
/// registers (1 ..= 6) from `col0`, each row `stride` apart in `acc`.
///
/// # Safety
/// As [`kernel_body`] with `REGS = min(regs, 6)`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel_regs<V: Lanes, const ROWS: usize>(
    k: usize,
    a: (*const V::Elem, impl Fn(usize, usize) -> usize),
    b: *const V::Elem,
    b_row: impl Fn(usize) -> usize,
    acc: *mut V::Elem,
    origin: (usize, usize),
    (stride, resume): (usize, bool),
    regs: usize,
) {
    let at = (origin, stride, resume);
    // SAFETY: the caller's contract, for the REGS chosen here.
    unsafe {
        match regs {
            1 => kernel_body::<V, ROWS, 1>(k, a, b, b_row, acc, at.0, at.1, at.2),
            2 => kernel_body::<V, ROWS, 2>(k, a, b, b_row, acc, at.0, at.1, at.2),
            3 => kernel_body::<V, ROWS, 3>(k, a, b, b_row, acc, at.0, at.1, at.2),
            4 => kernel_body::<V, ROWS, 4>(k, a, b, b_row, acc, at.0, at.1, at.2),
            5 => kernel_body::<V, ROWS, 5>(k, a, b, b_row, acc, at.0, at.1, at.2),
            _ => kernel_body::<V, ROWS, 6>(k, a, b, b_row, acc, at.0, at.1, at.2),
        }
    }
}

/// The whole `MR x ROW_REGS * LANES` tile as one sub-block, with the fewest
/// registers per row that cover `cols` (the AVX-512 kernel).
///
/// # Safety
/// As [`kernel_body`] with `ROWS = MR`, `row0 = col0 = 0`, `stride =
/// ROW_REGS * V::LANES` and `REGS` = [`registers_for`]`(cols)`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn kernel_whole<V: Lanes>(
    k: usize,
    a: (*const V::Elem, impl Fn(usize, usize) -> usize),
    b: *const V::Elem,
    b_row: impl Fn(usize) -> usize,
    acc: *mut V::Elem,
    cols: usize,
) {
    let (stride, regs) = (ROW_REGS * V::LANES, registers_for::<V>(cols));
    // SAFETY: the caller's contract.
    unsafe { kernel_regs::<V, MR>(k, a, b, b_row, acc, (0, 0), (stride, false), regs) }
}

/// Rows per sub-block of [`kernel_pairs`].
#[cfg(target_arch = "x86_64")]
const PAIR_ROWS: usize = 2;

/// Steps of `k` per piece of [`kernel_pairs`]: the piece of B the four row pairs
/// share (64 rows of 48 f32 or 24 f64) stays in L1, and its rows' pages in the
/// TLB, when B is a row-major matrix read in place.
#[cfg(target_arch = "x86_64")]
const K_PIECE: usize = 64;

/// The `MR x 2 * ROW_REGS * LANES` tile as four `PAIR_ROWS x 2 * ROW_REGS`
/// sub-blocks (the AVX2 kernel: 16 registers hold 12 accumulators, one B
/// register and the two rows' broadcasts, 12 FMAs per 6 loads and 2
/// broadcasts). `k` is cut into pieces of `K_PIECE` steps; each piece runs the
/// four row pairs in turn, which store their sums to `acc` and resume from them
/// in the next piece, so every element is still one FMA chain in the order of
/// `p`.
///
/// ```text
///             columns 0 .. NR (REGS registers that cover cols)
///  rows 0-1       sub-block 1   |
///  rows 2-3       sub-block 2   |  for each piece of K_PIECE steps
///  rows 4-5       sub-block 3   |
///  rows 6-7       sub-block 4   |
/// ```
///
/// # Safety
/// As [`kernel_body`] for every sub-block: `stride = 2 * ROW_REGS * V::LANES`,
/// `acc` readable and writable for `MR * stride` elements, and each B row
/// readable for [`pair_width`]`::<V>(cols)` elements.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn kernel_pairs<V: Lanes>(
    k: usize,
    (a, a_at): (*const V::Elem, impl Fn(usize, usize) -> usize + Copy),
    b: *const V::Elem,
    b_row: impl Fn(usize) -> usize + Copy,
    acc: *mut V::Elem,
    cols: usize,
) {
    let stride = 2 * ROW_REGS * V::LANES;
    let regs = pair_width::<V>(cols) / V::LANES;
    let mut p0 = 0;
    loop {
        let steps = (k - p0).min(K_PIECE);
        for row0 in (0..MR).step_by(PAIR_ROWS) {
            let piece_row = move |p: usize| b_row(p0 + p);
            let piece_a = move |p: usize, r: usize| a_at(p0 + p, r);
            // SAFETY: the piece's steps `p0 .. p0 + steps` are steps below `k`
            // (of A and of B), the sub-block lies inside `acc`, and it was stored
            // by the previous piece when resuming (the caller's contract).
            unsafe {
                let at = (stride, p0 > 0);
                let a_piece = (a, piece_a);
                kernel_regs::<V, PAIR_ROWS>(steps, a_piece, b, piece_row, acc, (row0, 0), at, regs)
            }
        }
        p0 += steps;
        if p0 >= k {
            break;
        }
    }
}

/// Registers per row that cover `cols` columns (1 ..= ROW_REGS).
#[cfg(target_arch = "x86_64")]
fn registers_for<V: Lanes>(cols: usize) -> usize {
    cols.div_ceil(V::LANES).clamp(1, ROW_REGS)
}

/// Columns [`kernel_whole`] reads from each B row for `cols` valid columns.
#[cfg(target_arch = "x86_64")]
fn whole_width<V: Lanes>(cols: usize) -> usize {
    registers_for::<V>(cols) * V::LANES
}

/// Columns [`kernel_pairs`] reads from each B row for `cols` valid columns.
#[cfg(target_arch = "x86_64")]
fn pair_width<V: Lanes>(cols: usize) -> usize {
    cols.div_ceil(V::LANES).clamp(1, 2 * ROW_REGS) * V::LANES
}

/// The SIMD kernels instantiated per instruction set, element type and B layout:
/// `$direct` reads B's row `p` at `p * ldb`, `$indirect` at `rows[p]`.
#[cfg(target_arch = "x86_64")]
macro_rules! wrappers {
    ($features:literal, $tile:ident, $v:ty, $t:ty, $direct:ident, $indirect:ident) => {
        /// # Safety
        /// The CPU must support the instruction set; `a` must hold the
        /// elements `layout` reads over `k` steps, `acc` at least `MR * NR`
        /// elements, `b` at least `(k - 1) * ldb + w` where `w` is the tile's
        /// read width for `cols`.
        #[target_feature(enable = $features)]
        pub unsafe fn $direct(
            k: usize,
            (a, layout): (*const $t, ALayout),
            b: *const $t,
            ldb: usize,
            acc: *mut $t,
            cols: usize,
        ) {
            // SAFETY: the instruction set is enabled, A's elements are where
            // `layout` says, and row `p < k` of B at `p * ldb` holds the elements
            // read for `cols` (promised above). The layout is matched here, so
            // each kernel is compiled with its own addressing.
            unsafe {
                match layout {
                    ALayout::Packed => {
                        let a = (a, |p, r| ALayout::Packed.at(p, r));
                        $tile::<$v>(k, a, b, |p| p * ldb, acc, cols)
                    }
                    rows => {
                        $tile::<$v>(k, (a, move |p, r| rows.at(p, r)), b, |p| p * ldb, acc, cols)
                    }
                }
            }
        }

        /// # Safety
        /// As the direct kernel, with `rows` holding at least `k` offsets and `b`
        /// at least `rows[p] + w` elements for every `p < k`.
        #[target_feature(enable = $features)]
        pub unsafe fn $indirect(
            k: usize,
            (a, layout): (*const $t, ALayout),
            b: *const $t,
            rows: *const usize,
            acc: *mut $t,
            cols: usize,
        ) {
            // SAFETY: the instruction set is enabled; the body asks only for rows
            // `p < k`, which `rows` holds, and each names the elements read
            // inside `b`; A's elements are where `layout` says (promised above).
            unsafe {
                let b_row = |p| *rows.add(p);
                match layout {
                    ALayout::Packed => {
                        let a = (a, |p, r| ALayout::Packed.at(p, r));
                        $tile::<$v>(k, a, b, b_row, acc, cols)
                    }
                    rows => $tile::<$v>(k, (a, move |p, r| rows.at(p, r)), b, b_row, acc, cols),
                }
            }
        }
    };
}

/// [`kernel_whole`] instantiated for AVX-512F.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{kernel_whole, ALayout, ROW_REGS};
    use crate::kernels::lanes::avx512::{F32x16, F64x8};
    use crate::kernels::lanes::Lanes;

    pub const NR_F32: usize = ROW_REGS * F32x16::LANES;
    pub const NR_F64: usize = ROW_REGS * F64x8::LANES;

    wrappers!(
        "avx512f",
        kernel_whole,
        F32x16,
        f32,
        kernel_f32,
        kernel_indirect_f32
    );
    wrappers!(
        "avx512f",
        kernel_whole,
        F64x8,
        f64,
        kernel_f64,
        kernel_indirect_f64
    );
}

/// [`kernel_pairs`] instantiated for AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{kernel_pairs, ALayout, ROW_REGS};
    use crate::kernels::lanes::avx2::{F32x8, F64x4};
    use crate::kernels::lanes::Lanes;

    // One tile shape on every path: packing, im2col and Winograd depend on NR.
    const _: () = assert!(2 * ROW_REGS * F32x8::LANES == super::avx512::NR_F32);
    const _: () = assert!(2 * ROW_REGS * F64x4::LANES == super::avx512::NR_F64);

    wrappers!(
        "avx2,fma",
        kernel_pairs,
        F32x8,
        f32,
        kernel_f32,
        kernel_indirect_f32
    );
    wrappers!(
        "avx2,fma",
        kernel_pairs,
        F64x4,
        f64,
        kernel_f64,
        kernel_indirect_f64
    );
}

#[cfg(target_arch = "x86_64")]
const NR_F32: usize = avx512::NR_F32;
#[cfg(not(target_arch = "x86_64"))]
const NR_F32: usize = 48;
#[cfg(target_arch = "x86_64")]
const NR_F64: usize = avx512::NR_F64;
#[cfg(not(target_arch = "x86_64"))]
const NR_F64: usize = 24;

/// [`MicroKernel`] for one element type: the path `isa` resolves to, with the
/// buffer lengths checked for the columns that path's kernel reads.
macro_rules! micro_kernel_impl {
    ($t:ty, $nr:ident, $v512:ty, $v256:ty, $direct:ident, $indirect:ident) => {
        impl MicroKernel for $t {
            const NR: usize = $nr;

            fn kernel_on(
                isa: Isa,
                k: usize,
                a: (&[$t], ALayout),
                b: &[$t],
                ldb: usize,
                acc: &mut [$t],
                cols: usize,
            ) {
                #[cfg(target_arch = "x86_64")]
                let (a_ptr, b_ptr, acc_ptr) = ((a.0.as_ptr(), a.1), b.as_ptr(), acc.as_mut_ptr());
                match isa::resolve(isa) {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => {
                        check_lengths(k, whole_width::<$v512>(cols), $nr, a, b, ldb, acc);
                        // SAFETY: the CPU supports AVX-512F (`resolve` never exceeds
                        // it) and the lengths were checked just above.
                        unsafe { avx512::$direct(k, a_ptr, b_ptr, ldb, acc_ptr, cols) }
                    }
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => {
                        check_lengths(k, pair_width::<$v256>(cols), $nr, a, b, ldb, acc);
                        // SAFETY: the CPU supports AVX2 and FMA (as above) and the
                        // lengths were checked just above.
                        unsafe { avx2::$direct(k, a_ptr, b_ptr, ldb, acc_ptr, cols) }
                    }
                    _ => portable_kernel::<$t, $nr>(k, a, b, ldb, acc, cols),
                }
            }

            fn kernel_indirect_on(
                isa: Isa,
                k: usize,
                a: (&[$t], ALayout),
                b: &[$t],
                rows: &RowTable,
                acc: &mut [$t],
                cols: usize,
            ) {
                #[cfg(target_arch = "x86_64")]
                let (a_ptr, b_ptr, acc_ptr) = ((a.0.as_ptr(), a.1), b.as_ptr(), acc.as_mut_ptr());
                #[cfg(target_arch = "x86_64")]
                let row_ptr = rows.rows.as_ptr();
                match isa::resolve(isa) {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => {
                        check_indirect(k, whole_width::<$v512>(cols), $nr, a, b, rows, acc);
                        // SAFETY: the CPU supports AVX-512F (`resolve` never exceeds
                        // it) and the lengths and row offsets were checked just above.
                        unsafe { avx512::$indirect(k, a_ptr, b_ptr, row_ptr, acc_ptr, cols) }
                    }
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => {
                        check_indirect(k, pair_width::<$v256>(cols), $nr, a, b, rows, acc);
                        // SAFETY: the CPU supports AVX2 and FMA (as above) and the
                        // lengths and row offsets were checked just above.
                        unsafe { avx2::$indirect(k, a_ptr, b_ptr, row_ptr, acc_ptr, cols) }
                    }
                    _ => portable_kernel_indirect::<$t, $nr>(k, a, b, rows, acc, cols),
                }
            }
        }
    };
}
#[cfg(target_arch = "x86_64")]
use super::lanes::{avx2::F32x8, avx2::F64x4, avx512::F32x16, avx512::F64x8};
micro_kernel_impl!(f32, NR_F32, F32x16, F32x8, kernel_f32, kernel_indirect_f32);
micro_kernel_impl!(f64, NR_F64, F64x8, F64x4, kernel_f64, kernel_indirect_f64);

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: MicroKernel, const NR: usize>(isa: Isa, tolerance: f64) {
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
            T::kernel_on(isa, k, (&a, ALayout::Packed), &b, ldb, &mut fast, NR);
            portable_kernel::<T, NR>(k, (&a, ALayout::Packed), &b, ldb, &mut slow, NR);
            // The indirect kernels, told where each row of the same B starts.
            let rows = RowTable::new((0..k).map(|p| p * ldb).collect());
            let mut fast_indirect = vec![T::zero(); MR * NR];
            let mut slow_indirect = vec![T::zero(); MR * NR];
            T::kernel_indirect_on(
                isa,
                k,
                (&a, ALayout::Packed),
                &b,
                &rows,
                &mut fast_indirect,
                NR,
            );
            portable_kernel_indirect::<T, NR>(
                k,
                (&a, ALayout::Packed),
                &b,
                &rows,
                &mut slow_indirect,
                NR,
            );
            assert!(fast_indirect == fast && slow_indirect == slow);
            // A read in place from rows `lda` apart gives the packed panel's
            // sums bit for bit; with fewer rows than MR, the valid rows do, and
            // nothing past the last row is read (A cut short there).
            let lda = k + 3;
            let mut in_place = vec![T::zero(); MR * lda];
            for r in 0..MR {
                for p in 0..k {
                    in_place[r * lda + p] = a[p * MR + r];
                }
            }
            for valid in [MR, 5, 1] {
                let a_rows = &in_place[..(valid - 1) * lda + k];
                let layout = ALayout::Rows { lda, rows: valid };
                let (mut got, mut got_indirect) =
                    (vec![T::zero(); MR * NR], vec![T::zero(); MR * NR]);
                let mut got_slow = vec![T::zero(); MR * NR];
                T::kernel_on(isa, k, (a_rows, layout), &b, ldb, &mut got, NR);
                T::kernel_indirect_on(isa, k, (a_rows, layout), &b, &rows, &mut got_indirect, NR);
                portable_kernel::<T, NR>(k, (a_rows, layout), &b, ldb, &mut got_slow, NR);
                let kept = ..valid * NR;
                assert!(got[kept] == fast[kept], "rows {valid}");
                assert!(got_indirect[kept] == fast[kept], "rows {valid}");
                assert!(got_slow[kept] == slow[kept], "rows {valid}");
            }
            // Narrow panels compute their columns bit for bit as the full one,
            // reading no further than the registers that cover them (B cut short
            // there, so a read past it would panic in the length check).
            for cols in [1, 5, NR / 3, NR / 3 + 1, 2 * NR / 3, NR - 1] {
                let width = cols.next_multiple_of(NR / 3);
                let short = if k == 0 { 0 } else { (k - 1) * ldb + width };
                let mut narrow = vec![T::zero(); MR * NR];
                let mut narrow_indirect = vec![T::zero(); MR * NR];
                T::kernel_on(
                    isa,
                    k,
                    (&a, ALayout::Packed),
                    &b[..short],
                    ldb,
                    &mut narrow,
                    cols,
                );
                T::kernel_indirect_on(
                    isa,
                    k,
                    (&a, ALayout::Packed),
                    &b[..short],
                    &rows,
                    &mut narrow_indirect,
                    cols,
                );
                // The portable kernels read exactly `cols` columns per row.
                let exact = if k == 0 { 0 } else { (k - 1) * ldb + cols };
                let mut narrow_slow = vec![T::zero(); MR * NR];
                let mut narrow_slow_indirect = vec![T::zero(); MR * NR];
                portable_kernel::<T, NR>(
                    k,
                    (&a, ALayout::Packed),
                    &b[..exact],
                    ldb,
                    &mut narrow_slow,
                    cols,
                );
                portable_kernel_indirect::<T, NR>(
                    k,
                    (&a, ALayout::Packed),
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
    fn kernels_compute_the_panel_product_on_every_path() {
        for isa in crate::kernels::isa::tests::supported() {
            check::<f32, NR_F32>(isa, 1e-6);
            check::<f64, NR_F64>(isa, 1e-14);
        }
    }

    /// Inexact values: the FMA kernels (AVX-512, AVX2) compute the same chain of
    /// FMAs per element, so they agree bit for bit; the portable kernel rounds
    /// each product, so it agrees to `k` roundings of the sum of |products|.
    fn check_paths_agree<T: MicroKernel, const NR: usize>() {
        let paths = crate::kernels::isa::tests::supported();
        let (k, ldb) = (53, NR + 5);
        let a: Vec<T> = (0..k * MR)
            .map(|i| T::from(((i * 37 % 101) as f64 - 50.0) / 7.0).unwrap())
            .collect();
        let b: Vec<T> = (0..k * ldb)
            .map(|i| T::from(((i * 53 % 97) as f64 - 48.0) / 11.0).unwrap())
            .collect();
        let rows = RowTable::new((0..k).map(|p| p * ldb).collect());
        for cols in [NR, NR / 2 + 3, 7] {
            let run = |isa: Isa| {
                let (mut direct, mut indirect) =
                    (vec![T::zero(); MR * NR], vec![T::zero(); MR * NR]);
                T::kernel_on(isa, k, (&a, ALayout::Packed), &b, ldb, &mut direct, cols);
                T::kernel_indirect_on(
                    isa,
                    k,
                    (&a, ALayout::Packed),
                    &b,
                    &rows,
                    &mut indirect,
                    cols,
                );
                let keep = |acc: Vec<T>| -> Vec<T> {
                    acc.chunks(NR)
                        .flat_map(|row| row[..cols].to_vec())
                        .collect()
                };
                (keep(direct), keep(indirect))
            };
            let results: Vec<(Vec<T>, Vec<T>)> = paths.iter().map(|&isa| run(isa)).collect();
            for (isa, (direct, indirect)) in paths.iter().zip(&results) {
                assert!(direct == indirect, "{isa:?} cols {cols}");
                let (best, _) = &results[0];
                if *isa != Isa::Portable {
                    assert!(direct == best, "{isa:?} differs from {:?}", paths[0]);
                    continue;
                }
                for (i, (&got, &want)) in direct.iter().zip(best).enumerate() {
                    let (r, j) = (i / cols, i % cols);
                    let bound: f64 = (0..k)
                        .map(|p| (a[p * MR + r] * b[p * ldb + j]).abs().to_f64().unwrap())
                        .sum::<f64>()
                        * k as f64
                        * T::epsilon().to_f64().unwrap();
                    let diff = (got - want).abs().to_f64().unwrap();
                    assert!(diff <= bound, "({r}, {j}): {diff} > {bound}");
                }
            }
        }
    }

    #[test]
    fn fma_paths_agree_bit_for_bit_and_portable_to_rounding() {
        check_paths_agree::<f32, NR_F32>();
        check_paths_agree::<f64, NR_F64>();
    }
}
