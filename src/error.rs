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
/// the process when the allocation fails.
pub fn alloc_zeroed<T: Clone + Default>(len: usize, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        Error::Memory(format!(
            "cannot allocate {what}: {len} elements of {} bytes",
            std::mem::size_of::<T>()
        ))
    })?;
    v.resize(len, T::default());
    Ok(v)
}
