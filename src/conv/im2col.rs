//! Packing tiles of output positions into column matrices (im2col) and folding
//! column gradients back onto the input (col2im), with any padding mode.
//!
//! A tile is the output positions `p0 .. p0 + len` of one image (flattened
//! row-major over `(D, H, W)`), and its column matrix has one row per
//! `(input channel, kz, ky, kx)` and one column per position. The padded input
//! is never materialised: per-axis tables say which input cell each
//! `(kernel offset, output coordinate)` pair reads, or that it reads a zero.

use super::shape::ConvGeometry;
use crate::element::Element;
use crate::error::{alloc_zeroed, Result};
use crate::geometry::SPATIAL;

/// Marks a padded cell that reads zero.
const ZERO: usize = usize::MAX;

/// `axes[a][k * out[a] + o]`: input index read by kernel offset `k` at output
/// coordinate `o` along axis `a`, or [`ZERO`].
pub(crate) struct IndexTables {
    axes: [Vec<usize>; SPATIAL],
}

impl IndexTables {
    pub(crate) fn new(geo: &ConvGeometry) -> Result<Self> {
        let mut axes: [Vec<usize>; SPATIAL] = Default::default();
        for (a, table) in axes.iter_mut().enumerate() {
            let out_len = geo.output[a];
            *table = alloc_zeroed(geo.kernel[a].saturating_mul(out_len), "index tables")?;
            for k in 0..geo.kernel[a] {
                for o in 0..out_len {
                    // Sizes were validated to fit; compute in i128 so nothing wraps.
                    let padded = o as i128 * geo.stride[a] as i128
                        + k as i128 * geo.dilation[a] as i128
                        - geo.pad_lo[a] as i128;
                    let source = isize::try_from(padded)
                        .ok()
                        .and_then(|i| geo.padding_mode.source_index(i, geo.input[a]));
                    table[k * out_len + o] = source.unwrap_or(ZERO);
                }
            }
        }
        Ok(Self { axes })
    }

    fn row(&self, axis: usize, k: usize, out_len: usize) -> &[usize] {
        &self.axes[axis][k * out_len..(k + 1) * out_len]
    }
}

/// Visit every `(column-matrix element, input cell)` pair of a tile, in a fixed
/// order: `visit(col_index, input_index_or_ZERO)`.
#[inline(always)]
fn for_each_tap(
    geo: &ConvGeometry,
    tables: &IndexTables,
    p0: usize,
    len: usize,
    mut visit: impl FnMut(usize, usize),
) {
    let [od, oh, ow] = geo.output;
    let [kd, kh, kw] = geo.kernel;
    let [_, ih, iw] = geo.input;
    let in_vol = geo.in_vol();
    let start = (p0 / (oh * ow), (p0 / ow) % oh, p0 % ow);
    let mut col_row = 0;
    for ci in 0..geo.cig() {
        let channel_base = ci * in_vol;
        for kz in 0..kd {
            let tz = tables.row(0, kz, od);
            for ky in 0..kh {
                let ty = tables.row(1, ky, oh);
                for kx in 0..kw {
                    let tx = tables.row(2, kx, ow);
                    let base = col_row * len;
                    col_row += 1;
                    let (mut oz, mut oy, mut ox) = start;
                    let mut j = 0;
                    while j < len {
                        // One run of positions along the W axis of one output row.
                        let run = (ow - ox).min(len - j);
                        let (iz, iy) = (tz[oz], ty[oy]);
                        if iz == ZERO || iy == ZERO {
                            for r in 0..run {
                                visit(base + j + r, ZERO);
                            }
                        } else {
                            let row_base = channel_base + (iz * ih + iy) * iw;
                            for (r, &ix) in tx[ox..ox + run].iter().enumerate() {
                                let input = if ix == ZERO { ZERO } else { row_base + ix };
                                visit(base + j + r, input);
                            }
                        }
                        j += run;
                        ox += run;
                        if ox == ow {
                            ox = 0;
                            oy += 1;
                            if oy == oh {
                                oy = 0;
                                oz += 1;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Fill `col[..k_len * len]` with the column matrix of a tile of one image-group
/// `x_group` (its `cig` channels, contiguous).
pub(crate) fn gather_tile<T: Element>(
    geo: &ConvGeometry,
    tables: &IndexTables,
    x_group: &[T],
    p0: usize,
    len: usize,
    col: &mut [T],
) {
    let col = &mut col[..geo.k_len() * len];
    for_each_tap(geo, tables, p0, len, |c, i| {
        col[c] = if i == ZERO { T::zero() } else { x_group[i] };
    });
}

/// Add the column-matrix gradient of a tile onto the input gradient of one
/// image-group; several column entries may land on one cell (overlapping windows,
/// and reflected/replicated/circular padding folding back).
pub(crate) fn scatter_tile<T: Element>(
    geo: &ConvGeometry,
    tables: &IndexTables,
    col: &[T],
    p0: usize,
    len: usize,
    grad_group: &mut [T],
) {
    for_each_tap(geo, tables, p0, len, |c, i| {
        if i != ZERO {
            grad_group[i] += col[c];
        }
    });
}
