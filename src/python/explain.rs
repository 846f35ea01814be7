//! Bindings of `explain_conv` and `explain_pool`: the core's [`Report`] as a dict
//! that `ferroconv._explain` turns into frozen dataclasses.

use super::spec::{ConvSpec, PoolSpec};
use super::{batched_shape, DType};
use crate::conv;
use crate::element::Element;
use crate::pool::{self, Pooling};
use crate::report::{Cost, Report};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// The plan of a convolution (or transposed convolution) of an input of shape
/// `x_shape` with a weight of shape `weight_shape`, both batched in the caller's
/// rank.
#[pyfunction]
fn explain_conv<'py>(
    py: Python<'py>,
    x_shape: Vec<i64>,
    weight_shape: Vec<i64>,
    spec: &Bound<'py, ConvSpec>,
    dtype: DType,
) -> PyResult<Bound<'py, PyDict>> {
    let spec = spec.get();
    let (x, rank) = batched_shape(&x_shape, "x_shape")?;
    let (weight, _) = batched_shape(&weight_shape, "weight_shape")?;
    let mut report = match dtype {
        DType::F32 | DType::F16 | DType::BF16 => conv_report::<f32>(spec, x, weight)?,
        DType::F64 => conv_report::<f64>(spec, x, weight)?,
    };
    report.dtype = dtype.name();
    if dtype == DType::F16 && !spec.is_transposed() {
        let params = spec.params([weight[2], weight[3], weight[4]])?;
        if conv::f16_native_forward(x, weight, &params, spec.precision())? {
            // The forward widens the float16 planes in the kernel instead of the
            // whole input first (crate::conv::conv_forward_f16).
            for pass in report.passes.iter_mut().filter(|p| p.pass == "forward") {
                pass.algorithm = "implicit_gemm_f16".to_string();
            }
        }
    }
    if dtype == DType::BF16 && !spec.is_transposed() {
        let params = spec.params([weight[2], weight[3], weight[4]])?;
        // Passes that run on the native bfloat16 kernel instead of the float32
        // plan (crate::conv::conv_forward_bf16, conv_backward_bf16).
        let (forward, input, weight_grad) =
            conv::bf16_native_passes(x, weight, &params, spec.precision())?;
        let native = [
            ("forward", "implicit_gemm_bf16", forward),
            ("input_grad", "adjoint_implicit_gemm_bf16", input),
            ("weight_grad", "im2col_gemm_bf16", weight_grad),
        ];
        for (name, algorithm, runs) in native {
            for pass in report.passes.iter_mut().filter(|p| runs && p.pass == name) {
                pass.algorithm = algorithm.to_string();
            }
        }
    }
    to_dict(py, &report, rank)
}

fn conv_report<T: Element>(spec: &ConvSpec, x: [usize; 5], weight: [usize; 5]) -> PyResult<Report> {
    Ok(if spec.is_transposed() {
        conv::explain_conv_transpose::<T>(x, weight, &spec.transpose_params()?, spec.precision())?
    } else {
        let params = spec.params([weight[2], weight[3], weight[4]])?;
        conv::explain_conv::<T>(x, weight, &params, spec.precision())?
    })
}

/// The plan of pooling of `kind` (`"max"`, `"avg"`, `"adaptive_max"`,
/// `"adaptive_avg"`) on an input of shape `x_shape` (batched, the caller's rank).
#[pyfunction]
fn explain_pool<'py>(
    py: Python<'py>,
    kind: &str,
    x_shape: Vec<i64>,
    spec: &Bound<'py, PoolSpec>,
    dtype: DType,
) -> PyResult<Bound<'py, PyDict>> {
    let spec = spec.get();
    let (x, rank) = batched_shape(&x_shape, "x_shape")?;
    let pooling = match kind {
        "max" => Pooling::Max(spec.window()?),
        "avg" => Pooling::Avg(spec.window()?, spec.avg()),
        "adaptive_max" => Pooling::AdaptiveMax {
            output: spec.output_size()?,
            rank,
        },
        "adaptive_avg" => Pooling::AdaptiveAvg {
            output: spec.output_size()?,
            rank,
        },
        other => {
            return Err(PyValueError::new_err(format!(
                "kind must be one of 'max', 'avg', 'adaptive_max', 'adaptive_avg', got {other:?}"
            )))
        }
    };
    let mut report = match dtype {
        DType::F32 | DType::F16 | DType::BF16 => pool::explain_pool::<f32>(x, pooling)?,
        DType::F64 => pool::explain_pool::<f64>(x, pooling)?,
    };
    report.dtype = dtype.name();
    to_dict(py, &report, rank)
}

/// A 5-D shape in the caller's rank.
fn user(shape: [usize; 5], rank: usize) -> Vec<usize> {
    [&shape[..2], &shape[5 - rank..]].concat()
}

fn cost_dict<'py>(py: Python<'py>, algorithm: &str, cost: &Cost) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("algorithm", algorithm)?;
    dict.set_item("ops", cost.ops)?;
    dict.set_item("copied_bytes", cost.copied_bytes)?;
    dict.set_item("workspace_bytes", cost.workspace_bytes)?;
    dict.set_item("tasks", cost.tasks)?;
    dict.set_item("serial", cost.serial)?;
    Ok(dict)
}

fn to_dict<'py>(py: Python<'py>, report: &Report, rank: usize) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("x_shape", user(report.x_shape, rank))?;
    dict.set_item("weight_shape", report.weight_shape.map(|w| user(w, rank)))?;
    dict.set_item("out_shape", user(report.out_shape, rank))?;
    dict.set_item("dtype", report.dtype)?;
    dict.set_item("precision", report.precision)?;
    dict.set_item("simd", report.isa)?;
    dict.set_item("threads", report.threads)?;
    let passes = PyList::empty(py);
    for pass in &report.passes {
        let entry = PyDict::new(py);
        entry.set_item("name", pass.pass)?;
        entry.set_item("chosen", cost_dict(py, &pass.algorithm, &pass.cost)?)?;
        let alternatives = PyList::empty(py);
        for (name, cost) in &pass.alternatives {
            alternatives.append(cost_dict(py, name, cost)?)?;
        }
        entry.set_item("alternatives", alternatives)?;
        entry.set_item("flops", pass.flops)?;
        passes.append(entry)?;
    }
    dict.set_item("passes", passes)?;
    Ok(dict)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(explain_conv, m)?)?;
    m.add_function(wrap_pyfunction!(explain_pool, m)?)?;
    Ok(())
}
