//! Core tests: tiny hand-checked cases (ties, NaN, padding, ceil mode), a direct
//! per-window reference for every op, and the error paths.

use super::*;
use crate::error::Error;
use crate::geometry::PoolPadding;
use ndarray::{Array, Array5};

fn row(values: &[f64]) -> Array5<f64> {
    Array::from_shape_vec([1, 1, 1, 1, values.len()], values.to_vec()).unwrap()
}

fn pool1d(kernel: usize, stride: usize, padding: usize) -> PoolParams {
    PoolParams {
        stride: [1, 1, stride],
        padding: PoolPadding::Symmetric([0, 0, padding]),
        ..PoolParams::new(1, [1, 1, kernel])
    }
}

fn flat<T: Clone>(a: &Array5<T>) -> Vec<T> {
    a.iter().cloned().collect()
}

/// Deterministic pseudo-random values in [-1, 1), with repeats (ties) on purpose.
fn filled(shape: [usize; 5], seed: u64) -> Array5<f64> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    Array::from_shape_fn(shape, |_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state % 16) as f64) / 8.0 - 1.0
    })
}

/// [`filled`] with about one NaN and one -inf in every 23 values.
fn filled_special(shape: [usize; 5], seed: u64) -> Array5<f64> {
    let mut x = filled(shape, seed);
    for (i, v) in x.iter_mut().enumerate() {
        match (i as u64 ^ seed).wrapping_mul(0x2545_F491_4F6C_DD1D) % 23 {
            0 => *v = f64::NAN,
            1 => *v = f64::NEG_INFINITY,
            _ => {}
        }
    }
    x
}

/// Equal element by element, NaN equal to NaN.
fn same_values(a: &Array5<f64>, b: &Array5<f64>) -> bool {
    a.shape() == b.shape()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
}

#[test]
fn ties_keep_the_first_maximum() {
    let x = row(&[1.0, 3.0, 3.0, 0.0, 2.0, 2.0]);
    let pooled = max_pool(x.view(), &pool1d(3, 3, 0), true).unwrap();
    assert_eq!(flat(&pooled.values), vec![3.0, 2.0]);
    assert_eq!(flat(&pooled.indices.unwrap()), vec![1, 4]);
}

#[test]
fn nan_wins_and_the_last_nan_is_reported_like_pytorch() {
    let x = row(&[1.0, f64::NAN, 5.0, f64::NAN, 0.0, 1.0]);
    let pooled = max_pool(x.view(), &pool1d(4, 2, 0), true).unwrap();
    let values = flat(&pooled.values);
    assert!(values[0].is_nan());
    assert!(values[1].is_nan());
    // Window [0, 4) holds NaN at 1 and 3: PyTorch's `val > max || isnan(val)`
    // moves to every NaN it meets. Window [2, 6) has its NaN at 3.
    assert_eq!(flat(&pooled.indices.unwrap()), vec![3, 3]);
}

#[test]
fn padding_is_never_selected_and_all_minus_infinity_keeps_the_first_cell() {
    let x = row(&[-5.0, -7.0, f64::NEG_INFINITY, f64::NEG_INFINITY]);
    let pooled = max_pool(x.view(), &pool1d(2, 2, 1), true).unwrap();
    assert_eq!(flat(&pooled.values), vec![-5.0, -7.0, f64::NEG_INFINITY]);
    assert_eq!(flat(&pooled.indices.unwrap()), vec![0, 1, 3]);
}

#[test]
fn avg_divisor_follows_count_include_pad_and_ceil_mode() {
    let x = row(&[1.0, 2.0, 3.0, 4.0, 5.0]);
    let mut p = pool1d(3, 2, 1);
    p.ceil_mode = true;
    // Windows [-1, 2) [1, 4) [3, 6): the last hangs past the padded end [.., 6)?
    // len + pad = 6, so it is clipped to [3, 6) and counts 3 (pad included).
    let include = avg_pool(x.view(), &p, AvgOptions::default()).unwrap();
    assert_eq!(flat(&include), vec![3.0 / 3.0, 9.0 / 3.0, 9.0 / 3.0]);
    let exclude = AvgOptions {
        count_include_pad: false,
        divisor_override: None,
    };
    let excluded = avg_pool(x.view(), &p, exclude).unwrap();
    assert_eq!(flat(&excluded), vec![3.0 / 2.0, 9.0 / 3.0, 9.0 / 2.0]);
    let fixed = AvgOptions {
        count_include_pad: true,
        divisor_override: Some(-2),
    };
    assert_eq!(
        flat(&avg_pool(x.view(), &p, fixed).unwrap()),
        vec![-1.5, -4.5, -4.5]
    );
}

