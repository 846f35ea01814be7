//! The GEMM drivers: `A (rows x k) . B (k x cols)` as a loop over micro-kernel
//! blocks, with A packed into panels and B either packed, read in place as
//! row-major rows, or read through a table of row offsets (an implicit GEMM). Each
//! block is handed to a store callback, so callers write results where they
//! belong (with a bias, into uninitialised memory, across phases).

use super::microkernel::{ALayout, MicroKernel, RowTable, MR};

/// The A operand of a GEMM (`rows x k`).
#[derive(Debug, Clone, Copy)]
pub enum AMatrix<'a, T> {
    /// Packed into `MR`-row panels (see [`super::packing::pack_a`]).
    Packed(&'a [T]),
    /// Row-major with rows `lda` apart, read in place: a layer's filters are
    /// already `c_out x k` rows, and packing megabytes of them costs about as
    /// much as a small image's whole product.
    Rows(&'a [T], usize),
}

impl<'a, T> AMatrix<'a, T> {
    /// Panel `ip` (rows `ip * MR ..` of `rows`) over `k` steps.
    fn panel(self, ip: usize, k: usize, rows: usize) -> (&'a [T], ALayout) {
        match self {
            AMatrix::Packed(a) => (&a[ip * k * MR..(ip + 1) * k * MR], ALayout::Packed),
            AMatrix::Rows(a, lda) => {
                let r0 = ip * MR;
                let valid = MR.min(rows - r0);
                let layout = ALayout::Rows { lda, rows: valid };
                (a.get(r0 * lda..).unwrap_or(&[]), layout)
            }
        }
    }
}

/// A block of the product handed to a store callback: rows `row0 .. row0 + rows`,
/// columns `col0 .. col0 + cols`, values `acc[r * NR + j]`.
pub struct Block<'a, T> {
    pub row0: usize,
    pub col0: usize,
    pub rows: usize,
    pub cols: usize,
    pub acc: &'a [T],
    pub stride: usize,
}

impl<T: Copy> Block<'_, T> {
    /// Row `r` of the block (its `cols` valid values).
    pub fn row(&self, r: usize) -> &[T] {
        &self.acc[r * self.stride..r * self.stride + self.cols]
    }
}

/// Workspace of one micro-tile.
pub fn accumulator<T: MicroKernel>() -> Vec<T> {
    vec![T::zero(); MR * T::NR]
}

