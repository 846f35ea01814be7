//! `pow` and `cbrt` of `f32` and `f64` written as straight-line arithmetic:
//! bit operations, one division and polynomials, with selects for the special
//! values and no table, branch or call, so a loop applying them to a slice
//! vectorises (the libm functions are calls, one element at a time).
//!
//! # `pow(x, p)`
//!
//! `|x|^p = exp(p ln |x|)`, with the accuracy of `ln |x|` and of `p ln |x|` that
//! an error of `exp`'s argument needs: one of `d` in the argument is a relative
//! error of `d` in the result, and the argument reaches a hundred (`f32`) or seven
//! hundred (`f64`). So, in the element type itself (16 `f32` lanes to a 512-bit
//! register, not 8 `f64`), with double-length (head + tail) values where the
//! rounding would show:
//!
//! - `|x| = 2^k m` with `m` in `[sqrt(1/2), sqrt(2))` (subnormals scaled first);
//! - `ln m = f - f^2/2 + s (f^2/2 + R(s^2))` with `f = m - 1` (exact),
//!   `s = f / (2 + f)` and `R` a polynomial (`2 atanh s - 2 s = s R(s^2)`), the
//!   head `f - f^2/2` exact (`f^2/2` as an exact product), the small rest rounded;
//! - `L = k ln 2 + ln m` as head + tail, `ln 2` in two parts (`k` times the first
//!   is exact); `y = p L` as head + tail (an exact product);
//! - `exp(y) = 2^q exp(r)`, `q = round(y / ln 2)`, `r = y - q ln 2` (exact head,
//!   rounded tail), `exp(r) = 1 + r + r^2 W(r)` with `W` a polynomial, the
//!   leading `1 + r` exact, and `2^q` in two factors so that a subnormal result
//!   is rounded once.
//!
//! The AVX-512 slice kernels ([`powers`], [`power_pairs`]) compute the same
//! function with tables instead (`avx512.rs`): log-2 units, a 32-entry (`f32`)
//! or 16-entry (`f64`) table on each side, short polynomials and no division.
//! They are as accurate or more (the unit tests check them against the same
//! bound): measured over 4 million random patterns and a dense sweep of [1e-3,
//! 10], `f32` 0.55 units at p = 1.5, 0.62 at 4, 0.89 at 12.5 (the steps below:
//! 0.61, 0.81, 1.27), `f64` one unit from libm up to p = 12.5 (as the steps
//! below). The AVX2 path does the same for `f32` with 8-entry tables
//! (`avx2.rs`), less accurate for large `|p|`: within `0.75 + |p| / 6` units
//! (0.70 at p = 1.5, 0.91 at 4, 2.03 at 12.5).
//!
//! `R` and `W` are Chebyshev fits (mpmath's `chebyfit`) of `(2 atanh(s) / s - 2)
//! / s^2` on `s^2 <= (3 - 2 sqrt 2)^2` and `(e^r - 1 - r) / r^2` on `|r| <=
//! ln(2)/2 + 2^-10`, of relative error below `2^-21.6` and `2^-26.6` (`f32`
//! coefficients; `R`'s error is scaled down by `s^3 < 2^-7.6` in `ln m`, `W`'s
//! by `r^2 < 2^-3`), `2^-50.9` and `2^-51.9` (`f64`).
//!
//! The result is within `0.75 + |p| / 16` units in the last place of the exact
//! `|x|^p` (the rounding of `ln |x|`'s tail is multiplied by `p`): the unit tests
//! check it over dense sweeps and random bit patterns, against `f64` `powf` for
//! `f32` (exact enough; measured 0.6 to 0.82 units for `|p| <= 4`) and libm's
//! `pow` for `f64` (itself within about half a unit; measured one unit from it
//! for `|p| <= 12.5`). Special values follow C's `pow` for `p != 0`:
//!
//! - `x = +-0`: `+-0` (the sign only for odd whole `p`) if `p > 0`, else `+-inf`;
//! - `x = +-inf`: `+-inf` if `p > 0`, else `+-0` (signs as for zero);
//! - `x` finite and negative: `-|x|^p` for odd whole `p`, `|x|^p` for even whole
//!   `p`, NaN for any other `p`;
//! - NaN: NaN; overflow: `inf`; underflow: a correctly scaled subnormal or 0;
//!   `x = 1`: exactly 1.
//!
//! # `cbrt(x)`
//!
//! Computed in `f64` (`f32` too, then rounded once): a first guess of
//! `x^(-1/3)` from a third of the exponent bits (5 bits right), Newton steps
//! for `x^(-1/3)` that need no division (3 for `f32`, 4 for `f64`), `y = x r^2`,
//! and for `f64` one last Newton step for `y` with `y^3 - x` computed exactly.
//! Within 0.51 units in the last place (`f32`: nearly always correctly rounded),
//! sign kept, `+-0`, `+-inf` and NaN returned as they are, subnormals scaled.
//!
//! # Fused multiply-add
//!
//! The double-length products need `a * b - round(a * b)`: one fused
//! multiply-add, or Dekker's product of halves without one. [`Fused`] uses
//! `mul_add` (the AVX2 and AVX-512 paths, where it is one instruction),
//! [`Unfused`] the halves (the portable path, where `mul_add` would be a libm
//! call per element); polynomials are fused too where it is one instruction.
//! Both give the same exact products, so results differ between them only by
//! the polynomials' roundings.

