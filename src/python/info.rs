//! Threads, geometry helpers and build information.

use crate::geometry::{self, ConvParams, PaddingMode, TransposeParams, SPATIAL};
use crate::threads;
use pyo3::prelude::*;
use pyo3::types::PyDict;

type Dims = [usize; SPATIAL];

#[pyfunction]
fn set_num_threads(threads: usize) -> PyResult<()> {
    Ok(threads::set_num_threads(threads)?)
}

#[pyfunction]
fn get_num_threads() -> usize {
    threads::get_num_threads()
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn conv_output_shape(
    input: Dims,
    kernel: Dims,
    stride: Dims,
    dilation: Dims,
    pad_lo: Dims,
    pad_hi: Dims,
    padding_mode: &str,
    rank: usize,
) -> PyResult<Dims> {
    let params = ConvParams {
        rank,
        stride,
        dilation,
        pad_lo,
        pad_hi,
        groups: 1,
        padding_mode: PaddingMode::parse(padding_mode)?,
    };
    Ok(params.output_dims(input, kernel)?)
}

#[pyfunction]
fn conv_transpose_output_shape(
    input: Dims,
    kernel: Dims,
    stride: Dims,
    dilation: Dims,
    padding: Dims,
    output_padding: Dims,
    rank: usize,
) -> PyResult<Dims> {
    let params = TransposeParams {
        rank,
        stride,
        dilation,
        padding,
        output_padding,
        groups: 1,
    };
    Ok(params.output_dims(input, kernel)?)
}

#[pyfunction]
fn receptive_field(layers: Vec<(usize, usize, usize)>) -> PyResult<usize> {
    Ok(geometry::receptive_field(&layers)?)
}

#[pyfunction]
fn same_padding(kernel: usize, dilation: usize) -> PyResult<(usize, usize)> {
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
        if std::arch::is_x86_feature_detected!("avx512f") {
            found.push("avx512f");
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
    info.set_item("dtypes", vec!["float32", "float64"])?;
    info.set_item("default_threads", threads::default_num_threads())?;
    Ok(info)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(conv_output_shape, m)?)?;
    m.add_function(wrap_pyfunction!(conv_transpose_output_shape, m)?)?;
    m.add_function(wrap_pyfunction!(receptive_field, m)?)?;
    m.add_function(wrap_pyfunction!(same_padding, m)?)?;
    m.add_function(wrap_pyfunction!(build_info, m)?)?;
    Ok(())
}