/// `A (rows x k) . B (k x cols)` from packed panels, handing each `MR x NR` block to
/// `store`. Every element is one in-order sum over `k`.
pub fn gemm_packed<T: MicroKernel>(
    k: usize,
    a: AMatrix<'_, T>,
    rows: usize,
    b: &[T],
    cols: usize,
    acc: &mut [T],
    store: impl FnMut(&Block<'_, T>),
) {
    let nr = T::NR;
    gemm_panels(k, a, rows, cols, acc, store, |jp, a_panel, acc, width| {
        T::kernel(
            k,
            a_panel,
            &b[jp * k * nr..(jp + 1) * k * nr],
            nr,
            acc,
            width,
        )
    })
}

/// As [`gemm_packed`] with B a row-major `k x ldb` matrix read in place (`ldb` at
/// least `cols` rounded up to `NR`; columns past `cols` must be finite, e.g.
/// zero, and are dropped).
#[allow(clippy::too_many_arguments)]
pub fn gemm_rows<T: MicroKernel>(
    k: usize,
    a: AMatrix<'_, T>,
    rows: usize,
    (b, ldb): (&[T], usize),
    cols: usize,
    acc: &mut [T],
    rows_outer: bool,
    mut store: impl FnMut(&Block<'_, T>),
) {
    // B's rows may be far apart (a 1x1 layer's channel planes): more streams than
    // the hardware prefetcher follows, so each new column panel starts by asking
    // for the rows of the panel two ahead into L2 while it computes
    // (docs/performance.md).
    let prefetched = std::cell::Cell::new(usize::MAX);
    // With k == 0 (no input channels) B is empty and nothing is read.
    let kernel = |jp: usize, a_panel: (&[T], ALayout), acc: &mut [T], width| {
        // (Row panels outermost re-read every B panel, already in cache.)
        if !rows_outer && prefetched.replace(jp) != jp {
            let next = (jp + 2) * T::NR;
            for p in 0..k {
                for offset in [0, T::NR / 3, 2 * T::NR / 3, T::NR - 1] {
                    prefetch(b, next + p * ldb + offset);
                }
            }
        }
        T::kernel(
            k,
            a_panel,
            b.get(jp * T::NR..).unwrap_or(&[]),
            ldb,
            acc,
            width,
        )
    };
    gemm_panels_in(k, a, rows, cols, acc, rows_outer, &mut store, kernel)
}

/// Ask the CPU to bring `data[index]`'s cache line into L1 (nothing when `index`
/// is past the end, or on other architectures).
#[inline(always)]
fn prefetch<T>(data: &[T], index: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(value) = data.get(index) {
        // SAFETY: a prefetch only hints the cache and never faults; the pointer is
        // to an element of `data`.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(
                (value as *const T).cast::<i8>(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, index);
}

/// As [`gemm_packed`] with row `p` of B read in place at `b[rows[p]..]` (an
/// implicit GEMM: `rows` are the input taps); every row must have `cols` rounded
/// up to `NR` finite elements (the extra columns are dropped). `rows_outer` picks
/// the block order (see `gemm_panels_in`).
#[allow(clippy::too_many_arguments)]
pub fn gemm_indirect<T: MicroKernel>(
    k: usize,
    a: AMatrix<'_, T>,
    rows: usize,
    b: &[T],
    b_rows: &RowTable,
    cols: usize,
    acc: &mut [T],
    rows_outer: bool,
    mut store: impl FnMut(&Block<'_, T>),
) {
    gemm_panels_in(
        k,
        a,
        rows,
        cols,
        acc,
        rows_outer,
        &mut store,
        |jp, a_panel, acc, width| {
            T::kernel_indirect(
                k,
                a_panel,
                b.get(jp * T::NR..).unwrap_or(&[]),
                b_rows,
                acc,
                width,
            )
        },
    )
}

/// The shared loop: `kernel(jp, a_panel, acc, cols)` multiplies an A panel by
/// B panel `jp` (of `cols` valid columns) into `acc`.
fn gemm_panels<T: MicroKernel>(
    k: usize,
    a: AMatrix<'_, T>,
    rows: usize,
    cols: usize,
    acc: &mut [T],
    mut store: impl FnMut(&Block<'_, T>),
    kernel: impl Fn(usize, (&[T], ALayout), &mut [T], usize),
) {
    gemm_panels_in(k, a, rows, cols, acc, false, &mut store, kernel)
}

/// [`gemm_panels`] with the order of the blocks chosen: column panels outermost
/// (each B panel read once, every output row's stream written a panel at a time),
/// or row panels outermost (`rows_outer`: B panels re-read for every A panel, but
/// the output written as `MR` long streams).
#[allow(clippy::too_many_arguments)]
fn gemm_panels_in<T: MicroKernel>(
    k: usize,
    a: AMatrix<'_, T>,
    rows: usize,
    cols: usize,
    acc: &mut [T],
    rows_outer: bool,
    store: &mut impl FnMut(&Block<'_, T>),
    kernel: impl Fn(usize, (&[T], ALayout), &mut [T], usize),
) {
    let nr = T::NR;
    let (col_panels, row_panels) = (cols.div_ceil(nr), rows.div_ceil(MR));
    let (outer, inner) = if rows_outer {
        (row_panels, col_panels)
    } else {
        (col_panels, row_panels)
    };
    for o in 0..outer {
        for i in 0..inner {
            let (ip, jp) = if rows_outer { (o, i) } else { (i, o) };
            let a_panel = a.panel(ip, k, rows);
            let width = nr.min(cols - jp * nr);
            kernel(jp, a_panel, acc, width);
            store(&Block {
                row0: ip * MR,
                col0: jp * nr,
                rows: MR.min(rows - ip * MR),
                cols: width,
                acc,
                stride: nr,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::packing::{pack_a, pack_b, packed_a_len, packed_b_len};

    fn product<T: MicroKernel>(m: usize, k: usize, n: usize) {
        // a is stored column-major, b row-major, to exercise both strides.
        let a: Vec<T> = (0..m * k)
            .map(|i| T::from((i * 7 % 11) as f64 - 5.0).unwrap())
            .collect();
        let b: Vec<T> = (0..k * n)
            .map(|i| T::from((i * 3 % 13) as f64 * 0.5).unwrap())
            .collect();
        let mut pa = vec![T::zero(); packed_a_len(m, k)];
        let mut pb = vec![T::zero(); packed_b_len(k, n, T::NR)];
        pack_a(&a, 0, m, k, 1, m, &mut pa);
        pack_b(&b, 0, k, n, n, 1, &mut pb);
        let mut c = vec![T::zero(); m * n];
        let mut acc = accumulator::<T>();
        gemm_packed(k, AMatrix::Packed(&pa), m, &pb, n, &mut acc, |blk| {
            for r in 0..blk.rows {
                let dst = (blk.row0 + r) * n + blk.col0;
                c[dst..dst + blk.cols].copy_from_slice(blk.row(r));
            }
        });
        // The same product with B read in place from rows padded to whole panels.
        let ldb = n.div_ceil(T::NR).max(1) * T::NR;
        let mut rows = vec![T::zero(); k * ldb];
        for p in 0..k {
            rows[p * ldb..p * ldb + n].copy_from_slice(&b[p * n..(p + 1) * n]);
        }
        let mut c_rows = vec![T::zero(); m * n];
        gemm_rows(
            k,
            AMatrix::Packed(&pa),
            m,
            (&rows, ldb),
            n,
            &mut acc,
            m > 8,
            |blk| {
                for r in 0..blk.rows {
                    let dst = (blk.row0 + r) * n + blk.col0;
                    c_rows[dst..dst + blk.cols].copy_from_slice(blk.row(r));
                }
            },
        );
        // And with B's rows read through offsets, in reverse order with gaps.
        let gap = ldb + 5;
        let mut scattered = vec![T::zero(); k * gap + ldb];
        let offsets = RowTable::new((0..k).map(|p| (k - 1 - p) * gap + 3).collect());
        for (p, &at) in offsets.rows().iter().enumerate() {
            scattered[at..at + n].copy_from_slice(&b[p * n..(p + 1) * n]);
        }
        let mut c_indirect = vec![T::zero(); m * n];
        gemm_indirect(
            k,
            AMatrix::Packed(&pa),
            m,
            &scattered,
            &offsets,
            n,
            &mut acc,
            m > 8,
            |blk| {
                for r in 0..blk.rows {
                    let dst = (blk.row0 + r) * n + blk.col0;
                    c_indirect[dst..dst + blk.cols].copy_from_slice(blk.row(r));
                }
            },
        );
        // A read in place as row-major rows `k + 2` apart (the last ending at the
        // slice's end), with the in-place B.
        let lda = k + 2;
        let mut a_rows = vec![T::zero(); m.saturating_sub(1) * lda + k];
        for i in 0..m {
            for p in 0..k {
                a_rows[i * lda + p] = a[p * m + i];
            }
        }
        let mut c_in_place = vec![T::zero(); m * n];
        gemm_rows(
            k,
            AMatrix::Rows(&a_rows, lda),
            m,
            (&rows, ldb),
            n,
            &mut acc,
            m <= 8,
            |blk| {
                for r in 0..blk.rows {
                    let dst = (blk.row0 + r) * n + blk.col0;
                    c_in_place[dst..dst + blk.cols].copy_from_slice(blk.row(r));
                }
            },
        );
        assert!(c_in_place == c_rows, "in-place A differs from packed A");
        for i in 0..m {
            for j in 0..n {
                let want: f64 = (0..k)
                    .map(|p| a[p * m + i].to_f64().unwrap() * b[p * n + j].to_f64().unwrap())
                    .sum();
                for (name, got) in [("packed", &c), ("rows", &c_rows), ("indirect", &c_indirect)] {
                    assert_eq!(
                        got[i * n + j].to_f64().unwrap(),
                        want,
                        "{name} ({i}, {j}) of {m}x{k}x{n}"
                    );
                }
            }
        }
    }

    #[test]
    fn packed_gemm_matches_naive_product_on_ragged_shapes() {
        for (m, k, n) in [(1, 1, 1), (8, 3, 48), (13, 7, 50), (20, 0, 5), (3, 30, 100)] {
            product::<f32>(m, k, n);
            product::<f64>(m, k, n);
        }
    }
}
