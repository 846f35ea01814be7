//! Output sizes, padding resolution and receptive fields: all the shape arithmetic
//! of the crate lives here and is tested here.
//!
//! Every operator works on three spatial axes `(D, H, W)`; a rank-1 or rank-2
//! problem has unit leading axes. `rank` is kept only to print messages in the
//! caller's terms (a 2-D caller sees `(3, 3)`, not `(1, 3, 3)`).

use crate::error::{value_error, Error, Result};
use std::fmt;

mod pool;
pub use pool::{adaptive_window, AxisWindow, PoolPadding, PoolParams, UnpoolParams};

/// Number of spatial axes every operator works on.
pub const SPATIAL: usize = 3;

/// One value per spatial axis `(D, H, W)`.
pub type Dims = [usize; SPATIAL];

/// How the border of the input is extended before a convolution (PyTorch's
/// `padding_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaddingMode {
    Zeros,
    Reflect,
    Replicate,
    Circular,
}

impl PaddingMode {
    /// Parse PyTorch's spelling.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "zeros" => Ok(Self::Zeros),
            "reflect" => Ok(Self::Reflect),
            "replicate" => Ok(Self::Replicate),
            "circular" => Ok(Self::Circular),
            other => value_error!(
                "padding_mode must be one of 'zeros', 'reflect', 'replicate', 'circular', got {other:?}"
            ),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Zeros => "zeros",
            Self::Reflect => "reflect",
            Self::Replicate => "replicate",
            Self::Circular => "circular",
        }
    }

    /// The input cell that padded coordinate `i` (which may be negative or past the
    /// end) reads from, or `None` where it reads a zero.
    pub fn source_index(self, i: isize, len: usize) -> Option<usize> {
        let len_i = len as isize;
        if len == 0 {
            return None;
        }
        if (0..len_i).contains(&i) {
            return Some(i as usize);
        }
        let mapped = match self {
            Self::Zeros => return None,
            Self::Reflect => {
                if i < 0 {
                    -i
                } else {
                    2 * (len_i - 1) - i
                }
            }
            Self::Replicate => i.clamp(0, len_i - 1),
            Self::Circular => i.rem_euclid(len_i),
        };
        (0..len_i).contains(&mapped).then_some(mapped as usize)
    }
}

/// Format the last `rank` entries of a per-axis array as a Python tuple.
pub fn fmt_dims(values: &[usize; SPATIAL], rank: usize) -> String {
    let tail = &values[SPATIAL - rank.clamp(1, SPATIAL)..];
    if tail.len() == 1 {
        format!("({},)", tail[0])
    } else {
        let parts: Vec<String> = tail.iter().map(|v| v.to_string()).collect();
        format!("({})", parts.join(", "))
    }
}

/// Format a shape as a Python tuple.
pub fn fmt_shape(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|v| v.to_string()).collect();
    if parts.len() == 1 {
        format!("({},)", parts[0])
    } else {
        format!("({})", parts.join(", "))
    }
}

/// Arguments of a convolution (PyTorch's `conv{1,2,3}d`), padding already resolved
/// to per-side amounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvParams {
    /// Spatial rank the caller works in (1, 2 or 3); only used in messages.
    pub rank: usize,
    pub stride: [usize; SPATIAL],
    pub dilation: [usize; SPATIAL],
    /// Padding before the first element of each axis.
    pub pad_lo: [usize; SPATIAL],
    /// Padding after the last element of each axis.
    pub pad_hi: [usize; SPATIAL],
    pub groups: usize,
    pub padding_mode: PaddingMode,
}

impl ConvParams {
    /// Defaults of PyTorch (stride 1, no padding, dilation 1, one group) at `rank`.
    pub fn new(rank: usize) -> Self {
        Self {
            rank,
            stride: [1; SPATIAL],
            dilation: [1; SPATIAL],
            pad_lo: [0; SPATIAL],
            pad_hi: [0; SPATIAL],
            groups: 1,
            padding_mode: PaddingMode::Zeros,
        }
    }

