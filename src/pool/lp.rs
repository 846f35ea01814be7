//! Lp pooling, forward and backward, as PyTorch's `lp_pool{1,2,3}d` with
//! ONNX's `LpPool` padding and dilation: `(sum over the window of x^p)^(1/p)`,
//! one pass over each window (no `x^p` temporary, no separate root pass).
//!
//! PyTorch computes it as `avg_pool(x^p) * kernel_volume`, then the root; this
//! is the same sum except for a ceil-mode window hanging over the end of the
//! input, which PyTorch's average divides by its clipped size and so scales up
//! by `kernel_volume / clipped size`: kept, for parity. `x^p` keeps the sign of
//! odd powers (PyTorch's `x.pow(p)`, not ONNX's `|x|^p`), so a negative sum
//! has no real root for most `p` and gives NaN, as in PyTorch.

use super::avg::{self, Lp};
use super::plan::PlaneSplit;
use super::planes::for_each_target_plane;
use super::{check_shape, window_sums};
use crate::alloc::alloc_zeroed;
use crate::arrays::{as_slice, into_array5, shape5, spatial, standard, with_spatial, Shape5};
use crate::element::Element;
use crate::error::{value_error, Result};
use crate::geometry::{checked_product, PoolParams};
use crate::storage::Storage;
use ndarray::{Array5, ArrayView5};

use super::windows::Windows;

/// `norm_type` must be a finite nonzero number (PyTorch maps the infinities
/// to max pooling of `|x|`, which the Python layer does).
fn check_norm(p: f64) -> Result<()> {
    if p == 0.0 || !p.is_finite() {
        return value_error!("norm_type must be a finite nonzero number here, got {p}");
    }
    Ok(())
}

fn kernel_volume(params: &PoolParams) -> usize {
    params
        .kernel
        .iter()
        .fold(1usize, |acc, &k| acc.saturating_mul(k))
}

/// Lp pooling of `x (N, C, D, H, W)` with norm `p`.
pub fn lp_pool<T: Storage>(x: ArrayView5<'_, T>, params: &PoolParams, p: f64) -> Result<Array5<T>> {
    check_norm(p)?;
    let shape = shape5(&x);
    let input = spatial(shape);
    let output = params.output_dims(input)?;
    let windows = || Windows::strided(params, input, output);
    let out_shape = with_spatial(shape, output);
    let volume = kernel_volume(params);
    macro_rules! sums {
        ($whole:literal) => {
            window_sums(
                x,
                out_shape,
                windows,
                Lp::<T::Compute, $whole>::new(p, volume),
                None,
            )
        };
    }
    match avg::whole_power(p) {
        1 => sums!(1),
        2 => sums!(2),
        3 => sums!(3),
        4 => sums!(4),
        _ => sums!(0),
    }
}

/// Gradient of [`lp_pool`] with respect to its input `x` (whose window sums it
/// recomputes): zero where a window's sum is zero, as PyTorch's.
pub fn lp_pool_backward<T: Element>(
    grad_out: ArrayView5<'_, T>,
    x: ArrayView5<'_, T>,
    params: &PoolParams,
    p: f64,
) -> Result<Array5<T>> {
    check_norm(p)?;
    let input_shape: Shape5 = shape5(&x);
    let input = spatial(input_shape);
    let output = params.output_dims(input)?;
    let expected = with_spatial(input_shape, output);
    check_shape(
        "grad_out",
        shape5(&grad_out),
        "the output of the pooling",
        expected,
        params.rank,
    )?;
    let len = checked_product(&input_shape)?;
    let mut grad_in = alloc_zeroed::<T>(len, "grad_input")?;
    if len == 0 || grad_out.is_empty() {
        return into_array5(input_shape, grad_in);
    }
    let windows = Windows::strided(params, input, output)?;
    let (grad_out, x) = (standard(grad_out)?, standard(x)?);
    let (grad_out, x) = (as_slice(&grad_out)?, as_slice(&x)?);
    let (in_vol, out_vol) = (windows.in_vol(), windows.out_vol());
    let split = PlaneSplit::new(
        len / in_vol.max(1),
        out_vol.saturating_mul(windows.max_window_vol()),
    );
    let volume = kernel_volume(params);
    let whole = avg::whole_power(p);
    for_each_target_plane(&mut grad_in, in_vol, split, |plane, g| {
        let x = &x[plane * in_vol..(plane + 1) * in_vol];
        let grads = &grad_out[plane * out_vol..(plane + 1) * out_vol];
        macro_rules! backward {
            ($whole:literal) => {
                avg::lp_backward_plane(&windows, Lp::<T, $whole>::new(p, volume), x, grads, g)
            };
        }
        match whole {
            1 => backward!(1),
            2 => backward!(2),
            3 => backward!(3),
            4 => backward!(4),
            _ => backward!(0),
        }
    })?;
    into_array5(input_shape, grad_in)
}
