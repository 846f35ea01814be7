//! The bias: added to every output position of its channel in the forward pass,
//! and its gradient, the sum of `grad_out` over images and positions.

use crate::element::Element;
use crate::error::Result;
use crate::storage::Storage;
use crate::threads::for_each_chunk_mut;

/// `grad_b[c] = sum over images and positions of grad_out[n, c, ...]`.
pub(crate) fn backward_bias<T: Element>(
    n: usize,
    channels: usize,
    positions: usize,
    grad_out: &[T],
    grad_b: &mut [T],
) -> Result<()> {
    bias_sums(n, channels, positions, grad_out, grad_b, lane_sum)
}

/// [`backward_bias`] of a 16-bit `grad_out`: each plane widened in a scratch
/// first, so the sums are the float32 path's on the upcast values.
pub(crate) fn backward_bias_widened<S: Storage>(
    n: usize,
    channels: usize,
    positions: usize,
    grad_out: &[S],
    grad_b: &mut [S::Compute],
) -> Result<()> {
    bias_sums(n, channels, positions, grad_out, grad_b, |plane| {
        S::through_compute(plane, &mut [], |plane, _| lane_sum(plane))
    })
}

/// `grad_b[c] = sum over images of plane_sum(plane (image, c))`, channels in
/// parallel, images in order.
fn bias_sums<S: Sync, T: Element>(
    n: usize,
    channels: usize,
    positions: usize,
    grad_out: &[S],
    grad_b: &mut [T],
    plane_sum: impl Fn(&[S]) -> T + Sync + Send,
) -> Result<()> {
    let work = n * channels * positions;
    for_each_chunk_mut(
        grad_b,
        1,
        work,
        || (),
        |_, c, total| {
            let mut sum = T::zero();
            for image in 0..n {
                sum += plane_sum(&grad_out[(image * channels + c) * positions..][..positions]);
            }
            total[0] = sum;
        },
    )
}

/// Sum of `values` over 16 interleaved partial sums (combined in a fixed order),
/// so the additions vectorise instead of waiting on one another.
fn lane_sum<T: Element>(values: &[T]) -> T {
    const LANES: usize = 16;
    let mut lanes = [T::zero(); LANES];
    let mut blocks = values.chunks_exact(LANES);
    for block in &mut blocks {
        for (lane, &v) in lanes.iter_mut().zip(block) {
            *lane += v;
        }
    }
    for (lane, &v) in lanes.iter_mut().zip(blocks.remainder()) {
        *lane += v;
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            let upper = lanes[i + width];
            lanes[i] += upper;
        }
    }
    lanes[0]
}

/// `out[n, c, ...] += bias[c]`.
pub(crate) fn add_bias<T: Element>(positions: usize, bias: &[T], out: &mut [T]) -> Result<()> {
    if positions == 0 || bias.is_empty() {
        return Ok(());
    }
    let channels = bias.len();
    for_each_chunk_mut(
        out,
        positions,
        out.len(),
        || (),
        |_, plane, values| {
            let b = bias[plane % channels];
            values.iter_mut().for_each(|v| *v += b);
        },
    )
}
