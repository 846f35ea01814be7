//! The fully resolved shape of one convolution problem, validated once: the one
//! value the plan is chosen from and every algorithm reads.

use super::precision::{process_precision, Precision};
use crate::arrays::Shape5;
use crate::error::{value_error, Error, Result};
use crate::geometry::{
    checked_product, fmt_shape, ConvParams, PaddingMode, TransposeParams, SPATIAL,
};

/// Everything a kernel needs to know about a convolution `x (N, C_in, *input)`
/// `* w (C_out, C_in / groups, *kernel) -> (N, C_out, *output)`. A transposed
/// convolution is described by the convolution it is the adjoint of.
#[derive(Debug, Clone)]
pub(crate) struct ConvGeometry {
    pub n: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub groups: usize,
    pub input: [usize; SPATIAL],
    pub kernel: [usize; SPATIAL],
    pub output: [usize; SPATIAL],
    pub stride: [usize; SPATIAL],
    pub dilation: [usize; SPATIAL],
    pub pad_lo: [usize; SPATIAL],
    pub padding_mode: PaddingMode,
    /// Which algorithms the plan may choose (the process default unless the call
    /// passes one: see [`ConvGeometry::with_precision`]).
    pub precision: Precision,
}

impl ConvGeometry {
    /// Input channels per group.
    pub fn cig(&self) -> usize {
        self.c_in / self.groups
    }
    /// Output channels per group.
    pub fn cog(&self) -> usize {
        self.c_out / self.groups
    }
    pub fn kernel_vol(&self) -> usize {
        self.kernel.iter().product()
    }
    /// Rows of a column matrix: the reduction length of one output element.
    pub fn k_len(&self) -> usize {
        self.cig() * self.kernel_vol()
    }
    pub fn in_vol(&self) -> usize {
        self.input.iter().product()
    }
    pub fn out_vol(&self) -> usize {
        self.output.iter().product()
    }
    /// A 2-D problem in 3-D clothing: one input plane and one output plane that
    /// reads it (a depth kernel of 1 and no depth padding). Paths written for
    /// 2-D problems ignore the depth axis, so they may run only these; a depth
    /// of 1 alone is not enough (padding adds output planes, and a transposed
    /// convolution's output padding can leave the one output plane reading
    /// nothing).
    pub fn is_planar(&self) -> bool {
        self.input[0] == 1 && self.output[0] == 1 && self.kernel[0] == 1 && self.pad_lo[0] == 0
    }
    /// Multiply-adds of one pass (forward, backward-input or backward-weight).
    pub fn work(&self) -> usize {
        self.n
            .saturating_mul(self.c_out)
            .saturating_mul(self.out_vol())
            .saturating_mul(self.k_len())
    }
    pub fn x_shape(&self) -> Shape5 {
        [
            self.n,
            self.c_in,
            self.input[0],
            self.input[1],
            self.input[2],
        ]
    }
    pub fn out_shape(&self) -> Shape5 {
        [
            self.n,
            self.c_out,
            self.output[0],
            self.output[1],
            self.output[2],
        ]
    }
    pub fn weight_shape(&self) -> Shape5 {
        [
            self.c_out,
            self.cig(),
            self.kernel[0],
            self.kernel[1],
            self.kernel[2],
        ]
    }

    /// Validate a convolution of `x` with `weight` and derive its geometry.
    pub fn for_conv(x: Shape5, weight: Shape5, params: &ConvParams) -> Result<Self> {
        let groups = params.groups;
        if groups == 0 {
            return value_error!("groups must be >= 1, got 0");
        }
        let (c_in, c_out) = (x[1], weight[0]);
        let kernel = [weight[2], weight[3], weight[4]];
        let input = [x[2], x[3], x[4]];
        if !c_in.is_multiple_of(groups) {
            return value_error!(
                "x has {c_in} channels, which is not divisible by groups={groups}"
            );
        }
        if !c_out.is_multiple_of(groups) {
            return value_error!(
                "weight has {c_out} output channels, which is not divisible by groups={groups}"
            );
        }
        if weight[1] * groups != c_in {
            return value_error!(
                "weight has {} input channels per group but x has {c_in} channels (groups={groups})",
                weight[1]
            );
        }
        let output = params.output_dims(input, kernel)?;
        let geo = Self {
            n: x[0],
            c_in,
            c_out,
            groups,
            input,
            kernel,
            output,
            stride: params.stride,
            dilation: params.dilation,
            pad_lo: params.pad_lo,
            padding_mode: params.padding_mode,
            precision: process_precision(),
        };
        geo.check_sizes()?;
        Ok(geo)
    }

