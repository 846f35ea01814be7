//! `f32` powers in AVX2 registers (8 lanes) with tables, as the AVX-512 ones
//! (`avx512.rs`, which documents the method): one `vpermps` reads an 8-entry
//! table, so the intervals are wider (`|r| <= 0.059`, `|f| <= 1/16`) and the
//! polynomials longer (6 and 4 coefficients). AVX2 has no `vgetmant`,
//! `vgetexp` or `vscalef`: the exponent is split with integer operations, and
//! `2^K` applied as two normal factors (a subnormal result is rounded once).
//!
//! The registers take lanes that are `+0` or positive normal numbers; a
//! register with any other lane (negative, subnormal, infinite, NaN, `-0`)
//! goes through the one-value steps lane by lane, which give C's special
//! values. Zeros are common (rectified activations) and stay in registers.
//!
//! A register value is made only by loading inside the `unsafe fn`s below,
//! whose callers guarantee AVX2 and FMA; the private helpers take registers
//! and are only called there.

use super::tables::F32_AVX2_TABLES as TABLES;
use super::{pow, pow_pair, Fused, Power};
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// The tables in registers: `invc`, `hi`, `lo`, `T`, `T'`.
#[derive(Clone, Copy)]
struct Tables([__m256; 5]);

/// `p` and what a zero base gives.
#[derive(Clone, Copy)]
struct Splat {
    p: __m256,
    zero_power: __m256,
}

#[inline(always)]
unsafe fn splat(power: &Power<f32>) -> Splat {
    // SAFETY: AVX (the caller).
    unsafe {
        Splat {
            p: _mm256_set1_ps(power.p),
            // pow(+0, p): 0 for p > 0, inf for p < 0.
            zero_power: _mm256_set1_ps(if power.p > 0.0 { 0.0 } else { f32::INFINITY }),
        }
    }
}

#[inline(always)]
unsafe fn load_tables() -> Tables {
    let t = &TABLES;
    // SAFETY: AVX (the caller); each table has 8 elements.
    unsafe {
        Tables([
            _mm256_loadu_ps(t.invc.as_ptr()),
            _mm256_loadu_ps(t.logc_hi.as_ptr()),
            _mm256_loadu_ps(t.logc_lo.as_ptr()),
            _mm256_loadu_ps(t.exp_hi.as_ptr()),
            _mm256_loadu_ps(t.exp_lo.as_ptr()),
        ])
    }
}

/// The polynomial with coefficients `c` (constant first) at `x`, Horner's rule.
#[inline(always)]
unsafe fn polynomial(x: __m256, c: &[f32]) -> __m256 {
    // SAFETY: AVX and FMA (the caller).
    unsafe {
        let mut acc = _mm256_set1_ps(c[c.len() - 1]);
        for &coefficient in c[..c.len() - 1].iter().rev() {
            acc = _mm256_fmadd_ps(acc, x, _mm256_set1_ps(coefficient));
        }
        acc
    }
}

/// Whether every lane is `+0` or a positive normal number.
#[inline(always)]
unsafe fn in_registers(x: __m256) -> bool {
    // SAFETY: AVX2 (the caller).
    unsafe {
        let bits = _mm256_castps_si256(x);
        let normal = _mm256_and_si256(
            _mm256_cmpgt_epi32(
                bits,
                _mm256_set1_epi32(f32::MIN_POSITIVE.to_bits() as i32 - 1),
            ),
            _mm256_cmpgt_epi32(_mm256_set1_epi32(f32::INFINITY.to_bits() as i32), bits),
        );
        let zero = _mm256_cmpeq_epi32(bits, _mm256_setzero_si256());
        _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_or_si256(normal, zero))) == 0xFF
    }
}

