//! Packing strided matrices into the panels the GEMM micro-kernel reads.

use super::microkernel::{MicroKernel, MR};
use super::scalar::Scalar;

/// Elements of a `rows x k` matrix packed into `MR`-row panels.
pub fn packed_a_len(rows: usize, k: usize) -> usize {
    rows.div_ceil(MR) * MR * k
}

/// Elements of a `k x cols` matrix packed into `nr`-column panels.
pub fn packed_b_len(k: usize, cols: usize, nr: usize) -> usize {
    cols.div_ceil(nr) * nr * k
}

/// Pack `src[offset + r * rs + p * cs]` (`rows x k`) into `MR`-row panels: element
/// `(r, p)` goes to `(r / MR) * k * MR + p * MR + r % MR`; missing rows are zero.
pub fn pack_a<T: Scalar>(
    src: &[T],
    offset: usize,
    rows: usize,
    k: usize,
    rs: usize,
    cs: usize,
    dst: &mut [T],
) {
    let dst = &mut dst[..packed_a_len(rows, k)];
    if dst.is_empty() {
        return;
    }
    for (panel, out) in dst.chunks_exact_mut(k * MR).enumerate() {
        pack_a_panel(src, offset, rows, (rs, cs), panel, out);
    }
}

/// Panel `panel` (`k * MR` elements, `k = out.len() / MR`) of [`pack_a`]: callers
/// packing large matrices hand the panels to different threads.
pub fn pack_a_panel<T: Scalar>(
    src: &[T],
    offset: usize,
    rows: usize,
    (rs, cs): (usize, usize),
    panel: usize,
    out: &mut [T],
) {
    let k = out.len() / MR;
    let r0 = panel * MR;
    let valid = MR.min(rows.saturating_sub(r0));
    if valid < MR {
        out.fill(T::zero());
    }
    if cs == 1 {
        // Rows are contiguous: one pass per row, writing every MR-th element of a
        // panel that stays in cache, instead of gathering MR rows per step.
        for r in 0..valid {
            let row = &src[offset + (r0 + r) * rs..][..k];
            for (step, &v) in out.chunks_exact_mut(MR).zip(row) {
                step[r] = v;
            }
        }
    } else if rs == 1 {
        // Columns are contiguous: each step is one copy of `valid` elements.
        for (p, step) in out.chunks_exact_mut(MR).enumerate() {
            let at = offset + r0 + p * cs;
            step[..valid].copy_from_slice(&src[at..at + valid]);
        }
    } else {
        for (p, step) in out.chunks_exact_mut(MR).enumerate() {
            for (r, slot) in step[..valid].iter_mut().enumerate() {
                *slot = src[offset + (r0 + r) * rs + p * cs];
            }
        }
    }
}

/// Pack `src[offset + p * rs + j * cs]` (`k x cols`) into `NR`-column panels:
/// element `(p, j)` goes to `(j / NR) * k * NR + p * NR + j % NR`; missing columns
/// are zero.
pub fn pack_b<T: MicroKernel>(
    src: &[T],
    offset: usize,
    k: usize,
    cols: usize,
    rs: usize,
    cs: usize,
    dst: &mut [T],
) {
    let nr = T::NR;
    let dst = &mut dst[..packed_b_len(k, cols, nr)];
    if dst.is_empty() {
        return;
    }
    for (panel, out) in dst.chunks_exact_mut(k * nr).enumerate() {
        let j0 = panel * nr;
        let valid = nr.min(cols - j0);
        for (p, step) in out.chunks_exact_mut(nr).enumerate() {
            let row = offset + p * rs + j0 * cs;
            if cs == 1 {
                step[..valid].copy_from_slice(&src[row..row + valid]);
            } else {
                for (j, slot) in step[..valid].iter_mut().enumerate() {
                    *slot = src[row + j * cs];
                }
            }
            step[valid..].fill(T::zero());
        }
    }
}
