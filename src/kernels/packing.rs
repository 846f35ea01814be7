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
        let r0 = panel * MR;
        let valid = MR.min(rows - r0);
        for (p, step) in out.chunks_exact_mut(MR).enumerate() {
            for (r, slot) in step.iter_mut().enumerate() {
                *slot = if r < valid {
                    src[offset + (r0 + r) * rs + p * cs]
                } else {
                    T::zero()
                };
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