use super::dispatch_fma;
use super::scalar::Scalar;
use num_traits::{One, Zero};
use std::mem::MaybeUninit;
use std::ops::{Add, Div, Mul, Sub};

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod tables;

/// How products with their rounding error, and polynomial steps, are computed:
/// [`Fused`] or [`Unfused`].
pub trait Fma: Copy + Send + Sync + 'static {
    /// `a * b + c`, fused or not.
    fn mul_add<T: Elementary>(a: T, b: T, c: T) -> T;
    /// `(h, l)` with `h = round(a * b)` and `h + l = a * b` exactly (barring
    /// overflow and underflow).
    fn two_prod<T: Elementary>(a: T, b: T) -> (T, T);
}

/// Fused multiply-adds: one instruction on the AVX2 and AVX-512 paths.
#[derive(Debug, Clone, Copy)]
pub struct Fused;

/// Separate multiplies and adds, products split in halves (Dekker): for code
/// compiled without FMA instructions.
#[derive(Debug, Clone, Copy)]
pub struct Unfused;

impl Fma for Fused {
    #[inline(always)]
    fn mul_add<T: Elementary>(a: T, b: T, c: T) -> T {
        a.mul_add(b, c)
    }

    #[inline(always)]
    fn two_prod<T: Elementary>(a: T, b: T) -> (T, T) {
        let h = a * b;
        (h, a.mul_add(b, -h))
    }
}

impl Fma for Unfused {
    #[inline(always)]
    fn mul_add<T: Elementary>(a: T, b: T, c: T) -> T {
        a * b + c
    }

    #[inline(always)]
    fn two_prod<T: Elementary>(a: T, b: T) -> (T, T) {
        let h = a * b;
        let (ah, al) = halves(a);
        let (bh, bl) = halves(b);
        (h, ((ah * bh - h) + ah * bl + al * bh) + al * bl)
    }
}

/// `a` as `h + l`, each with at most half of `a`'s significand bits (Veltkamp),
/// so that products of halves are exact.
#[inline(always)]
fn halves<T: Elementary>(a: T) -> (T, T) {
    let c = a * T::SPLITTER;
    let h = c - (c - a);
    (h, a - h)
}

/// `(s, e)` with `s = round(a + b)` and `s + e = a + b` exactly, when `a` is
/// zero or at least `b` in magnitude (Dekker's fast two-sum).
#[inline(always)]
fn fast_two_sum<L: Lane>(a: L, b: L) -> (L, L) {
    let s = a + b;
    (s, (a - s) + b)
}

/// The polynomial with coefficients `c` (constant first) at `x`: Horner's
/// rule in `x^2` over the pairs `c[2i] + c[2i+1] x`. The pairs are independent
/// of each other, so a register's chain of dependent fused steps is half as
/// long as plain Horner's; with the exponential's ten coefficients that chain
/// held the loop back more than its instruction count did.
#[inline(always)]
fn polynomial<L: Lane, F: Fma>(x: L, c: &[L::Elem]) -> L {
    let pair = |i: usize| match c.get(2 * i + 1) {
        Some(&odd) => x.splat(odd).mul_add_with::<F>(x, x.splat(c[2 * i])),
        None => x.splat(c[2 * i]),
    };
    let pairs = c.len().div_ceil(2);
    if pairs == 0 {
        return x.splat(L::Elem::zero());
    }
    let square = x * x;
    (0..pairs - 1).rev().fold(pair(pairs - 1), |acc, i| {
        acc.mul_add_with::<F>(square, pair(i))
    })
}

/// The arithmetic [`pow`]'s steps are written in, once: one value (`f32`,
/// `f64`: loops over slices of them vectorise) or a register of them (the
/// AVX-512 implementation in `avx512.rs`, which has instructions for the
/// exponent, the significand and the scaling).
///
/// A register type can only be made by loading from memory, an unsafe
/// operation whose caller has checked the instruction set: any value of it
/// vouches that its instructions run, so its methods are safe.
pub trait Lane:
    Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Div<Output = Self>
{
    /// The element type of the lanes.
    type Elem: Elementary;
    /// `v` in every lane (`self` is only the proof that the lanes exist).
    fn splat(self, v: Self::Elem) -> Self;
    /// `self * b + c`, fused as `F` says (registers: always fused).
    fn mul_add_with<F: Fma>(self, b: Self, c: Self) -> Self;
    /// `(h, l)`, `h = round(self * b)`, `h + l = self * b` exactly.
    fn two_prod<F: Fma>(self, b: Self) -> (Self, Self);
    /// `|self|`.
    fn abs_value(self) -> Self;
    /// What the steps compute with for `a = self = |x|`: `a`, or for registers
    /// 1 where `a` is 0, infinite or NaN (whose result [`Lane::finish_power`]
    /// replaces anyway), as such inputs take AVX-512's microcode path: NaN
    /// lanes made the registers' powers six times slower.
    fn core_input(self) -> Self;
    /// `(k, m)`: `self = 2^k m`, `m` in `[sqrt(1/2), sqrt(2))`, for `self`
    /// positive and finite (anything for other values).
    fn split(self) -> (Self, Self);
    /// `(q, token)`: `q = round(self * factor)`, a whole number, and what
    /// [`Lane::times_two_to`] takes for it.
    fn round_product<F: Fma>(self, factor: Self::Elem) -> (Self, Self);
    /// `self * 2^q` for the `q` of `token`, a subnormal result rounded once.
    fn times_two_to(self, token: Self) -> Self;
    /// `self` clamped to `[low, high]` (`self` not NaN).
    fn clamp_to(self, low: Self::Elem, high: Self::Elem) -> Self;
    /// `x^p` from `magnitude`, `|x|^p` for positive finite `a = |x|` (`self`
    /// is `x`): the special values and sign rules of `power`.
    fn finish_power(self, a: Self, magnitude: Self, power: &Power<Self::Elem>) -> Self;
}

