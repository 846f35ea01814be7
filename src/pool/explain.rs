//! What a pooling call's plan is and what it costs: the report behind
//! `explain_pool`. The forward pass names the row kernel [`super::plan`] chose
//! for the interior windows (the other kernels that could run are listed with
//! the same count of element visits: they do the same work in narrower
//! registers); the input gradient is a scatter by index (max) or the adjoint
//! of the windows (average).

use super::interleave::lanes_of;
use super::plan::{self, PlaneSplit, RowKernel, RowRuns, TapWork};
use super::windows::Windows;
use super::{check_adaptive_input, check_avg, AvgOptions};
use crate::arrays::{spatial, with_spatial, Shape5};
use crate::element::Element;
use crate::error::Result;
use crate::geometry::{check_rank, AxisWindow, Dims, PoolParams};
use crate::kernels::isa;
use crate::report::{Cost, PassReport, Report};
use crate::threads;

/// The pooling a report is asked for.
#[derive(Debug, Clone, Copy)]
pub enum Pooling<'a> {
    Max(&'a PoolParams),
    Avg(&'a PoolParams, AvgOptions),
    AdaptiveMax { output: Dims, rank: usize },
    AdaptiveAvg { output: Dims, rank: usize },
}

/// The plan of a pooling call on an input of shape `x` (validated as the call
/// validates it, so a bad argument is the same error).
pub fn explain_pool<T: Element>(x: Shape5, pooling: Pooling<'_>) -> Result<Report> {
    let input = spatial(x);
    let (output, windows) = match pooling {
        Pooling::Max(params) => {
            let output = params.output_dims(input)?;
            (output, Windows::strided(params, input, output)?)
        }
        Pooling::Avg(params, options) => {
            check_avg(options)?;
            let output = params.output_dims(input)?;
            (output, Windows::strided(params, input, output)?)
        }
        Pooling::AdaptiveMax { output, rank } | Pooling::AdaptiveAvg { output, rank } => {
            check_rank(rank)?;
            check_adaptive_input(input, rank)?;
            (output, Windows::adaptive(input, output)?)
        }
    };
    let is_max = matches!(pooling, Pooling::Max(_) | Pooling::AdaptiveMax { .. });
    let planes = x[0].saturating_mul(x[1]);
    let out_vol = windows.out_vol();
    // Every window of a plane is a product of per-axis windows, so the cells
    // all windows read are the product of the per-axis sums.
    let visits = windows
        .axes
        .iter()
        .map(|axis| axis.iter().map(|w| w.count as u128).sum::<u128>())
        .product::<u128>()
        * planes as u128;
    let tables = windows
        .axes
        .iter()
        .map(|axis| axis.len() * std::mem::size_of::<AxisWindow>())
        .sum::<usize>()
        + windows.taps.as_ref().map_or(0, |taps| taps.bytes());
    let rows = if is_max {
        plan::max_rows::<T>(&windows, windows.in_vol())
    } else {
        plan::avg_rows(&windows, true)
    };
    let rows = plan::interleaved(
        rows,
        &windows,
        planes,
        lanes_of::<T>(),
        if is_max {
            TapWork::Maxima
        } else {
            TapWork::Sums
        },
    );
    // (The backward decides its own kernel and split from the plain one.)
    let plane_split = PlaneSplit::new(planes, out_vol.saturating_mul(windows.max_window_vol()));
    let forward_split = plane_split.for_kernel(rows.kernel);
    let forward_cost = cost(visits, tables, forward_split, planes);
    let forward = PassReport {
        pass: "forward",
        algorithm: rows.kernel.name().to_string(),
        cost: forward_cost,
        alternatives: narrower(rows)
            .into_iter()
            .map(|kernel| (kernel.name().to_string(), forward_cost))
            .collect(),
        flops: to_u64(visits),
    };
    let backward = if is_max {
        let scattered = planes as u128 * out_vol as u128;
        PassReport {
            pass: "input_grad",
            algorithm: "scatter".to_string(),
            cost: cost(scattered, 0, PlaneSplit::new(planes, out_vol), planes),
            alternatives: Vec::new(),
            flops: to_u64(scattered),
        }
    } else {
        // As `avg_backward_over` decides.
        let adjoint = plan::interleaved(
            plan::avg_rows(&windows, false),
            &windows,
            planes,
            lanes_of::<T>(),
            TapWork::Adjoint,
        );
        let (algorithm, split) = match adjoint.kernel {
            // (Global pooling's gradient fills whole planes before any of this.)
            _ if rows.kernel == RowKernel::PlaneSum => ("window_adjoint", plane_split),
            RowKernel::Interleaved(_) => (
                adjoint.kernel.name(),
                plane_split.for_kernel(adjoint.kernel),
            ),
            _ => ("window_adjoint", plane_split),
        };
        PassReport {
            pass: "input_grad",
            algorithm: algorithm.to_string(),
            cost: cost(visits, tables, split, planes),
            alternatives: Vec::new(),
            flops: to_u64(visits),
        }
    };
    Ok(Report {
        x_shape: x,
        weight_shape: None,
        out_shape: with_spatial(x, output),
        dtype: T::NAME,
        precision: None,
        isa: isa::active().name(),
        threads: threads::get_num_threads(),
        passes: vec![forward, backward],
    })
}

/// The kernels narrower than `rows`' that could compute the same interior.
fn narrower(rows: RowRuns) -> Vec<RowKernel> {
    match rows.kernel {
        RowKernel::Stride2Simd(lanes) => vec![RowKernel::Lanes(lanes), RowKernel::Scalar],
        RowKernel::Interleaved(_) => vec![RowKernel::Taps, RowKernel::Scalar],
        RowKernel::Lanes(_) | RowKernel::PlaneSum | RowKernel::Taps => vec![RowKernel::Scalar],
        RowKernel::Scalar => Vec::new(),
    }
}

fn to_u64(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

fn cost(ops: u128, workspace: usize, split: PlaneSplit, planes: usize) -> Cost {
    Cost {
        ops: to_u64(ops),
        copied_bytes: 0,
        workspace_bytes: workspace as u64,
        tasks: split.tasks(planes) as u64,
        serial: split.serial(planes),
    }
}
