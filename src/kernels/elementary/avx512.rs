//! [`Lane`] on AVX-512F registers, 16 `f32` or 8 `f64` lanes, and the slice
//! loops over them. The instruction set has the steps the one-value lanes spell
//! out in integer operations: `vgetmant`/`vgetexp` split the exponent (of
//! subnormals too), `vrndscale` rounds, `vscalef` multiplies by `2^q` with
//! overflow, underflow and subnormal rounding done right; about 70 instructions
//! per register of powers instead of 85.
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
    type Register: Register<Elem = Self>;
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

/// `out[i] = x[i]^p`.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn powers<T: InRegisters>(x: &[T], power: &Power<T>, out: &mut [MaybeUninit<T>]) {
    // SAFETY: the caller guarantees AVX-512F.
    unsafe {
        map::<T::Register, 1>(
            x,
            [out],
            #[inline(always)]
            |v| [super::power_of::<_, super::Fused>(v, power)],
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
        map::<T::Register, 2>(
            x,
            [out, out2],
            #[inline(always)]
            |v| {
                let (a, b) = super::power_pair_of::<_, super::Fused>(v, first, second);
                [a, b]
            },
        );
    }
}