/// `f32` or `f64` with the constants and bit operations [`pow`] and [`cbrt`]
/// are made of.
pub trait Elementary: Scalar + Lane<Elem = Self> {
    /// `R`'s coefficients (see the module documentation), constant first.
    const LOG_TAIL: &'static [Self];
    /// `W`'s coefficients, constant first.
    const EXP_TAIL: &'static [Self];
    /// `ln 2` to few enough bits that `k ln 2` is exact for every exponent `k`.
    const LN2_HEAD: Self;
    /// `ln 2 - LN2_HEAD`, rounded.
    const LN2_TAIL: Self;
    /// `1 / ln 2`.
    const LOG2_E: Self;
    /// `1.5 * 2^(significand bits)`: adding it rounds to an integer, kept in the
    /// low bits.
    const ROUNDER: Self;
    /// `exp`'s arguments are clamped to `[LOWEST, HIGHEST]`, beyond which the
    /// result is 0 or infinite anyway.
    const LOWEST: Self;
    /// See [`Elementary::LOWEST`].
    const HIGHEST: Self;
    /// `2^ceil(significand bits / 2) + 1`, Veltkamp's splitting factor.
    const SPLITTER: Self;
    /// 1/2, 2, 3 and 4.
    const HALF: Self;
    /// See [`Elementary::HALF`].
    const TWO: Self;
    /// See [`Elementary::HALF`].
    const THREE: Self;
    /// -1 (a constant, so that a clamp compiles to one `max`).
    const NEG_ONE: Self;

    /// `(k, m)` with `self = 2^k m`, `m` in `[sqrt(1/2), sqrt(2))`, for `self`
    /// positive and finite (subnormals included).
    fn split_exponent(self) -> (Self, Self);

    /// `self * 2^q`, where `rounded = q + ROUNDER` (`q` a whole number from
    /// `[LOWEST, HIGHEST] / ln 2`), in two exact factors so that a subnormal
    /// result is rounded once.
    fn scaled(self, rounded: Self) -> Self;

    /// Whether `self` is positive, finite and nonzero.
    fn is_positive_finite(self) -> bool;

    /// Whether `self` is negative, finite and nonzero.
    fn is_negative_finite(self) -> bool;

    /// `self` (0, `inf` or NaN) as it is when `flip` is 0, or its reciprocal
    /// (`inf`, 0 or NaN) when `flip` is all ones and `add` the bits of `inf`
    /// plus one: `(bits ^ flip) + add`, two integer operations.
    fn special_power(self, flip: Self, add: Self) -> Self;

    /// The bits of `inf` plus one, as a value (see [`Elementary::special_power`]).
    fn infinity_plus_one() -> Self;

    /// All ones, as a value.
    fn all_ones() -> Self;

    /// `self` with the sign bit of `x` ored in where `mask`'s is set.
    fn with_sign_of(self, x: Self, mask: Self) -> Self;

    /// The cube root of `self` (see the module documentation).
    fn cbrt_of<F: Fma>(self) -> Self;

    /// `out[i] = x[i]^p` in AVX-512 registers.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[cfg(target_arch = "x86_64")]
    unsafe fn powers_avx512(x: &[Self], power: &Power<Self>, out: &mut [MaybeUninit<Self>]);

    /// `out[i] = x[i]^p` on the AVX2 path: `f32` in registers with tables
    /// (`avx2.rs`), `f64` the steps below compiled for AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    unsafe fn powers_on_avx2(x: &[Self], power: &Power<Self>, out: &mut [MaybeUninit<Self>]);

    /// `out[i] = x[i]^p`, `out2[i] = x[i]^q` on the AVX2 path (as
    /// [`Elementary::powers_on_avx2`]).
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    unsafe fn power_pairs_on_avx2(
        x: &[Self],
        first: &Power<Self>,
        second: &Power<Self>,
        out: &mut [MaybeUninit<Self>],
        out2: &mut [MaybeUninit<Self>],
    );

    /// `out[i] = x[i]^p`, `out2[i] = x[i]^(p - 1)` (`slope` is `p - 1`) on the
    /// AVX2 path (as [`Elementary::powers_on_avx2`]).
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    unsafe fn powers_and_slopes_on_avx2(
        x: &[Self],
        power: &Power<Self>,
        slope: &Power<Self>,
        out: &mut [MaybeUninit<Self>],
        out2: &mut [MaybeUninit<Self>],
    );

    /// `out[i] = x[i]^p`, `out2[i] = x[i]^(p - 1)` (`slope` is `p - 1`) in
    /// AVX-512 registers.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[cfg(target_arch = "x86_64")]
    unsafe fn powers_and_slopes_avx512(
        x: &[Self],
        power: &Power<Self>,
        slope: &Power<Self>,
        out: &mut [MaybeUninit<Self>],
        out2: &mut [MaybeUninit<Self>],
    );

