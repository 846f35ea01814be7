//! Threads, geometry helpers and build information.

use super::spec::at_least;
use crate::conv;
use crate::geometry;
use crate::kernels::isa;
use crate::threads;
use pyo3::exceptions::PyImportError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The environment variable that caps the SIMD path when the extension loads.
const SIMD_ENV: &str = "FERROCONV_SIMD";

#[pyfunction]
fn set_num_threads(threads: i64) -> PyResult<()> {
    Ok(threads::set_num_threads(at_least("threads", threads, 1)?)?)
}

/// Force a convolution algorithm for one pass (`None`: the plan's rules again);
/// for benchmarking the alternatives, not part of the public API.
#[pyfunction]
#[pyo3(signature = (pass_name, algorithm=None))]
fn _set_plan_override(pass_name: &str, algorithm: Option<&str>) -> PyResult<()> {
    Ok(crate::conv::set_plan_override(pass_name, algorithm)?)
}

#[pyfunction]
fn get_num_threads() -> usize {
    threads::get_num_threads()
}

/// Environment variable holding the process's default convolution precision.
const PRECISION_ENV: &str = "FERROCONV_PRECISION";

#[pyfunction]
fn set_precision(precision: &str) -> PyResult<()> {
    conv::set_process_precision(conv::Precision::parse(precision)?);
    Ok(())
}

#[pyfunction]
fn get_precision() -> &'static str {
    conv::process_precision().name()
}

/// The process default precision from `FERROCONV_PRECISION`, when set: a value
/// that is not a precision fails the import (a misspelt "highest" must not
/// silently run Winograd).
pub(crate) fn precision_from_env() -> PyResult<()> {
    let Some(value) = std::env::var_os(PRECISION_ENV) else {
        return Ok(());
    };
    let value = value.to_string_lossy();
    let precision = conv::Precision::parse(value.trim()).map_err(|_| {
        PyImportError::new_err(format!(
            "{PRECISION_ENV} must be one of {:?}, got {value:?}",
            conv::Precision::NAMES
        ))
    })?;
    conv::set_process_precision(precision);
    Ok(())
}

#[pyfunction]
fn set_simd(name: &str) -> PyResult<()> {
    Ok(isa::set_cap(isa::Isa::from_name(name)?)?)
}

#[pyfunction]
fn get_simd() -> &'static str {
    isa::active().name()
}

/// Apply `FERROCONV_SIMD` if it is set. A value that is not a path name, or a
/// path this CPU lacks, fails the import (`ImportError`): running the tests of
/// one path on another, silently, is what the variable exists to prevent.
fn apply_simd_env() -> PyResult<()> {
    let Some(value) = std::env::var_os(SIMD_ENV) else {
        return Ok(());
    };
    let value = value.to_string_lossy();
    isa::Isa::from_name(&value)
        .and_then(isa::set_cap)
        .map_err(|err| PyImportError::new_err(format!("ferroconv: {SIMD_ENV}={value:?}: {err}")))
}

#[pyfunction]
fn receptive_field(layers: Vec<(i64, i64, i64)>) -> PyResult<usize> {
    Ok(geometry::receptive_field(&layers)?)
}

#[pyfunction]
fn same_padding(kernel: i64, dilation: i64) -> PyResult<(usize, usize)> {
    let kernel = at_least("kernel_size", kernel, 1)?;
    let dilation = at_least("dilation", dilation, 1)?;
    Ok(geometry::same_padding(kernel, dilation)?)
}

/// SIMD features the CPU offers that the kernels can use.
fn simd_features() -> Vec<&'static str> {
    #[allow(unused_mut)]
    let mut found = Vec::new();
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        if std::arch::is_x86_feature_detected!("sse4.1") {
            found.push("sse4.1");
        }
        if std::arch::is_x86_feature_detected!("avx") {
            found.push("avx");
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            found.push("avx2");
        }
        if std::arch::is_x86_feature_detected!("fma") {
            found.push("fma");
        }
        if std::arch::is_x86_feature_detected!("f16c") {
            found.push("f16c");
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            found.push("avx512f");
        }
        if std::arch::is_x86_feature_detected!("avx512bf16") {
            found.push("avx512bf16");
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        found.push("neon");
    }
    found
}

#[pyfunction]
fn build_info(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let info = PyDict::new(py);
    info.set_item("version", env!("CARGO_PKG_VERSION"))?;
    info.set_item(
        "profile",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    )?;
    info.set_item("simd", simd_features())?;
    info.set_item("simd_path", isa::active().name())?;
    info.set_item("simd_best", isa::best().name())?;
    info.set_item("dtypes", vec!["float32", "float64", "float16", "bfloat16"])?;
    // Whether bfloat16 GEMM-shaped layers run on the native vdpbf16ps kernel now
    // (the CPU has AVX512_BF16 and the active path is AVX-512).
    info.set_item("bf16_native", crate::kernels::bf16_gemm::available())?;
    info.set_item("default_threads", threads::default_num_threads())?;
    info.set_item("precision", conv::process_precision().name())?;
    Ok(info)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(set_precision, m)?)?;
    m.add_function(wrap_pyfunction!(get_precision, m)?)?;
    m.add_function(wrap_pyfunction!(set_simd, m)?)?;
    m.add_function(wrap_pyfunction!(get_simd, m)?)?;
    apply_simd_env()?;
    m.add_function(wrap_pyfunction!(_set_plan_override, m)?)?;
    m.add_function(wrap_pyfunction!(receptive_field, m)?)?;
    m.add_function(wrap_pyfunction!(same_padding, m)?)?;
    m.add_function(wrap_pyfunction!(build_info, m)?)?;
    Ok(())
}
