//! Fractional max pooling (Graham, 2014; PyTorch's `fractional_max_pool2d/3d`):
//! windows of a fixed size whose starts follow a pseudo-random sequence drawn per
//! plane. The sequences arrive as tables of window starts (computed in Python,
//! where the arithmetic follows PyTorch's in the input's own dtype); each plane's
//! maxima then run through the max-pooling kernels of [`super::max`].

use super::plan;
use super::windows::Windows;
use super::{max, max_planes, MaxPooled};
use crate::arrays::{shape5, spatial, with_spatial};
use crate::error::{value_error, Error, Result};
use crate::geometry::{check_rank, checked_product, fmt_dims, AxisWindow, Dims, SPATIAL};
use crate::storage::MaxStorage;
use ndarray::{ArrayView2, ArrayView5};

/// The per-axis windows of plane `plane`: `starts` row `plane` holds the window
/// starts of axis 0, then axis 1, then axis 2 (`output[a]` each).
fn plane_windows(
    input: Dims,
    output: Dims,
    kernel: Dims,
    starts: &ArrayView2<'_, i64>,
    plane: usize,
) -> Windows {
    let row = starts.row(plane);
    let mut offset = 0;
    let axes = [0, 1, 2].map(|axis| {
        let table: Vec<AxisWindow> = (0..output[axis])
            .map(|o| AxisWindow {
                // checked in `fractional_max_pool`: 0 <= start <= input - kernel
                first: row[offset + o] as usize,
                count: kernel[axis],
                padded: kernel[axis],
            })
            .collect();
        offset += output[axis];
        table
    });
    Windows {
        input,
        output,
        step: [1; SPATIAL],
        axes,
        pitch: None,
        interior: None,
    }
}

/// Max pooling of `x` with windows of `kernel` cells starting, per plane (`N * C`
/// of them, in order), where `starts` says: `starts[plane]` holds the `output[0]`
/// starts of axis 0, then the `output[1]` of axis 1 and the `output[2]` of axis
/// 2; each start must leave the window inside the input. With the flat per-plane
/// indices of the maxima if asked (NaN propagates; ties keep the first cell).
pub fn fractional_max_pool<S: MaxStorage>(
    x: ArrayView5<'_, S>,
    starts: ArrayView2<'_, i64>,
    output: Dims,
    kernel: Dims,
    rank: usize,
    return_indices: bool,
) -> Result<MaxPooled<S>> {
    check_rank(rank)?;
    let shape = shape5(&x);
    let input = spatial(shape);
    let planes = checked_product(&shape[..2])?;
    for axis in 0..SPATIAL {
        if kernel[axis] == 0 || output[axis] == 0 {
            return value_error!(
                "kernel_size {} and output_size {} must be positive",
                fmt_dims(&kernel, rank),
                fmt_dims(&output, rank)
            );
        }
        if output[axis] + kernel[axis] - 1 > input[axis] {
            return value_error!(
                "kernel_size {} is too large for output_size {} from input size {}: output + kernel - 1 must not exceed the input",
                fmt_dims(&kernel, rank),
                fmt_dims(&output, rank),
                fmt_dims(&input, rank)
            );
        }
    }
    let columns: usize = output.iter().sum();
    if starts.dim() != (planes, columns) {
        return value_error!(
            "the window starts have shape {:?}, expected ({planes}, {columns})",
            starts.dim()
        );
    }
    for plane in 0..planes {
        let row = starts.row(plane);
        let mut offset = 0;
        for axis in 0..SPATIAL {
            let last = (input[axis] - kernel[axis]) as i64;
            if let Some(bad) = (0..output[axis])
                .map(|o| row[offset + o])
                .find(|&s| !(0..=last).contains(&s))
            {
                return Err(Error::Value(format!(
                    "a window start {bad} leaves the input along axis {} (size {}, kernel {})",
                    axis + rank - SPATIAL,
                    input[axis],
                    kernel[axis]
                )));
            }
            offset += output[axis];
        }
    }
    let in_vol = input.iter().product::<usize>();
    let work = output.iter().product::<usize>() * kernel.iter().product::<usize>();
    max_planes(
        x,
        with_spatial(shape, output),
        work,
        return_indices,
        |p, plane, v, i| {
            let windows = plane_windows(input, output, kernel, &starts, p);
            let rows = plan::max_rows::<S::Compute>(&windows, in_vol);
            max::max_plane(&windows, rows, plane, v, i);
        },
    )
}