/// `log2 x` as `(k + hi, lo + r P(r))` for `x` positive normal (1 where `x` is
/// 0, whose lanes the callers replace).
#[inline(always)]
unsafe fn log2_parts(x: __m256, t: &Tables) -> (__m256, __m256) {
    // SAFETY: AVX2 and FMA (the caller).
    unsafe {
        let one = _mm256_set1_ps(1.0);
        let core = _mm256_blendv_ps(x, one, _mm256_cmp_ps::<_CMP_EQ_OQ>(x, _mm256_setzero_ps()));
        let bits = _mm256_castps_si256(core);
        // k = floor(log2(core / 0.75)), m = core / 2^k in [0.75, 1.5).
        let shifted = _mm256_sub_epi32(bits, _mm256_set1_epi32(0.75f32.to_bits() as i32));
        let k = _mm256_srai_epi32::<23>(shifted);
        let m_bits = _mm256_sub_epi32(bits, _mm256_slli_epi32::<23>(k));
        let m = _mm256_castsi256_ps(m_bits);
        // vpermps reads the low 3 bits: the top 3 of m's fraction.
        let index = _mm256_srli_epi32::<20>(m_bits);
        let r = _mm256_fmsub_ps(m, _mm256_permutevar8x32_ps(t.0[0], index), one);
        let head = _mm256_add_ps(
            _mm256_cvtepi32_ps(k),
            _mm256_permutevar8x32_ps(t.0[1], index),
        );
        let tail = _mm256_fmadd_ps(
            r,
            polynomial(r, &TABLES.log_poly),
            _mm256_permutevar8x32_ps(t.0[2], index),
        );
        (head, tail)
    }
}

/// `2^(p (head + tail))`, exactly 1 where `x` is 1 and `pow(+0, p)` where `x`
/// is 0.
#[inline(always)]
unsafe fn exp2_product(x: __m256, power: Splat, head: __m256, tail: __m256, t: &Tables) -> __m256 {
    const ROUNDER: f32 = 1.5 * (1u32 << 23) as f32;
    // SAFETY: AVX2 and FMA (the caller).
    unsafe {
        let p = power.p;
        let u = _mm256_mul_ps(p, tail);
        // 2^-160 is 0 and 2^130 infinite whatever f; K stays where its two
        // halves are normal powers of two.
        let y = _mm256_fmadd_ps(p, head, u);
        let y = _mm256_min_ps(
            _mm256_max_ps(y, _mm256_set1_ps(-160.0)),
            _mm256_set1_ps(130.0),
        );
        // n + ROUNDER, n = round(8 y) in the low bits.
        let s = _mm256_fmadd_ps(y, _mm256_set1_ps(8.0), _mm256_set1_ps(ROUNDER));
        let n_over = _mm256_mul_ps(
            _mm256_sub_ps(s, _mm256_set1_ps(ROUNDER)),
            _mm256_set1_ps(0.125),
        );
        let f = _mm256_add_ps(_mm256_fmsub_ps(p, head, n_over), u);
        let f = _mm256_min_ps(_mm256_max_ps(f, _mm256_set1_ps(-1.0)), _mm256_set1_ps(1.0));
        let index = _mm256_castps_si256(s);
        let q = _mm256_mul_ps(f, polynomial(f, &TABLES.exp_poly));
        let high = _mm256_permutevar8x32_ps(t.0[3], index);
        let e = _mm256_add_ps(
            high,
            _mm256_fmadd_ps(high, q, _mm256_permutevar8x32_ps(t.0[4], index)),
        );
        // K = floor(n / 8), as 2^h 2^(K - h).
        let n = _mm256_sub_epi32(index, _mm256_set1_epi32(ROUNDER.to_bits() as i32));
        let big_k = _mm256_srai_epi32::<3>(n);
        let h = _mm256_srai_epi32::<1>(big_k);
        let bias = _mm256_set1_epi32(127);
        let first = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(h, bias)));
        let second = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_sub_epi32(big_k, h),
            bias,
        )));
        let result = _mm256_mul_ps(_mm256_mul_ps(e, first), second);
        let one = _mm256_set1_ps(1.0);
        let result = _mm256_blendv_ps(result, one, _mm256_cmp_ps::<_CMP_EQ_OQ>(x, one));
        _mm256_blendv_ps(
            result,
            power.zero_power,
            _mm256_cmp_ps::<_CMP_EQ_OQ>(x, _mm256_setzero_ps()),
        )
    }
}

