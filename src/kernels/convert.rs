//! Conversions between the 16-bit float formats and `f32`, on raw bits so this
//! module needs no 16-bit type: bfloat16 (the top half of an `f32`) and IEEE
//! binary16. Widening is exact; narrowing rounds to nearest, ties to even, keeps
//! NaNs (quiet) and gives infinity on overflow, and handles subnormals exactly,
//! so every path gives the same bits as the scalar definition (tested).
//!
//! The bfloat16 bodies are plain integer loops the compiler vectorises for each
//! instruction set; binary16 uses the CPU's conversion instructions (AVX-512F's
//! 512-bit `vcvtph2ps`/`vcvtps2ph`, F16C's 256-bit ones), whose rounding is the
//! same. The portable path converts one value at a time in software.

use super::dispatch;
use super::isa::{self, Isa};
use std::mem::MaybeUninit;

/// `v` rounded to the nearest bfloat16 (its bits), ties to even, NaNs kept quiet.
#[inline(always)]
pub fn round_bf16(v: f32) -> u16 {
    let bits = v.to_bits();
    let rounded = bits.wrapping_add(0x7FFF + ((bits >> 16) & 1)) >> 16;
    let quiet_nan = (bits >> 16) | 0x40;
    let is_nan = (bits & 0x7FFF_FFFF) > 0x7F80_0000;
    (if is_nan { quiet_nan } else { rounded }) as u16
}

#[inline(always)]
fn widen_bf16_body(src: &[u16], dst: &mut [f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f32::from_bits(u32::from(s) << 16);
    }
}

#[inline(always)]
fn narrow_bf16_body(src: &[f32], dst: &mut [MaybeUninit<u16>]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        d.write(round_bf16(s));
    }
}

/// `dst[i]` = the bfloat16 `src[i]` widened, for the shorter length.
pub fn widen_bf16(src: &[u16], dst: &mut [f32]) {
    dispatch!(
        widen_bf16_body,
        widen_bf16_avx512,
        widen_bf16_avx2,
        src,
        dst
    )
}

/// `dst[i]` = `src[i]` rounded to bfloat16, for the shorter length (every such
/// element of `dst` is written).
pub fn narrow_bf16(src: &[f32], dst: &mut [MaybeUninit<u16>]) {
    dispatch!(
        narrow_bf16_body,
        narrow_bf16_avx512,
        narrow_bf16_avx2,
        src,
        dst
    )
}

/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn widen_bf16_avx512(src: &[u16], dst: &mut [f32]) {
    widen_bf16_body(src, dst)
}

/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn widen_bf16_avx2(src: &[u16], dst: &mut [f32]) {
    widen_bf16_body(src, dst)
}

/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn narrow_bf16_avx512(src: &[f32], dst: &mut [MaybeUninit<u16>]) {
    narrow_bf16_body(src, dst)
}

/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn narrow_bf16_avx2(src: &[f32], dst: &mut [MaybeUninit<u16>]) {
    narrow_bf16_body(src, dst)
}

fn widen_f16_scalar(src: &[u16], dst: &mut [f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = half::f16::from_bits(s).to_f32();
    }
}

fn narrow_f16_scalar(src: &[f32], dst: &mut [MaybeUninit<u16>]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        d.write(half::f16::from_f32(s).to_bits());
    }
}

/// The path of the binary16 conversions: AVX-512F's, F16C's on the AVX2 path
/// (every AVX2 CPU has F16C, but it is checked), or the scalar one.
fn f16_path() -> Isa {
    match isa::active() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if !std::arch::is_x86_feature_detected!("f16c") => Isa::Portable,
        path => path,
    }
}

/// `dst[i]` = the binary16 `src[i]` widened, for the shorter length.
pub fn widen_f16(src: &[u16], dst: &mut [f32]) {
    match f16_path() {
        // SAFETY: the CPU supports AVX-512F (`active` never exceeds it).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { widen_f16_avx512(src, dst) },
        // SAFETY: the CPU supports AVX2 (as above) and F16C (checked).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { widen_f16_avx2(src, dst) },
        _ => widen_f16_scalar(src, dst),
    }
}

/// `dst[i]` = `src[i]` rounded to binary16, for the shorter length (every such
/// element of `dst` is written).
pub fn narrow_f16(src: &[f32], dst: &mut [MaybeUninit<u16>]) {
    match f16_path() {
        // SAFETY: as in `widen_f16`.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { narrow_f16_avx512(src, dst) },
        // SAFETY: as in `widen_f16`.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { narrow_f16_avx2(src, dst) },
        _ => narrow_f16_scalar(src, dst),
    }
}

/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn widen_f16_avx512(src: &[u16], dst: &mut [f32]) {
    use std::arch::x86_64::{__m256i, _mm256_loadu_si256, _mm512_cvtph_ps, _mm512_storeu_ps};
    let len = src.len().min(dst.len());
    let whole = len / 16 * 16;
    for i in (0..whole).step_by(16) {
        // SAFETY: `i + 16 <= len` elements are readable in `src` and writable in
        // `dst`; the loads and stores are unaligned; the CPU has AVX-512F.
        unsafe {
            let h = _mm256_loadu_si256(src.as_ptr().add(i).cast::<__m256i>());
            _mm512_storeu_ps(dst.as_mut_ptr().add(i), _mm512_cvtph_ps(h));
        }
    }
    widen_f16_scalar(&src[whole..len], &mut dst[whole..len]);
}