    /// Validate a transposed convolution of `x (N, C_in, *input)` with
    /// `weight (C_in, C_out / groups, *kernel)` and return the geometry of the
    /// convolution it is the adjoint of (whose input is the transposed output).
    pub fn for_transpose(x: Shape5, weight: Shape5, params: &TransposeParams) -> Result<Self> {
        let groups = params.groups;
        if groups == 0 {
            return value_error!("groups must be >= 1, got 0");
        }
        let c_in = x[1];
        if weight[0] != c_in {
            return value_error!(
                "weight has {} input channels (shape {}) but x has {c_in} channels; a transposed convolution's weight is (C_in, C_out / groups, *kernel)",
                weight[0],
                fmt_shape(&weight)
            );
        }
        if !c_in.is_multiple_of(groups) {
            return value_error!(
                "x has {c_in} channels, which is not divisible by groups={groups}"
            );
        }
        let kernel = [weight[2], weight[3], weight[4]];
        let input = [x[2], x[3], x[4]];
        let output = params.output_dims(input, kernel)?;
        let conv = params.as_conv();
        let geo = Self {
            n: x[0],
            c_in: weight[1].checked_mul(groups).ok_or_else(|| {
                Error::Value(format!("weight shape {} overflows", fmt_shape(&weight)))
            })?,
            c_out: c_in,
            groups,
            input: output,
            kernel,
            output: input,
            stride: conv.stride,
            dilation: conv.dilation,
            pad_lo: conv.pad_lo,
            padding_mode: conv.padding_mode,
            precision: process_precision(),
        };
        geo.check_sizes()?;
        Ok(geo)
    }

    /// For a stride-1, zero-padded convolution whose padding is at most the dilated
    /// kernel extent minus one: the convolution of `grad_out` that computes the
    /// input gradient (channels swapped, padding `d (k - 1) - pad` on each side).
    pub fn stride_one_adjoint(&self) -> Option<Self> {
        if self.stride != [1; SPATIAL] || self.padding_mode != PaddingMode::Zeros {
            return None;
        }
        let mut pad_lo = [0; SPATIAL];
        for (axis, adjoint_lo) in pad_lo.iter_mut().enumerate() {
            let extent = self.dilation[axis] * (self.kernel[axis] - 1);
            let pad_hi =
                (self.output[axis] + extent).checked_sub(self.input[axis] + self.pad_lo[axis])?;
            if self.pad_lo[axis] > extent || pad_hi > extent {
                return None;
            }
            *adjoint_lo = extent - self.pad_lo[axis];
        }
        Some(Self {
            n: self.n,
            c_in: self.c_out,
            c_out: self.c_in,
            groups: self.groups,
            input: self.output,
            kernel: self.kernel,
            output: self.input,
            stride: self.stride,
            dilation: self.dilation,
            pad_lo,
            padding_mode: PaddingMode::Zeros,
            precision: self.precision,
        })
    }

    /// This geometry computed with `precision` (the process default when `None`).
    pub fn with_precision(mut self, precision: Option<Precision>) -> Self {
        if let Some(precision) = precision {
            self.precision = precision;
        }
        self
    }

    /// Refuse problems whose arrays could not even be addressed (checked before any
    /// helper above multiplies sizes).
    fn check_sizes(&self) -> Result<()> {
        checked_product(&self.input)?;
        checked_product(&self.output)?;
        checked_product(&[self.cig(), self.kernel[0], self.kernel[1], self.kernel[2]])?;
        checked_product(&self.x_shape())?;
        checked_product(&self.out_shape())?;
        checked_product(&self.weight_shape())?;
        Ok(())
    }
}
