//! [`Lane`] on AVX-512F registers, 16 `f32` or 8 `f64` lanes, and the slice
//! loops over them. The instruction set has the steps the one-value lanes spell
//! out in integer operations: `vgetmant`/`vgetexp` split the exponent (of
//! subnormals too), `vscalef` multiplies by `2^q` with overflow, underflow and
//! subnormal rounding done right. It also has two-register lookups
//! (`vpermt2ps`/`vpermt2pd`), 32 `f32` or 16 `f64` entries: the powers here
//! take a table on each side of `2^(p log2 x)` ([`TablePower`]), about 60
//! instructions per register where the table-free steps of the other paths
//! took about 70 and a division, 1.7 times as fast.
//!
//! A register value is made only by [`Register::load`], an unsafe function
//! whose caller guarantees AVX-512F (the slice loops below, entered after the
//! check of `isa::active`); every safe method below therefore runs on a CPU
//! with AVX-512F, which is what each `unsafe` block relies on.

use super::{Elementary, Fma, Lane, Power};
use std::arch::x86_64::*;
use std::mem::MaybeUninit;
use std::ops::{Add, Div, Mul, Sub};

/// A register of [`Lane`]s that slices load into and store from.
pub(super) trait Register: Lane {
    /// Elements per register.
    const LANES: usize;

    /// Lanes `0 .. n` from `ptr` (`n <= LANES`), the others zero.
    ///
    /// # Safety
    /// The CPU must support AVX-512F, and `ptr` be readable for `n` elements.
    unsafe fn load(ptr: *const Self::Elem, n: usize) -> Self;

    /// All lanes from `ptr`.
    ///
    /// # Safety
    /// The CPU must support AVX-512F, and `ptr` be readable for `LANES` elements.
    unsafe fn load_all(ptr: *const Self::Elem) -> Self;

    /// All lanes to `ptr`.
    ///
    /// # Safety
    /// `ptr` must be writable for `LANES` elements.
    unsafe fn store_all(self, ptr: *mut Self::Elem);

    /// Lanes `0 .. n` to `ptr` (`n <= LANES`).
    ///
    /// # Safety
    /// `ptr` must be writable for `n` elements.
    unsafe fn store(self, ptr: *mut Self::Elem, n: usize);
}

/// The element types' registers.
pub(super) trait InRegisters: Elementary {
    type Register: TablePower<Elem = Self>;
}

impl InRegisters for f32 {
    type Register = F32x16;
}

impl InRegisters for f64 {
    type Register = F64x8;
}

/// 16 `f32` lanes.
#[derive(Clone, Copy)]
pub(super) struct F32x16(__m512);

/// 8 `f64` lanes.
#[derive(Clone, Copy)]
pub(super) struct F64x8(__m512d);

/// An arithmetic operator of a register type as one intrinsic.
macro_rules! binary {
    ($name:ident, $trait:ident, $method:ident, $intrinsic:ident) => {
        impl $trait for $name {
            type Output = $name;

            #[inline(always)]
            fn $method(self, other: $name) -> $name {
                // SAFETY: a register exists only on a CPU with AVX-512F.
                $name(unsafe { $intrinsic(self.0, other.0) })
            }
        }
    };
}

/// The mask of the lanes of `$v` that are positive, finite and nonzero: above
/// 0 and below `inf`, as floats. (Not the one-value lanes' `bits - 1 < inf -
/// 1`: the compiler makes its all-ones vector with an instruction the CPU does
/// not see as independent of the register's old value, which chained the
/// loop's iterations and made the `f64` powers three times slower.)
macro_rules! positive_finite {
    ($v:expr, $elem:ident, $set1:ident, $cmp:ident, $mask_cmp:ident) => {
        $mask_cmp::<_CMP_LT_OQ>(
            $cmp::<_CMP_GT_OQ>($v.0, $set1(0.0)),
            $v.0,
            $set1($elem::INFINITY),
        )
    };
}

