//! Pooling geometry: output sizes (PyTorch's `pooling_output_shape`, ceil mode
//! included, with ONNX's per-side and "same" padding), the input cells each window reads, adaptive windows and the output
//! size of max-unpooling.

use super::{check_all_positive, check_rank, dilated_extent, fmt_dims, Dims, SPATIAL};
use crate::error::{value_error, Result};

/// The input cells one pooling window reads along one axis: `count` cells from
/// `first`, one dilation apart (padded cells are not listed), and `padded`, the
/// number of the window's taps inside the padded input `[-pad_lo, len + pad_hi)`,
/// which is the divisor of an average that counts padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisWindow {
    pub first: usize,
    pub count: usize,
    pub padded: usize,
}

/// How max, average and Lp pooling pad each axis (padding acts as -inf for max,
/// as zeros for sums). Whatever the padding, every window must read at least one
/// input cell: [`PoolParams::output_dims`] refuses the others, so no output is
/// ever a max of nothing (-inf) or an average of nothing (NaN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolPadding {
    /// PyTorch's symmetric padding: the same on both sides, at most half the
    /// (undilated) kernel.
    Symmetric(Dims),
    /// `lo` cells before and `hi` after each axis (ONNX's explicit `pads`): each
    /// smaller than the dilated kernel extent (onnxruntime's limit; ONNX states none).
    Sides { lo: Dims, hi: Dims },
    /// ONNX's `SAME_UPPER` (`extra_first: false`) or `SAME_LOWER`: `ceil(len / stride)`
    /// outputs, from the total padding `(out - 1) * stride + dilated kernel - len`
    /// (at least 0) split in halves, the odd cell last (upper) or first (lower).
    Same { extra_first: bool },
}

impl PoolPadding {
    /// No padding.
    pub const NONE: PoolPadding = PoolPadding::Symmetric([0; SPATIAL]);

    /// The padding as the caller gave it, for messages.
    pub fn describe(&self, rank: usize) -> String {
        match self {
            PoolPadding::Symmetric(pad) => fmt_dims(pad, rank),
            PoolPadding::Sides { lo, hi } => {
                let pairs: Vec<String> = (SPATIAL - rank.clamp(1, SPATIAL)..SPATIAL)
                    .map(|a| format!("({}, {})", lo[a], hi[a]))
                    .collect();
                if pairs.len() == 1 {
                    format!("({},)", pairs[0])
                } else {
                    format!("({})", pairs.join(", "))
                }
            }
            PoolPadding::Same { extra_first: false } => "'same'".to_string(),
            PoolPadding::Same { extra_first: true } => "'same_lower'".to_string(),
        }
    }
}

/// Arguments of max, average or Lp pooling (PyTorch's `max_pool{1,2,3}d`,
/// `avg_pool{1,2,3}d`, `lp_pool{1,2,3}d`, with ONNX's per-side and "same" padding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolParams {
    /// Spatial rank the caller works in (1, 2 or 3); only used in messages.
    pub rank: usize,
    pub kernel: Dims,
    pub stride: Dims,
    pub padding: PoolPadding,
    pub dilation: Dims,
    pub ceil_mode: bool,
}

impl PoolParams {
    /// PyTorch's defaults at `rank`: stride = kernel, no padding, no dilation,
    /// floor mode. Leading (unused) axes of `kernel` should be 1.
    pub fn new(rank: usize, kernel: Dims) -> Self {
        Self {
            rank,
            kernel,
            stride: kernel,
            padding: PoolPadding::NONE,
            dilation: [1; SPATIAL],
            ceil_mode: false,
        }
    }

    /// The extent of the dilated kernel along `axis` (saturating: the checks of
    /// [`output_dims`](Self::output_dims) refuse sizes that overflow).
    fn extent(&self, axis: usize) -> usize {
        dilated_extent(self.kernel[axis], self.dilation[axis]).unwrap_or(usize::MAX)
    }