    fn check_positive(&self) -> Result<()> {
        check_rank(self.rank)?;
        check_all_positive("stride", &self.stride, self.rank)?;
        check_all_positive("dilation", &self.dilation, self.rank)?;
        if self.groups == 0 {
            return value_error!("groups must be >= 1, got 0");
        }
        Ok(())
    }

    /// Spatial output size for a spatial input size and kernel size, with every
    /// check of PyTorch (padding-mode limits, kernel larger than padded input).
    pub fn output_dims(
        &self,
        input: [usize; SPATIAL],
        kernel: [usize; SPATIAL],
    ) -> Result<[usize; SPATIAL]> {
        self.check_positive()?;
        check_all_positive("kernel_size", &kernel, self.rank)?;
        if self.padding_mode != PaddingMode::Zeros {
            for axis in 0..SPATIAL {
                let pad = self.pad_lo[axis].max(self.pad_hi[axis]);
                let ok = match self.padding_mode {
                    PaddingMode::Reflect => pad < input[axis] || pad == 0,
                    _ => pad <= input[axis],
                };
                if !ok {
                    let limit = if self.padding_mode == PaddingMode::Reflect {
                        "smaller than"
                    } else {
                        "at most"
                    };
                    return value_error!(
                        "padding {} and {} with padding_mode={:?} must be {limit} the input size {}",
                        fmt_dims(&self.pad_lo, self.rank),
                        fmt_dims(&self.pad_hi, self.rank),
                        self.padding_mode.name(),
                        fmt_dims(&input, self.rank)
                    );
                }
            }
        }
        let mut out = [0; SPATIAL];
        for axis in 0..SPATIAL {
            let padded = checked_sum(&[input[axis], self.pad_lo[axis], self.pad_hi[axis]])?;
            let span = dilated_extent(kernel[axis], self.dilation[axis])?;
            if span > padded {
                let spans =
                    per_axis(|a| dilated_extent(kernel[a], self.dilation[a]).unwrap_or(usize::MAX));
                let padded_all = per_axis(|a| {
                    input[a]
                        .saturating_add(self.pad_lo[a])
                        .saturating_add(self.pad_hi[a])
                });
                return value_error!(
                    "kernel size {} (dilated: {}) is larger than the padded input size {}: the output would be empty",
                    fmt_dims(&kernel, self.rank),
                    fmt_dims(&spans, self.rank),
                    fmt_dims(&padded_all, self.rank)
                );
            }
            out[axis] = (padded - span) / self.stride[axis] + 1;
        }
        Ok(out)
    }
}

/// Arguments of a transposed convolution (PyTorch's `conv_transpose{1,2,3}d`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransposeParams {
    pub rank: usize,
    pub stride: [usize; SPATIAL],
    pub dilation: [usize; SPATIAL],
    /// Cells removed from the start of the full output, per axis (PyTorch's
    /// `padding`; ONNX's `pads` begin values).
    pub pad_lo: [usize; SPATIAL],
    /// Cells removed from its end (PyTorch: equal to `pad_lo`).
    pub pad_hi: [usize; SPATIAL],
    /// Extra cells added at the end of each axis (to pick among output sizes).
    pub output_padding: [usize; SPATIAL],
    pub groups: usize,
}

impl TransposeParams {
    pub fn new(rank: usize) -> Self {
        Self {
            rank,
            stride: [1; SPATIAL],
            dilation: [1; SPATIAL],
            pad_lo: [0; SPATIAL],
            pad_hi: [0; SPATIAL],
            output_padding: [0; SPATIAL],
            groups: 1,
        }
    }

