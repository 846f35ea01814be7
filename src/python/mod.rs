//! The thin PyO3 layer: borrow NumPy arrays, release the GIL, call the core, wrap
//! the result.
//!
//! What crosses the boundary, and who checks what (the same table is in
//! `python/ferroconv/_ferroconv.pyi` and `docs/architecture.md`):
//! - arrays in the caller's rank, batched `(N, C, *spatial)`: Python has added the
//!   batch axis of unbatched input and checked dtypes; here they gain the unit
//!   spatial axes of the core's 5-D layout, and results lose them again;
//! - one spec value per op family ([`spec::ConvSpec`], [`spec::PoolSpec`]), built
//!   by one Python normaliser per family: Python checks *types and arities* (ints,
//!   tuples of `rank` ints, strings, bools), the spec and the core check *values*
//!   (ranges, padding modes, `"same"` with a stride, output sizes);
//! - core errors become `ValueError` / `TypeError` / `MemoryError`; Python adds
//!   the function's name to every message, once.

mod conv;
mod explain;
mod info;
mod interrupt;
mod norm;
mod pool;
mod spec;

use crate::arrays::Shape5;
use crate::error::Error;
use crate::geometry::{fmt_shape, SPATIAL};
use crate::storage::{MaxStorage, Storage};
use ndarray::{Array, ArrayView5, ArrayViewMut5, Axis, Dimension, IxDyn};
use numpy::{
    PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyReadwriteArrayDyn,
    PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyKeyboardInterrupt, PyMemoryError, PyTypeError, PyValueError};
use pyo3::prelude::*;

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        match err {
            Error::Value(msg) => PyValueError::new_err(msg),
            Error::Type(msg) => PyTypeError::new_err(msg),
            Error::Memory(msg) => PyMemoryError::new_err(msg),
            Error::Interrupted => PyKeyboardInterrupt::new_err(()),
        }
    }
}

/// The float element types, as NumPy names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DType {
    F32,
    F64,
    F16,
    BF16,
}

impl DType {
    /// NumPy's name of the type.
    pub(crate) fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
        }
    }

    /// The dtype of `obj`, which must be a float32, float64, float16 or bfloat16
    /// ndarray in native byte order.
    fn of(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<DType> {
        let array = obj.cast::<PyUntypedArray>().map_err(|_| {
            PyTypeError::new_err(format!(
                "{name} must be a numpy.ndarray, got {}",
                obj.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        let dtype = array.dtype();
        let py = obj.py();
        if dtype.is_equiv_to(&numpy::dtype::<f32>(py)) {
            Ok(DType::F32)
        } else if dtype.is_equiv_to(&numpy::dtype::<f64>(py)) {
            Ok(DType::F64)
        } else if dtype.is_equiv_to(&numpy::dtype::<half::f16>(py)) {
            Ok(DType::F16)
        } else if is_bfloat16(&dtype) {
            Ok(DType::BF16)
        } else {
            Err(PyTypeError::new_err(format!(
                "{name} must be a float32, float64, float16 or bfloat16 array in native byte order, got dtype {}",
                dtype.str().map(|s| s.to_string()).unwrap_or_default()
            )))
        }
    }
}

/// The integer element types max pooling and unpooling take, as NumPy names
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntType {
    I8,
    U8,
    I16,
    U16,
    I32,
    I64,
}

/// The element type of an array max pooling or unpooling takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MaxType {
    Float(DType),
    Int(IntType),
}

impl MaxType {
    /// The dtype of `obj`, which must be a float (as [`DType::of`]) or an int8,
    /// uint8, int16, uint16, int32 or int64 ndarray in native byte order.
    pub(crate) fn of(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<MaxType> {
        if let Ok(array) = obj.cast::<PyUntypedArray>() {
            let dtype = array.dtype();
            let py = obj.py();
            let ints = [
                (numpy::dtype::<i8>(py), IntType::I8),
                (numpy::dtype::<u8>(py), IntType::U8),
                (numpy::dtype::<i16>(py), IntType::I16),
                (numpy::dtype::<u16>(py), IntType::U16),
                (numpy::dtype::<i32>(py), IntType::I32),
                (numpy::dtype::<i64>(py), IntType::I64),
            ];
            if let Some((_, int)) = ints.iter().find(|(d, _)| dtype.is_equiv_to(d)) {
                return Ok(MaxType::Int(*int));
            }
        }
        DType::of(obj, name).map(MaxType::Float).map_err(|_| {
            PyTypeError::new_err(format!(
                "{name} must be a float32, float64, float16, bfloat16, int8, uint8, int16, uint16, int32 or int64 array in native byte order, got dtype {}",
                dtype_name(obj)
            ))
        })
    }
}

/// Whether `dtype` is `ml_dtypes.bfloat16` (checked by name first: asking NumPy
/// for the bfloat16 descriptor needs a package that registers it, which any
/// bfloat16 array proves is loaded).
fn is_bfloat16(dtype: &Bound<'_, numpy::PyArrayDescr>) -> bool {
    let named = dtype.typeobj().name().is_ok_and(|n| n == "bfloat16");
    named && dtype.itemsize() == 2 && dtype.is_equiv_to(&numpy::dtype::<half::bf16>(dtype.py()))
}

/// A dtype given by NumPy's name (`"float32"`, `"float64"`, `"float16"`,
/// `"bfloat16"`).
impl<'a, 'py> FromPyObject<'a, 'py> for DType {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let name: String = obj.extract()?;
        match name.as_str() {
            "float32" => Ok(DType::F32),
            "float64" => Ok(DType::F64),
            "float16" => Ok(DType::F16),
            "bfloat16" => Ok(DType::BF16),
            other => Err(PyTypeError::new_err(format!(
                "dtype must be float32, float64, float16 or bfloat16, got {other}"
            ))),
        }
    }
}

/// NumPy's name of the dtype of `obj`, or "a non-array".
fn dtype_name(obj: &Bound<'_, PyAny>) -> String {
    obj.cast::<PyUntypedArray>()
        .ok()
        .and_then(|a| a.dtype().str().ok().map(|s| s.to_string()))
        .unwrap_or_else(|| "a non-array".to_string())
}

/// Borrow `obj` as an array of `T`, or a `TypeError` naming it.
pub(crate) fn borrow<'py, T: Storage + numpy::Element>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<PyReadonlyArrayDyn<'py, T>> {
    borrow_as(obj, name, T::NAME)
}

/// [`borrow`] for the types of max pooling and unpooling (floats or integers).
pub(crate) fn borrow_max<'py, T: MaxStorage + numpy::Element>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<PyReadonlyArrayDyn<'py, T>> {
    borrow_as(obj, name, T::NAME)
}

/// Borrow `obj` as an array of `T` (NumPy's `type_name`), or a `TypeError`.
fn borrow_as<'py, T: numpy::Element>(
    obj: &Bound<'py, PyAny>,
    name: &str,
    type_name: &str,
) -> PyResult<PyReadonlyArrayDyn<'py, T>> {
    obj.extract::<PyReadonlyArrayDyn<'py, T>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{name} has dtype {} but {type_name} was expected (all arrays of one call share the dtype of x)",
            dtype_name(obj)
        ))
    })
}