/// `body` over `x` 8 lanes at a time where [`in_registers`] holds, writing its
/// registers to `outs`; `lanes` for every other lane (the last partial
/// register, and registers with a special lane).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[inline(always)]
unsafe fn map<const N: usize>(
    x: &[f32],
    mut outs: [&mut [MaybeUninit<f32>]; N],
    body: impl Fn(__m256) -> [__m256; N],
    lanes: impl Fn(f32) -> [f32; N],
) {
    let len = outs.iter().fold(x.len(), |len, out| len.min(out.len()));
    let mut start = 0;
    while start + 8 <= len {
        // SAFETY: AVX (the caller); 8 elements of `x` and of every output from
        // `start` (`start + 8 <= len`).
        unsafe {
            let v = _mm256_loadu_ps(x.as_ptr().add(start));
            if in_registers(v) {
                let results = body(v);
                for (out, result) in outs.iter_mut().zip(results) {
                    _mm256_storeu_ps(out.as_mut_ptr().add(start).cast::<f32>(), result);
                }
                start += 8;
                continue;
            }
        }
        for i in start..start + 8 {
            for (out, value) in outs.iter_mut().zip(lanes(x[i])) {
                out[i].write(value);
            }
        }
        start += 8;
    }
    for i in start..len {
        for (out, value) in outs.iter_mut().zip(lanes(x[i])) {
            out[i].write(value);
        }
    }
}

/// `out[i] = x[i]^p`.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn powers(x: &[f32], power: &Power<f32>, out: &mut [MaybeUninit<f32>]) {
    // SAFETY: AVX2 and FMA (the caller).
    unsafe {
        let (tables, splat) = (load_tables(), splat(power));
        map::<1>(
            x,
            [out],
            #[inline(always)]
            |v| {
                let (head, tail) = log2_parts(v, &tables);
                [exp2_product(v, splat, head, tail, &tables)]
            },
            #[inline(always)]
            |v| [pow::<f32, Fused>(v, power)],
        );
    }
}

/// `out[i] = x[i]^p`, `out2[i] = x[i]^(p - 1)` (`slope` is `p - 1`): the second
/// `x^p / x` where `x` and both powers are normal (as on AVX-512), else an
/// exponential from the shared logarithm.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn powers_and_slopes(
    x: &[f32],
    power: &Power<f32>,
    slope: &Power<f32>,
    out: &mut [MaybeUninit<f32>],
    out2: &mut [MaybeUninit<f32>],
) {
    // SAFETY: AVX2 and FMA (the caller).
    unsafe {
        let (tables, first, second) = (load_tables(), splat(power), splat(slope));
        map::<2>(
            x,
            [out, out2],
            #[inline(always)]
            |v| {
                let (head, tail) = log2_parts(v, &tables);
                let term = exp2_product(v, first, head, tail, &tables);
                let quotient = _mm256_div_ps(term, v);
                let low = _mm256_set1_ps(f32::MIN_POSITIVE);
                let high = _mm256_set1_ps(f32::INFINITY);
                let mut normal = _mm256_cmp_ps::<_CMP_GE_OQ>(v, low);
                for w in [term, quotient] {
                    normal = _mm256_and_ps(normal, _mm256_cmp_ps::<_CMP_GE_OQ>(w, low));
                    normal = _mm256_and_ps(normal, _mm256_cmp_ps::<_CMP_LT_OQ>(w, high));
                }
                if _mm256_movemask_ps(normal) == 0xFF {
                    [term, quotient]
                } else {
                    [term, exp2_product(v, second, head, tail, &tables)]
                }
            },
            #[inline(always)]
            |v| [pow::<f32, Fused>(v, power), pow::<f32, Fused>(v, slope)],
        );
    }
}

/// `out[i] = x[i]^p`, `out2[i] = x[i]^q`, sharing the logarithm.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn power_pairs(
    x: &[f32],
    first: &Power<f32>,
    second: &Power<f32>,
    out: &mut [MaybeUninit<f32>],
    out2: &mut [MaybeUninit<f32>],
) {
    // SAFETY: AVX2 and FMA (the caller).
    unsafe {
        let (tables, p, q) = (load_tables(), splat(first), splat(second));
        map::<2>(
            x,
            [out, out2],
            #[inline(always)]
            |v| {
                let (head, tail) = log2_parts(v, &tables);
                [
                    exp2_product(v, p, head, tail, &tables),
                    exp2_product(v, q, head, tail, &tables),
                ]
            },
            #[inline(always)]
            |v| {
                let (a, b) = pow_pair::<f32, Fused>(v, first, second);
                [a, b]
            },
        );
    }
}
