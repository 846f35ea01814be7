//! The element types arrays are *stored* in, and the type each is computed in:
//! `f32` and `f64` compute in themselves; the 16-bit types (`half::bf16`,
//! `half::f16`) compute in `f32`.
//!
//! The 16-bit contract: every output is the float32 result of the same operator
//! on the inputs widened to float32 (exactly: every 16-bit value is a float32),
//! rounded once to the 16-bit type (round to nearest, ties to even). So a 16-bit
//! result equals the float32 path's result on the upcast inputs, rounded once,
//! bit for bit, on every SIMD path and for any thread count; max pooling and its
//! indices are exact. Widening and rounding run in parallel chunks; a chunk's
//! conversion does not depend on its neighbours, so the chunking changes nothing.

use crate::alloc::{alloc_zeroed, ZeroBits};
use crate::conv::{ConvGrads, Fused, Needs, Precision};
use crate::element::Element;
use crate::error::{Error, Result};
use crate::geometry::ConvParams;
use crate::kernels::{convert, MaxElement};
use crate::threads::for_each_chunk_mut;
use half::{bf16, f16};
use ndarray::{
    Array, Array5, ArrayView, ArrayView1, ArrayView5, ArrayViewMut, CowArray, Dimension,
};
use std::cell::RefCell;
use std::mem::MaybeUninit;

/// Elements converted per parallel chunk: large enough that a chunk's overhead
/// is noise, small enough that two threads share a 100k-element array.
const CHUNK: usize = 1 << 14;

/// A type arrays are stored in, and how it crosses to the type it is computed in.
pub trait Storage: Copy + Send + Sync + ZeroBits + 'static {
    /// The type every kernel computes in.
    type Compute: Element;

    /// NumPy's name for the type, used in messages.
    const NAME: &'static str;

    /// Whether the type differs from its compute type (a widening copy is made).
    const WIDENS: bool;

    /// `a` in the compute type: borrowed when the types agree, else a widened
    /// C-ordered copy (every value exact).
    fn widen<'a, D: Dimension>(a: ArrayView<'a, Self, D>)
        -> Result<CowArray<'a, Self::Compute, D>>;

    /// `a` in this type: moved when the types agree, else rounded once per value.
    fn narrow<D: Dimension>(a: Array<Self::Compute, D>) -> Result<Array<Self, D>>;

    /// `out` as a view of the compute type when the types agree (the kernels then
    /// write it directly); `Err(out)` when they do not (write a result into it with
    /// [`Storage::narrow_into`]).
    #[allow(clippy::type_complexity)]
    fn direct_out<D: Dimension>(
        out: ArrayViewMut<'_, Self, D>,
    ) -> std::result::Result<ArrayViewMut<'_, Self::Compute, D>, ArrayViewMut<'_, Self, D>>;

    /// `a` rounded once into `out` (same shape).
    fn narrow_into<D: Dimension>(
        a: ArrayView<'_, Self::Compute, D>,
        out: ArrayViewMut<'_, Self, D>,
    );

    /// `body(x, out)` in the compute type: `x` as is and `out` written directly
    /// when the types agree; else `x` widened into a per-thread scratch and `out`
    /// rounded once from a second one after `body`. For kernels that work on a
    /// cache-sized block (a pooling plane): the conversion happens while the block
    /// is in cache, so memory sees only 16-bit traffic.
    ///
    /// `body` must write every element of its `out` (the kernels' contract, which
    /// the caller relies on to treat `out` as initialised afterwards).
    fn through_compute<R>(
        x: &[Self],
        out: &mut [MaybeUninit<Self>],
        body: impl FnOnce(&[Self::Compute], &mut [MaybeUninit<Self::Compute>]) -> R,
    ) -> R;

    /// The convolution forward on kernels native to this type, rounded once
    /// (bfloat16: [`crate::conv::conv_forward_bf16`]); `Ok(None)` where there are
    /// none or they do not apply (the caller widens and runs the compute type).
    fn native_forward(
        _x: ArrayView5<'_, Self>,
        _weight: ArrayView5<'_, Self>,
        _bias: Option<ArrayView1<'_, Self::Compute>>,
        _params: &ConvParams,
        _fused: &Fused<'_, Self::Compute>,
    ) -> Result<Option<Array5<Self>>> {
        Ok(None)
    }

    /// The convolution's gradients on kernels native to this type where they
    /// apply, each rounded once (bfloat16: [`crate::conv::conv_backward_bf16`]);
    /// `Ok(None)` for types without native kernels (the caller widens).
    fn native_backward(
        _grad_out: ArrayView5<'_, Self>,
        _x: ArrayView5<'_, Self>,
        _weight: ArrayView5<'_, Self>,
        _params: &ConvParams,
        _needs: Needs,
        _precision: Option<Precision>,
    ) -> Result<Option<ConvGrads<Self>>> {
        Ok(None)
    }
}