    /// The `(before, after)` padding of `axis` for an input of `len` cells.
    pub fn pads(&self, axis: usize, len: usize) -> (usize, usize) {
        match self.padding {
            PoolPadding::Symmetric(pad) => (pad[axis], pad[axis]),
            PoolPadding::Sides { lo, hi } => (lo[axis], hi[axis]),
            PoolPadding::Same { extra_first } => {
                let stride = self.stride[axis].max(1);
                let out = len.div_ceil(stride);
                let total = out
                    .saturating_sub(1)
                    .saturating_mul(stride)
                    .saturating_add(self.extent(axis))
                    .saturating_sub(len);
                let (small, large) = (total / 2, total - total / 2);
                if extra_first {
                    (large, small)
                } else {
                    (small, large)
                }
            }
        }
    }

    /// The padding limit of the spec's kind (see [`PoolPadding`]).
    pub fn check_padding(&self) -> Result<()> {
        let ok = match self.padding {
            PoolPadding::Symmetric(pad) => (0..SPATIAL).all(|a| pad[a] <= self.kernel[a] / 2),
            PoolPadding::Sides { lo, hi } => {
                (0..SPATIAL).all(|a| lo[a].max(hi[a]) < self.extent(a))
            }
            PoolPadding::Same { .. } => true,
        };
        if ok {
            return Ok(());
        }
        let padding = self.padding.describe(self.rank);
        let kernel = fmt_dims(&self.kernel, self.rank);
        if let PoolPadding::Symmetric(_) = self.padding {
            return value_error!(
                "padding {padding} must be at most half the kernel size {kernel} (PyTorch's rule; per-side (lo, hi) pairs may go up to the dilated kernel size minus 1)"
            );
        }
        let extents: Dims = [0, 1, 2].map(|a| self.extent(a));
        value_error!(
            "padding {padding} must be smaller than the dilated kernel size {} on each side (kernel_size {kernel})",
            fmt_dims(&extents, self.rank)
        )
    }

    /// Spatial output size for a spatial input size, with PyTorch's checks:
    /// positive kernel/stride/dilation, a non-empty input, the padding limit of
    /// its kind and an output of at least one cell. Additionally every window must
    /// read at least one input cell (a dilated window can otherwise fall entirely
    /// into the padding, where PyTorch returns -inf with an index outside the
    /// input and ONNX's reference fails).
    pub fn output_dims(&self, input: Dims) -> Result<Dims> {
        check_rank(self.rank)?;
        check_all_positive("kernel_size", &self.kernel, self.rank)?;
        check_all_positive("stride", &self.stride, self.rank)?;
        check_all_positive("dilation", &self.dilation, self.rank)?;
        if input.contains(&0) {
            return value_error!(
                "the input has spatial size {}: pooling needs at least one element along every axis",
                fmt_dims(&input, self.rank)
            );
        }
        self.check_padding()?;
        let mut signed = [0i128; SPATIAL];
        for (axis, size) in signed.iter_mut().enumerate() {
            *size = self.signed_output_size(axis, input[axis])?;
        }
        if signed.iter().any(|&s| s <= 0) {
            let spans: Dims = [0, 1, 2].map(|a| self.extent(a));
            let padded: Dims = [0, 1, 2].map(|a| {
                let (lo, hi) = self.pads(a, input[a]);
                input[a].saturating_add(lo).saturating_add(hi)
            });
            let dilated = if self.dilation == [1; SPATIAL] {
                String::new()
            } else {
                format!(" (dilated: {})", fmt_dims(&spans, self.rank))
            };
            return value_error!(
                "kernel_size {}{dilated} does not fit the padded input size {}: the output size would be {}",
                fmt_dims(&self.kernel, self.rank),
                fmt_dims(&padded, self.rank),
                fmt_signed(&signed, self.rank)
            );
        }
        // Each size is in 1..=usize::MAX here: it is at most (len + pad) / stride + 1.
        let output = signed.map(|s| usize::try_from(s).unwrap_or(usize::MAX));
        // Every window starts in (-extent, len) (the padding limits and the ceil-mode
        // rule see to it), so an undilated window always reads a cell, and so does a
        // dilated one when the dilation is at most the input length (its taps are
        // closer than the input is long). Only the remaining case is checked window
        // by window.
        for axis in 0..SPATIAL {
            if self.dilation[axis] <= input[axis] {
                continue;
            }
            for o in 0..output[axis] {
                if self.window(axis, input[axis], o).count == 0 {
                    return value_error!(
                        "dilation {} with padding {} puts output position {o} of axis {} entirely in the padding of an input of size {}: every window must read at least one input element",
                        fmt_dims(&self.dilation, self.rank),
                        self.padding.describe(self.rank),
                        axis + self.rank.clamp(1, SPATIAL) - SPATIAL,
                        fmt_dims(&input, self.rank)
                    );
                }
            }
        }
        Ok(output)
    }