/// [`Register`] and [`Lane`] for a register type, from its intrinsics.
macro_rules! register {
    ($name:ident, $reg:ty, $elem:ident, $lanes:expr, $mask:ty, $int:ident,
     ps: [$set1:ident, $add:ident, $sub:ident, $mul:ident, $div:ident, $fmadd:ident,
          $fmsub:ident, $abs:ident, $getmant:ident, $getexp:ident, $cmp:ident,
          $mask_mul:ident, $mask_add:ident, $roundscale:ident, $scalef:ident, $max:ident,
          $min:ident, $to_int:ident, $from_int:ident, $mask_mov:ident, $loadz:ident,
          $store_mask:ident, $blend:ident, $loadu:ident, $storeu:ident, $mask_cmp:ident],
     int: [$set1_int:ident, $sub_int:ident, $add_int:ident, $cmplt_unsigned:ident,
           $blend_int:ident, $ternary:ident]) => {
        binary!($name, Add, add, $add);
        binary!($name, Sub, sub, $sub);
        binary!($name, Mul, mul, $mul);
        binary!($name, Div, div, $div);

        impl Register for $name {
            const LANES: usize = $lanes;

            #[inline(always)]
            unsafe fn load_all(ptr: *const $elem) -> $name {
                // SAFETY: the caller guarantees AVX-512F and `LANES` readable elements.
                $name(unsafe { $loadu(ptr) })
            }

            #[inline(always)]
            unsafe fn store_all(self, ptr: *mut $elem) {
                // SAFETY: AVX-512F (a register exists), `LANES` writable elements
                // (the caller).
                unsafe { $storeu(ptr, self.0) }
            }

            #[inline(always)]
            unsafe fn load(ptr: *const $elem, n: usize) -> $name {
                let mask = ((1u32 << n) - 1) as $mask;
                // SAFETY: the caller guarantees AVX-512F and `n` readable
                // elements; masked-off lanes are not read.
                $name(unsafe { $loadz(mask, ptr) })
            }

            #[inline(always)]
            unsafe fn store(self, ptr: *mut $elem, n: usize) {
                let mask = ((1u32 << n) - 1) as $mask;
                // SAFETY: AVX-512F (a register exists), `n` writable elements
                // (the caller); masked-off lanes are not written.
                unsafe { $store_mask(ptr, mask, self.0) }
            }
        }

        impl Lane for $name {
            type Elem = $elem;

            #[inline(always)]
            fn splat(self, v: $elem) -> $name {
                // SAFETY: a register exists only on a CPU with AVX-512F.
                $name(unsafe { $set1(v) })
            }

            #[inline(always)]
            fn mul_add_with<F: Fma>(self, b: $name, c: $name) -> $name {
                // SAFETY: as above.
                $name(unsafe { $fmadd(self.0, b.0, c.0) })
            }

            #[inline(always)]
            fn two_prod<F: Fma>(self, b: $name) -> ($name, $name) {
                // SAFETY: as above.
                unsafe {
                    let h = $mul(self.0, b.0);
                    ($name(h), $name($fmsub(self.0, b.0, h)))
                }
            }

            #[inline(always)]
            fn abs_value(self) -> $name {
                // SAFETY: as above.
                $name(unsafe { $abs(self.0) })
            }

            #[inline(always)]
            fn core_input(self) -> $name {
                // SAFETY: as above.
                unsafe {
                    let one = $set1(1.0);
                    $name($blend(
                        positive_finite!(self, $elem, $set1, $cmp, $mask_cmp),
                        one,
                        self.0,
                    ))
                }
            }

            #[inline(always)]
            fn split(self) -> ($name, $name) {
                // SAFETY: as above.
                unsafe {
                    // m in [1, 2) and floor(log2 self), then m halved (and the
                    // exponent raised) above sqrt(2).
                    let m = $getmant::<_MM_MANT_NORM_1_2, _MM_MANT_SIGN_ZERO>(self.0);
                    let e = $getexp(self.0);
                    let big = $cmp::<_CMP_GT_OQ>(m, $set1(std::$elem::consts::SQRT_2));
                    (
                        $name($mask_add(e, big, e, $set1(1.0))),
                        $name($mask_mul(m, big, m, $set1(0.5))),
                    )
                }
            }

            #[inline(always)]
            fn round_product<F: Fma>(self, factor: $elem) -> ($name, $name) {
                // SAFETY: as above.
                let q = unsafe {
                    $roundscale::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>($mul(
                        self.0,
                        $set1(factor),
                    ))
                };
                ($name(q), $name(q))
            }

            #[inline(always)]
            fn times_two_to(self, token: $name) -> $name {
                // SAFETY: as above.
                $name(unsafe { $scalef(self.0, token.0) })
            }

            #[inline(always)]
            fn clamp_to(self, low: $elem, high: $elem) -> $name {
                // SAFETY: as above.
                $name(unsafe { $min($max(self.0, $set1(low)), $set1(high)) })
            }

            #[inline(always)]
            fn finish_power(self, a: $name, magnitude: $name, power: &Power<$elem>) -> $name {
                const NEGATIVE_ZERO: $int = (-0.0 as $elem).to_bits() as $int;
                const NEGATIVE_INFINITY: $int = $elem::NEG_INFINITY.to_bits() as $int;
                // SAFETY: as above.
                unsafe {
                    let bits = $to_int(a.0);
                    let x = $to_int(self.0);
                    // The one-value lanes' integer tests and special value.
                    let positive_finite = positive_finite!(a, $elem, $set1, $cmp, $mask_cmp);
                    let special = $add_int(
                        _mm512_xor_si512(bits, $set1_int(power.flip.to_bits() as $int)),
                        $set1_int(power.add.to_bits() as $int),
                    );
                    let value = $blend_int(positive_finite, special, $to_int(magnitude.0));
                    // value | (x & sign)
                    let signed =
                        $ternary::<0xF8>(value, x, $set1_int(power.sign.to_bits() as $int));
                    let signed = $from_int(signed);
                    if power.fractional {
                        let negative_finite = $cmplt_unsigned(
                            $sub_int(x, $set1_int(NEGATIVE_ZERO.wrapping_add(1))),
                            $set1_int(
                                NEGATIVE_INFINITY
                                    .wrapping_sub(NEGATIVE_ZERO)
                                    .wrapping_sub(1),
                            ),
                        );
                        $name($mask_mov(signed, negative_finite, $set1($elem::NAN)))
                    } else {
                        $name(signed)
                    }
                }
            }
        }
    };
}