#[test]
fn ceil_mode_window_past_the_padding_counts_only_up_to_len_plus_pad() {
    // len 4, k 3, s 2, pad 0, ceil: windows [0,3) [2,5); the second is clipped to
    // [2, 4) since len + pad = 4, so it divides by 2 even with padding counted.
    let x = row(&[1.0, 2.0, 3.0, 5.0]);
    let mut p = pool1d(3, 2, 0);
    p.ceil_mode = true;
    assert_eq!(
        flat(&avg_pool(x.view(), &p, AvgOptions::default()).unwrap()),
        vec![2.0, 4.0]
    );
}

/// Direct max over the taps of each window (padding skipped), first max / last NaN.
fn direct_max(x: &Array5<f64>, p: &PoolParams) -> (Array5<f64>, Array5<i64>) {
    let input = [x.shape()[2], x.shape()[3], x.shape()[4]];
    let out = p.output_dims(input).unwrap();
    let shape = [x.shape()[0], x.shape()[1], out[0], out[1], out[2]];
    let mut values = Array5::zeros(shape);
    let mut indices = Array5::zeros(shape);
    for (n, c, od, oh, ow) in ndarray::indices(shape) {
        let (mut best, mut at) = (f64::NEG_INFINITY, -1i64);
        for kd in 0..p.kernel[0] {
            for kh in 0..p.kernel[1] {
                for kw in 0..p.kernel[2] {
                    let pos = [(od, kd), (oh, kh), (ow, kw)];
                    let cell: Vec<isize> = (0..3)
                        .map(|a| {
                            (pos[a].0 * p.stride[a] + pos[a].1 * p.dilation[a]) as isize
                                - p.pads(a, input[a]).0 as isize
                        })
                        .collect();
                    if (0..3).any(|a| cell[a] < 0 || cell[a] >= input[a] as isize) {
                        continue;
                    }
                    let (id, ih, iw) = (cell[0] as usize, cell[1] as usize, cell[2] as usize);
                    let v = x[[n, c, id, ih, iw]];
                    if at < 0 || v > best || v.is_nan() {
                        best = v;
                        at = ((id * input[1] + ih) * input[2] + iw) as i64;
                    }
                }
            }
        }
        values[[n, c, od, oh, ow]] = best;
        indices[[n, c, od, oh, ow]] = at;
    }
    (values, indices)
}

/// A rank-3 pooling problem: `(shape, kernel, stride, padding, dilation, ceil_mode)`.
fn case(
    shape: [usize; 5],
    k: [usize; 3],
    s: [usize; 3],
    p: [usize; 3],
    d: [usize; 3],
    ceil: bool,
) -> ([usize; 5], PoolParams) {
    let params = PoolParams {
        rank: 3,
        kernel: k,
        stride: s,
        padding: PoolPadding::Symmetric(p),
        dilation: d,
        ceil_mode: ceil,
    };
    (shape, params)
}

fn cases() -> Vec<([usize; 5], PoolParams)> {
    vec![
        case(
            [2, 3, 1, 1, 9],
            [1, 1, 3],
            [1, 1, 2],
            [0, 0, 1],
            [1, 1, 1],
            false,
        ),
        case(
            [1, 2, 1, 7, 6],
            [1, 3, 2],
            [1, 2, 1],
            [0, 1, 1],
            [1, 1, 2],
            true,
        ),
        case(
            [1, 1, 5, 4, 6],
            [2, 3, 3],
            [2, 1, 2],
            [1, 1, 0],
            [1, 1, 2],
            true,
        ),
        case(
            [3, 2, 3, 5, 5],
            [3, 2, 2],
            [1, 2, 3],
            [1, 0, 1],
            [1, 2, 1],
            false,
        ),
        // Long rows: many neighbouring windows of one shape (pooled in groups).
        case(
            [1, 2, 1, 3, 41],
            [1, 2, 3],
            [1, 1, 2],
            [0, 1, 1],
            [1, 1, 1],
            true,
        ),
        case(
            [2, 1, 2, 2, 37],
            [1, 1, 4],
            [1, 1, 3],
            [0, 0, 2],
            [1, 1, 2],
            false,
        ),
        case(
            [1, 1, 1, 1, 50],
            [1, 1, 1],
            [1, 1, 1],
            [0, 0, 0],
            [1, 1, 1],
            false,
        ),
    ]
}