    /// `floor_or_ceil((len + lo + hi - dilation (kernel - 1) - 1) / stride) + 1`, and
    /// in ceil mode one less when the last window would start at or past `len + lo`.
    fn signed_output_size(&self, axis: usize, len: usize) -> Result<i128> {
        let stride = self.stride[axis] as i128;
        let (lo, hi) = self.pads(axis, len);
        let span = dilated_extent(self.kernel[axis], self.dilation[axis])? as i128;
        let room = len as i128 + lo as i128 + hi as i128 - span;
        let mut size = if self.ceil_mode {
            (room + stride - 1).div_euclid(stride) + 1
        } else {
            room.div_euclid(stride) + 1
        };
        if self.ceil_mode && (size - 1) * stride >= len as i128 + lo as i128 {
            size -= 1;
        }
        Ok(size)
    }

    /// Window `o` along `axis` for an input of `len` cells (`o` in range of
    /// [`output_dims`](Self::output_dims)).
    pub fn window(&self, axis: usize, len: usize, o: usize) -> AxisWindow {
        let (lo, hi) = self.pads(axis, len);
        let (len, lo, hi) = (len as i128, lo as i128, hi as i128);
        let (kernel, dilation) = (self.kernel[axis] as i128, self.dilation[axis] as i128);
        let start = o as i128 * self.stride[axis] as i128 - lo;
        // First tap at or after 0, last tap before len.
        let first_tap = if start < 0 {
            (-start + dilation - 1) / dilation
        } else {
            0
        };
        let last_tap = if len - 1 - start < 0 {
            -1
        } else {
            ((len - 1 - start) / dilation).min(kernel - 1)
        };
        let count = (last_tap - first_tap + 1).max(0);
        // Taps before the end of the padded input (a ceil-mode window may hang over it).
        let room = (len + hi - start).max(0);
        let padded = ((room + dilation - 1) / dilation).min(kernel);
        AxisWindow {
            first: usize::try_from(start + first_tap * dilation).unwrap_or(0),
            count: usize::try_from(count).unwrap_or(0),
            padded: usize::try_from(padded).unwrap_or(0),
        }
    }
}

/// Window `o` of adaptive pooling from `len` cells to `out` cells:
/// `[floor(o len / out), ceil((o + 1) len / out))` (PyTorch's rule; windows of
/// neighbouring outputs may overlap by one cell). `out` must be positive.
pub fn adaptive_window(o: usize, len: usize, out: usize) -> AxisWindow {
    let (o, len, out) = (o as u128, len as u128, out.max(1) as u128);
    let start = o * len / out;
    let end = ((o + 1) * len).div_ceil(out);
    let count = usize::try_from(end.saturating_sub(start)).unwrap_or(0);
    AxisWindow {
        first: usize::try_from(start).unwrap_or(0),
        count,
        padded: count,
    }
}

/// Arguments of max-unpooling (PyTorch's `max_unpool{1,2,3}d`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpoolParams {
    pub rank: usize,
    pub kernel: Dims,
    pub stride: Dims,
    pub padding: Dims,
    /// Requested spatial output size; `None` takes the default
    /// `(len - 1) * stride - 2 * padding + kernel`.
    pub output_size: Option<Dims>,
}

impl UnpoolParams {
    pub fn new(rank: usize, kernel: Dims) -> Self {
        Self {
            rank,
            kernel,
            stride: kernel,
            padding: [0; SPATIAL],
            output_size: None,
        }
    }