register!(
    F32x16, __m512, f32, 16, __mmask16, i32,
    ps: [_mm512_set1_ps, _mm512_add_ps, _mm512_sub_ps, _mm512_mul_ps, _mm512_div_ps,
         _mm512_fmadd_ps, _mm512_fmsub_ps, _mm512_abs_ps, _mm512_getmant_ps, _mm512_getexp_ps,
         _mm512_cmp_ps_mask, _mm512_mask_mul_ps, _mm512_mask_add_ps, _mm512_roundscale_ps,
         _mm512_scalef_ps, _mm512_max_ps, _mm512_min_ps, _mm512_castps_si512,
         _mm512_castsi512_ps, _mm512_mask_mov_ps, _mm512_maskz_loadu_ps, _mm512_mask_storeu_ps,
         _mm512_mask_blend_ps, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_mask_cmp_ps_mask],
    int: [_mm512_set1_epi32, _mm512_sub_epi32, _mm512_add_epi32, _mm512_cmplt_epu32_mask,
          _mm512_mask_blend_epi32, _mm512_ternarylogic_epi32]
);

register!(
    F64x8, __m512d, f64, 8, __mmask8, i64,
    ps: [_mm512_set1_pd, _mm512_add_pd, _mm512_sub_pd, _mm512_mul_pd, _mm512_div_pd,
         _mm512_fmadd_pd, _mm512_fmsub_pd, _mm512_abs_pd, _mm512_getmant_pd, _mm512_getexp_pd,
         _mm512_cmp_pd_mask, _mm512_mask_mul_pd, _mm512_mask_add_pd, _mm512_roundscale_pd,
         _mm512_scalef_pd, _mm512_max_pd, _mm512_min_pd, _mm512_castpd_si512,
         _mm512_castsi512_pd, _mm512_mask_mov_pd, _mm512_maskz_loadu_pd, _mm512_mask_storeu_pd,
         _mm512_mask_blend_pd, _mm512_loadu_pd, _mm512_storeu_pd, _mm512_mask_cmp_pd_mask],
    int: [_mm512_set1_epi64, _mm512_sub_epi64, _mm512_add_epi64, _mm512_cmplt_epu64_mask,
          _mm512_mask_blend_epi64, _mm512_ternarylogic_epi64]
);