macro_rules! same_storage {
    ($t:ty) => {
        impl Storage for $t {
            type Compute = $t;
            const NAME: &'static str = <$t as Element>::NAME;
            const WIDENS: bool = false;

            fn widen<'a, D: Dimension>(a: ArrayView<'a, $t, D>) -> Result<CowArray<'a, $t, D>> {
                Ok(CowArray::from(a))
            }

            fn narrow<D: Dimension>(a: Array<$t, D>) -> Result<Array<$t, D>> {
                Ok(a)
            }

            fn direct_out<D: Dimension>(
                out: ArrayViewMut<'_, $t, D>,
            ) -> std::result::Result<ArrayViewMut<'_, $t, D>, ArrayViewMut<'_, $t, D>> {
                Ok(out)
            }

            fn narrow_into<D: Dimension>(
                a: ArrayView<'_, $t, D>,
                mut out: ArrayViewMut<'_, $t, D>,
            ) {
                out.assign(&a);
            }

            fn through_compute<R>(
                x: &[$t],
                out: &mut [MaybeUninit<$t>],
                body: impl FnOnce(&[$t], &mut [MaybeUninit<$t>]) -> R,
            ) -> R {
                body(x, out)
            }
        }
    };
}

same_storage!(f32);
same_storage!(f64);

/// A 16-bit float: its conversions to and from `f32` (exact, and rounded to
/// nearest even), one value and whole slices.
pub trait Half: Copy + Send + Sync + 'static {
    /// `v` widened (exact).
    fn to_f32(self) -> f32;
    /// `v` rounded to nearest, ties to even (NaN stays NaN, overflow is infinity).
    fn from_f32(v: f32) -> Self;
    /// `dst[i] = src[i]` widened; the slices have one length.
    fn widen_slice(src: &[Self], dst: &mut [f32]);
    /// `dst[i] = src[i]` rounded; the slices have one length.
    fn narrow_slice(src: &[f32], dst: &mut [Self]);
    /// [`Half::narrow_slice`] into a buffer not yet written, every element of
    /// which it writes.
    fn narrow_uninit(src: &[f32], dst: &mut [MaybeUninit<Self>]);
}

/// The bits of 16-bit values (for the kernels, which take raw bits).
pub fn bits<H: Half>(s: &[H]) -> &[u16] {
    bits_of(s)
}

/// Slots for the bits of 16-bit values (for the kernels, which write raw bits).
pub fn bit_slots<H: Half>(s: &mut [MaybeUninit<H>]) -> &mut [MaybeUninit<u16>] {
    bit_slots_of(s)
}

/// `s` as its bits (both 16-bit types are `#[repr(transparent)]` over `u16`).
fn bits_of<H: Half>(s: &[H]) -> &[u16] {
    // SAFETY: `H` is `f16` or `bf16`, each a transparent wrapper of a `u16`
    // (same size, alignment and validity), so the slice reinterprets in place.
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u16>(), s.len()) }
}