    /// `out[i] = x[i]^p`, `out2[i] = x[i]^q` in AVX-512 registers.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[cfg(target_arch = "x86_64")]
    unsafe fn power_pairs_avx512(
        x: &[Self],
        first: &Power<Self>,
        second: &Power<Self>,
        out: &mut [MaybeUninit<Self>],
        out2: &mut [MaybeUninit<Self>],
    );
}

macro_rules! elementary {
    ($t:ident, $bits:ident, $mantissa:expr, $splitter:expr, $lowest:expr, $highest:expr,
     $ln2_head:expr, $ln2_tail:expr, log: $log:expr, exp: $exp:expr, cbrt: $cbrt:ident,
     avx2: [$avx2_powers:path, $avx2_pairs:path, $avx2_slopes:path]) => {
        impl Elementary for $t {
            const LOG_TAIL: &'static [$t] = &$log;
            const EXP_TAIL: &'static [$t] = &$exp;
            const LN2_HEAD: $t = $ln2_head;
            const LN2_TAIL: $t = $ln2_tail;
            const LOG2_E: $t = std::$t::consts::LOG2_E;
            const ROUNDER: $t = 1.5 * (1u64 << $mantissa) as $t;
            const LOWEST: $t = $lowest;
            const HIGHEST: $t = $highest;
            const SPLITTER: $t = $splitter;
            const HALF: $t = 0.5;
            const TWO: $t = 2.0;
            const THREE: $t = 3.0;
            const NEG_ONE: $t = -1.0;

            #[inline(always)]
            fn split_exponent(self) -> ($t, $t) {
                const FRACTION: $bits = (1 << $mantissa) - 1;
                const SQRT_HALF: $bits = std::$t::consts::FRAC_1_SQRT_2.to_bits();
                const TWO_TO_MANTISSA: $t = (1u64 << $mantissa) as $t;
                // The biased exponent of 1/2.
                const HALF_EXPONENT: $t = ((1 << ($bits::BITS - 2 - $mantissa)) - 2) as $t;
                let subnormal = self < $t::MIN_POSITIVE;
                let a = if subnormal {
                    self * TWO_TO_MANTISSA
                } else {
                    self
                };
                // Borrow one from the exponent where the fraction is below
                // sqrt(1/2)'s: the fraction then lands in [sqrt(1/2), sqrt(2)).
                let shifted = a.to_bits().wrapping_sub(SQRT_HALF & FRACTION);
                let m = $t::from_bits((shifted & FRACTION).wrapping_add(SQRT_HALF));
                // The exponent field as a float, through the bits of 2^mantissa + e.
                let e = $t::from_bits((shifted >> $mantissa) | TWO_TO_MANTISSA.to_bits())
                    - TWO_TO_MANTISSA;
                let bias = if subnormal {
                    HALF_EXPONENT + $mantissa as $t
                } else {
                    HALF_EXPONENT
                };
                (e - bias, m)
            }

            #[inline(always)]
            fn scaled(self, rounded: $t) -> $t {
                // q + OFFSET, positive for every q of the clamped range, split in
                // two halves whose powers of two are normal.
                const OFFSET: $bits = 1 << ($bits::BITS - 1 - $mantissa);
                let biased = rounded
                    .to_bits()
                    .wrapping_sub(<$t as Elementary>::ROUNDER.to_bits().wrapping_sub(OFFSET));
                let half = biased >> 1;
                // 2^(half - OFFSET/2) and 2^(biased - half - OFFSET/2), their
                // exponent fields `half - OFFSET/2 + bias`, bias = OFFSET/2 - 1.
                let first = $t::from_bits(half.wrapping_sub(1) << $mantissa);
                let second = $t::from_bits((biased - half).wrapping_sub(1) << $mantissa);
                self * first * second
            }

            #[inline(always)]
            fn is_positive_finite(self) -> bool {
                self.to_bits().wrapping_sub(1) < $t::INFINITY.to_bits() - 1
            }

            #[inline(always)]
            fn is_negative_finite(self) -> bool {
                const NEGATIVE_ZERO: $bits = (-0.0 as $t).to_bits();
                self.to_bits().wrapping_sub(NEGATIVE_ZERO + 1)
                    < $t::NEG_INFINITY.to_bits() - NEGATIVE_ZERO - 1
            }

            #[inline(always)]
            fn special_power(self, flip: $t, add: $t) -> $t {
                $t::from_bits((self.to_bits() ^ flip.to_bits()).wrapping_add(add.to_bits()))
            }

            fn infinity_plus_one() -> $t {
                $t::from_bits($t::INFINITY.to_bits() + 1)
            }

            fn all_ones() -> $t {
                $t::from_bits(!0)
            }

            #[inline(always)]
            fn with_sign_of(self, x: $t, mask: $t) -> $t {
                $t::from_bits(self.to_bits() | (x.to_bits() & mask.to_bits()))
            }

            #[inline(always)]
            fn cbrt_of<F: Fma>(self) -> $t {
                $cbrt::<F>(self)
            }

            #[cfg(target_arch = "x86_64")]
            unsafe fn powers_avx512(x: &[$t], power: &Power<$t>, out: &mut [MaybeUninit<$t>]) {
                // SAFETY: the caller guarantees AVX-512F.
                unsafe { avx512::powers(x, power, out) }
            }

            #[cfg(target_arch = "x86_64")]
            unsafe fn powers_on_avx2(x: &[$t], power: &Power<$t>, out: &mut [MaybeUninit<$t>]) {
                // SAFETY: the caller guarantees AVX2 and FMA.
                unsafe { $avx2_powers(x, power, out) }
            }

            #[cfg(target_arch = "x86_64")]
            unsafe fn power_pairs_on_avx2(
                x: &[$t],
                first: &Power<$t>,
                second: &Power<$t>,
                out: &mut [MaybeUninit<$t>],
                out2: &mut [MaybeUninit<$t>],
            ) {
                // SAFETY: the caller guarantees AVX2 and FMA.
                unsafe { $avx2_pairs(x, first, second, out, out2) }
            }

            #[cfg(target_arch = "x86_64")]
            unsafe fn powers_and_slopes_on_avx2(
                x: &[$t],
                power: &Power<$t>,
                slope: &Power<$t>,
                out: &mut [MaybeUninit<$t>],
                out2: &mut [MaybeUninit<$t>],
            ) {
                // SAFETY: the caller guarantees AVX2 and FMA.
                unsafe { $avx2_slopes(x, power, slope, out, out2) }
            }

            #[cfg(target_arch = "x86_64")]
            unsafe fn powers_and_slopes_avx512(
                x: &[$t],
                power: &Power<$t>,
                slope: &Power<$t>,
                out: &mut [MaybeUninit<$t>],
                out2: &mut [MaybeUninit<$t>],
            ) {
                // SAFETY: the caller guarantees AVX-512F.
                unsafe { avx512::powers_and_slopes(x, power, slope, out, out2) }
            }

            #[cfg(target_arch = "x86_64")]
            unsafe fn power_pairs_avx512(
                x: &[$t],
                first: &Power<$t>,
                second: &Power<$t>,
                out: &mut [MaybeUninit<$t>],
                out2: &mut [MaybeUninit<$t>],
            ) {
                // SAFETY: the caller guarantees AVX-512F.
                unsafe { avx512::power_pairs(x, first, second, out, out2) }
            }
        }

        impl Lane for $t {
            type Elem = $t;

            #[inline(always)]
            fn splat(self, v: $t) -> $t {
                v
            }

            #[inline(always)]
            fn mul_add_with<F: Fma>(self, b: $t, c: $t) -> $t {
                F::mul_add(self, b, c)
            }

            #[inline(always)]
            fn two_prod<F: Fma>(self, b: $t) -> ($t, $t) {
                F::two_prod(self, b)
            }

            #[inline(always)]
            fn abs_value(self) -> $t {
                $t::abs(self)
            }

            #[inline(always)]
            fn core_input(self) -> $t {
                self
            }

            #[inline(always)]
            fn split(self) -> ($t, $t) {
                self.split_exponent()
            }

            #[inline(always)]
            fn round_product<F: Fma>(self, factor: $t) -> ($t, $t) {
                // Adding 1.5 * 2^(significand bits) rounds to a whole number,
                // which stays in the low bits (the token).
                let rounded = F::mul_add(self, factor, <$t as Elementary>::ROUNDER);
                (rounded - <$t as Elementary>::ROUNDER, rounded)
            }

            #[inline(always)]
            fn times_two_to(self, token: $t) -> $t {
                self.scaled(token)
            }

            #[inline(always)]
            fn clamp_to(self, low: $t, high: $t) -> $t {
                // Selects, not `max`/`min` (NaN rules), so each is one instruction.
                let v = if self > low { self } else { low };
                if v < high {
                    v
                } else {
                    high
                }
            }

            #[inline(always)]
            fn finish_power(self, a: $t, magnitude: $t, power: &Power<$t>) -> $t {
                let special = a.special_power(power.flip, power.add);
                let magnitude = if a.is_positive_finite() {
                    magnitude
                } else {
                    special
                };
                let signed = magnitude.with_sign_of(self, power.sign);
                if power.fractional && self.is_negative_finite() {
                    $t::NAN
                } else {
                    signed
                }
            }
        }
    };
}