/// `body` over `x` a register at a time (the last one partial), writing its
/// registers to `outs` (each as long as `x`).
///
/// # Safety
/// The CPU must support AVX-512F.
#[inline(always)]
unsafe fn map<R: Register, const N: usize>(
    x: &[R::Elem],
    mut outs: [&mut [MaybeUninit<R::Elem>]; N],
    body: impl Fn(R) -> [R; N],
) {
    let len = outs.iter().fold(x.len(), |len, out| len.min(out.len()));
    let mut start = 0;
    while start + R::LANES <= len {
        // SAFETY: AVX-512F (the caller); a whole register within `x` and every output.
        unsafe {
            let results = body(R::load_all(x.as_ptr().add(start)));
            for (out, result) in outs.iter_mut().zip(results) {
                result.store_all(out.as_mut_ptr().add(start).cast::<R::Elem>());
            }
        }
        start += R::LANES;
    }
    if start < len {
        let n = len - start;
        // SAFETY: AVX-512F (the caller); `start + n <= len`, within `x` and
        // every output.
        unsafe {
            let results = body(R::load(x.as_ptr().add(start), n));
            for (out, result) in outs.iter_mut().zip(results) {
                result.store(out.as_mut_ptr().add(start).cast::<R::Elem>(), n);
            }
        }
    }
}

/// The AVX-512 `pow`: `2^(p log2 |x|)` with a table on each side (the
/// tables and fits are generated by `tools/pow_tables.py`, which documents them):
///
/// - `|x| = 2^k m`, `m` in `[0.75, 1.5)` (`vgetmant`, `vgetexp`); the top bits of
///   `m`'s fraction pick one of `2 * LANES` intervals (32 for `f32`, 16 for
///   `f64`: one `vpermt2ps`/`vpermt2pd` a lookup, from two registers), with
///   center `1/invc`; `r = m invc - 1` (`|r| <= 0.0154`, `0.0303`) and
///   `log2 |x| = (k + hi) + (lo + r P(r))`, `hi + lo = -log2(invc)`, `k + hi`
///   exact (`hi` has few bits);
/// - `y = p log2 |x|`, `n = round(N y)` (`N = 2 * LANES`),
///   `f = (p (k + hi) - n/N) + p (lo + r P(r))`, one rounding in each part;
/// - `2^y = 2^floor(n/N) (T + (T f Q(f) + T'))`, `T + T' = 2^((n mod N)/N)`
///   (two lookups), `vscalef` for the power of two (overflow, underflow and
///   subnormals as the instruction does them).
///
/// No division and no double-length product in the loop, and short
/// polynomials (4 and 3 coefficients for `f32`, 9 and 7 for `f64`): about half
/// the instructions of the table-free steps the other paths use. The price is
/// accuracy that falls off faster with `|p|` (the roundings of `r P(r)` and of
/// `p` times it are multiplied by `p`): the unit tests' bound for this path.
pub(super) trait TablePower: Register {
    /// The five tables (`invc`, `hi`, `lo`, `T`, `T'`), each in two registers.
    type Tables: Copy;

    /// The tables in registers.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    unsafe fn load_tables() -> Self::Tables;

    /// `log2 self` as `(k + hi, lo + r P(r))` for positive finite `self`.
    fn log2_parts(self, tables: &Self::Tables) -> (Self, Self);