    /// The spatial output size: the default, or the requested size, which must lie
    /// strictly between `default - stride` and `default + stride` (PyTorch's range).
    pub fn output_dims(&self, input: Dims) -> Result<Dims> {
        check_rank(self.rank)?;
        check_all_positive("kernel_size", &self.kernel, self.rank)?;
        check_all_positive("stride", &self.stride, self.rank)?;
        let default: [i128; SPATIAL] = [0, 1, 2].map(|a| {
            (input[a] as i128 - 1) * self.stride[a] as i128 + self.kernel[a] as i128
                - 2 * self.padding[a] as i128
        });
        let Some(requested) = self.output_size else {
            if default.iter().any(|&d| d <= 0) {
                return value_error!(
                    "the default output size (len - 1) * stride - 2 * padding + kernel_size = {} must be positive (input size {}, padding {}); pass a larger output_size or less padding",
                    fmt_signed(&default, self.rank),
                    fmt_dims(&input, self.rank),
                    fmt_dims(&self.padding, self.rank)
                );
            }
            return Ok(default.map(|d| usize::try_from(d).unwrap_or(usize::MAX)));
        };
        for axis in 0..SPATIAL {
            let (want, stride) = (requested[axis] as i128, self.stride[axis] as i128);
            let (low, high) = (default[axis] - stride, default[axis] + stride);
            if want <= low || want >= high || want == 0 {
                let lows = [0, 1, 2].map(|a| default[a] - self.stride[a] as i128);
                let highs = [0, 1, 2].map(|a| default[a] + self.stride[a] as i128);
                return value_error!(
                    "output_size {} must be positive and strictly between {} and {} (the default size {} minus and plus the stride)",
                    fmt_dims(&requested, self.rank),
                    fmt_signed(&lows, self.rank),
                    fmt_signed(&highs, self.rank),
                    fmt_signed(&default, self.rank)
                );
            }
        }
        Ok(requested)
    }
}