#[test]
fn max_pool_matches_a_direct_loop() {
    for (i, (shape, p)) in cases().into_iter().enumerate() {
        let x = filled_special(shape, i as u64 + 1);
        let pooled = max_pool(x.view(), &p, true).unwrap();
        let (values, indices) = direct_max(&x, &p);
        assert!(same_values(&pooled.values, &values), "case {i}");
        assert_eq!(pooled.indices.unwrap(), indices, "case {i}");
        // Without indices the values are the same.
        let values_only = max_pool(x.view(), &p, false).unwrap().values;
        assert!(same_values(&values_only, &values), "case {i}");
    }
}

#[test]
fn max_pool_backward_puts_each_gradient_at_its_argmax() {
    for (i, (shape, p)) in cases().into_iter().enumerate() {
        let x = filled_special(shape, i as u64 + 11);
        let pooled = max_pool(x.view(), &p, true).unwrap();
        let indices = pooled.indices.unwrap();
        let grad_out = filled(indices.dim().into(), 99) + 2.0;
        let grad_in = max_pool_backward(grad_out.view(), indices.view(), shape, 3).unwrap();
        let mut expected = Array5::<f64>::zeros(shape);
        for ((n, c, od, oh, ow), &g) in grad_out.indexed_iter() {
            let at = indices[[n, c, od, oh, ow]] as usize;
            let (hw, w) = (shape[3] * shape[4], shape[4]);
            expected[[n, c, at / hw, at % hw / w, at % w]] += g;
        }
        assert_eq!(grad_in, expected, "case {i}");
    }
}

#[test]
fn avg_pool_backward_is_the_adjoint_of_avg_pool() {
    let mut all = cases();
    // per-side and "same" padding, dilated
    for padding in [
        PoolPadding::Sides {
            lo: [0, 2, 0],
            hi: [1, 0, 2],
        },
        PoolPadding::Same { extra_first: true },
    ] {
        let (shape, mut p) = all[2].clone();
        p.padding = padding;
        all.push((shape, p));
    }
    for (i, (shape, p)) in all.into_iter().enumerate() {
        for options in [
            AvgOptions::default(),
            AvgOptions {
                count_include_pad: false,
                divisor_override: None,
            },
            AvgOptions {
                count_include_pad: true,
                divisor_override: Some(3),
            },
        ] {
            let x = filled(shape, i as u64 + 21);
            let y = avg_pool(x.view(), &p, options).unwrap();
            let g = filled(y.dim().into(), 7);
            let gx = avg_pool_backward(g.view(), shape, &p, options).unwrap();
            let lhs: f64 = (&y * &g).sum();
            let rhs: f64 = (&x * &gx).sum();
            assert!((lhs - rhs).abs() < 1e-12 * (1.0 + lhs.abs()), "case {i}");
        }
    }
}

#[test]
fn adaptive_pooling_to_one_is_the_global_mean_and_max() {
    let x = filled([2, 3, 3, 4, 5], 5);
    let mean = adaptive_avg_pool(x.view(), [1, 1, 1], 3).unwrap();
    let max = adaptive_max_pool(x.view(), [1, 1, 1], 3, true).unwrap();
    for n in 0..2 {
        for c in 0..3 {
            let plane = x.slice(ndarray::s![n, c, .., .., ..]);
            let expected = plane.sum() / 60.0;
            assert!((mean[[n, c, 0, 0, 0]] - expected).abs() < 1e-14);
            let top = plane.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!(max.values[[n, c, 0, 0, 0]], top);
            let at = max.indices.as_ref().unwrap()[[n, c, 0, 0, 0]] as usize;
            let first = plane.iter().position(|&v| v == top).unwrap();
            assert_eq!(at, first);
        }
    }
    let grad = adaptive_avg_pool_backward(mean.view(), [2, 3, 3, 4, 5], 3).unwrap();
    assert!((grad.sum() - mean.sum()).abs() < 1e-12);
}

