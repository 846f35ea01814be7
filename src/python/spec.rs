//! The one value per op family that crosses the boundary: [`ConvSpec`] for
//! convolutions and transposed convolutions, [`PoolSpec`] for pooling. Each is a
//! frozen Python object wrapping what the core takes, built once by Python's
//! normaliser of its family (keyword arguments only, so no argument can land in
//! another's place) and reusable across calls (an `nn` layer keeps its own).
//!
//! Python has already checked types and arities: every per-axis argument is a
//! sequence of `rank` ints, every option a str, bool or int. The constructors
//! check values, with messages naming the argument; the core checks what needs
//! the arrays (channels, sizes, padding limits).

use crate::conv::{Activation, Precision};
use crate::geometry::{
    check_rank, fmt_dims, same_padding, ConvParams, Dims, PaddingMode, PoolPadding, PoolParams,
    TransposeParams, UnpoolParams, SPATIAL,
};
use crate::pool::AvgOptions;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyDictMethods, PyString, PyTuple};

/// A padding mode by PyTorch's name (`"zeros"`, `"reflect"`, `"replicate"`,
/// `"circular"`).
impl<'a, 'py> FromPyObject<'a, 'py> for PaddingMode {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let name: String = obj.extract()?;
        Ok(PaddingMode::parse(&name)?)
    }
}

/// The padding of a convolution as Python hands it over.
enum PaddingArg {
    /// `"same"`: the size-keeping padding of a stride-1 layer, resolved per call
    /// from the kernel size.
    Same,
    /// `(lo, hi)` per axis (`"valid"` is no padding).
    Sides(Vec<(i64, i64)>),
}

impl<'a, 'py> FromPyObject<'a, 'py> for PaddingArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(text) = obj.cast::<PyString>() {
            let text = text.to_cow()?;
            return match text.as_ref() {
                "same" => Ok(PaddingArg::Same),
                "valid" => Ok(PaddingArg::Sides(Vec::new())),
                other => Err(PyValueError::new_err(format!(
                    "padding must be an int, a tuple of ints, 'same', 'valid' or a tuple of (lo, hi) pairs, got {other:?}"
                ))),
            };
        }
        Ok(PaddingArg::Sides(obj.extract()?))
    }
}

/// The padding of a pooling as Python hands it over: a string, `rank` ints
/// (PyTorch's symmetric padding) or `rank` `(lo, hi)` pairs.
enum PoolPaddingArg {
    Named(PoolPadding),
    Symmetric(Vec<i64>),
    Sides(Vec<(i64, i64)>),
}

impl<'a, 'py> FromPyObject<'a, 'py> for PoolPaddingArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(text) = obj.cast::<PyString>() {
            let text = text.to_cow()?;
            return match text.as_ref() {
                "same" => Ok(PoolPaddingArg::Named(PoolPadding::Same { extra_first: false })),
                "same_lower" => Ok(PoolPaddingArg::Named(PoolPadding::Same { extra_first: true })),
                "valid" => Ok(PoolPaddingArg::Named(PoolPadding::NONE)),
                other => Err(PyValueError::new_err(format!(
                    "padding must be an int, a tuple of ints, a tuple of (lo, hi) pairs, 'valid', 'same' or 'same_lower', got {other:?}"
                ))),
            };
        }
        if let Ok(pads) = obj.extract::<Vec<i64>>() {
            return Ok(PoolPaddingArg::Symmetric(pads));
        }
        Ok(PoolPaddingArg::Sides(obj.extract()?))
    }
}

impl PoolPaddingArg {
    fn resolve(self, rank: usize) -> PyResult<PoolPadding> {
        Ok(match self {
            PoolPaddingArg::Named(padding) => padding,
            PoolPaddingArg::Symmetric(pads) => {
                PoolPadding::Symmetric(dims("padding", &pads, rank, 0, 0)?)
            }
            PoolPaddingArg::Sides(pairs) => {
                let lo: Vec<i64> = pairs.iter().map(|p| p.0).collect();
                let hi: Vec<i64> = pairs.iter().map(|p| p.1).collect();
                PoolPadding::Sides {
                    lo: dims("padding", &lo, rank, 0, 0)?,
                    hi: dims("padding", &hi, rank, 0, 0)?,
                }
            }
        })
    }
}