elementary!(
    f32, u32, 23, 4097.0, -120.0, 100.0,
    // 15 significant bits
    f32::from_bits(0x3F31_7200), 1.428_606_8e-6,
    log: [0.666_666_87, 0.399_887_8, 0.295_799_5],
    exp: [0.5, 0.166_666_67, 0.041_666_463, 0.008_333_31, 0.001_393_389_4, 0.000_198_912_62],
    cbrt: cbrt_f32,
    avx2: [avx2::powers, avx2::power_pairs, avx2::powers_and_slopes]
);

elementary!(
    f64, u64, 52, 134_217_729.0, -800.0, 720.0,
    // 32 significant bits
    f64::from_bits(0x3FE6_2E42_FEE0_0000), 1.908_214_929_270_587_7e-10,
    log: [
        0.666_666_666_666_667, 0.399_999_999_998_995_05, 0.285_714_286_259_754_87,
        0.222_222_111_347_950_8, 0.181_828_891_252_617_23, 0.153_317_216_005_560_42,
        0.146_164_496_850_434_06,
    ],
    exp: [
        0.500_000_000_000_000_1, 0.166_666_666_666_666_69, 0.041_666_666_666_623_19,
        0.008_333_333_333_329_99, 0.001_388_888_891_767_894_6, 0.000_198_412_698_634_113_85,
        2.480_152_057_503_162_4e-5, 2.755_726_790_559_835_5e-6, 2.762_043_042_718_984e-7,
        2.510_064_848_299_385_8e-8,
    ],
    cbrt: cbrt_f64,
    avx2: [steps_powers_avx2, steps_pairs_avx2, steps_pairs_avx2]
);