    /// `(L - 1) * stride - pad_lo - pad_hi + dilation * (kernel - 1) + output_padding + 1`.
    pub fn output_dims(
        &self,
        input: [usize; SPATIAL],
        kernel: [usize; SPATIAL],
    ) -> Result<[usize; SPATIAL]> {
        check_rank(self.rank)?;
        check_all_positive("stride", &self.stride, self.rank)?;
        check_all_positive("dilation", &self.dilation, self.rank)?;
        check_all_positive("kernel_size", &kernel, self.rank)?;
        if self.groups == 0 {
            return value_error!("groups must be >= 1, got 0");
        }
        self.check_output_padding()?;
        if input.contains(&0) {
            return value_error!(
                "x has spatial size {}: a transposed convolution needs a non-empty input",
                fmt_dims(&input, self.rank)
            );
        }
        let mut out = [0; SPATIAL];
        for axis in 0..SPATIAL {
            let grown = checked_sum(&[
                checked_product(&[input[axis] - 1, self.stride[axis]])?,
                dilated_extent(kernel[axis], self.dilation[axis])?,
                self.output_padding[axis],
            ])?;
            let removed = checked_sum(&[self.pad_lo[axis], self.pad_hi[axis]])?;
            if removed >= grown {
                let padding = if self.pad_lo == self.pad_hi {
                    fmt_dims(&self.pad_lo, self.rank)
                } else {
                    format!(
                        "{} before and {} after",
                        fmt_dims(&self.pad_lo, self.rank),
                        fmt_dims(&self.pad_hi, self.rank)
                    )
                };
                return value_error!(
                    "padding {padding} is too large for input size {} and kernel size {}: the output would be empty",
                    fmt_dims(&input, self.rank),
                    fmt_dims(&kernel, self.rank)
                );
            }
            out[axis] = grown - removed;
        }
        Ok(out)
    }

    /// `output_padding < max(stride, dilation)` on every axis (PyTorch's rule: it
    /// picks among the output sizes a strided convolution maps to one size).
    pub fn check_output_padding(&self) -> Result<()> {
        for axis in 0..SPATIAL {
            if self.output_padding[axis] >= self.stride[axis].max(self.dilation[axis]) {
                return value_error!(
                    "output_padding {} must be smaller than either stride {} or dilation {}",
                    fmt_dims(&self.output_padding, self.rank),
                    fmt_dims(&self.stride, self.rank),
                    fmt_dims(&self.dilation, self.rank)
                );
            }
        }
        Ok(())
    }

    /// The convolution whose backward-input pass is this transposed convolution.
    pub fn as_conv(&self) -> ConvParams {
        ConvParams {
            rank: self.rank,
            stride: self.stride,
            dilation: self.dilation,
            pad_lo: self.pad_lo,
            pad_hi: self.pad_hi,
            groups: self.groups,
            padding_mode: PaddingMode::Zeros,
        }
    }
}

/// `(lo, hi)` padding that keeps the size of a stride-1 convolution ("same"): the
/// total `dilation * (kernel - 1)` split with the odd cell on the right, as PyTorch.
pub fn same_padding(kernel: usize, dilation: usize) -> Result<(usize, usize)> {
    if kernel == 0 {
        return value_error!("kernel_size must be >= 1, got 0");
    }
    if dilation == 0 {
        return value_error!("dilation must be >= 1, got 0");
    }
    let total = checked_product(&[dilation, kernel - 1])?;
    Ok((total / 2, total - total / 2))
}

/// Receptive field of a stack of layers, each `(kernel, stride, dilation)`:
/// `1 + sum_i (k_i - 1) * d_i * prod_{j < i} s_j`. Every entry must be at least
/// 1 (any integer type: a negative one is reported as given).
pub fn receptive_field<I>(layers: &[(I, I, I)]) -> Result<usize>
where
    I: Copy + TryInto<usize> + fmt::Display,
{
    let mut field = 1usize;
    let mut jump = 1usize;
    for (i, &(kernel, stride, dilation)) in layers.iter().enumerate() {
        let positive = |v: I| v.try_into().ok().filter(|&v: &usize| v >= 1);
        let (Some(k), Some(s), Some(d)) = (positive(kernel), positive(stride), positive(dilation))
        else {
            return value_error!(
                "layers[{i}] = (kernel={kernel}, stride={stride}, dilation={dilation}): every entry must be >= 1"
            );
        };
        let grow = checked_product(&[k - 1, d, jump])?;
        field = checked_sum(&[field, grow])?;
        jump = checked_product(&[jump, s])?;
    }
    Ok(field)
}