/// `s` as slots for bits (as [`bits_of`]).
fn bit_slots_of<H: Half>(s: &mut [MaybeUninit<H>]) -> &mut [MaybeUninit<u16>] {
    // SAFETY: as in `bits_of`; `MaybeUninit` keeps the layout of what it wraps.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<MaybeUninit<u16>>(), s.len()) }
}

/// `s` as uninitialised slots (only ever written with valid values).
fn as_slots<H>(s: &mut [H]) -> &mut [MaybeUninit<H>] {
    // SAFETY: `MaybeUninit<H>` has the layout of `H`, and the callers write only
    // initialised values through the result, so `s` stays initialised.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<MaybeUninit<H>>(), s.len()) }
}

impl Half for f16 {
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    fn from_f32(v: f32) -> f16 {
        f16::from_f32(v)
    }
    fn widen_slice(src: &[f16], dst: &mut [f32]) {
        convert::widen_f16(bits_of(src), dst);
    }
    fn narrow_slice(src: &[f32], dst: &mut [f16]) {
        Self::narrow_uninit(src, as_slots(dst));
    }
    fn narrow_uninit(src: &[f32], dst: &mut [MaybeUninit<f16>]) {
        convert::narrow_f16(src, bit_slots_of(dst));
    }
}

impl Half for bf16 {
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
    fn from_f32(v: f32) -> bf16 {
        bf16::from_f32(v)
    }
    fn widen_slice(src: &[bf16], dst: &mut [f32]) {
        convert::widen_bf16(bits_of(src), dst);
    }
    fn narrow_slice(src: &[f32], dst: &mut [bf16]) {
        Self::narrow_uninit(src, as_slots(dst));
    }
    fn narrow_uninit(src: &[f32], dst: &mut [MaybeUninit<bf16>]) {
        convert::narrow_bf16(src, bit_slots_of(dst));
    }
}

/// A widened input block and an output block, grown to the largest block seen.
type Scratch<T> = RefCell<(Vec<T>, Vec<MaybeUninit<T>>)>;

thread_local! {
    /// Per-thread scratch of [`Storage::through_compute`] (16-bit floats).
    static SCRATCH: Scratch<f32> = const { RefCell::new((Vec::new(), Vec::new())) };
    /// Per-thread scratch of [`MaxStorage::through_compute`] (8- and 16-bit
    /// integers).
    static INT_SCRATCH: Scratch<i32> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `body(x, out)` on this thread's scratch `key`, `x_len` and `out_len` elements
/// long (fresh buffers if the scratch is in use further up the stack).
fn with_scratch<T: Copy + Default + 'static, R>(
    key: &'static std::thread::LocalKey<Scratch<T>>,
    x_len: usize,
    out_len: usize,
    body: impl FnOnce(&mut [T], &mut [MaybeUninit<T>]) -> R,
) -> R {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => {
            let (x, out) = &mut *scratch;
            if x.len() < x_len {
                x.resize(x_len, T::default());
            }
            if out.len() < out_len {
                out.resize(out_len, MaybeUninit::new(T::default()));
            }
            body(&mut x[..x_len], &mut out[..out_len])
        }
        Err(_) => body(
            &mut vec![T::default(); x_len],
            &mut vec![MaybeUninit::new(T::default()); out_len],
        ),
    })
}

/// Run `convert(src_chunk, dst_chunk)` over matching chunks of `src` and `dst`, in
/// parallel when they are long.
fn convert_chunks<S: Sync, T: Send>(
    src: &[S],
    dst: &mut [T],
    convert: impl Fn(&[S], &mut [T]) + Sync + Send,
) -> Result<()> {
    for_each_chunk_mut(
        dst,
        CHUNK,
        src.len().saturating_mul(64),
        || (),
        |_, i, chunk| {
            let start = i * CHUNK;
            convert(&src[start..start + chunk.len()], chunk);
        },
    )
}