/// `p` prepared for [`pow`]: what zero, infinity and negative bases give.
#[derive(Debug, Clone, Copy)]
pub struct Power<T> {
    p: T,
    /// What 0, `inf` and NaN give, through [`Elementary::special_power`]: all
    /// ones and `inf` + 1 for `p < 0` (their reciprocals), else zeros (as they
    /// are).
    flip: T,
    add: T,
    /// The sign bit (odd whole `p`: negative bases give negative powers) or 0.
    sign: T,
    /// `p` is not a whole number: negative finite bases give NaN.
    fractional: bool,
}

impl<T: Elementary> Power<T> {
    /// The power `p` (nonzero; any finite or infinite value works, but
    /// [`pow`]'s accuracy bound grows with `|p|`).
    pub fn new(p: T) -> Self {
        let whole = p.fract() == T::zero();
        let odd = whole && (p * T::HALF).fract() != T::zero();
        let positive = p > T::zero();
        Power {
            p,
            flip: if positive { T::zero() } else { T::all_ones() },
            add: if positive {
                T::zero()
            } else {
                T::infinity_plus_one()
            },
            sign: if odd { -T::zero() } else { T::zero() },
            fractional: !whole,
        }
    }

    /// The power.
    pub fn p(&self) -> T {
        self.p
    }
}

/// `x^p`, as C's `pow` (see the module documentation for the accuracy and the
/// special values).
#[inline(always)]
pub fn pow<T: Elementary, F: Fma>(x: T, power: &Power<T>) -> T {
    power_of::<T, F>(x, power)
}

/// `(x^p, x^q)` for two powers of the same base, sharing the logarithm.
#[inline(always)]
pub fn pow_pair<T: Elementary, F: Fma>(x: T, first: &Power<T>, second: &Power<T>) -> (T, T) {
    power_pair_of::<T, F>(x, first, second)
}

/// The cube root of `x`, sign kept (see the module documentation).
#[inline(always)]
pub fn cbrt<T: Elementary, F: Fma>(x: T) -> T {
    x.cbrt_of::<F>()
}

/// `out[i] = x[i]^p` (the slices have one length), a loop that vectorises on
/// every path: AVX-512 registers, the AVX2 twin with FMA, or the portable one.
pub fn powers<T: Elementary>(x: &[T], power: &Power<T>, out: &mut [MaybeUninit<T>]) {
    dispatch_fma!(
        powers_any,
        powers_avx512,
        powers_on_avx2,
        [_],
        x,
        power,
        out
    )
}

/// `out[i] = x[i]^p` and `out2[i] = x[i]^q` (the slices have one length),
/// sharing the logarithms; vectorised as [`powers`].
pub fn power_pairs<T: Elementary>(
    x: &[T],
    first: &Power<T>,
    second: &Power<T>,
    out: &mut [MaybeUninit<T>],
    out2: &mut [MaybeUninit<T>],
) {
    dispatch_fma!(
        power_pairs_any,
        power_pairs_avx512,
        power_pairs_on_avx2,
        [_],
        x,
        first,
        second,
        out,
        out2
    )
}

/// `out[i] = x[i]^p` and `out2[i] = x[i]^(p - 1)`, the derivative's power (the
/// slices have one length). On AVX-512, `x^(p - 1) = x^p / x` where `x` and
/// both results are normal (a quotient instead of a second exponential): within
/// twice `x^p`'s bound plus half a unit (`x^p`'s relative error is up to twice
/// as many units of the quotient's last place, then its rounding); elsewhere as
/// [`power_pairs`] with `p - 1`.
pub fn powers_and_slopes<T: Elementary>(
    x: &[T],
    power: &Power<T>,
    out: &mut [MaybeUninit<T>],
    out2: &mut [MaybeUninit<T>],
) {
    let slope = Power::new(power.p - T::one());
    #[cfg(target_arch = "x86_64")]
    match super::isa::active() {
        // SAFETY: the CPU supports AVX-512F (`active` never exceeds it).
        super::Isa::Avx512 => unsafe { T::powers_and_slopes_avx512(x, power, &slope, out, out2) },
        // SAFETY: the CPU supports AVX2 and FMA (as above).
        super::Isa::Avx2 => unsafe { T::powers_and_slopes_on_avx2(x, power, &slope, out, out2) },
        super::Isa::Portable => power_pairs(x, power, &slope, out, out2),
    }
    #[cfg(not(target_arch = "x86_64"))]
    power_pairs(x, power, &slope, out, out2)
}

#[inline(always)]
fn powers_any<F: Fma, T: Elementary>(x: &[T], power: &Power<T>, out: &mut [MaybeUninit<T>]) {
    for (o, &v) in out.iter_mut().zip(x) {
        o.write(pow::<T, F>(v, power));
    }
}

#[inline(always)]
fn power_pairs_any<F: Fma, T: Elementary>(
    x: &[T],
    first: &Power<T>,
    second: &Power<T>,
    out: &mut [MaybeUninit<T>],
    out2: &mut [MaybeUninit<T>],
) {
    for ((o, o2), &v) in out.iter_mut().zip(out2.iter_mut()).zip(x) {
        let (a, b) = pow_pair::<T, F>(v, first, second);
        o.write(a);
        o2.write(b);
    }
}