/// Per-axis values given for the last `rank` axes, as three axes (`fill` in
/// front); each must be at least `min`.
pub(crate) fn dims(
    name: &str,
    values: &[i64],
    rank: usize,
    min: i64,
    fill: usize,
) -> PyResult<Dims> {
    if values.len() != rank {
        return Err(PyValueError::new_err(format!(
            "{name} must have {rank} entries, got {}",
            values.len()
        )));
    }
    if values.iter().any(|&v| v < min) {
        let shown: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        let tuple = if rank == 1 {
            format!("({},)", shown[0])
        } else {
            format!("({})", shown.join(", "))
        };
        return Err(PyValueError::new_err(format!(
            "{name} must be >= {min} in every dimension, got {tuple}"
        )));
    }
    let mut out = [fill; SPATIAL];
    for (slot, &v) in out[SPATIAL - rank..].iter_mut().zip(values) {
        *slot = usize::try_from(v).unwrap_or(usize::MAX);
    }
    Ok(out)
}

pub(crate) fn at_least(name: &str, value: i64, min: i64) -> PyResult<usize> {
    if value < min {
        return Err(PyValueError::new_err(format!(
            "{name} must be >= {min}, got {value}"
        )));
    }
    Ok(usize::try_from(value).unwrap_or(usize::MAX))
}

/// How a convolution pads: per side, or "same" resolved from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Padding {
    Same,
    Sides { lo: Dims, hi: Dims },
}

/// The arguments of a convolution (`output_padding` absent) or a transposed
/// convolution (`output_padding` present), validated.
#[pyclass(frozen, module = "ferroconv._ferroconv")]
#[derive(Debug, Clone)]
pub(crate) struct ConvSpec {
    rank: usize,
    stride: Dims,
    dilation: Dims,
    padding: Padding,
    groups: usize,
    padding_mode: PaddingMode,
    output_padding: Option<Dims>,
    /// `None`: the process default, read at each call.
    precision: Option<Precision>,
    activation: Activation,
}

#[pymethods]
impl ConvSpec {
    /// `ConvSpec(*, rank, stride, padding, dilation, groups, padding_mode,
    /// output_padding=None, kernel_size=None, precision=None, activation=None,
    /// negative_slope=0.01)`: `output_padding` makes it a transposed
    /// convolution; a layer's `kernel_size` is checked here too; `precision`
    /// (`"default"`, `"highest"`, or None for the process default) and the
    /// forward epilogue's `activation` apply to the calls made with it.
    #[new]
    #[pyo3(signature = (*, rank, stride, padding, dilation, groups, padding_mode, **options))]
    fn new(
        rank: usize,
        stride: Vec<i64>,
        padding: PaddingArg,
        dilation: Vec<i64>,
        groups: i64,
        padding_mode: PaddingMode,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        check_rank(rank)?;
        let mut options = Options(options);
        let output_padding: Option<Vec<i64>> = options.take("output_padding")?;
        let kernel_size: Option<Vec<i64>> = options.take("kernel_size")?;
        let precision: Option<String> = options.take("precision")?;
        let activation: Option<String> = options.take("activation")?;
        let negative_slope: Option<f64> = options.take("negative_slope")?;
        options.finish()?;
        let precision = precision.map(|p| Precision::parse(&p)).transpose()?;
        let slope = negative_slope.unwrap_or(0.01);
        if !slope.is_finite() {
            return Err(PyValueError::new_err(format!(
                "negative_slope must be a finite number, got {slope}"
            )));
        }
        let activation = match activation {
            Some(name) => Activation::parse(&name, slope)?,
            None => Activation::Identity,
        };
        if let Some(kernel) = kernel_size {
            dims("kernel_size", &kernel, rank, 1, 1)?;
        }
        let stride = dims("stride", &stride, rank, 1, 1)?;
        let dilation = dims("dilation", &dilation, rank, 1, 1)?;
        let groups = at_least("groups", groups, 1)?;
        let padding = match padding {
            PaddingArg::Same => {
                if stride != [1; SPATIAL] {
                    return Err(PyValueError::new_err(format!(
                        "padding='same' is only supported with stride 1 (as in PyTorch), got stride={}",
                        fmt_dims(&stride, rank)
                    )));
                }
                Padding::Same
            }
            PaddingArg::Sides(pairs) if pairs.is_empty() => Padding::Sides {
                lo: [0; SPATIAL],
                hi: [0; SPATIAL],
            },
            PaddingArg::Sides(pairs) => {
                let lo: Vec<i64> = pairs.iter().map(|p| p.0).collect();
                let hi: Vec<i64> = pairs.iter().map(|p| p.1).collect();
                Padding::Sides {
                    lo: dims("padding", &lo, rank, 0, 0)?,
                    hi: dims("padding", &hi, rank, 0, 0)?,
                }
            }
        };
        let output_padding = output_padding
            .map(|extra| dims("output_padding", &extra, rank, 0, 0))
            .transpose()?;
        let spec = ConvSpec {
            rank,
            stride,
            dilation,
            padding,
            groups,
            padding_mode,
            output_padding,
            precision,
            activation,
        };
        if spec.output_padding.is_some() {
            spec.transpose_params()?.check_output_padding()?;
        }
        Ok(spec)
    }