/// `len` values produced by `fill(dst)`, which writes all of `dst`. The buffer
/// starts zeroed: fresh pages from the allocator, so not written twice when large.
fn filled<T: ZeroBits>(
    len: usize,
    what: &str,
    fill: impl FnOnce(&mut [T]) -> Result<()>,
) -> Result<Vec<T>> {
    let mut buffer = alloc_zeroed::<T>(len, what)?;
    fill(&mut buffer)?;
    Ok(buffer)
}

fn shaped<T, D: Dimension>(dim: D, data: Vec<T>) -> Result<Array<T, D>> {
    Array::from_shape_vec(dim, data).map_err(|e| Error::Value(format!("internal error: {e}")))
}

macro_rules! half_storage {
    ($t:ty, $name:expr $(, $extra:item)*) => {
        impl Storage for $t {
            type Compute = f32;
            const NAME: &'static str = $name;
            const WIDENS: bool = true;

            fn widen<'a, D: Dimension>(a: ArrayView<'a, $t, D>) -> Result<CowArray<'a, f32, D>> {
                let data = match a.as_slice() {
                    Some(src) => filled(src.len(), "a float32 copy of a 16-bit input", |dst| {
                        convert_chunks(src, dst, <$t as Half>::widen_slice)
                    })?,
                    None => a.iter().map(|v| v.to_f32()).collect(),
                };
                Ok(CowArray::from(shaped(a.raw_dim(), data)?))
            }

            fn narrow<D: Dimension>(a: Array<f32, D>) -> Result<Array<$t, D>> {
                let data = match a.as_slice() {
                    Some(src) => filled(src.len(), "the 16-bit result", |dst| {
                        convert_chunks(src, dst, <$t as Half>::narrow_slice)
                    })?,
                    None => a.iter().map(|&v| <$t as Half>::from_f32(v)).collect(),
                };
                shaped(a.raw_dim(), data)
            }

            fn direct_out<D: Dimension>(
                out: ArrayViewMut<'_, $t, D>,
            ) -> std::result::Result<ArrayViewMut<'_, f32, D>, ArrayViewMut<'_, $t, D>> {
                Err(out)
            }

            fn narrow_into<D: Dimension>(
                a: ArrayView<'_, f32, D>,
                mut out: ArrayViewMut<'_, $t, D>,
            ) {
                out.zip_mut_with(&a, |o, &v| *o = <$t as Half>::from_f32(v));
            }

            fn through_compute<R>(
                x: &[$t],
                out: &mut [MaybeUninit<$t>],
                body: impl FnOnce(&[f32], &mut [MaybeUninit<f32>]) -> R,
            ) -> R {
                with_scratch(&SCRATCH, x.len(), out.len(), |wide_x, wide_out| {
                    <$t as Half>::widen_slice(x, wide_x);
                    let result = body(wide_x, wide_out);
                    // SAFETY: `body` wrote every element of `wide_out` (this
                    // method's contract), and `MaybeUninit<f32>` has the layout of
                    // `f32`.
                    let written = unsafe {
                        std::slice::from_raw_parts(wide_out.as_ptr().cast::<f32>(), wide_out.len())
                    };
                    <$t as Half>::narrow_uninit(written, out);
                    result
                })
            }

            $($extra)*
        }
    };
}

// SAFETY: all-zero bits are +0.0 in both 16-bit formats.
unsafe impl ZeroBits for f16 {}
// SAFETY: as above.
unsafe impl ZeroBits for bf16 {}

half_storage!(
    f16,
    "float16",
    fn native_forward(
        x: ArrayView5<'_, f16>,
        weight: ArrayView5<'_, f16>,
        bias: Option<ArrayView1<'_, f32>>,
        params: &ConvParams,
        fused: &Fused<'_, f32>,
    ) -> Result<Option<Array5<f16>>> {
        crate::conv::conv_forward_f16(x, weight, bias, params, fused)
    }
);
half_storage!(
    bf16,
    "bfloat16",
    fn native_forward(
        x: ArrayView5<'_, bf16>,
        weight: ArrayView5<'_, bf16>,
        bias: Option<ArrayView1<'_, f32>>,
        params: &ConvParams,
        fused: &Fused<'_, f32>,
    ) -> Result<Option<Array5<bf16>>> {
        crate::conv::conv_forward_bf16(x, weight, bias, params, fused)
    },
    fn native_backward(
        grad_out: ArrayView5<'_, bf16>,
        x: ArrayView5<'_, bf16>,
        weight: ArrayView5<'_, bf16>,
        params: &ConvParams,
        needs: Needs,
        precision: Option<Precision>,
    ) -> Result<Option<ConvGrads<bf16>>> {
        crate::conv::conv_backward_bf16(grad_out, x, weight, params, needs, precision).map(Some)
    }
);