/// [`powers_any`] compiled for AVX2 and FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn powers_avx2<F: Fma, T: Elementary>(
    x: &[T],
    power: &Power<T>,
    out: &mut [MaybeUninit<T>],
) {
    powers_any::<F, T>(x, power, out)
}

/// The AVX2 path of [`powers`] (`F`, for `dispatch_fma`, unused: `f32` runs in
/// registers, `f64` fused).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::extra_unused_type_parameters)]
unsafe fn powers_on_avx2<F: Fma, T: Elementary>(
    x: &[T],
    power: &Power<T>,
    out: &mut [MaybeUninit<T>],
) {
    // SAFETY: the caller guarantees AVX2 and FMA.
    unsafe { T::powers_on_avx2(x, power, out) }
}

/// The AVX2 path of [`power_pairs`] (`F` unused, as [`powers_on_avx2`]).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::extra_unused_type_parameters)]
unsafe fn power_pairs_on_avx2<F: Fma, T: Elementary>(
    x: &[T],
    first: &Power<T>,
    second: &Power<T>,
    out: &mut [MaybeUninit<T>],
    out2: &mut [MaybeUninit<T>],
) {
    // SAFETY: the caller guarantees AVX2 and FMA.
    unsafe { T::power_pairs_on_avx2(x, first, second, out, out2) }
}

/// [`Elementary::powers_on_avx2`] of the steps (`f64`).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
unsafe fn steps_powers_avx2<T: Elementary>(x: &[T], power: &Power<T>, out: &mut [MaybeUninit<T>]) {
    // SAFETY: the caller guarantees AVX2 and FMA.
    unsafe { powers_avx2::<Fused, T>(x, power, out) }
}

/// [`Elementary::power_pairs_on_avx2`] (and the slopes, a pair) of the steps
/// (`f64`).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
unsafe fn steps_pairs_avx2<T: Elementary>(
    x: &[T],
    first: &Power<T>,
    second: &Power<T>,
    out: &mut [MaybeUninit<T>],
    out2: &mut [MaybeUninit<T>],
) {
    // SAFETY: the caller guarantees AVX2 and FMA.
    unsafe { power_pairs_avx2::<Fused, T>(x, first, second, out, out2) }
}

/// [`power_pairs_any`] compiled for AVX2 and FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn power_pairs_avx2<F: Fma, T: Elementary>(
    x: &[T],
    first: &Power<T>,
    second: &Power<T>,
    out: &mut [MaybeUninit<T>],
    out2: &mut [MaybeUninit<T>],
) {
    power_pairs_any::<F, T>(x, first, second, out, out2)
}

/// The powers in AVX-512 registers (`F`, for `dispatch_fma`, unused: registers
/// always fuse).
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::extra_unused_type_parameters)]
unsafe fn powers_avx512<F: Fma, T: Elementary>(
    x: &[T],
    power: &Power<T>,
    out: &mut [MaybeUninit<T>],
) {
    // SAFETY: the caller guarantees AVX-512F.
    unsafe { T::powers_avx512(x, power, out) }
}

/// The power pairs in AVX-512 registers (`F` unused).
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::extra_unused_type_parameters)]
unsafe fn power_pairs_avx512<F: Fma, T: Elementary>(
    x: &[T],
    first: &Power<T>,
    second: &Power<T>,
    out: &mut [MaybeUninit<T>],
    out2: &mut [MaybeUninit<T>],
) {
    // SAFETY: the caller guarantees AVX-512F.
    unsafe { T::power_pairs_avx512(x, first, second, out, out2) }
}

/// `x^p` in any [`Lane`].
#[inline(always)]
fn power_of<L: Lane, F: Fma>(x: L, power: &Power<L::Elem>) -> L {
    let a = x.abs_value();
    let (head, tail) = ln_positive::<L, F>(a.core_input());
    x.finish_power(
        a,
        exp_of_product::<L, F>(x.splat(power.p), head, tail),
        power,
    )
}

/// `(x^p, x^q)` in any [`Lane`], sharing the logarithm.
#[inline(always)]
fn power_pair_of<L: Lane, F: Fma>(x: L, first: &Power<L::Elem>, second: &Power<L::Elem>) -> (L, L) {
    let a = x.abs_value();
    let (head, tail) = ln_positive::<L, F>(a.core_input());
    (
        x.finish_power(
            a,
            exp_of_product::<L, F>(x.splat(first.p), head, tail),
            first,
        ),
        x.finish_power(
            a,
            exp_of_product::<L, F>(x.splat(second.p), head, tail),
            second,
        ),
    )
}

/// `ln a` as head + tail for positive finite `a` (anything for other `a`).
#[inline(always)]
fn ln_positive<L: Lane, F: Fma>(a: L) -> (L, L) {
    let c = |v| a.splat(v);
    let (k, m) = a.split();
    let f = m - c(L::Elem::one());
    // f - f^2/2 exactly as head + tail.
    let (half_square, half_square_tail) = (f * c(L::Elem::HALF)).two_prod::<F>(f);
    let head = f - half_square;
    let head_tail = (f - head) - half_square;
    let s = f / (c(L::Elem::TWO) + f);
    let z = s * s;
    let r = z * polynomial::<L, F>(z, L::Elem::LOG_TAIL);
    let rest = s.mul_add_with::<F>(half_square + r, head_tail - half_square_tail);
    // k ln 2 + ln m: |k ln 2| >= ln 2 > |head| unless k = 0.
    let (sum, sum_tail) = fast_two_sum(k * c(L::Elem::LN2_HEAD), head);
    // Renormalised: the tail below half a unit of the head's last place.
    fast_two_sum(
        sum,
        sum_tail + k.mul_add_with::<F>(c(L::Elem::LN2_TAIL), rest),
    )
}

