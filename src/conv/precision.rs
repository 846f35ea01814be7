//! How much rounding a convolution may add beyond summing its products directly:
//! the per-call `precision=` argument and the process default behind it
//! (`set_precision`, `FERROCONV_PRECISION`).
//!
//! Under [`Precision::Default`] the plan may choose Winograd F(4x4, 3x3) for 3x3
//! layers, whose input and output transforms add rounding (an RMS relative error
//! of a few 1e-6 in float32, against ~2e-7 for direct summation; the budget of
//! each algorithm is in the README). [`Precision::Highest`] allows only
//! algorithms that sum the products `x * w` of each output directly, in some
//! order: direct, row kernels, implicit and im2col GEMMs, sub-pixel and col2im.

use crate::error::{value_error, Result};
use std::sync::atomic::{AtomicU8, Ordering};

/// The precision a convolution is computed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// The fastest algorithm, transforms included.
    Default,
    /// Direct summation of the products only.
    Highest,
}

impl Precision {
    /// The names users pass.
    pub const NAMES: [&'static str; 2] = ["default", "highest"];

    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "default" => Ok(Precision::Default),
            "highest" => Ok(Precision::Highest),
            other => value_error!("precision must be one of {:?}, got {other:?}", Self::NAMES),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::Default => "default",
            Precision::Highest => "highest",
        }
    }

    /// Whether algorithms with transforms (Winograd) may run.
    pub fn allows_transforms(self) -> bool {
        self == Precision::Default
    }
}

/// The process default: 0 = default, 1 = highest.
static PROCESS: AtomicU8 = AtomicU8::new(0);

/// The precision of calls that do not pass one.
pub fn process_precision() -> Precision {
    match PROCESS.load(Ordering::Relaxed) {
        0 => Precision::Default,
        _ => Precision::Highest,
    }
}

/// Set the precision of calls that do not pass one.
pub fn set_process_precision(precision: Precision) {
    let code = match precision {
        Precision::Default => 0,
        Precision::Highest => 1,
    };
    PROCESS.store(code, Ordering::Relaxed);
}
