//! A bfloat16 GEMM on AVX512_BF16's `vdpbf16ps`: `acc (MR x NRB, f32) = A . B`
//! with A and B in bfloat16 (as raw bits) and every sum in float32.
//!
//! `vdpbf16ps` multiplies two bfloat16 pairs per float32 lane and adds both
//! products (each exact in float32) to the lane: twice the products per
//! instruction of a float32 FMA. The pairs run along the reduction: A's pair
//! `(A[r, 2p], A[r, 2p + 1])` is one 32-bit broadcast read in place from a filter
//! row; B's rows `2p` and `2p + 1` (read in place through a row table, as the
//! implicit GEMM's input taps) are interleaved in registers (`vpunpck{l,h}wd`),
//! which leaves the columns of the two accumulators of a row in the order
//! `{0-3, 8-11, 16-19, 24-27}` and `{4-7, 12-15, 20-23, 28-31}`; the store puts
//! them back in order. An odd last reduction step pairs its row with zeros.
//!
//! Each accumulator element is one chain of `vdpbf16ps` steps in pair order, so
//! the result does not depend on the tiling or the thread count; it differs from
//! the float32 kernels' FMA chain in its order (two products per step) and, as
//! `vdpbf16ps` does, in treating subnormal bfloat16 inputs and results as zero
//! (both within the documented error bound of a float32 sum).

use super::gemm::Block;
use super::isa::{self, Isa};
use super::microkernel::{RowTable, MR};

/// Columns of a bfloat16 micro-tile (two 16-lane float32 accumulators per row).
pub const NRB: usize = 32;

/// Whether the bfloat16 kernel may run: the active path is AVX-512 and the CPU
/// has AVX512_BF16 (and AVX512BW, for the interleaves).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        isa::active() == Isa::Avx512
            && std::arch::is_x86_feature_detected!("avx512bf16")
            && std::arch::is_x86_feature_detected!("avx512bw")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `A (rows x k) . B (k x cols)` in float32 sums, handing each `MR x NRB` block