/// A type max pooling and unpooling take: the float storage types (max pooling
/// computes in their [`Storage::Compute`] type, exactly: a maximum is one of the
/// inputs) and the integer types `i8`, `u8`, `i16`, `u16`, `i32`, `i64` (compared in
/// `i32` or themselves, exactly; unpooling only moves values).
pub trait MaxStorage: Copy + Send + Sync + ZeroBits + 'static {
    /// The type the max-pooling kernels compare in.
    type Compute: MaxElement;

    /// NumPy's name for the type, used in messages.
    const NAME: &'static str;

    /// `body(x, out)` in the compute type, as [`Storage::through_compute`].
    fn through_compute<R>(
        x: &[Self],
        out: &mut [MaybeUninit<Self>],
        body: impl FnOnce(&[Self::Compute], &mut [MaybeUninit<Self::Compute>]) -> R,
    ) -> R;
}

macro_rules! float_max_storage {
    ($($t:ty),*) => {$(
        impl MaxStorage for $t {
            type Compute = <$t as Storage>::Compute;
            const NAME: &'static str = <$t as Storage>::NAME;

            fn through_compute<R>(
                x: &[$t],
                out: &mut [MaybeUninit<$t>],
                body: impl FnOnce(&[Self::Compute], &mut [MaybeUninit<Self::Compute>]) -> R,
            ) -> R {
                <$t as Storage>::through_compute(x, out, body)
            }
        }
    )*};
}

macro_rules! int_max_storage {
    ($($t:ty => $name:expr),*) => {$(
        impl MaxStorage for $t {
            type Compute = $t;
            const NAME: &'static str = $name;

            fn through_compute<R>(
                x: &[$t],
                out: &mut [MaybeUninit<$t>],
                body: impl FnOnce(&[$t], &mut [MaybeUninit<$t>]) -> R,
            ) -> R {
                body(x, out)
            }
        }
    )*};
}

/// The 8- and 16-bit integers compare in `i32` (exact: every value is one), a
/// plane at a time in a per-thread scratch, as the 16-bit floats do in `f32`:
/// the kernels' lanes then hold values as wide as their `u32` tap offsets, which
/// the compiler vectorises far better than mixed widths (about 3x for `u8`).
macro_rules! narrow_int_max_storage {
    ($($t:ty => $name:expr),*) => {$(
        impl MaxStorage for $t {
            type Compute = i32;
            const NAME: &'static str = $name;

            fn through_compute<R>(
                x: &[$t],
                out: &mut [MaybeUninit<$t>],
                body: impl FnOnce(&[i32], &mut [MaybeUninit<i32>]) -> R,
            ) -> R {
                with_scratch(&INT_SCRATCH, x.len(), out.len(), |wide_x, wide_out| {
                    for (w, &v) in wide_x.iter_mut().zip(x) {
                        *w = i32::from(v);
                    }
                    let result = body(wide_x, wide_out);
                    for (o, w) in out.iter_mut().zip(wide_out.iter()) {
                        // SAFETY: `body` wrote every element of `wide_out` (this
                        // method's contract).
                        let v = unsafe { w.assume_init() };
                        // every output is one of the inputs, so it fits
                        o.write(v as $t);
                    }
                    result
                })
            }
        }
    )*};
}