#[test]
fn unpool_inverts_non_overlapping_max_pooling() {
    let x = filled([2, 2, 1, 4, 6], 3);
    let p = PoolParams::new(2, [1, 2, 2]);
    let pooled = max_pool(x.view(), &p, true).unwrap();
    let indices = pooled.indices.unwrap();
    let up = max_unpool(
        pooled.values.view(),
        indices.view(),
        &UnpoolParams::new(2, [1, 2, 2]),
    )
    .unwrap();
    assert_eq!(up.dim(), (2, 2, 1, 4, 6));
    let again = max_pool(up.view(), &p, false).unwrap().values;
    // Zeros elsewhere can beat a negative maximum, so compare where it is >= 0.
    for (a, b) in again.iter().zip(pooled.values.iter()) {
        if *b >= 0.0 {
            assert_eq!(a, b);
        }
    }
}

#[test]
fn out_of_range_indices_are_errors_not_writes() {
    let grad = row(&[1.0, 2.0]);
    for bad in [-1i64, 4, i64::MAX] {
        let indices = Array::from_shape_vec([1, 1, 1, 1, 2], vec![0, bad]).unwrap();
        let err = max_pool_backward(grad.view(), indices.view(), [1, 1, 1, 1, 4], 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("indices holds"), "{err}");
        let err = max_unpool(
            grad.view(),
            indices.view(),
            &UnpoolParams::new(1, [1, 1, 2]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("indices holds"), "{err}");
    }
    let short = Array::from_shape_vec([1, 1, 1, 1, 1], vec![0i64]).unwrap();
    let err = max_pool_backward(grad.view(), short.view(), [1, 1, 1, 1, 4], 1).unwrap_err();
    assert!(
        err.to_string().contains("indices has shape (1, 1, 1)"),
        "{err}"
    );
}

#[test]
fn bad_arguments_are_value_errors_naming_them() {
    let x = row(&[1.0, 2.0, 3.0]);
    let msg = |r: Result<Array5<f64>>| match r {
        Err(Error::Value(msg)) => msg,
        other => panic!("expected a ValueError, got {other:?}"),
    };
    let zero_divisor = AvgOptions {
        count_include_pad: true,
        divisor_override: Some(0),
    };
    assert!(msg(avg_pool(x.view(), &pool1d(2, 1, 0), zero_divisor)).contains("divisor_override"));
    assert!(msg(avg_pool(x.view(), &pool1d(3, 1, 2), AvgOptions::default())).contains("padding"));
    let grad = row(&[1.0]);
    assert!(msg(avg_pool_backward(
        grad.view(),
        [1, 1, 1, 1, 3],
        &pool1d(2, 1, 0),
        AvgOptions::default()
    ))
    .contains("grad_out has shape (1, 1, 1)"));
    assert!(
        msg(adaptive_avg_pool_backward(grad.view(), [2, 1, 1, 1, 3], 1)).contains("input_shape")
    );
    let empty = Array5::<f64>::zeros([1, 1, 1, 1, 0]);
    assert!(msg(adaptive_avg_pool(empty.view(), [1, 1, 1], 1)).contains("spatial size (0,)"));
    assert!(
        msg(max_pool(x.view(), &pool1d(5, 1, 0), false).map(|m| m.values)).contains("kernel_size")
    );
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let x = filled([4, 16, 1, 40, 40], 17);
    let p = PoolParams {
        stride: [1, 2, 2],
        padding: PoolPadding::Symmetric([0, 1, 1]),
        ..PoolParams::new(2, [1, 3, 3])
    };
    let before = crate::threads::get_num_threads();
    let run = |threads: usize| {
        crate::threads::set_num_threads(threads).unwrap();
        let m = max_pool(x.view(), &p, true).unwrap();
        let a = avg_pool(x.view(), &p, AvgOptions::default()).unwrap();
        let g = avg_pool_backward(a.view(), [4, 16, 1, 40, 40], &p, AvgOptions::default()).unwrap();
        (m.values, m.indices, a, g)
    };
    let one = run(1);
    let three = run(3);
    crate::threads::set_num_threads(before).unwrap();
    assert_eq!(one.0, three.0);
    assert_eq!(one.1, three.1);
    assert_eq!(one.2, three.2);
    assert_eq!(one.3, three.3);
}

#[test]
fn lp_pool_of_p_one_on_positive_input_is_the_window_sum() {
    let (shape, mut p) = cases()[2].clone();
    p.padding = PoolPadding::Sides {
        lo: [1, 0, 2],
        hi: [0, 2, 1],
    };
    let x = filled(shape, 5).mapv(|v| v + 2.0);
    let sums = avg_pool(
        x.view(),
        &p,
        AvgOptions {
            count_include_pad: true,
            divisor_override: Some(1),
        },
    )
    .unwrap();
    let lp = lp_pool(x.view(), &p, 1.0).unwrap();
    for (a, b) in lp.iter().zip(&sums) {
        assert!((a - b).abs() < 1e-12 * b.abs());
    }
    let g = filled(lp.dim().into(), 3);
    // p = 1 on positive input: the gradient of the sum, every window's gradient
    // added to each of its cells, as average pooling with divisor 1.
    let gx = lp_pool_backward(g.view(), x.view(), &p, 1.0).unwrap();
    let expected = avg_pool_backward(
        g.view(),
        shape,
        &p,
        AvgOptions {
            count_include_pad: true,
            divisor_override: Some(1),
        },
    )
    .unwrap();
    for (a, b) in gx.iter().zip(&expected) {
        assert!((a - b).abs() < 1e-12 * (1.0 + b.abs()));
    }
    assert!(lp_pool(x.view(), &p, 0.0).is_err());
}

/// Integer max pooling of `x` (values in the type's range) against the f64 path
/// on the same values, on every instruction-set path: equal values and indices.
fn integer_max_matches_f64<T>(x: &Array5<f64>, p: &PoolParams, to: impl Fn(f64) -> T)
where
    T: MaxStorage + Into<f64> + std::fmt::Debug,
{
    let ints = x.mapv(to);
    let expected = max_pool(x.view(), p, true).unwrap();
    for isa in crate::kernels::isa::tests::supported() {
        let got =
            crate::kernels::isa::tests::on_path(isa, || max_pool(ints.view(), p, true).unwrap());
        assert_eq!(got.values.mapv(Into::into), expected.values, "{isa:?}");
        assert_eq!(got.indices, expected.indices, "{isa:?}");
    }
}

#[test]
fn integer_max_pool_matches_the_float_path_with_extremes_and_ties() {
    // The filled values in [-1, 1) in steps of 1/8 scaled to each type's range
    // edges: many ties, and the type's minimum and maximum themselves (a window
    // of minima keeps its first cell, as a window of -inf does).
    for (i, (shape, p)) in cases().into_iter().enumerate() {
        let x = filled(shape, i as u64 + 5);
        let scaled = |lo: f64, hi: f64| {
            x.mapv(|v| match v {
                v if v < -0.8 => lo,
                v if v > 0.8 => hi,
                v => (v * 8.0).round(),
            })
        };
        integer_max_matches_f64(&scaled(-128.0, 127.0), &p, |v| v as i8);
        integer_max_matches_f64(&scaled(0.0, 255.0).mapv(f64::abs), &p, |v| v as u8);
        integer_max_matches_f64(&scaled(-32768.0, 32767.0), &p, |v| v as i16);
        integer_max_matches_f64(&scaled(-2147483648.0, 2147483647.0), &p, |v| v as i32);
        // i64 has no exact f64 image of its extremes: compare against i64 values
        // that are (2^53 fits)
        let big = scaled(-(2f64.powi(53)), 2f64.powi(53));
        let ints = big.mapv(|v| v as i64);
        let got = max_pool(ints.view(), &p, true).unwrap();
        let expected = max_pool(big.view(), &p, true).unwrap();
        assert_eq!(got.values.mapv(|v| v as f64), expected.values, "case {i}");
        assert_eq!(got.indices, expected.indices, "case {i}");
        let all_min = Array5::from_elem(shape, i64::MIN);
        let got = max_pool(all_min.view(), &p, true).unwrap();
        let (_, first) = direct_max(&Array5::from_elem(shape, f64::NEG_INFINITY), &p);
        assert!(got.values.iter().all(|&v| v == i64::MIN), "case {i}");
        assert_eq!(got.indices.unwrap(), first, "case {i}");
    }
}

/// Every plane of `x` through `max_plane` and `avg_planes` with `kernel` (means
/// under `rule`, and the Lp sums of a general norm).
fn planes_through(
    x: &Array5<f64>,
    windows: &Windows,
    kernel: RowKernel,
    rule: Divisor,
) -> (Vec<f64>, Vec<i64>, Vec<f64>, Vec<f64>) {
    let rows = plan::RowRuns {
        kernel,
        lo: 0,
        hi: 0,
    };
    let out_vol = windows.out_vol();
    let flat: Vec<f64> = x.iter().copied().collect();
    let mean = Mean::<f64>::new(rule);
    let norm = lp::Lp::<f64, { lp::GENERAL }>::new(1.5, 4);
    let mut mean_scratch = avg::PlaneScratch::new(windows, mean);
    let mut lp_scratch = avg::PlaneScratch::new(windows, norm);
    let (mut maxima, mut at, mut means, mut lp) = (vec![], vec![], vec![], vec![]);
    for plane in flat.chunks_exact(windows.in_vol()) {
        let mut v = vec![MaybeUninit::uninit(); out_vol];
        let mut i = vec![MaybeUninit::uninit(); out_vol];
        max::max_plane(windows, rows, plane, &mut v, &mut i);
        let mut m = vec![MaybeUninit::uninit(); out_vol];
        avg::avg_planes(windows, rows, mean, plane, &mut m, &mut mean_scratch);
        let mut l = vec![MaybeUninit::uninit(); out_vol];
        avg::avg_planes(windows, rows, norm, plane, &mut l, &mut lp_scratch);
        // SAFETY: each kernel writes every output of its plane.
        unsafe {
            maxima.extend(v.iter().map(|s| s.assume_init()));
            at.extend(i.iter().map(|s| s.assume_init()));
            means.extend(m.iter().map(|s| s.assume_init()));
            lp.extend(l.iter().map(|s| s.assume_init()));
        }
    }
    (maxima, at, means, lp)
}

#[test]
fn the_tap_table_computes_what_the_scalar_scan_does() {
    // Bit for bit, ties and NaN included: the table lists each window's cells in
    // the scan's order. Strided windows (padding, dilation, ceil mode) and
    // adaptive ones (overlapping, uneven).
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let mut problems: Vec<([usize; 5], Windows)> = cases()
        .into_iter()
        .map(|(shape, p)| {
            let input = [shape[2], shape[3], shape[4]];
            (
                shape,
                Windows::strided(&p, input, p.output_dims(input).unwrap()).unwrap(),
            )
        })
        .collect();
    for (input, output) in [
        ([1, 7, 7], [1, 3, 3]),
        ([3, 5, 6], [2, 3, 4]),
        ([1, 13, 9], [1, 6, 5]),
    ] {
        let shape = [2, 2, input[0], input[1], input[2]];
        problems.push((shape, Windows::adaptive(input, output).unwrap()));
    }
    let mut tabled = 0;
    for (i, (shape, windows)) in problems.iter().enumerate() {
        if windows.taps.is_none() {
            continue;
        }
        tabled += 1;
        let x = filled_special(*shape, i as u64 + 31);
        for rule in [Divisor::Padded, Divisor::Valid] {
            let taps = planes_through(&x, windows, RowKernel::Taps, rule);
            let scan = planes_through(&x, windows, RowKernel::Scalar, rule);
            assert_eq!(bits(&taps.0), bits(&scan.0), "problem {i}: maxima");
            assert_eq!(taps.1, scan.1, "problem {i}: indices");
            assert_eq!(bits(&taps.2), bits(&scan.2), "problem {i}: means");
            assert_eq!(bits(&taps.3), bits(&scan.3), "problem {i}: Lp sums");
        }
    }
    // The long rows have runs for the row kernels, the small planes a table.
    assert!(tabled >= 6, "only {tabled} problems have a tap table");
}