/// Borrow `obj` as a writeable array of `T`, or a `TypeError` / `ValueError`
/// naming it.
pub(crate) fn borrow_mut<'py, T: Storage + numpy::Element>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<PyReadwriteArrayDyn<'py, T>> {
    let array = obj.cast::<PyArrayDyn<T>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{name} has dtype {} but {} was expected (all arrays of one call share the dtype of x)",
            dtype_name(obj),
            T::NAME
        ))
    })?;
    array.try_readwrite().map_err(|e| {
        PyValueError::new_err(format!(
            "{name} must be a writeable array that no other argument of the call uses ({e})"
        ))
    })
}

/// Borrow `obj` as an int64 array, or a `TypeError` naming it.
pub(crate) fn borrow_indices<'py>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<PyReadonlyArrayDyn<'py, i64>> {
    obj.extract::<PyReadonlyArrayDyn<'py, i64>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{name} must be an int64 array, got {}",
            dtype_name(obj)
        ))
    })
}

/// A batched array of `rank` spatial axes, `(N, C, *spatial)`, as the core's 5-D
/// view (unit leading spatial axes inserted; no copy).
pub(crate) fn view5<'a, T: numpy::Element>(
    a: &'a PyReadonlyArrayDyn<'_, T>,
    name: &str,
    rank: usize,
) -> PyResult<ArrayView5<'a, T>> {
    // The axis count is checked before the view is made: rust-numpy panics on
    // arrays of more than 32 axes, which NumPy 2 allows.
    if a.ndim() != rank + 2 {
        return Err(PyValueError::new_err(format!(
            "{name} must have {} dimensions for a {rank}-D operator, got {}",
            rank + 2,
            a.ndim()
        )));
    }
    let mut view = a.as_array();
    for _ in rank..SPATIAL {
        view = view.insert_axis(Axis(2));
    }
    view.into_dimensionality::<ndarray::Ix5>()
        .map_err(|e| PyValueError::new_err(format!("internal error: {e}")))
}

/// [`view5`] of a writeable array.
pub(crate) fn view5_mut<'a, T: numpy::Element>(
    a: &'a mut PyReadwriteArrayDyn<'_, T>,
    name: &str,
    rank: usize,
) -> PyResult<ArrayViewMut5<'a, T>> {
    let ndim = a.ndim();
    if ndim != rank + 2 {
        return Err(PyValueError::new_err(format!(
            "{name} must have {} dimensions for a {rank}-D operator, got {ndim}",
            rank + 2,
        )));
    }
    let mut view = a.as_array_mut();
    for _ in rank..SPATIAL {
        view = view.insert_axis(Axis(2));
    }
    view.into_dimensionality::<ndarray::Ix5>()
        .map_err(|e| PyValueError::new_err(format!("internal error: {e}")))
}