/// `exp(p (head + tail))`.
#[inline(always)]
fn exp_of_product<L: Lane, F: Fma>(p: L, head: L, tail: L) -> L {
    let c = |v| p.splat(v);
    let one = L::Elem::one();
    let (y, y_tail) = p.two_prod::<F>(head);
    let y_tail = p.mul_add_with::<F>(tail, y_tail);
    // Beyond the clamp the result is 0 or infinite whatever the tail (which is
    // below 2^-22 of y inside it, and kept within 1 outside).
    let y = y.clamp_to(L::Elem::LOWEST, L::Elem::HIGHEST);
    let y_tail = y_tail.clamp_to(L::Elem::NEG_ONE, one);
    // q from y alone: r stays within the fit's range (y_tail < 2^-16 here).
    let (q, token) = y.round_product::<F>(L::Elem::LOG2_E);
    // y - q ln 2: the head exactly (q LN2_HEAD is exact and close to y).
    let minus_q = c(L::Elem::zero()) - q;
    let (r, r_tail) = fast_two_sum(
        minus_q.mul_add_with::<F>(c(L::Elem::LN2_HEAD), y),
        minus_q.mul_add_with::<F>(c(L::Elem::LN2_TAIL), y_tail),
    );
    let w = polynomial::<L, F>(r, L::Elem::EXP_TAIL);
    let (one_plus_r, low) = fast_two_sum(c(one), r);
    let e = one_plus_r + (low + (r * r).mul_add_with::<F>(w, r_tail * one_plus_r));
    e.times_two_to(token)
}

/// The cube root of an `f32`, sign kept; `+-0`, `+-inf` and NaN as they are.
#[inline(always)]
fn cbrt_f32<F: Fma>(x: f32) -> f32 {
    let a = x.abs();
    // Every f32 is a normal f64 well inside cbrt_positive's range.
    let root = cbrt_positive::<F>(f64::from(a), 3, false) as f32;
    let root = if a.is_positive_finite() { root } else { a };
    root.with_sign_of(x, -0.0)
}

/// The cube root of an `f64`, sign kept; `+-0`, `+-inf` and NaN as they
/// are.
#[inline(always)]
fn cbrt_f64<F: Fma>(x: f64) -> f64 {
    // Keep x r^3 and y^3 inside the exponent range: scale by 2^(+-768) (the
    // cube of 2^(+-256)) outside [2^-768, 2^768], subnormals included.
    const BIG: f64 = f64::from_bits((1023 + 768) << 52);
    const SMALL: f64 = f64::from_bits((1023 - 768) << 52);
    const ROOT_BIG: f64 = f64::from_bits((1023 + 256) << 52);
    const ROOT_SMALL: f64 = f64::from_bits((1023 - 256) << 52);
    let a = x.abs();
    let (scaled, unscale) = if a > BIG {
        (a * SMALL, ROOT_BIG)
    } else if a < SMALL {
        (a * BIG, ROOT_SMALL)
    } else {
        (a, 1.0)
    };
    let root = cbrt_positive::<F>(scaled, 4, true) * unscale;
    let root = if a.is_positive_finite() { root } else { a };
    root.with_sign_of(x, -0.0)
}

/// The cube root of `a` in `[2^-768, 2^768]` (any positive normal `a` for a
/// result rounded to `f32`): `steps` Newton steps for `a^(-1/3)` from a guess
/// within 2^-4.8, then `a r^2`, and with `last` a Newton step for the root.
#[inline(always)]
fn cbrt_positive<F: Fma>(a: f64, steps: usize, last: bool) -> f64 {
    // The high word of a^(-1/3) is about 0x553EF0FF - (high word of a) / 3; the
    // high word is below 2^31, so the third is a product of two 32-bit numbers.
    let high = a.to_bits() >> 32;
    let third = (high * 0x5555_5556) >> 32;
    let mut r = f64::from_bits((0x553E_F0FF - third) << 32);
    for _ in 0..steps {
        // r' = r (4 - a r^3) / 3: the relative error goes from e to about 2 e^2.
        let r3 = r * r * r;
        r = r * F::mul_add(-a, r3, 4.0) * (1.0 / 3.0);
    }
    let y = a * r * r;
    if !last {
        return y;
    }
    // y' = y - (y^3 - a) / (3 y^2), with y^3 - a exact to the last bits and
    // 1 / y^2 = r^2 (both a^(-2/3)) up to r's error, which the step multiplies
    // by the already tiny y^3 - a.
    let (square, square_tail) = F::two_prod(y, y);
    let (cube, cube_tail) = F::two_prod(square, y);
    let excess = (cube - a) + F::mul_add(square_tail, y, cube_tail);
    F::mul_add(-excess, r * r * (1.0 / 3.0), y)
}

#[cfg(test)]
mod tests;