    /// `2^(p (head + tail))` for `p = self`.
    fn exp2_product(self, head: Self, tail: Self, tables: &Self::Tables) -> Self;

    /// `magnitude`, or exactly 1 where `self` (the core input) is 1.
    fn one_at_one(self, magnitude: Self) -> Self;

    /// Whether every lane is positive and finite (then `x^p` needs none of
    /// the special values' and signs' steps).
    fn all_positive_finite(self) -> bool;

    /// `self / x`, within about half a unit (a reciprocal estimate refined by
    /// Newton steps, then one correction of the quotient), for normal `x`.
    fn over(self, x: Self) -> Self;

    /// Whether every lane of the three is a positive normal number.
    fn all_normal(a: Self, b: Self, c: Self) -> bool;
}

/// [`TablePower`] for a register type, from its intrinsics and tables.
macro_rules! table_power {
    ($name:ident, $elem:ident, $int:ident, $tables:path, $lanes:expr, $shift:expr,
     $low:expr, $high:expr,
     ops: [$set1:ident, $loadu:ident, $getmant:ident, $getexp:ident, $add:ident, $sub:ident,
      $mul:ident, $fmadd:ident, $fmsub:ident, $permute:ident, $srli:ident, $to_int:ident,
      $min:ident, $max:ident, $scalef:ident, $cmp:ident, $mask_mov:ident,
      $mask_cmp:ident, $rcp:ident, $fnmadd:ident], newton: $newton:literal) => {
        impl TablePower for $name {
            type Tables = [[$name; 2]; 5];

            #[inline(always)]
            unsafe fn load_tables() -> Self::Tables {
                let t = &$tables;
                // SAFETY: AVX-512F (the caller); each half is `LANES` elements
                // of its table. (Written out: a closure over the tables was not
                // inlined, a call per slice, which planes of 49 cells felt.)
                unsafe {
                    let halves = [
                        t.invc.as_ptr(),
                        t.logc_hi.as_ptr(),
                        t.logc_lo.as_ptr(),
                        t.exp_hi.as_ptr(),
                        t.exp_lo.as_ptr(),
                    ];
                    [
                        [
                            $name($loadu(halves[0])),
                            $name($loadu(halves[0].add($lanes))),
                        ],
                        [
                            $name($loadu(halves[1])),
                            $name($loadu(halves[1].add($lanes))),
                        ],
                        [
                            $name($loadu(halves[2])),
                            $name($loadu(halves[2].add($lanes))),
                        ],
                        [
                            $name($loadu(halves[3])),
                            $name($loadu(halves[3].add($lanes))),
                        ],
                        [
                            $name($loadu(halves[4])),
                            $name($loadu(halves[4].add($lanes))),
                        ],
                    ]
                }
            }

            #[inline(always)]
            fn log2_parts(self, tables: &Self::Tables) -> ($name, $name) {
                // SAFETY: a register exists only on a CPU with AVX-512F.
                unsafe {
                    let m = $getmant::<_MM_MANT_NORM_P75_1P5, _MM_MANT_SIGN_ZERO>(self.0);
                    // getexp(m) is -1 where m was halved into [0.75, 1).
                    let k = $sub($getexp(self.0), $getexp(m));
                    // The lookups read the low bits of each lane: the top bits
                    // of m's fraction.
                    let index = $srli::<$shift>($to_int(m));
                    let [invc, hi, lo] = [0, 1, 2].map(|t| tables[t]);
                    let r = $fmsub(m, $permute(invc[0].0, index, invc[1].0), $set1(1.0));
                    let poly = super::polynomial::<_, super::Fused>($name(r), &$tables.log_poly);
                    (
                        $name($add(k, $permute(hi[0].0, index, hi[1].0))),
                        $name($fmadd(r, poly.0, $permute(lo[0].0, index, lo[1].0))),
                    )
                }
            }

            #[inline(always)]
            fn exp2_product(self, head: $name, tail: $name, tables: &Self::Tables) -> $name {
                const N: $elem = (2 * $lanes) as $elem;
                const ROUNDER: $elem = <$elem as super::Elementary>::ROUNDER;
                // SAFETY: as above.
                unsafe {
                    let p = self.0;
                    let u = $mul(p, tail.0);
                    // Beyond the clamp the result is 0 or infinite whatever f.
                    let y = $min($max($fmadd(p, head.0, u), $set1($low)), $set1($high));
                    // n + ROUNDER: n in the low bits (the lookups' index).
                    let s = $fmadd(y, $set1(N), $set1(ROUNDER));
                    let n_over = $mul($sub(s, $set1(ROUNDER)), $set1(1.0 / N));
                    // Where y was clamped f is anything: kept small so that the
                    // polynomial stays finite.
                    let f = $add($fmsub(p, head.0, n_over), u);
                    let f = $min($max(f, $set1(-1.0)), $set1(1.0));
                    let index = $to_int(s);
                    let [high, low] = [tables[3], tables[4]];
                    let q = $mul(
                        f,
                        super::polynomial::<_, super::Fused>($name(f), &$tables.exp_poly).0,
                    );
                    let high = $permute(high[0].0, index, high[1].0);
                    let e = $add(high, $fmadd(high, q, $permute(low[0].0, index, low[1].0)));
                    // vscalef multiplies by 2^floor(n / N).
                    $name($scalef(e, n_over))
                }
            }

            #[inline(always)]
            fn one_at_one(self, magnitude: $name) -> $name {
                // SAFETY: as above.
                unsafe {
                    $name($mask_mov(
                        magnitude.0,
                        $cmp::<_CMP_EQ_OQ>(self.0, $set1(1.0)),
                        $set1(1.0),
                    ))
                }
            }

            #[inline(always)]
            fn all_positive_finite(self) -> bool {
                // SAFETY: as above.
                unsafe { positive_finite!(self, $elem, $set1, $cmp, $mask_cmp) == !0 }
            }

            #[inline(always)]
            fn over(self, x: $name) -> $name {
                // SAFETY: as above.
                unsafe {
                    let one = $set1(1.0);
                    // 2^-14 from the estimate, squared by a Newton step (f64).
                    let mut y = $rcp(x.0);
                    if $newton {
                        y = $fmadd($fnmadd(x.0, y, one), y, y);
                    }
                    // q + (self - q x) / x: the residual is exact (one fused
                    // step), so the error left is y's times that of q.
                    let q = $mul(self.0, y);
                    $name($fmadd($fnmadd(q, x.0, self.0), y, q))
                }
            }

            #[inline(always)]
            fn all_normal(a: $name, b: $name, c: $name) -> bool {
                // SAFETY: as above.
                unsafe {
                    let (low, high) = ($set1($elem::MIN_POSITIVE), $set1($elem::INFINITY));
                    let mut mask = !0;
                    for v in [a, b, c] {
                        mask = $mask_cmp::<_CMP_GE_OQ>(mask, v.0, low);
                        mask = $mask_cmp::<_CMP_LT_OQ>(mask, v.0, high);
                    }
                    mask == !0
                }
            }
        }
    };
}