/// A batched shape in the caller's rank, `(N, C, *spatial)`, as the core's 5-D
/// shape, and its rank.
pub(crate) fn batched_shape(shape: &[i64], name: &str) -> PyResult<(Shape5, usize)> {
    let rank = shape.len().wrapping_sub(2);
    if !(1..=SPATIAL).contains(&rank) {
        return Err(PyValueError::new_err(format!(
            "{name} must have 3 to 5 entries (N, C, *spatial), got {} entries",
            shape.len()
        )));
    }
    if shape.iter().any(|&v| v < 0) {
        let shown: Vec<String> = shape.iter().map(|v| v.to_string()).collect();
        return Err(PyValueError::new_err(format!(
            "{name} must hold sizes >= 0, got ({})",
            shown.join(", ")
        )));
    }
    let size = |v: i64| usize::try_from(v).unwrap_or(usize::MAX);
    let mut full = [1; 5];
    full[0] = size(shape[0]);
    full[1] = size(shape[1]);
    for (slot, &v) in full[5 - rank..].iter_mut().zip(&shape[2..]) {
        *slot = size(v);
    }
    Ok((full, rank))
}

/// Hand an owned array to NumPy in the caller's rank (the core's unit spatial
/// axes dropped, no copy), refusing shapes NumPy cannot represent (their byte size,
/// counting empty axes as 1, must fit an `isize`) with a `ValueError` instead of
/// the null array NumPy would return.
pub(crate) fn to_numpy<'py, T: numpy::Element, D: Dimension>(
    py: Python<'py>,
    array: Array<T, D>,
    rank: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let shape = array.shape().to_vec();
    let bytes = shape.iter().try_fold(std::mem::size_of::<T>(), |acc, &d| {
        acc.checked_mul(d.max(1))
    });
    if bytes.is_none_or(|b| isize::try_from(b).is_err()) {
        return Err(PyValueError::new_err(format!(
            "the result would have shape {}, too large for a NumPy array",
            fmt_shape(&shape)
        )));
    }
    let Some(rank) = rank.filter(|_| shape.len() == 5) else {
        return Ok(numpy::PyArray::from_owned_array(py, array).into_any());
    };
    let dims: Vec<usize> = [&shape[..2], &shape[5 - rank..]].concat();
    let array = array
        .into_shape_with_order(IxDyn(&dims))
        .map_err(|e| PyValueError::new_err(format!("internal error: {e}")))?;
    Ok(numpy::PyArray::from_owned_array(py, array).into_any())
}

/// Run `$body` with `$t` bound to the storage type of `$x` (`f32`, `f64`,
/// `half::f16` or `half::bf16`; see [`crate::storage`]).
macro_rules! with_float_type {
    ($x:expr, $name:expr, $t:ident => $body:expr) => {
        match $crate::python::DType::of($x, $name)? {
            $crate::python::DType::F32 => {
                type $t = f32;
                $body
            }
            $crate::python::DType::F64 => {
                type $t = f64;
                $body
            }
            $crate::python::DType::F16 => {
                type $t = half::f16;
                $body
            }
            $crate::python::DType::BF16 => {
                type $t = half::bf16;
                $body
            }
        }
    };
}
pub(crate) use with_float_type;

/// Run `$body` with `$t` bound to the element type of `$x` for max pooling and
/// unpooling: a float storage type (as [`with_float_type`]) or `i8`, `u8`,
/// `i16`, `u16`, `i32`, `i64` (see [`crate::storage::MaxStorage`]).
macro_rules! with_max_type {
    ($x:expr, $name:expr, $t:ident => $body:expr) => {{
        use $crate::python::{IntType, MaxType};
        match MaxType::of($x, $name)? {
            MaxType::Float(_) => $crate::python::with_float_type!($x, $name, $t => $body),
            MaxType::Int(IntType::I8) => {
                type $t = i8;
                $body
            }
            MaxType::Int(IntType::U8) => {
                type $t = u8;
                $body
            }
            MaxType::Int(IntType::I16) => {
                type $t = i16;
                $body
            }
            MaxType::Int(IntType::U16) => {
                type $t = u16;
                $body
            }
            MaxType::Int(IntType::I32) => {
                type $t = i32;
                $body
            }
            MaxType::Int(IntType::I64) => {
                type $t = i64;
                $body
            }
        }
    }};
}
pub(crate) use with_max_type;

#[pymodule]
fn _ferroconv(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    spec::register(m)?;
    conv::register(m)?;
    pool::register(m)?;
    norm::register(m)?;
    explain::register(m)?;
    info::register(m)?;
    info::precision_from_env()?;
    Ok(())
}