    /// Spatial rank of the convolution (1, 2 or 3).
    #[getter(rank)]
    fn py_rank(&self) -> usize {
        self.rank
    }

    /// Whether this is a transposed convolution.
    #[getter(transposed)]
    fn py_transposed(&self) -> bool {
        self.output_padding.is_some()
    }

    /// The stride per axis (`rank` ints).
    #[getter]
    fn stride(&self) -> Vec<usize> {
        self.stride[SPATIAL - self.rank..].to_vec()
    }

    /// The dilation per axis (`rank` ints).
    #[getter]
    fn dilation(&self) -> Vec<usize> {
        self.dilation[SPATIAL - self.rank..].to_vec()
    }

    /// The number of groups.
    #[getter]
    fn groups(&self) -> usize {
        self.groups
    }

    /// `"default"`, `"highest"`, or None (the process default at each call).
    #[getter(precision)]
    fn py_precision(&self) -> Option<&'static str> {
        self.precision.map(Precision::name)
    }

    /// The forward epilogue's activation (None: the identity).
    #[getter(activation)]
    fn py_activation(&self) -> Option<&'static str> {
        self.activation.name()
    }

    /// The keyword arguments that rebuild this spec (for pickle and copy: `nn`
    /// layers hold one, and the dask layer sends layers to its workers).
    fn __getnewargs_ex__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyTuple>, Bound<'py, PyDict>)> {
        let tail = SPATIAL - self.rank;
        let kwargs = PyDict::new(py);
        kwargs.set_item("rank", self.rank)?;
        kwargs.set_item("stride", self.stride[tail..].to_vec())?;
        match self.padding {
            Padding::Same => kwargs.set_item("padding", "same")?,
            Padding::Sides { lo, hi } => {
                let pairs: Vec<(usize, usize)> = (tail..SPATIAL).map(|a| (lo[a], hi[a])).collect();
                kwargs.set_item("padding", pairs)?
            }
        }
        kwargs.set_item("dilation", self.dilation[tail..].to_vec())?;
        kwargs.set_item("groups", self.groups)?;
        kwargs.set_item("padding_mode", self.padding_mode.name())?;
        if let Some(extra) = self.output_padding {
            kwargs.set_item("output_padding", extra[tail..].to_vec())?;
        }
        if let Some(precision) = self.precision {
            kwargs.set_item("precision", precision.name())?;
        }
        if let Some(name) = self.activation.name() {
            kwargs.set_item("activation", name)?;
        }
        if let Activation::LeakyRelu(slope) = self.activation {
            kwargs.set_item("negative_slope", slope)?;
        }
        Ok((PyTuple::empty(py), kwargs))
    }

    /// The `(lo, hi)` padding per axis for a kernel of size `kernel` (`"same"`
    /// resolved: the total `dilation * (kernel - 1)`, the odd cell last).
    fn padding_for(&self, kernel: Vec<i64>) -> PyResult<(Vec<usize>, Vec<usize>)> {
        let params = self.params(dims("kernel_size", &kernel, self.rank, 1, 1)?)?;
        let tail = SPATIAL - self.rank;
        Ok((
            params.pad_lo[tail..].to_vec(),
            params.pad_hi[tail..].to_vec(),
        ))
    }

    fn __repr__(&self) -> String {
        let d = |v: &Dims| fmt_dims(v, self.rank);
        let padding = match self.padding {
            Padding::Same => "'same'".to_string(),
            Padding::Sides { lo, hi } if lo == hi => d(&lo),
            Padding::Sides { lo, hi } => format!("(lo={}, hi={})", d(&lo), d(&hi)),
        };
        let extra = match &self.output_padding {
            Some(op) => format!(", output_padding={}", d(op)),
            None => format!(", padding_mode='{}'", self.padding_mode.name()),
        };
        let mut extra = extra;
        if let Some(precision) = self.precision {
            extra += &format!(", precision='{}'", precision.name());
        }
        if let Some(name) = self.activation.name() {
            extra += &format!(", activation='{name}'");
        }
        if let Activation::LeakyRelu(slope) = self.activation {
            extra += &format!(", negative_slope={slope}");
        }
        format!(
            "ConvSpec(rank={}, stride={}, padding={padding}, dilation={}, groups={}{extra})",
            self.rank,
            d(&self.stride),
            d(&self.dilation),
            self.groups
        )
    }
}