/// Extent of a dilated kernel: `dilation * (kernel - 1) + 1`.
pub fn dilated_extent(kernel: usize, dilation: usize) -> Result<usize> {
    checked_sum(&[checked_product(&[dilation, kernel.saturating_sub(1)])?, 1])
}

/// Product of sizes, or a `ValueError` on overflow.
pub fn checked_product(values: &[usize]) -> Result<usize> {
    values
        .iter()
        .try_fold(1usize, |acc, &v| acc.checked_mul(v))
        .ok_or_else(|| Error::Value(format!("size {} overflows", fmt_shape(values))))
}

/// Sum of sizes, or a `ValueError` on overflow.
pub fn checked_sum(values: &[usize]) -> Result<usize> {
    values
        .iter()
        .try_fold(0usize, |acc, &v| acc.checked_add(v))
        .ok_or_else(|| Error::Value(format!("sum of {} overflows", fmt_shape(values))))
}

fn per_axis(f: impl Fn(usize) -> usize) -> [usize; SPATIAL] {
    [f(0), f(1), f(2)]
}

pub(crate) fn check_rank(rank: usize) -> Result<()> {
    if !(1..=SPATIAL).contains(&rank) {
        return value_error!("rank must be 1, 2 or 3, got {rank}");
    }
    Ok(())
}

