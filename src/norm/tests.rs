//! Core tests: batch normalisation against a direct per-channel reference in
//! `f64`, the running-statistics update, the gradients against their formula,
//! both schedules (channel tasks and piece tasks) giving the same bits, ReLU, and
//! the error paths.

use super::*;
use ndarray::{Array, Array1, ArrayD, IxDyn};

/// Deterministic pseudo-random values in [-1, 1) plus `offset`.
fn filled(shape: &[usize], seed: u64, offset: f64) -> ArrayD<f64> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    Array::from_shape_fn(IxDyn(shape), |_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 1024) as f64 / 512.0 - 1.0 + offset
    })
}

fn vector(values: &[f64]) -> Array1<f64> {
    Array1::from(values.to_vec())
}

/// The values of channel `c` of `x`.
fn channel(x: &ArrayD<f64>, c: usize) -> Vec<f64> {
    x.index_axis(ndarray::Axis(1), c).iter().copied().collect()
}

/// Mean and biased variance of each channel, directly.
fn reference_stats(x: &ArrayD<f64>) -> Vec<(f64, f64)> {
    (0..x.shape()[1])
        .map(|c| {
            let v = channel(x, c);
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let var = v.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / v.len() as f64;
            (mean, var)
        })
        .collect()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

#[test]
fn training_forward_matches_the_definition_and_updates_running_stats() {
    for shape in [
        &[7, 3][..],
        &[2, 3, 5],
        &[3, 2, 4, 5],
        &[2, 2, 3, 1, 4],
        &[1, 2, 40000],
    ] {
        let x = filled(shape, 3, 100.0);
        let c = shape[1];
        let weight = vector(&(0..c).map(|i| 0.5 + i as f64).collect::<Vec<_>>());
        let bias = vector(&(0..c).map(|i| i as f64 - 1.0).collect::<Vec<_>>());
        let (mut rm, mut rv) = (Array1::<f64>::zeros(c), Array1::<f64>::ones(c));
        let running = Running {
            mean: rm.view_mut(),
            var: rv.view_mut(),
            momentum: 0.25,
        };
        let affine = Affine {
            weight: Some(weight.view()),
            bias: Some(bias.view()),
        };
        let got = batch_norm(x.view(), Stats::Batch(Some(running)), affine, 1e-5, false).unwrap();
        let stats = reference_stats(&x);
        let count = (x.len() / c) as f64;
        for (i, &(mean, var)) in stats.iter().enumerate() {
            let invstd = 1.0 / (var + 1e-5).sqrt();
            assert!(close(got.mean[i], mean, 1e-14), "{shape:?} {i}");
            assert!(close(got.invstd[i], invstd, 1e-12), "{shape:?} {i}");
            assert!(close(rm[i], 0.25 * mean, 1e-14));
            assert!(close(
                rv[i],
                0.75 + 0.25 * var * count / (count - 1.0),
                1e-12
            ));
            let x_c = channel(&x, i);
            let y_c = channel(&got.output, i);
            for (a, y) in x_c.iter().zip(&y_c) {
                let want = (a - mean) * invstd * weight[i] + bias[i];
                assert!(close(*y, want, 1e-9), "{shape:?}: {y} vs {want}");
            }
        }
    }
}

#[test]
fn eval_forward_uses_the_given_statistics_and_fused_relu_clamps() {
    let x = filled(&[2, 3, 4], 5, 0.0);
    let (mean, var) = (vector(&[0.1, -0.2, 0.0]), vector(&[1.0, 0.25, 4.0]));
    let stats = Stats::Given {
        mean: mean.view(),
        var: var.view(),
    };
    let got = batch_norm(x.view(), stats, Affine::default(), 0.5, true).unwrap();
    for c in 0..3 {
        let invstd = 1.0 / (var[c] + 0.5).sqrt();
        assert_eq!(got.invstd[c], invstd);
        for (a, y) in channel(&x, c).iter().zip(channel(&got.output, c)) {
            assert!(close(y, ((a - mean[c]) * invstd).max(0.0), 1e-14));
        }
    }
}

#[test]
fn backward_matches_the_formula_in_both_modes_and_with_relu() {
    let shape = [3, 2, 5, 3];
    let x = filled(&shape, 7, 2.0);
    let g = filled(&shape, 8, 0.0);
    let weight = vector(&[1.5, -0.5]);
    let affine = Affine {
        weight: Some(weight.view()),
        bias: None,
    };
    let fwd = batch_norm(x.view(), Stats::Batch(None), affine.clone(), 1e-5, true).unwrap();
    let count = 45.0;
    for training in [true, false] {
        for relu in [false, true] {
            let y = relu.then(|| fwd.output.view());
            let grads = batch_norm_backward(
                g.view(),
                x.view(),
                Some(weight.view()),
                fwd.mean.view(),
                fwd.invstd.view(),
                training,
                y,
            )
            .unwrap();
            for c in 0..2 {
                let (mean, invstd) = (fwd.mean[c], fwd.invstd[c]);
                let xs = channel(&x, c);
                let ys = channel(&fwd.output, c);
                let gs: Vec<f64> = channel(&g, c)
                    .iter()
                    .zip(&ys)
                    .map(|(&g, &y)| if !relu || y > 0.0 { g } else { 0.0 })
                    .collect();
                let xhat: Vec<f64> = xs.iter().map(|a| (a - mean) * invstd).collect();
                let sum_g: f64 = gs.iter().sum();
                let dot: f64 = gs.iter().zip(&xhat).map(|(g, h)| g * h).sum();
                assert!(close(grads.bias[c], sum_g, 1e-12));
                assert!(close(grads.weight[c], dot, 1e-12));
                for ((gi, g), h) in channel(&grads.input, c).iter().zip(&gs).zip(&xhat) {
                    let want = if training {
                        weight[c] * invstd * (g - sum_g / count - h * dot / count)
                    } else {
                        weight[c] * invstd * g
                    };
                    assert!(close(*gi, want, 1e-10), "{training} {relu}: {gi} vs {want}");
                }
            }
        }
    }
}

#[test]
fn channel_tasks_and_piece_tasks_give_the_same_bits() {
    // 2 channels: piece tasks on several threads; 64: channel tasks. The same
    // channel data in both, so every per-channel result must agree exactly.
    let base = filled(&[3, 2, 20000], 11, 0.5).mapv(|v| v as f32);
    let g = filled(&[3, 2, 20000], 12, 0.0).mapv(|v| v as f32);
    let wide = Array::from_shape_fn(IxDyn(&[3, 64, 20000]), |i| base[[i[0], i[1] % 2, i[2]]]);
    let g_wide = Array::from_shape_fn(IxDyn(&[3, 64, 20000]), |i| g[[i[0], i[1] % 2, i[2]]]);
    let before = crate::threads::get_num_threads();
    let run = |threads: usize, x: &ArrayD<f32>, g: &ArrayD<f32>| {
        crate::threads::set_num_threads(threads).unwrap();
        let f = batch_norm(x.view(), Stats::Batch(None), Affine::default(), 1e-5, false).unwrap();
        let b = batch_norm_backward(
            g.view(),
            x.view(),
            None,
            f.mean.view(),
            f.invstd.view(),
            true,
            None,
        )
        .unwrap();
        (f, b)
    };
    let (narrow1, narrow_b1) = run(1, &base, &g);
    let (narrow3, narrow_b3) = run(3, &base, &g);
    let (wide3, wide_b3) = run(3, &wide, &g_wide);
    crate::threads::set_num_threads(before).unwrap();
    assert_eq!(narrow1.output, narrow3.output);
    assert_eq!(narrow_b1.input, narrow_b3.input);
    for c in 0..64 {
        assert_eq!(wide3.mean[c].to_bits(), narrow1.mean[c % 2].to_bits());
        assert_eq!(wide3.invstd[c].to_bits(), narrow1.invstd[c % 2].to_bits());
        assert_eq!(
            wide_b3.weight[c].to_bits(),
            narrow_b1.weight[c % 2].to_bits()
        );
        assert_eq!(wide_b3.bias[c].to_bits(), narrow_b1.bias[c % 2].to_bits());
    }
}

#[test]
fn statistics_of_offset_float32_data_are_accurate() {
    // Values 1e4 +- 1: a float32 one-pass sum of squares would lose the variance.
    let x = filled(&[4, 1, 3000], 13, 1e4).mapv(|v| v as f32);
    let wide = x.mapv(f64::from);
    let got = batch_norm(x.view(), Stats::Batch(None), Affine::default(), 1e-5, false).unwrap();
    let (mean, var) = reference_stats(&wide)[0];
    assert!(close(f64::from(got.mean[0]), mean, 1e-7));
    assert!(close(
        f64::from(got.invstd[0]),
        1.0 / (var + 1e-5).sqrt(),
        1e-6
    ));
}

#[test]
fn relu_and_its_gradient() {
    let x = vector(&[-1.0, 0.0, -0.0, 2.0, f64::NAN]).into_dyn();
    let y = relu(x.view()).unwrap();
    assert_eq!(y.slice(ndarray::s![..4]).to_vec(), vec![0.0, 0.0, 0.0, 2.0]);
    assert!(y[4].is_nan());
    assert_eq!(y[2].to_bits(), 0.0f64.to_bits());
    let g = vector(&[1.0, 2.0, 3.0, 4.0, 5.0]).into_dyn();
    assert_eq!(
        relu_backward(g.view(), y.view())
            .unwrap()
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        vec![0.0, 0.0, 0.0, 4.0, 0.0]
    );
    let mut z = x.clone();
    relu_inplace(z.view_mut()).unwrap();
    assert_eq!(z.slice(ndarray::s![..4]), y.slice(ndarray::s![..4]));
}

#[test]
fn bad_arguments_are_refused_naming_them() {
    let x = filled(&[2, 3, 4], 1, 0.0);
    let msg = |r: Result<Normalized<f64>>| r.unwrap_err().to_string();
    let short = vector(&[1.0, 2.0]);
    let affine = Affine {
        weight: Some(short.view()),
        bias: None,
    };
    assert!(msg(batch_norm(
        x.view(),
        Stats::Batch(None),
        affine,
        1e-5,
        false
    ))
    .contains("weight must have shape (3,)"));
    let one = filled(&[1, 3], 1, 0.0);
    assert!(msg(batch_norm(
        one.view(),
        Stats::Batch(None),
        Affine::default(),
        1e-5,
        false
    ))
    .contains("more than 1 value per channel"));
    assert!(msg(batch_norm(
        x.view(),
        Stats::Batch(None),
        Affine::default(),
        0.0,
        false
    ))
    .contains("eps"));
    let (mut rm, mut rv) = (Array1::<f64>::zeros(3), Array1::<f64>::ones(3));
    let running = Running {
        mean: rm.view_mut(),
        var: rv.view_mut(),
        momentum: 1.5,
    };
    assert!(msg(batch_norm(
        x.view(),
        Stats::Batch(Some(running)),
        Affine::default(),
        1e-5,
        false
    ))
    .contains("momentum"));
    let stats = Stats::Given {
        mean: short.view(),
        var: short.view(),
    };
    assert!(
        msg(batch_norm(x.view(), stats, Affine::default(), 1e-5, false)).contains("running_mean")
    );
    let flat = vector(&[1.0]).into_dyn();
    assert!(msg(batch_norm(
        flat.view(),
        Stats::Batch(None),
        Affine::default(),
        1e-5,
        false
    ))
    .contains("at least 2"));
    let g = filled(&[2, 3, 5], 1, 0.0);
    let m = vector(&[0.0; 3]);
    let err =
        batch_norm_backward(g.view(), x.view(), None, m.view(), m.view(), true, None).unwrap_err();
    assert!(err
        .to_string()
        .contains("grad_out has shape (2, 3, 5) but x has shape (2, 3, 4)"));
    assert!(relu_backward(g.view(), x.view()).is_err());
}
