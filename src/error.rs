//! One error type for the whole core; the binding maps it to Python exceptions.

use std::fmt;

/// What went wrong, split the way Python callers expect to catch it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Bad shapes, sizes or values (Python `ValueError`).
    Value(String),
    /// Bad types, e.g. mismatched dtypes (Python `TypeError`).
    Type(String),
    /// An output or workspace that cannot be allocated (Python `MemoryError`).
    Memory(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Value(msg) | Error::Type(msg) | Error::Memory(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand: `Err(Error::Value(format!(...)))`.
macro_rules! value_error {
    ($($arg:tt)*) => {
        Err($crate::error::Error::Value(format!($($arg)*)))
    };
}
pub(crate) use value_error;

/// A zero-filled vector of `len` elements, or `Error::Memory` instead of aborting
/// the process when the allocation fails. Zeroed memory comes from the allocator
/// (`calloc`), so fresh pages are not written twice.
pub fn alloc_zeroed<T: ZeroBits>(len: usize, what: &str) -> Result<Vec<T>> {
    let refuse = || {
        Error::Memory(format!(
            "cannot allocate {what}: {len} elements of {} bytes",
            std::mem::size_of::<T>()
        ))
    };
    let layout = std::alloc::Layout::array::<T>(len).map_err(|_| refuse())?;
    if layout.size() == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: the layout has a non-zero size (checked above).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
    if ptr.is_null() {
        return Err(refuse());
    }
    // SAFETY: `ptr` was allocated by the global allocator with the layout of `len`
    // values of `T`, and all-zero bytes are a valid `T` (the `ZeroBits` contract).
    Ok(unsafe { Vec::from_raw_parts(ptr, len, len) })
}

/// Types for which all-zero bytes are a valid value (zero).
///
/// # Safety
/// Implement only for types whose all-zero bit pattern is a valid value.
pub unsafe trait ZeroBits: Copy {}
// SAFETY: all-zero bits are 0.0 for IEEE floats and 0 for integers.
unsafe impl ZeroBits for f32 {}
// SAFETY: as above.
unsafe impl ZeroBits for f64 {}
// SAFETY: as above.
unsafe impl ZeroBits for usize {}
// SAFETY: as above.
unsafe impl ZeroBits for i64 {}