impl ConvSpec {
    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn is_transposed(&self) -> bool {
        self.output_padding.is_some()
    }

    /// The precision calls with this spec pass (`None`: the process default).
    pub fn precision(&self) -> Option<Precision> {
        self.precision
    }

    /// The forward epilogue's activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// The core's parameters of a convolution with `kernel` (which resolves
    /// `"same"` padding: the total `dilation * (kernel - 1)`, the odd cell last).
    pub fn params(&self, kernel: Dims) -> PyResult<ConvParams> {
        let (pad_lo, pad_hi) = match self.padding {
            Padding::Sides { lo, hi } => (lo, hi),
            Padding::Same => {
                let (mut lo, mut hi) = ([0; SPATIAL], [0; SPATIAL]);
                for axis in SPATIAL - self.rank..SPATIAL {
                    (lo[axis], hi[axis]) = same_padding(kernel[axis], self.dilation[axis])?;
                }
                (lo, hi)
            }
        };
        Ok(ConvParams {
            rank: self.rank,
            stride: self.stride,
            dilation: self.dilation,
            pad_lo,
            pad_hi,
            groups: self.groups,
            padding_mode: self.padding_mode,
        })
    }

    /// The core's parameters of a transposed convolution: `(lo, hi)` cells removed
    /// from each end of the full output (`"same"` is resolved in Python, where the
    /// input's size is known).
    pub fn transpose_params(&self) -> PyResult<TransposeParams> {
        let (pad_lo, pad_hi) = match self.padding {
            Padding::Sides { lo, hi } => (lo, hi),
            Padding::Same => {
                return Err(PyValueError::new_err(
                    "a transposed convolution's padding must be resolved to (lo, hi) pairs",
                ))
            }
        };
        if self.padding_mode != PaddingMode::Zeros {
            return Err(PyValueError::new_err(
                "a transposed convolution supports only padding_mode='zeros'",
            ));
        }
        Ok(TransposeParams {
            rank: self.rank,
            stride: self.stride,
            dilation: self.dilation,
            pad_lo,
            pad_hi,
            output_padding: self.output_padding.unwrap_or([0; SPATIAL]),
            groups: self.groups,
        })
    }
}

/// The arguments of a pooling call, validated: a window (`kernel_size`, `stride`,
/// `padding`, `dilation`, `ceil_mode`) for max and average pooling and
/// unpooling, the averaging options, and an `output_size` for adaptive pooling
/// and unpooling.
#[pyclass(frozen, module = "ferroconv._ferroconv")]
#[derive(Debug, Clone)]
pub(crate) struct PoolSpec {
    rank: usize,
    window: Option<PoolParams>,
    avg: AvgOptions,
    output_size: Option<Dims>,
}

