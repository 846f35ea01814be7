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
    /// The call was interrupted (Ctrl-C) and stopped between tasks (Python
    /// `KeyboardInterrupt`); its output is discarded.
    Interrupted,
}

pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Value(msg) | Error::Type(msg) | Error::Memory(msg) => f.write_str(msg),
            Error::Interrupted => f.write_str("interrupted"),
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