fn check_all_positive(name: &str, values: &[usize; SPATIAL], rank: usize) -> Result<()> {
    if values.contains(&0) {
        return value_error!(
            "{name} must be >= 1 in every dimension, got {}",
            fmt_dims(values, rank)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv2d(pad: usize, stride: usize) -> ConvParams {
        ConvParams {
            stride: [1, stride, stride],
            pad_lo: [0, pad, pad],
            pad_hi: [0, pad, pad],
            ..ConvParams::new(2)
        }
    }

    #[test]
    fn lecture_32x32_with_5x5_kernels_gives_28x28() {
        let out = conv2d(0, 1).output_dims([1, 32, 32], [1, 5, 5]).unwrap();
        assert_eq!(out, [1, 28, 28]);
    }

    #[test]
    fn output_size_formula_w_minus_k_plus_2p_over_s_plus_1() {
        for w in 5..40 {
            for k in 1..=5 {
                for p in 0..=2 {
                    for s in 1..=3 {
                        if k > w + 2 * p {
                            continue;
                        }
                        let out = conv2d(p, s).output_dims([1, 1, w], [1, 1, k]).unwrap();
                        assert_eq!(out[2], (w - k + 2 * p) / s + 1);
                    }
                }
            }
        }
    }

    #[test]
    fn same_padding_for_kernel_5_is_2() {
        assert_eq!(same_padding(5, 1).unwrap(), (2, 2));
        assert_eq!(same_padding(4, 1).unwrap(), (1, 2));
        assert_eq!(same_padding(3, 2).unwrap(), (2, 2));
    }

    #[test]
    fn stacked_convs_receptive_field_is_1_plus_l_times_k_minus_1() {
        for k in 1..8 {
            for l in 0..6 {
                let layers = vec![(k, 1, 1); l];
                assert_eq!(receptive_field(&layers).unwrap(), 1 + l * (k - 1));
            }
        }
        // Strides multiply the growth of later layers; dilation widens a layer.
        assert_eq!(
            receptive_field(&[(3, 2, 1), (3, 1, 1)]).unwrap(),
            1 + 2 + 2 * 2
        );
        assert_eq!(receptive_field(&[(3, 1, 4)]).unwrap(), 9);
    }

    #[test]
    fn kernel_larger_than_padded_input_is_an_error() {
        let err = conv2d(1, 1).output_dims([1, 3, 3], [1, 6, 6]).unwrap_err();
        assert!(err.to_string().contains("kernel size"), "{err}");
    }

    #[test]
    fn zero_stride_and_dilation_are_errors() {
        let mut p = conv2d(0, 1);
        p.stride[2] = 0;
        assert!(p
            .output_dims([1, 8, 8], [1, 3, 3])
            .unwrap_err()
            .to_string()
            .contains("stride"));
        let mut p = conv2d(0, 1);
        p.dilation[1] = 0;
        assert!(p
            .output_dims([1, 8, 8], [1, 3, 3])
            .unwrap_err()
            .to_string()
            .contains("dilation"));
    }

    #[test]
    fn reflect_padding_must_be_smaller_than_input() {
        let mut p = conv2d(3, 1);
        p.padding_mode = PaddingMode::Reflect;
        assert!(p.output_dims([1, 3, 3], [1, 3, 3]).is_err());
        assert!(p.output_dims([1, 4, 4], [1, 3, 3]).is_ok());
        p.padding_mode = PaddingMode::Circular;
        assert!(p.output_dims([1, 3, 3], [1, 3, 3]).is_ok());
        assert!(p.output_dims([1, 2, 2], [1, 3, 3]).is_err());
    }

    #[test]
    fn padding_modes_map_like_numpy_pad() {
        let len = 4;
        let map = |mode: PaddingMode| -> Vec<Option<usize>> {
            (-3..7).map(|i| mode.source_index(i, len)).collect()
        };
        let some = |v: &[usize]| v.iter().map(|&i| Some(i)).collect::<Vec<_>>();
        // np.pad(np.arange(4), 3, mode="reflect") == [3 2 1 0 1 2 3 2 1 0]
        assert_eq!(
            map(PaddingMode::Reflect),
            some(&[3, 2, 1, 0, 1, 2, 3, 2, 1, 0])
        );
        assert_eq!(
            map(PaddingMode::Replicate),
            some(&[0, 0, 0, 0, 1, 2, 3, 3, 3, 3])
        );
        assert_eq!(
            map(PaddingMode::Circular),
            some(&[1, 2, 3, 0, 1, 2, 3, 0, 1, 2])
        );
        let zeros = map(PaddingMode::Zeros);
        assert_eq!(zeros[3..7], some(&[0, 1, 2, 3])[..]);
        assert!(zeros[..3].iter().chain(&zeros[7..]).all(Option::is_none));
    }

    #[test]
    fn transpose_output_size_inverts_conv() {
        let p = TransposeParams {
            stride: [1, 2, 2],
            pad_lo: [0, 1, 1],
            pad_hi: [0, 1, 1],
            output_padding: [0, 1, 1],
            ..TransposeParams::new(2)
        };
        // (7 - 1) * 2 - 2 + 2 + 1 + 1 = 14
        assert_eq!(p.output_dims([1, 7, 7], [1, 3, 3]).unwrap(), [1, 14, 14]);
        let sides = TransposeParams {
            pad_lo: [0, 0, 2],
            pad_hi: [0, 1, 0],
            ..p.clone()
        };
        // the full output (7 - 1) * 2 + 2 + 1 + 1 = 16, less one side only: 16 - 1, 16 - 2
        assert_eq!(
            sides.output_dims([1, 7, 7], [1, 3, 3]).unwrap(),
            [1, 15, 14]
        );
        let bad = TransposeParams {
            output_padding: [0, 2, 2],
            ..p
        };
        assert!(bad
            .output_dims([1, 7, 7], [1, 3, 3])
            .unwrap_err()
            .to_string()
            .contains("output_padding"));
    }

    #[test]
    fn overflowing_sizes_are_errors_not_panics() {
        let p = ConvParams {
            pad_lo: [0, 0, usize::MAX],
            ..ConvParams::new(1)
        };
        assert!(p.output_dims([1, 1, 10], [1, 1, 3]).is_err());
        assert!(receptive_field(&[(usize::MAX, usize::MAX, 2), (3, 1, 1)]).is_err());
        assert!(receptive_field(&[(3i64, -1, 1)])
            .unwrap_err()
            .to_string()
            .contains("stride=-1"));
    }
}