float_max_storage!(f32, f64, f16, bf16);
int_max_storage!(i32 => "int32", i64 => "int64");
narrow_int_max_storage!(i8 => "int8", u8 => "uint8", i16 => "int16", u16 => "uint16");

/// A zero-filled array of `dim` in storage type `S` (for results that start as
/// zeros).
pub fn zeros<S: Storage, D: Dimension>(dim: D, what: &str) -> Result<Array<S, D>> {
    let data = alloc_zeroed::<S>(dim.size(), what)?;
    shaped(dim, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array3, ShapeBuilder};

    fn round_trip<H: Half + Storage<Compute = f32> + PartialEq + std::fmt::Debug>() {
        // Every bit pattern but NaNs survives widening and narrowing unchanged.
        let values: Vec<u16> = (0..=u16::MAX).collect();
        let halves: Vec<H> = values
            .iter()
            // SAFETY: both half types are plain 16-bit patterns.
            .map(|&b| unsafe { std::mem::transmute_copy::<u16, H>(&b) })
            .collect();
        let a = Array::from_shape_vec(values.len(), halves.clone()).unwrap();
        let wide = H::widen(a.view()).unwrap().into_owned();
        for (h, w) in halves.iter().zip(wide.iter()) {
            let expected = h.to_f32();
            assert!(expected.to_bits() == w.to_bits() || (expected.is_nan() && w.is_nan()));
        }
        let back = H::narrow(wide).unwrap();
        for (h, b) in halves.iter().zip(back.iter()) {
            if !h.to_f32().is_nan() {
                assert_eq!(h, b);
            } else {
                assert!(b.to_f32().is_nan());
            }
        }
    }

    #[test]
    fn every_16_bit_value_round_trips() {
        round_trip::<f16>();
        round_trip::<bf16>();
    }

    #[test]
    fn through_compute_widens_the_block_and_rounds_the_output_once() {
        let x: Vec<bf16> = (0..40).map(|i| bf16::from_f32(i as f32 * 0.37)).collect();
        let mut out = vec![MaybeUninit::<bf16>::uninit(); 20];
        let sum = <bf16 as Storage>::through_compute(&x, &mut out, |wide, wide_out| {
            for (o, pair) in wide_out.iter_mut().zip(wide.chunks(2)) {
                o.write(pair[0] + pair[1] + 1.0e-3);
            }
            wide.iter().sum::<f32>()
        });
        assert_eq!(sum, x.iter().map(|v| v.to_f32()).sum::<f32>());
        for (o, pair) in out.iter().zip(x.chunks(2)) {
            // SAFETY: every element was written above.
            let o = unsafe { o.assume_init() };
            assert_eq!(
                o,
                bf16::from_f32(pair[0].to_f32() + pair[1].to_f32() + 1.0e-3)
            );
        }
    }

    #[test]
    fn narrowing_rounds_to_nearest_even_in_chunks_and_strided() {
        // Values between two bfloat16 neighbours: the chunked (parallel) and the
        // strided (serial) narrowing give the scalar rounding.
        let n = 3 * CHUNK + 7;
        let data: Vec<f32> = (0..n).map(|i| 1.0 + i as f32 * 1.0e-4).collect();
        let a = Array::from_shape_vec(n, data.clone()).unwrap();
        let chunked = bf16::narrow(a.clone()).unwrap();
        let strided_src = Array3::from_shape_vec((1, 1, n).f(), data.clone()).unwrap();
        let strided = bf16::narrow(strided_src).unwrap();
        for (i, &v) in data.iter().enumerate() {
            assert_eq!(chunked[i], bf16::from_f32(v));
            assert_eq!(strided[[0, 0, i]], bf16::from_f32(v));
        }
        // Ties go to even: 1 + 2^-8 lies halfway between 1 and 1 + 2^-7.
        assert_eq!(bf16::from_f32(1.0 + 1.0 / 256.0).to_f32(), 1.0);
        assert_eq!(f16::from_f32(1.0 + 1.0 / 2048.0).to_f32(), 1.0);
    }
}