#[pymethods]
impl PoolSpec {
    /// `PoolSpec(*, rank, kernel_size=None, stride=None, padding=None,
    /// dilation=None, ceil_mode=False, count_include_pad=True,
    /// divisor_override=None, output_size=None)`.
    #[new]
    #[pyo3(signature = (*, rank, **options))]
    fn new(rank: usize, options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        check_rank(rank)?;
        let mut options = Options(options);
        let kernel_size: Option<Vec<i64>> = options.take("kernel_size")?;
        let stride: Option<Vec<i64>> = options.take("stride")?;
        let padding: Option<PoolPaddingArg> = options.take("padding")?;
        let dilation: Option<Vec<i64>> = options.take("dilation")?;
        let ceil_mode: bool = options.take("ceil_mode")?.unwrap_or(false);
        let count_include_pad: bool = options.take("count_include_pad")?.unwrap_or(true);
        let divisor_override: Option<i64> = options.take("divisor_override")?;
        let output_size: Option<Vec<i64>> = options.take("output_size")?;
        options.finish()?;
        let window = match kernel_size {
            Some(kernel) => {
                let kernel = dims("kernel_size", &kernel, rank, 1, 1)?;
                // PyTorch's default stride is the kernel size.
                let stride = match stride {
                    Some(stride) if !stride.is_empty() => dims("stride", &stride, rank, 1, 1)?,
                    _ => kernel,
                };
                let ones = vec![1; rank];
                let padding = match padding {
                    Some(padding) => padding.resolve(rank)?,
                    None => PoolPadding::NONE,
                };
                let params = PoolParams {
                    rank,
                    kernel,
                    stride,
                    padding,
                    dilation: dims("dilation", dilation.as_deref().unwrap_or(&ones), rank, 1, 1)?,
                    ceil_mode,
                };
                // Per-side limits need no input: checked now, so a layer fails at
                // construction (symmetric padding keeps its check per call, which
                // unpooling, with no such limit, shares).
                if !matches!(params.padding, PoolPadding::Symmetric(_)) {
                    params.check_padding()?;
                }
                Some(params)
            }
            None => None,
        };
        let output_size = output_size
            .map(|size| dims("output_size", &size, rank, 0, 1))
            .transpose()?;
        Ok(PoolSpec {
            rank,
            window,
            avg: AvgOptions {
                count_include_pad,
                divisor_override,
            },
            output_size,
        })
    }

    /// Spatial rank of the pooling (1, 2 or 3).
    #[getter(rank)]
    fn py_rank(&self) -> usize {
        self.rank
    }