/// Format the last `rank` entries of per-axis signed sizes as a Python tuple.
fn fmt_signed(values: &[i128; SPATIAL], rank: usize) -> String {
    let tail: Vec<String> = values[SPATIAL - rank.clamp(1, SPATIAL)..]
        .iter()
        .map(|v| v.to_string())
        .collect();
    if tail.len() == 1 {
        format!("({},)", tail[0])
    } else {
        format!("({})", tail.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool1d(kernel: usize, stride: usize, padding: usize, dilation: usize) -> PoolParams {
        PoolParams {
            stride: [1, 1, stride],
            padding: PoolPadding::Symmetric([0, 0, padding]),
            dilation: [1, 1, dilation],
            ..PoolParams::new(1, [1, 1, kernel])
        }
    }

    fn out_len(p: &PoolParams, len: usize) -> Result<usize> {
        p.output_dims([1, 1, len]).map(|o| o[2])
    }

    #[test]
    fn lecture_2x2_stride_2_pooling_halves_each_size() {
        let p = PoolParams::new(2, [1, 2, 2]);
        assert_eq!(p.output_dims([1, 32, 32]).unwrap(), [1, 16, 16]);
        assert_eq!(p.output_dims([1, 28, 28]).unwrap(), [1, 14, 14]);
    }

    #[test]
    fn floor_mode_is_the_convolution_formula() {
        for len in 1..30 {
            for k in 1..5 {
                for s in 1..4 {
                    for pad in 0..=k / 2 {
                        let p = pool1d(k, s, pad, 1);
                        match out_len(&p, len) {
                            Ok(o) => assert_eq!(o, (len + 2 * pad - k) / s + 1),
                            Err(_) => assert!(len + 2 * pad < k),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn ceil_mode_rounds_up_unless_the_last_window_starts_in_the_right_padding() {
        let mut p = pool1d(2, 2, 0, 1);
        p.ceil_mode = true;
        // 5 cells, windows [0,2) [2,4) [4,6): the last hangs over the end.
        assert_eq!(out_len(&p, 5).unwrap(), 3);
        assert_eq!(out_len(&p, 4).unwrap(), 2);
        // len 5, k 3, s 2, pad 1: ceil((5 + 2 - 3) / 2) + 1 = 3 windows starting at
        // -1, 1, 3; no extra one.
        let mut p = pool1d(3, 2, 1, 1);
        p.ceil_mode = true;
        assert_eq!(out_len(&p, 5).unwrap(), 3);
        let mut p = pool1d(2, 2, 1, 1);
        p.ceil_mode = true;
        // len 1, k 2, s 2, pad 1: ceil(1 / 2) + 1 = 2, but window 1 starts at padded
        // position 2 >= len + pad = 2 -> dropped.
        assert_eq!(out_len(&p, 1).unwrap(), 1);
    }

    #[test]
    fn ceil_mode_can_fit_a_kernel_larger_than_the_padded_input_like_pytorch() {
        let mut p = pool1d(4, 3, 1, 1);
        assert!(out_len(&p, 1).is_err());
        p.ceil_mode = true;
        assert_eq!(out_len(&p, 1).unwrap(), 1);
        let w = p.window(2, 1, 0);
        // The window [-1, 3) clipped to the padded input [-1, 2) counts 3 cells.
        assert_eq!(
            w,
            AxisWindow {
                first: 0,
                count: 1,
                padded: 3
            }
        );
    }

    #[test]
    fn errors_name_the_argument() {
        let msg = |p: PoolParams, len: usize| out_len(&p, len).unwrap_err().to_string();
        assert!(msg(pool1d(0, 1, 0, 1), 5).contains("kernel_size"));
        assert!(msg(pool1d(2, 0, 0, 1), 5).contains("stride"));
        assert!(msg(pool1d(2, 1, 0, 0), 5).contains("dilation"));
        assert!(msg(pool1d(3, 1, 2, 1), 5).contains("padding (2,) must be at most half"));
        assert!(msg(pool1d(7, 1, 1, 1), 4).contains("kernel_size (7,)"));
        assert!(msg(pool1d(2, 1, 0, 1), 0).contains("spatial size (0,)"));
    }

    #[test]
    fn a_dilated_window_inside_the_padding_is_an_error() {
        // Taps at -1 and 1 around a single cell.
        let p = pool1d(2, 1, 1, 2);
        assert!(out_len(&p, 1).unwrap_err().to_string().contains("padding"));
        assert_eq!(out_len(&p, 2).unwrap(), 2);
    }

    #[test]
    fn windows_skip_padding_and_step_by_the_dilation() {
        let p = pool1d(3, 2, 1, 2);
        // len 7: windows start at -1, 1, 3; taps -1 1 3 | 1 3 5 | 3 5 7.
        assert_eq!(out_len(&p, 7).unwrap(), 3);
        let firsts: Vec<(usize, usize)> = (0..3)
            .map(|o| {
                let w = p.window(2, 7, o);
                (w.first, w.count)
            })
            .collect();
        assert_eq!(firsts, vec![(1, 2), (1, 3), (3, 2)]);
    }

    #[test]
    fn adaptive_windows_cover_the_input_and_may_overlap() {
        let spans: Vec<(usize, usize)> = (0..3)
            .map(|o| {
                let w = adaptive_window(o, 5, 3);
                (w.first, w.first + w.count)
            })
            .collect();
        // floor(o 5 / 3), ceil((o + 1) 5 / 3)
        assert_eq!(spans, vec![(0, 2), (1, 4), (3, 5)]);
        assert_eq!(adaptive_window(0, 7, 1).count, 7);
        assert_eq!(adaptive_window(6, 3, 7).count, 1);
    }

    #[test]
    fn unpool_size_defaults_to_the_inverse_of_pooling() {
        let p = UnpoolParams {
            stride: [1, 2, 2],
            ..UnpoolParams::new(2, [1, 2, 2])
        };
        assert_eq!(p.output_dims([1, 4, 4]).unwrap(), [1, 8, 8]);
        let ok = UnpoolParams {
            output_size: Some([1, 9, 7]),
            ..p.clone()
        };
        assert_eq!(ok.output_dims([1, 4, 4]).unwrap(), [1, 9, 7]);
        for bad in [[1, 10, 8], [1, 6, 8]] {
            let p = UnpoolParams {
                output_size: Some(bad),
                ..p.clone()
            };
            let err = p.output_dims([1, 4, 4]).unwrap_err().to_string();
            assert!(err.contains("output_size (10, 8)") || err.contains("output_size (6, 8)"));
        }
        let negative = UnpoolParams {
            padding: [0, 0, 1],
            ..UnpoolParams::new(1, [1, 1, 1])
        };
        assert!(negative.output_dims([1, 1, 1]).is_err());
    }
}