/// to `store`: A is `rows` bfloat16 rows of `lda` read in place, B's row `p`
/// starts at `b[b_rows[p]]` (`cols` columns, read in `NRB`-wide panels: `b` must
/// hold `NRB` elements past the last row's last panel start, which the caller
/// pads with zeros). Row panels outermost when `rows_outer`.
///
/// # Panics
/// If [`available`] is false, or the buffers are too short for the reads.
#[allow(clippy::too_many_arguments)]
pub fn gemm_indirect_bf16(
    k: usize,
    a: (&[u16], usize),
    rows: usize,
    b: (&[u16], &RowTable),
    cols: usize,
    acc: &mut [f32],
    rows_outer: bool,
    store: impl FnMut(&Block<'_, f32>),
) {
    assert!(
        available(),
        "the bfloat16 GEMM needs AVX512_BF16 on the AVX-512 path"
    );
    #[cfg(target_arch = "x86_64")]
    let tile = |k, a, lda, valid, b, rows_at, acc| {
        // SAFETY: the CPU has AVX-512F, AVX512BW and AVX512_BF16 (asserted just
        // above), and `indirect_panels` checked the lengths it passes on.
        unsafe { kernel(k, a, lda, valid, b, rows_at, acc) }
    };
    #[cfg(not(target_arch = "x86_64"))]
    let tile = |_, _, _, _, _, _, _| {};
    indirect_panels(k, a, rows, b, (cols, NRB), acc, rows_outer, store, tile);
}

/// The loop of the indirect 16-bit GEMMs over `MR x nr` tiles (row panels
/// outermost when `rows_outer`), each computed by `tile(k, a, lda, rows, b,
/// rows_at, acc)` and handed to `store`, after checking that every read of A
/// (`rows` rows of `lda`, `k` each) and of B (`nr` elements from each row start
/// of the table, per panel) stays inside the slices.
#[allow(clippy::too_many_arguments)]
fn indirect_panels<A>(
    k: usize,
    (a, lda): (&[A], usize),
    rows: usize,
    (b, b_rows): (&[u16], &RowTable),
    (cols, nr): (usize, usize),
    acc: &mut [f32],
    rows_outer: bool,
    mut store: impl FnMut(&Block<'_, f32>),
    tile: impl Fn(usize, *const A, usize, usize, *const u16, *const usize, *mut f32),
) {
    let (col_panels, row_panels) = (cols.div_ceil(nr), rows.div_ceil(MR));
    let last_row = b_rows.rows().iter().take(k).copied().max().unwrap_or(0);
    assert!(
        acc.len() >= MR * nr
            && b_rows.rows().len() >= k
            && (k == 0 || rows == 0 || a.len() >= (rows - 1) * lda + k)
            && (k == 0 || cols == 0 || (col_panels - 1) * nr + last_row + nr <= b.len()),
        "16-bit GEMM buffers too short: k={k}, rows={rows}, cols={cols}, a={}, b={}",
        a.len(),
        b.len()
    );
    let (outer, inner) = if rows_outer {
        (row_panels, col_panels)
    } else {
        (col_panels, row_panels)
    };
    for o in 0..outer {
        for i in 0..inner {
            let (ip, jp) = if rows_outer { (o, i) } else { (i, o) };
            let r0 = ip * MR;
            let valid = MR.min(rows - r0);
            // A's rows r0 .. r0 + valid and B's panel from jp * nr (in bounds,
            // checked above).
            let (a_at, b_at) = (a[r0 * lda..].as_ptr(), b[jp * nr..].as_ptr());
            tile(
                k,
                a_at,
                lda,
                valid,
                b_at,
                b_rows.rows().as_ptr(),
                acc.as_mut_ptr(),
            );
            store(&Block {
                row0: r0,
                col0: jp * nr,
                rows: valid,
                cols: nr.min(cols - jp * nr),
                acc,
                stride: nr,
            });
        }
    }
}

/// `A (rows x 2 * pairs) . B` in float32 sums for a packed B of bfloat16 pairs,
/// handing each `MR x NRB` block to `store`: A is `rows` bfloat16 rows of `lda`
/// read in place (pairs of adjacent elements), `b` holds `pairs` steps of `NRB`
/// 32-bit words, word `(q, j)` the pair `(B(2q, j), B(2q + 1, j))` (low half
/// first). Columns past `cols` are computed from whatever `b` holds there.
///
/// # Panics
/// If [`available`] is false, or the buffers are too short.
#[allow(clippy::too_many_arguments)]
pub fn gemm_pairs_bf16(
    pairs: usize,
    (a, lda): (&[u16], usize),
    rows: usize,
    b: &[u32],
    cols: usize,
    acc: &mut [f32],
    mut store: impl FnMut(&Block<'_, f32>),
) {
    assert!(
        available(),
        "the bfloat16 GEMM needs AVX512_BF16 on the AVX-512 path"
    );
    assert!(
        cols <= NRB
            && acc.len() >= MR * NRB
            && b.len() >= pairs * NRB
            && (pairs == 0 || rows == 0 || a.len() >= (rows - 1) * lda + 2 * pairs),
        "bfloat16 pair GEMM buffers too short: pairs={pairs}, rows={rows}, a={}, b={}",
        a.len(),
        b.len()
    );
    for r0 in (0..rows).step_by(MR) {
        let valid = MR.min(rows - r0);
        // SAFETY: the CPU has AVX-512F, AVX512BW and AVX512_BF16 (`available`);
        // rows r0 .. r0 + valid of A hold 2 * pairs elements, `b` pairs * NRB
        // words and `acc` MR x NRB (all asserted above).
        #[cfg(target_arch = "x86_64")]
        unsafe {
            kernel_pairs(
                pairs,
                a.as_ptr().add(r0 * lda),
                lda,
                valid,
                b.as_ptr(),
                acc.as_mut_ptr(),
            );
        }
        store(&Block {
            row0: r0,
            col0: 0,
            rows: valid,
            cols,
            acc,
            stride: NRB,
        });
    }
}

/// Columns of a float16 micro-tile (three 16-lane float32 accumulators per row,
/// as the float32 kernel's).
pub const NRF: usize = 48;

/// Whether the float16 kernel may run: the active path is AVX-512 (AVX-512F
/// converts float16 to float32, `vcvtph2ps`).
pub fn f16_available() -> bool {
    isa::active() == Isa::Avx512
}

/// [`gemm_indirect_bf16`] for float16 B (its bits) and float32 A (`rows` rows of
/// `lda`, read in place): B's rows are widened in registers and each element is
/// one FMA chain over `k` in order, the float32 kernels' sums exactly.
///
/// # Panics
/// If [`f16_available`] is false, or the buffers are too short for the reads.
#[allow(clippy::too_many_arguments)]
pub fn gemm_indirect_f16(
    k: usize,
    a: (&[f32], usize),
    rows: usize,
    b: (&[u16], &RowTable),
    cols: usize,
    acc: &mut [f32],
    rows_outer: bool,
    store: impl FnMut(&Block<'_, f32>),
) {
    assert!(f16_available(), "the float16 GEMM needs the AVX-512 path");
    #[cfg(target_arch = "x86_64")]
    let tile = |k, a, lda, valid, b, rows_at, acc| {
        // SAFETY: the CPU has AVX-512F (asserted just above), and
        // `indirect_panels` checked the lengths it passes on.
        unsafe { kernel_f16(k, a, lda, valid, b, rows_at, acc) }
    };
    #[cfg(not(target_arch = "x86_64"))]
    let tile = |_, _, _, _, _, _, _| {};
    indirect_panels(k, a, rows, b, (cols, NRF), acc, rows_outer, store, tile);
}

/// One `MR x NRF` tile of [`gemm_indirect_f16`].
///
/// # Safety
/// The CPU must support AVX-512F; `rows >= 1`; A's first `rows` rows hold `k`
/// elements, `rows_at` holds `k` offsets each with `NRF` readable elements from
/// `b`, and `acc` holds `MR * NRF` elements.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel_f16(
    k: usize,
    a: *const f32,
    lda: usize,
    rows: usize,
    b: *const u16,
    rows_at: *const usize,
    acc: *mut f32,
) {
    use std::arch::x86_64::*;
    // SAFETY: the offsets stay inside the ranges the caller guarantees; loads and
    // stores are unaligned.
    unsafe {
        let row = |r: usize| a.add(r.min(rows - 1) * lda);
        let mut c = [[_mm512_setzero_ps(); 3]; MR];
        for p in 0..k {
            let at = b.add(*rows_at.add(p));
            let bv = [
                _mm512_cvtph_ps(_mm256_loadu_si256(at.cast())),
                _mm512_cvtph_ps(_mm256_loadu_si256(at.add(16).cast())),
                _mm512_cvtph_ps(_mm256_loadu_si256(at.add(32).cast())),
            ];
            for (r, c_r) in c.iter_mut().enumerate() {
                let a_r = _mm512_set1_ps(*row(r).add(p));
                for (c_rj, &b_j) in c_r.iter_mut().zip(&bv) {
                    *c_rj = _mm512_fmadd_ps(a_r, b_j, *c_rj);
                }
            }
        }
        for (r, c_r) in c.iter().enumerate() {
            for (j, &v) in c_r.iter().enumerate() {
                _mm512_storeu_ps(acc.add(r * NRF + 16 * j), v);
            }
        }
    }
}

/// One `MR x NRB` tile of [`gemm_pairs_bf16`].
///
/// # Safety
/// The CPU must support AVX-512F, AVX512BW and AVX512_BF16; `rows >= 1`; A's
/// first `rows` rows hold `2 * pairs` elements, `b` holds `pairs * NRB` words
/// and `acc` `MR * NRB` elements.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn kernel_pairs(
    pairs: usize,
    a: *const u16,
    lda: usize,
    rows: usize,
    b: *const u32,
    acc: *mut f32,
) {
    use std::arch::x86_64::*;
    // SAFETY: the offsets stay inside the ranges the caller guarantees; loads and
    // stores are unaligned; the transmutes reinterpret 512-bit vectors.
    unsafe {
        let row = |r: usize| a.add(r.min(rows - 1) * lda);
        let mut lo = [_mm512_setzero_ps(); MR];
        let mut hi = [_mm512_setzero_ps(); MR];
        for q in 0..pairs {
            let b_lo: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(q * NRB).cast()));
            let b_hi: __m512bh =
                std::mem::transmute(_mm512_loadu_si512(b.add(q * NRB + 16).cast()));
            for r in 0..MR {
                let pair = row(r).add(2 * q).cast::<i32>().read_unaligned();
                let a_pair: __m512bh = std::mem::transmute(_mm512_set1_epi32(pair));
                lo[r] = _mm512_dpbf16_ps(lo[r], b_lo, a_pair);
                hi[r] = _mm512_dpbf16_ps(hi[r], b_hi, a_pair);
            }
        }
        for r in 0..MR {
            _mm512_storeu_ps(acc.add(r * NRB), lo[r]);
            _mm512_storeu_ps(acc.add(r * NRB + 16), hi[r]);
        }
    }
}