/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn narrow_f16_avx512(src: &[f32], dst: &mut [MaybeUninit<u16>]) {
    use std::arch::x86_64::{
        __m256i, _mm256_storeu_si256, _mm512_cvtps_ph, _mm512_loadu_ps, _MM_FROUND_NO_EXC,
        _MM_FROUND_TO_NEAREST_INT,
    };
    let len = src.len().min(dst.len());
    let whole = len / 16 * 16;
    for i in (0..whole).step_by(16) {
        // SAFETY: as in `widen_f16_avx512`.
        unsafe {
            let v = _mm512_loadu_ps(src.as_ptr().add(i));
            let h = _mm512_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v);
            _mm256_storeu_si256(dst.as_mut_ptr().add(i).cast::<__m256i>(), h);
        }
    }
    narrow_f16_scalar(&src[whole..len], &mut dst[whole..len]);
}

/// # Safety
/// The CPU must support AVX2 and F16C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn widen_f16_avx2(src: &[u16], dst: &mut [f32]) {
    use std::arch::x86_64::{__m128i, _mm256_cvtph_ps, _mm256_storeu_ps, _mm_loadu_si128};
    let len = src.len().min(dst.len());
    let whole = len / 8 * 8;
    for i in (0..whole).step_by(8) {
        // SAFETY: as in `widen_f16_avx512`, 8 elements at a time.
        unsafe {
            let h = _mm_loadu_si128(src.as_ptr().add(i).cast::<__m128i>());
            _mm256_storeu_ps(dst.as_mut_ptr().add(i), _mm256_cvtph_ps(h));
        }
    }
    widen_f16_scalar(&src[whole..len], &mut dst[whole..len]);
}

/// # Safety
/// As [`widen_f16_avx2`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn narrow_f16_avx2(src: &[f32], dst: &mut [MaybeUninit<u16>]) {
    use std::arch::x86_64::{
        __m128i, _mm256_cvtps_ph, _mm256_loadu_ps, _mm_storeu_si128, _MM_FROUND_TO_NEAREST_INT,
    };
    let len = src.len().min(dst.len());
    let whole = len / 8 * 8;
    for i in (0..whole).step_by(8) {
        // SAFETY: as in `widen_f16_avx512`, 8 elements at a time.
        unsafe {
            let v = _mm256_loadu_ps(src.as_ptr().add(i));
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v);
            _mm_storeu_si128(dst.as_mut_ptr().add(i).cast::<__m128i>(), h);
        }
    }
    narrow_f16_scalar(&src[whole..len], &mut dst[whole..len]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::isa::{tests::on_path, ALL};

    /// A spread of f32 bit patterns: every 4099th, plus the edges (NaNs of both
    /// signs, infinities, the largest finite values, zeros, subnormals, ties).
    fn f32_patterns() -> Vec<f32> {
        let mut bits: Vec<u32> = (0..=u32::MAX).step_by(4099).collect();
        bits.extend([
            0x7F7F_FFFF,
            0xFF7F_FFFF,
            0x7F80_0000,
            0xFF80_0000,
            0x7FC0_0000,
            0xFFFF_FFFF,
            0x7F80_0001,
            0,
            0x8000_0000,
            0x0000_8000,
            0x0000_0001,
            0x3F80_8000,
            0x3F81_8000,
            0x477F_F000,
            0x477F_EFFF,
            0x3300_0000,
            0x3300_0001,
        ]);
        bits.into_iter().map(f32::from_bits).collect()
    }

    fn same(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits()
            || (a.is_nan() && b.is_nan() && a.is_sign_negative() == b.is_sign_negative())
    }

    #[test]
    fn every_path_converts_like_the_scalar_definitions() {
        let src = f32_patterns();
        let halves: Vec<u16> = (0..=u16::MAX).collect();
        for isa in ALL {
            on_path(isa, || {
                let mut bf = vec![MaybeUninit::new(0u16); src.len()];
                narrow_bf16(&src, &mut bf);
                let mut hf = vec![MaybeUninit::new(0u16); src.len()];
                narrow_f16(&src, &mut hf);
                for (i, &s) in src.iter().enumerate() {
                    // SAFETY: every element was written above.
                    let (b, h) = unsafe { (bf[i].assume_init(), hf[i].assume_init()) };
                    let (eb, eh) = (half::bf16::from_f32(s), half::f16::from_f32(s));
                    assert!(
                        same(half::bf16::from_bits(b).to_f32(), eb.to_f32()),
                        "{isa:?} bf16 {s:?}"
                    );
                    assert!(
                        same(half::f16::from_bits(h).to_f32(), eh.to_f32()),
                        "{isa:?} f16 {s:?}"
                    );
                }
                let mut wide = vec![0.0f32; halves.len()];
                widen_bf16(&halves, &mut wide);
                for (&h, &w) in halves.iter().zip(&wide) {
                    assert!(
                        same(w, half::bf16::from_bits(h).to_f32()),
                        "{isa:?} bf16 {h:#x}"
                    );
                }
                widen_f16(&halves, &mut wide);
                for (&h, &w) in halves.iter().zip(&wide) {
                    assert!(
                        same(w, half::f16::from_bits(h).to_f32()),
                        "{isa:?} f16 {h:#x}"
                    );
                }
            });
        }
    }
}
