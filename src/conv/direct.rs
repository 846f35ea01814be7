//! Direct (tap-by-tap) passes for convolutions with one input channel per group and
//! at most a few output channels per group: depthwise convolutions above all. A
//! GEMM would have a single row there, so instead each output plane accumulates
//! `weight[tap] * shifted input plane` tap after tap, with contiguous runs of the
//! input read straight from memory (no packing).

use super::im2col::{for_each_segment, IndexTables};
use super::shape::ConvGeometry;
use crate::element::Element;
use crate::error::Result;
use crate::threads::for_each_chunk_mut;

/// Whether the direct passes serve this geometry.
pub(crate) fn applies(geo: &ConvGeometry) -> bool {
    geo.cig() == 1 && geo.cog() <= 2
}

/// `out = conv(x, w) + bias`, one task per output plane.
pub(crate) fn forward<T: Element>(
    geo: &ConvGeometry,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
) -> Result<()> {
    let tables = IndexTables::new(geo)?;
    let (p_len, in_vol, kvol, cog) = (geo.out_vol(), geo.in_vol(), geo.kernel_vol(), geo.cog());
    for_each_chunk_mut(
        out,
        p_len,
        geo.work(),
        || (),
        |_, plane_index, plane| {
            let (n, channel) = (plane_index / geo.c_out, plane_index % geo.c_out);
            let x_plane = &x[(n * geo.c_in + channel / cog) * in_vol..][..in_vol];
            let taps = &w[channel * kvol..][..kvol];
            plane.fill(bias.map_or(T::zero(), |b| b[channel]));
            for_each_segment(geo, &tables, 0, p_len, p_len, |tap, j, run, source| {
                source.axpy_into(x_plane, taps[tap], &mut plane[j..j + run]);
            });
        },
    )
}

/// `grad_x = conv_backward_input(grad_out, w)`, one task per input plane;
/// `grad_x` must be zero-filled.
pub(crate) fn backward_input<T: Element>(
    geo: &ConvGeometry,
    grad_out: &[T],
    w: &[T],
    grad_x: &mut [T],
) -> Result<()> {
    let tables = IndexTables::new(geo)?;
    let (p_len, in_vol, kvol, cog) = (geo.out_vol(), geo.in_vol(), geo.kernel_vol(), geo.cog());
    for_each_chunk_mut(
        grad_x,
        in_vol,
        geo.work(),
        || (),
        |_, plane_index, grad_plane| {
            let (n, group) = (plane_index / geo.c_in, plane_index % geo.c_in);
            for channel in group * cog..(group + 1) * cog {
                let g_plane = &grad_out[(n * geo.c_out + channel) * p_len..][..p_len];
                let taps = &w[channel * kvol..][..kvol];
                for_each_segment(geo, &tables, 0, p_len, p_len, |tap, j, run, source| {
                    source.axpy_from(&g_plane[j..j + run], taps[tap], grad_plane);
                });
            }
        },
    )
}

/// `grad_w = conv_backward_weight(grad_out, x)`, one task per output channel; each
/// tap sums images, then positions, in order.
pub(crate) fn backward_weight<T: Element>(
    geo: &ConvGeometry,
    grad_out: &[T],
    x: &[T],
    grad_w: &mut [T],
) -> Result<()> {
    let tables = IndexTables::new(geo)?;
    let (p_len, in_vol, kvol, cog) = (geo.out_vol(), geo.in_vol(), geo.kernel_vol(), geo.cog());
    for_each_chunk_mut(
        grad_w,
        kvol,
        geo.work(),
        || (),
        |_, channel, taps| {
            taps.fill(T::zero());
            for n in 0..geo.n {
                let g_plane = &grad_out[(n * geo.c_out + channel) * p_len..][..p_len];
                let x_plane = &x[(n * geo.c_in + channel / cog) * in_vol..][..in_vol];
                for_each_segment(geo, &tables, 0, p_len, p_len, |tap, j, run, source| {
                    taps[tap] += source.dot(x_plane, &g_plane[j..j + run]);
                });
            }
        },
    )
}