/// One `MR x NRB` tile: `acc[r * NRB + j] = sum_p A(r, p) B(p, j)`, A row `r`
/// at `a + min(r, rows - 1) * lda`, B row `p` at `b + rows_at[p]`.
///
/// # Safety
/// The CPU must support AVX-512F, AVX512BW and AVX512_BF16; `rows >= 1`; A's
/// first `rows` rows hold `k` elements, `rows_at` holds `k` offsets each with
/// `NRB` readable elements from `b`, and `acc` holds `MR * NRB` elements.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn kernel(
    k: usize,
    a: *const u16,
    lda: usize,
    rows: usize,
    b: *const u16,
    rows_at: *const usize,
    acc: *mut f32,
) {
    use std::arch::x86_64::*;
    // SAFETY: every pointer offset stays inside the ranges the caller guarantees
    // (A rows below `rows` and columns below `k`, B rows of the table with NRB
    // elements each, MR x NRB accumulators); loads and stores are unaligned; the
    // transmutes reinterpret 512-bit vectors of the same size.
    unsafe {
        let row = |r: usize| a.add(r.min(rows - 1) * lda);
        let mut lo = [_mm512_setzero_ps(); MR];
        let mut hi = [_mm512_setzero_ps(); MR];
        let pairs = k / 2;
        for p in 0..pairs {
            let x0 = _mm512_loadu_si512(b.add(*rows_at.add(2 * p)).cast());
            let x1 = _mm512_loadu_si512(b.add(*rows_at.add(2 * p + 1)).cast());
            let b_lo: __m512bh = std::mem::transmute(_mm512_unpacklo_epi16(x0, x1));
            let b_hi: __m512bh = std::mem::transmute(_mm512_unpackhi_epi16(x0, x1));
            for r in 0..MR {
                let pair = row(r).add(2 * p).cast::<i32>().read_unaligned();
                let a_pair: __m512bh = std::mem::transmute(_mm512_set1_epi32(pair));
                lo[r] = _mm512_dpbf16_ps(lo[r], b_lo, a_pair);
                hi[r] = _mm512_dpbf16_ps(hi[r], b_hi, a_pair);
            }
        }
        if k % 2 == 1 {
            let x0 = _mm512_loadu_si512(b.add(*rows_at.add(k - 1)).cast());
            let zero = _mm512_setzero_si512();
            let b_lo: __m512bh = std::mem::transmute(_mm512_unpacklo_epi16(x0, zero));
            let b_hi: __m512bh = std::mem::transmute(_mm512_unpackhi_epi16(x0, zero));
            for r in 0..MR {
                // The pair (A[r, k - 1], +0): its second product is 0 whatever B is.
                let single = i32::from(*row(r).add(k - 1));
                let a_pair: __m512bh = std::mem::transmute(_mm512_set1_epi32(single));
                lo[r] = _mm512_dpbf16_ps(lo[r], b_lo, a_pair);
                hi[r] = _mm512_dpbf16_ps(hi[r], b_hi, a_pair);
            }
        }
        let first = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
        let second =
            _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
        for r in 0..MR {
            let out = acc.add(r * NRB);
            _mm512_storeu_ps(out, _mm512_permutex2var_ps(lo[r], first, hi[r]));
            _mm512_storeu_ps(out.add(16), _mm512_permutex2var_ps(lo[r], second, hi[r]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bf16_bits(v: f32) -> u16 {
        half::bf16::from_f32(v).to_bits()
    }

    fn value(bits: u16) -> f64 {
        f64::from(half::bf16::from_bits(bits).to_f32())
    }

    #[test]
    fn pair_gemm_matches_a_float64_product() {
        if !available() {
            eprintln!("no AVX512_BF16: bfloat16 pair GEMM not tested");
            return;
        }
        for (pairs, rows, cols) in [(0, 3, 5), (1, 8, 32), (9, 13, 20), (40, 17, 32)] {
            let lda = 2 * pairs + 1;
            let a: Vec<u16> = (0..rows * lda)
                .map(|i| bf16_bits(((i * 7) % 11) as f32 * 0.25 - 1.0))
                .collect();
            let bv = |p: usize, j: usize| bf16_bits(((p * 31 + j * 5) % 13) as f32 * 0.5 - 3.0);
            let b: Vec<u32> = (0..pairs * NRB)
                .map(|i| {
                    let (q, j) = (i / NRB, i % NRB);
                    u32::from(bv(2 * q, j)) | (u32::from(bv(2 * q + 1, j)) << 16)
                })
                .collect();
            let mut acc = vec![0.0f32; MR * NRB];
            let mut got = vec![f32::NAN; rows * cols];
            gemm_pairs_bf16(pairs, (&a, lda), rows, &b, cols, &mut acc, |blk| {
                for r in 0..blk.rows {
                    for (j, &v) in blk.row(r).iter().enumerate() {
                        got[(blk.row0 + r) * cols + j] = v;
                    }
                }
            });
            for r in 0..rows {
                for j in 0..cols {
                    let terms: Vec<f64> = (0..2 * pairs)
                        .map(|p| value(a[r * lda + p]) * value(bv(p, j)))
                        .collect();
                    let exact: f64 = terms.iter().sum();
                    let magnitude: f64 = terms.iter().map(|t| t.abs()).sum();
                    let err = (f64::from(got[r * cols + j]) - exact).abs();
                    assert!(
                        err <= 2.0 * pairs as f64 * f64::from(f32::EPSILON) * magnitude,
                        "r={r} j={j}"
                    );
                }
            }
        }
    }

    #[test]
    fn matches_a_float64_product_for_odd_and_even_k_and_partial_tiles() {
        if !available() {
            eprintln!("no AVX512_BF16: bfloat16 GEMM not tested");
            return; // nothing to test on this CPU (the callers fall back to widening)
        }
        for (k, rows, cols, rows_outer) in [
            (0, 3, 5, false),
            (1, 8, 32, false),
            (7, 5, 40, true),
            (18, 13, 70, false),
            (33, 16, 64, true),
        ] {
            let lda = k + 3;
            let a: Vec<u16> = (0..rows * lda)
                .map(|i| bf16_bits(((i * 7) % 11) as f32 * 0.25 - 1.0))
                .collect();
            // B rows scattered through the buffer in reverse order, NRB zeros after.
            let pitch = cols + 5;
            let offsets: Vec<usize> = (0..k).map(|p| (k - 1 - p) * pitch).collect();
            let mut b: Vec<u16> = (0..k * pitch)
                .map(|i| bf16_bits(((i * 5) % 13) as f32 * 0.5 - 3.0))
                .collect();
            b.extend(std::iter::repeat_n(0, NRB + cols.div_ceil(NRB) * NRB));
            let table = RowTable::new(offsets.clone());
            let mut acc = vec![0.0f32; MR * NRB];
            let mut got = vec![f32::NAN; rows * cols];
            gemm_indirect_bf16(
                k,
                (&a, lda),
                rows,
                (&b, &table),
                cols,
                &mut acc,
                rows_outer,
                |blk| {
                    for r in 0..blk.rows {
                        for (j, &v) in blk.row(r).iter().enumerate() {
                            got[(blk.row0 + r) * cols + blk.col0 + j] = v;
                        }
                    }
                },
            );
            for r in 0..rows {
                for j in 0..cols {
                    let exact: f64 = (0..k)
                        .map(|p| value(a[r * lda + p]) * value(b[offsets[p] + j]))
                        .sum();
                    let magnitude: f64 = (0..k)
                        .map(|p| (value(a[r * lda + p]) * value(b[offsets[p] + j])).abs())
                        .sum();
                    let err = (f64::from(got[r * cols + j]) - exact).abs();
                    assert!(
                        err <= k as f64 * f64::from(f32::EPSILON) * magnitude,
                        "k={k} r={r} j={j}: {} vs {exact}",
                        got[r * cols + j]
                    );
                }
            }
        }
    }
}