    /// The keyword arguments that rebuild this spec (for pickle and copy).
    fn __getnewargs_ex__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyTuple>, Bound<'py, PyDict>)> {
        let tail = SPATIAL - self.rank;
        let kwargs = PyDict::new(py);
        kwargs.set_item("rank", self.rank)?;
        if let Some(w) = &self.window {
            kwargs.set_item("kernel_size", w.kernel[tail..].to_vec())?;
            kwargs.set_item("stride", w.stride[tail..].to_vec())?;
            match w.padding {
                PoolPadding::Symmetric(pad) => kwargs.set_item("padding", pad[tail..].to_vec())?,
                PoolPadding::Sides { lo, hi } => {
                    let pairs: Vec<(usize, usize)> =
                        (tail..SPATIAL).map(|a| (lo[a], hi[a])).collect();
                    kwargs.set_item("padding", pairs)?
                }
                PoolPadding::Same { extra_first } => {
                    kwargs.set_item("padding", if extra_first { "same_lower" } else { "same" })?
                }
            }
            kwargs.set_item("dilation", w.dilation[tail..].to_vec())?;
            kwargs.set_item("ceil_mode", w.ceil_mode)?;
        }
        kwargs.set_item("count_include_pad", self.avg.count_include_pad)?;
        kwargs.set_item("divisor_override", self.avg.divisor_override)?;
        if let Some(size) = self.output_size {
            kwargs.set_item("output_size", size[tail..].to_vec())?;
        }
        Ok((PyTuple::empty(py), kwargs))
    }

    /// The window's size, stride and dilation per axis (`rank` ints each; the
    /// stride defaulted to the kernel size), if the spec has a window.
    #[getter]
    fn window_sizes(&self) -> Option<[Vec<usize>; 3]> {
        let tail = SPATIAL - self.rank;
        self.window
            .as_ref()
            .map(|w| [w.kernel, w.stride, w.dilation].map(|v| v[tail..].to_vec()))
    }

    /// The `(lo, hi)` padding per axis of the window for a spatial input size
    /// (`"same"` resolved for it).
    fn pads_for(&self, input: Vec<i64>) -> PyResult<(Vec<usize>, Vec<usize>)> {
        let window = self.window()?;
        let input = dims("input_shape", &input, self.rank, 0, 1)?;
        let (lo, hi): (Vec<usize>, Vec<usize>) = (SPATIAL - self.rank..SPATIAL)
            .map(|a| window.pads(a, input[a]))
            .unzip();
        Ok((lo, hi))
    }

    fn __repr__(&self) -> String {
        let d = |v: &Dims| fmt_dims(v, self.rank);
        let mut parts = vec![format!("rank={}", self.rank)];
        if let Some(w) = &self.window {
            parts.push(format!(
                "kernel_size={}, stride={}, padding={}, dilation={}, ceil_mode={}",
                d(&w.kernel),
                d(&w.stride),
                w.padding.describe(self.rank),
                d(&w.dilation),
                if w.ceil_mode { "True" } else { "False" }
            ));
        }
        if let Some(size) = &self.output_size {
            parts.push(format!("output_size={}", d(size)));
        }
        format!("PoolSpec({})", parts.join(", "))
    }
}

impl PoolSpec {
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The window of max or average pooling (a spec without one is a bug of the
    /// Python layer, reported as a `TypeError`).
    pub fn window(&self) -> PyResult<&PoolParams> {
        self.window
            .as_ref()
            .ok_or_else(|| PyTypeError::new_err("this pooling needs a kernel_size"))
    }

    pub fn avg(&self) -> AvgOptions {
        self.avg
    }

    /// The target size of adaptive pooling.
    pub fn output_size(&self) -> PyResult<Dims> {
        self.output_size
            .ok_or_else(|| PyTypeError::new_err("adaptive pooling needs an output_size"))
    }

    /// The core's parameters of max-unpooling (symmetric padding, as PyTorch's).
    pub fn unpool(&self) -> PyResult<UnpoolParams> {
        let window = self.window()?;
        let PoolPadding::Symmetric(padding) = window.padding else {
            return Err(PyValueError::new_err(
                "max unpooling takes an int or a tuple of ints as padding",
            ));
        };
        Ok(UnpoolParams {
            rank: self.rank,
            kernel: window.kernel,
            stride: window.stride,
            padding,
            output_size: self.output_size,
        })
    }
}

/// Keyword options of a constructor, taken by name; any left over is a
/// `TypeError` (a misspelt option must not be ignored).
struct Options<'a, 'py>(Option<&'a Bound<'py, PyDict>>);

impl<'py> Options<'_, 'py> {
    fn take<T: for<'b> FromPyObject<'b, 'py>>(&mut self, name: &str) -> PyResult<Option<T>> {
        let Some(dict) = self.0 else { return Ok(None) };
        match dict.get_item(name)? {
            Some(value) => {
                dict.del_item(name)?;
                if value.is_none() {
                    Ok(None)
                } else {
                    value.extract::<T>().map(Some).map_err(Into::into)
                }
            }
            None => Ok(None),
        }
    }

    fn finish(self) -> PyResult<()> {
        match self.0.and_then(|dict| dict.keys().iter().next()) {
            Some(key) => Err(PyTypeError::new_err(format!(
                "unexpected option {}",
                key.repr()?
            ))),
            None => Ok(()),
        }
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ConvSpec>()?;
    m.add_class::<PoolSpec>()?;
    Ok(())
}
