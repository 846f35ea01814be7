//! Direct (tap-by-tap) passes for convolutions with at most two output channels per
//! group: depthwise convolutions, and layers with a single output channel (e.g. the
//! input gradient of a first layer). A GEMM would have one useful row out of eight
//! there, and every packed element would be used once; instead each output plane
//! accumulates `weight[tap] * shifted input plane` tap after tap, reading contiguous
//! runs of the input straight from memory. The per-plane loops are compiled twice,
//! once for AVX-512, and the CPU picks one at run time.

use super::columns::{for_each_segment, IndexTables};
use super::epilogue::{self, Epilogue};
use super::geometry::ConvGeometry;
use crate::element::Element;
use crate::error::Result;
use crate::kernels::{dispatch, simd_twins};
use crate::threads::for_each_chunk_mut;
use std::mem::MaybeUninit;

/// `out = epilogue(conv(x, w) + bias)`, one task per output plane (every element
/// of `out` is written).
pub(crate) fn forward<T: Element>(
    geo: &ConvGeometry,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    epilogue: &Epilogue<'_, T>,
    out: &mut [MaybeUninit<T>],
) -> Result<()> {
    let tables = IndexTables::new(geo)?;
    let p_len = geo.out_vol();
    epilogue::planes(
        epilogue,
        out,
        p_len,
        geo.work(),
        || (),
        |_, plane_index, plane| {
            dispatch!(
                forward_plane,
                forward_plane_avx512,
                forward_plane_avx2,
                geo,
                &tables,
                x,
                w,
                bias,
                plane_index,
                plane
            )
        },
    )
}

/// One output plane: every tap of every input channel of its group, in order.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn forward_plane<T: Element>(
    geo: &ConvGeometry,
    tables: &IndexTables,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    plane_index: usize,
    plane: &mut [T],
) {
    let (k_len, in_vol, cig, p_len) = (geo.k_len(), geo.in_vol(), geo.cig(), geo.out_vol());
    let (n, channel) = (plane_index / geo.c_out, plane_index % geo.c_out);
    let group = channel / geo.cog();
    let x_group = &x[(n * geo.c_in + group * cig) * in_vol..][..cig * in_vol];
    let taps = &w[channel * k_len..][..k_len];
    plane.fill(bias.map_or(T::zero(), |b| b[channel]));
    for_each_segment(geo, tables, 0, p_len, p_len, |tap, j, run, source| {
        source.axpy_into(x_group, taps[tap], &mut plane[j..j + run]);
    });
}

simd_twins! {
    forward_plane => forward_plane_avx512, forward_plane_avx2,
    <T: Element>(
        geo: &ConvGeometry,
        tables: &IndexTables,
        x: &[T],
        w: &[T],
        bias: Option<&[T]>,
        plane_index: usize,
        plane: &mut [T],
    )
}

/// `grad_x = conv_backward_input(grad_out, w)`, one task per (image, group);
/// `grad_x` must be zero-filled.
pub(crate) fn backward_input<T: Element>(
    geo: &ConvGeometry,
    grad_out: &[T],
    w: &[T],
    grad_x: &mut [T],
) -> Result<()> {
    let tables = IndexTables::new(geo)?;
    let group_len = geo.cig() * geo.in_vol();
    for_each_chunk_mut(
        grad_x,
        group_len,
        geo.work(),
        || (),
        |_, image_group, grad_group| {
            dispatch!(
                backward_input_group,
                backward_input_group_avx512,
                backward_input_group_avx2,
                geo,
                &tables,
                grad_out,
                w,
                image_group,
                grad_group
            )
        },
    )
}

/// The input gradient of one (image, group): each output channel's taps folded back.
#[inline(always)]
fn backward_input_group<T: Element>(
    geo: &ConvGeometry,
    tables: &IndexTables,
    grad_out: &[T],
    w: &[T],
    image_group: usize,
    grad_group: &mut [T],
) {
    let (k_len, p_len, cog) = (geo.k_len(), geo.out_vol(), geo.cog());
    let (n, group) = (image_group / geo.groups, image_group % geo.groups);
    for channel in group * cog..(group + 1) * cog {
        let g_plane = &grad_out[(n * geo.c_out + channel) * p_len..][..p_len];
        let taps = &w[channel * k_len..][..k_len];
        for_each_segment(geo, tables, 0, p_len, p_len, |tap, j, run, source| {
            source.axpy_from(&g_plane[j..j + run], taps[tap], grad_group);
        });
    }
}

simd_twins! {
    backward_input_group => backward_input_group_avx512, backward_input_group_avx2,
    <T: Element>(
        geo: &ConvGeometry,
        tables: &IndexTables,
        grad_out: &[T],
        w: &[T],
        image_group: usize,
        grad_group: &mut [T],
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
    for_each_chunk_mut(
        grad_w,
        geo.k_len(),
        geo.work(),
        || (),
        |_, channel, taps| {
            dispatch!(
                backward_weight_channel,
                backward_weight_channel_avx512,
                backward_weight_channel_avx2,
                geo,
                &tables,
                grad_out,
                x,
                channel,
                taps
            )
        },
    )
}

/// The weight gradient of one output channel.
#[inline(always)]
fn backward_weight_channel<T: Element>(
    geo: &ConvGeometry,
    tables: &IndexTables,
    grad_out: &[T],
    x: &[T],
    channel: usize,
    taps: &mut [T],
) {
    let (p_len, in_vol, cig) = (geo.out_vol(), geo.in_vol(), geo.cig());
    let group = channel / geo.cog();
    taps.fill(T::zero());
    for n in 0..geo.n {
        let g_plane = &grad_out[(n * geo.c_out + channel) * p_len..][..p_len];
        let x_group = &x[(n * geo.c_in + group * cig) * in_vol..][..cig * in_vol];
        for_each_segment(geo, tables, 0, p_len, p_len, |tap, j, run, source| {
            taps[tap] += source.dot(x_group, &g_plane[j..j + run]);
        });
    }
}

simd_twins! {
    backward_weight_channel => backward_weight_channel_avx512, backward_weight_channel_avx2,
    <T: Element>(
        geo: &ConvGeometry,
        tables: &IndexTables,
        grad_out: &[T],
        x: &[T],
        channel: usize,
        taps: &mut [T],
    )
}