table_power!(
    F32x16, f32, i32, super::tables::F32_TABLES, 16, 18, -200.0, 200.0,
    ops: [_mm512_set1_ps, _mm512_loadu_ps, _mm512_getmant_ps, _mm512_getexp_ps, _mm512_add_ps,
          _mm512_sub_ps, _mm512_mul_ps, _mm512_fmadd_ps, _mm512_fmsub_ps,
          _mm512_permutex2var_ps, _mm512_srli_epi32, _mm512_castps_si512, _mm512_min_ps,
          _mm512_max_ps, _mm512_scalef_ps, _mm512_cmp_ps_mask, _mm512_mask_mov_ps,
          _mm512_mask_cmp_ps_mask, _mm512_rcp14_ps, _mm512_fnmadd_ps],
    newton: false
);

table_power!(
    F64x8, f64, i64, super::tables::F64_TABLES, 8, 48, -1200.0, 1200.0,
    ops: [_mm512_set1_pd, _mm512_loadu_pd, _mm512_getmant_pd, _mm512_getexp_pd, _mm512_add_pd,
          _mm512_sub_pd, _mm512_mul_pd, _mm512_fmadd_pd, _mm512_fmsub_pd,
          _mm512_permutex2var_pd, _mm512_srli_epi64, _mm512_castpd_si512, _mm512_min_pd,
          _mm512_max_pd, _mm512_scalef_pd, _mm512_cmp_pd_mask, _mm512_mask_mov_pd,
          _mm512_mask_cmp_pd_mask, _mm512_rcp14_pd, _mm512_fnmadd_pd],
    newton: true
);

