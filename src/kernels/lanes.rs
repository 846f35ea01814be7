//! The seam between the SIMD kernels and an instruction set: [`Lanes`], a vector
//! register of `LANES` elements and the few operations the kernels are written in
//! (load, store, fused multiply-add, even/odd and interleave permutes).
//!
//! Each SIMD kernel body is written once, generic over these traits, and each
//! instruction set instantiates it in a thin `#[target_feature]` wrapper:
//!
//! ```text
//! #[inline(always)] unsafe fn body<V: Lanes>(..)         the kernel, once
//! #[target_feature(enable = "avx512f")]
//! unsafe fn kernel_f32(..) { body::<F32x16>(..) }        one wrapper per type and ISA
//! ```
//!
//! Every method is `#[inline(always)]`, so it is inlined into the body and the body
//! into the wrapper, where the instruction set is enabled and the intrinsics inline
//! in turn: the wrapper compiles to the same code as a kernel written with the
//! intrinsics directly. A method left as a call would cost a call per vector
//! operation (and pass its registers through memory).
//!
//! The signatures use no mask types: partial vectors are "the first `n` lanes",
//! which AVX-512 turns into a lane mask and an AVX2 implementation could build
//! for `maskload`/`maskstore` or blends.
//!
//! Implementations: [`avx512`] (`F32x16` over `__m512`, `F64x8` over `__m512d`).

use super::scalar::Scalar;

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;

/// A vector register of [`Lanes::LANES`] elements of type [`Lanes::Elem`].
///
/// Lane `l` of a register loaded from `ptr` holds `*ptr.add(l)`. Loads and stores
/// are unaligned.
///
/// Every method is unsafe for one shared reason, besides the memory contracts
/// stated per method: an implementation executes the instructions of its
/// instruction set, so the CPU must support it (AVX-512F for the [`avx512`]
/// types). Kernels call these methods only from inside a `#[target_feature]`
/// wrapper entered after the runtime check of `super::isa`.
pub(crate) trait Lanes: Copy {
    /// The element type of every lane.
    type Elem: Scalar;

    /// Elements per register.
    const LANES: usize;

    /// All lanes zero.
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set.
    unsafe fn zero() -> Self;

    /// Every lane `x`.
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set.
    unsafe fn splat(x: Self::Elem) -> Self;

    /// Lanes `0 .. LANES` from `ptr .. ptr + LANES`.
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set, and `ptr` must be
    /// valid for reading `LANES` elements.
    unsafe fn load(ptr: *const Self::Elem) -> Self;

    /// Lanes `0 .. min(n, LANES)` from `ptr`, zero in the lanes after them. Memory
    /// past the first `min(n, LANES)` elements is not read, so `ptr` may point
    /// anywhere when `n == 0`.
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set, and `ptr` must be
    /// valid for reading `min(n, LANES)` elements.
    unsafe fn load_first(ptr: *const Self::Elem, n: usize) -> Self;

    /// `v` into `ptr .. ptr + LANES`.
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set, and `ptr` must be
    /// valid for writing `LANES` elements.
    unsafe fn store(ptr: *mut Self::Elem, v: Self);

    /// Lanes `0 .. min(n, LANES)` of `v` into `ptr`; memory past them is not
    /// touched.
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set, and `ptr` must be
    /// valid for writing `min(n, LANES)` elements.
    unsafe fn store_first(ptr: *mut Self::Elem, n: usize, v: Self);

    /// `a + b` per lane.
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set.
    unsafe fn add(a: Self, b: Self) -> Self;

    /// `a * b + c` per lane, rounded once (a fused multiply-add).
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set.
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self;

    /// The even lanes of the pair `lo, hi` read as one `2 * LANES` row:
    /// `[lo[0], lo[2], .., hi[0], hi[2], ..]`.
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set.
    unsafe fn even(lo: Self, hi: Self) -> Self;

    /// The odd lanes of the pair `lo, hi`: `[lo[1], lo[3], .., hi[1], hi[3], ..]`.
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set.
    unsafe fn odd(lo: Self, hi: Self) -> Self;

    /// The first half of the lanes of `a` and `b`, interleaved:
    /// `[a[0], b[0], a[1], b[1], .., a[LANES / 2 - 1], b[LANES / 2 - 1]]` (across
    /// the whole register, not within 128-bit blocks).
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set.
    unsafe fn interleave_low(a: Self, b: Self) -> Self;

    /// The second half of the lanes of `a` and `b`, interleaved:
    /// `[a[LANES / 2], b[LANES / 2], .., a[LANES - 1], b[LANES - 1]]`.
    /// `interleave_low` and `interleave_high` invert `even` and `odd`.
    ///
    /// # Safety
    /// The CPU must support the implementation's instruction set.
    unsafe fn interleave_high(a: Self, b: Self) -> Self;
}