/// `x^p` for each of the powers, in one register, sharing the logarithm.
#[inline(always)]
fn table_powers<R: TablePower, const N: usize>(
    x: R,
    powers: [&Power<R::Elem>; N],
    tables: &R::Tables,
) -> [R; N] {
    let mut out = [x; N];
    if x.all_positive_finite() {
        // The common register (Lp pooling's sums, activations): no signs, no
        // special values, about a sixth fewer instructions.
        let (head, tail) = x.log2_parts(tables);
        for (result, power) in out.iter_mut().zip(powers) {
            *result = x.one_at_one(x.splat(power.p).exp2_product(head, tail, tables));
        }
        return out;
    }
    let a = x.abs_value();
    let core = a.core_input();
    let (head, tail) = core.log2_parts(tables);
    for (result, power) in out.iter_mut().zip(powers) {
        let magnitude = x.splat(power.p).exp2_product(head, tail, tables);
        *result = x.finish_power(a, core.one_at_one(magnitude), power);
    }
    out
}

/// `out[i] = x[i]^p`.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn powers<T: InRegisters>(x: &[T], power: &Power<T>, out: &mut [MaybeUninit<T>]) {
    // SAFETY: the caller guarantees AVX-512F.
    unsafe {
        let tables = T::Register::load_tables();
        map::<T::Register, 1>(
            x,
            [out],
            #[inline(always)]
            |v| table_powers(v, [power], &tables),
        );
    }
}

/// `out[i] = x[i]^p`, `out2[i] = x[i]^q`.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn power_pairs<T: InRegisters>(
    x: &[T],
    first: &Power<T>,
    second: &Power<T>,
    out: &mut [MaybeUninit<T>],
    out2: &mut [MaybeUninit<T>],
) {
    // SAFETY: the caller guarantees AVX-512F.
    unsafe {
        let tables = T::Register::load_tables();
        map::<T::Register, 2>(
            x,
            [out, out2],
            #[inline(always)]
            |v| table_powers(v, [first, second], &tables),
        );
    }
}

/// `out[i] = x[i]^p`, `out2[i] = x[i]^(p - 1)` (`slope` is `p - 1`): where a
/// register's `x` and `x^p` are normal, `x^(p - 1) = x^p / x` (a quotient of
/// a few instructions instead of a second exponential), else as
/// [`power_pairs`].
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn powers_and_slopes<T: InRegisters>(
    x: &[T],
    power: &Power<T>,
    slope: &Power<T>,
    out: &mut [MaybeUninit<T>],
    out2: &mut [MaybeUninit<T>],
) {
    // SAFETY: the caller guarantees AVX-512F.
    unsafe {
        let tables = T::Register::load_tables();
        map::<T::Register, 2>(
            x,
            [out, out2],
            #[inline(always)]
            |v| {
                if v.all_positive_finite() {
                    let (head, tail) = v.log2_parts(&tables);
                    let term = v.one_at_one(v.splat(power.p).exp2_product(head, tail, &tables));
                    let quotient = term.over(v);
                    if T::Register::all_normal(v, term, quotient) {
                        return [term, quotient];
                    }
                    // The logarithm and x^p are those `table_powers` would
                    // compute for this register: only the slope's exponential.
                    let slope = v.one_at_one(v.splat(slope.p).exp2_product(head, tail, &tables));
                    return [term, slope];
                }
                table_powers(v, [power, slope], &tables)
            },
        );
    }
}
