//! Core tests against a direct (seven nested loops) convolution written for clarity.

use super::*;
use crate::geometry::PaddingMode;
use ndarray::{Array, Array5};

/// Deterministic pseudo-random values in [-1, 1).
fn filled(shape: [usize; 5], seed: u64) -> Array5<f64> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    Array::from_shape_fn(shape, |_| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    })
}

/// The input index output coordinate `o` reads at kernel offset `k` along
/// `axis` (through the padding mode), if any.
fn source(p: &ConvParams, input: [usize; 3], axis: usize, o: usize, k: usize) -> Option<usize> {
    let i = (o * p.stride[axis] + k * p.dilation[axis]) as isize - p.pad_lo[axis] as isize;
    p.padding_mode.source_index(i, input[axis])
}

fn direct_conv(x: &Array5<f64>, w: &Array5<f64>, p: &ConvParams) -> Array5<f64> {
    let (n, c_in) = (x.shape()[0], x.shape()[1]);
    let input = [x.shape()[2], x.shape()[3], x.shape()[4]];
    let (c_out, cig) = (w.shape()[0], w.shape()[1]);
    let kernel = [w.shape()[2], w.shape()[3], w.shape()[4]];
    let out = p.output_dims(input, kernel).unwrap();
    let cog = c_out / p.groups;
    assert_eq!(cig * p.groups, c_in);
    let mut y = Array5::zeros([n, c_out, out[0], out[1], out[2]]);
    for ((b, co, oz, oy, ox), v) in y.indexed_iter_mut() {
        let g = co / cog;
        let mut acc = 0.0;
        for ci in 0..cig {
            for kz in 0..kernel[0] {
                for ky in 0..kernel[1] {
                    for kx in 0..kernel[2] {
                        let (iz, iy, ix) = (
                            source(p, input, 0, oz, kz),
                            source(p, input, 1, oy, ky),
                            source(p, input, 2, ox, kx),
                        );
                        if let (Some(iz), Some(iy), Some(ix)) = (iz, iy, ix) {
                            acc += x[[b, g * cig + ci, iz, iy, ix]] * w[[co, ci, kz, ky, kx]];
                        }
                    }
                }
            }
        }
        *v = acc;
    }
    y
}

fn cases() -> Vec<([usize; 5], [usize; 5], ConvParams)> {
    let mut out = Vec::new();
    for mode in [
        PaddingMode::Zeros,
        PaddingMode::Reflect,
        PaddingMode::Replicate,
        PaddingMode::Circular,
    ] {
        out.push((
            [2, 4, 1, 7, 6],
            [6, 2, 1, 3, 2],
            ConvParams {
                rank: 2,
                stride: [1, 2, 1],
                dilation: [1, 1, 2],
                pad_lo: [0, 2, 1],
                pad_hi: [0, 1, 2],
                groups: 2,
                padding_mode: mode,
            },
        ));
    }
    out.push((
        [1, 3, 5, 4, 6],
        [2, 3, 2, 3, 3],
        ConvParams {
            rank: 3,
            stride: [2, 1, 3],
            pad_lo: [1, 1, 0],
            pad_hi: [1, 0, 2],
            ..ConvParams::new(3)
        },
    ));
    out.push((
        [3, 2, 1, 1, 40],
        [2, 2, 1, 1, 5],
        ConvParams {
            rank: 1,
            dilation: [1, 1, 3],
            ..ConvParams::new(1)
        },
    ));
    // Stride 1 with zero padding within the kernel extent: backward-input runs as
    // the forward convolution of grad_out with flipped filters.
    out.push((
        [2, 3, 1, 6, 7],
        [4, 3, 1, 3, 2],
        ConvParams {
            rank: 2,
            dilation: [1, 1, 2],
            pad_lo: [0, 2, 0],
            pad_hi: [0, 1, 2],
            ..ConvParams::new(2)
        },
    ));
    // One output channel from several input channels: the direct passes too.
    out.push((
        [2, 3, 1, 7, 9],
        [1, 3, 1, 2, 3],
        ConvParams {
            rank: 2,
            stride: [1, 2, 1],
            pad_lo: [0, 1, 1],
            pad_hi: [0, 1, 0],
            padding_mode: PaddingMode::Reflect,
            ..ConvParams::new(2)
        },
    ));
    // Zero-padded strided (and dilated) 2-D and 3-D layers: the implicit GEMM
    // forward, whose phase planes split rows and columns by the stride.
    out.push((
        [2, 4, 1, 9, 11],
        [6, 2, 1, 3, 3],
        ConvParams {
            rank: 2,
            stride: [1, 2, 2],
            pad_lo: [0, 1, 1],
            pad_hi: [0, 1, 1],
            groups: 2,
            ..ConvParams::new(2)
        },
    ));
    out.push((
        [1, 2, 5, 8, 9],
        [3, 2, 2, 3, 3],
        ConvParams {
            rank: 3,
            stride: [2, 2, 2],
            dilation: [1, 2, 1],
            pad_lo: [1, 2, 1],
            pad_hi: [0, 1, 1],
            ..ConvParams::new(3)
        },
    ));
    // Phase columns with no input cell in them (one input column, padding 2,
    // stride 3): their plane rows are all zeros.
    out.push((
        [1, 2, 1, 3, 1],
        [4, 2, 1, 1, 3],
        ConvParams {
            rank: 2,
            stride: [1, 1, 3],
            pad_lo: [0, 0, 2],
            pad_hi: [0, 0, 2],
            ..ConvParams::new(2)
        },
    ));
    // Strided 2-D layers with 16 input channels per group: the sub-pixel input
    // gradient (phases with one, two and four taps; a dilated one whose taps
    // share a phase; a 1-D one).
    out.push((
        [2, 32, 1, 9, 10],
        [6, 16, 1, 3, 3],
        ConvParams {
            rank: 2,
            stride: [1, 2, 2],
            pad_lo: [0, 1, 1],
            pad_hi: [0, 1, 1],
            groups: 2,
            ..ConvParams::new(2)
        },
    ));
    out.push((
        [1, 16, 1, 11, 9],
        [5, 16, 1, 3, 2],
        ConvParams {
            rank: 2,
            stride: [1, 3, 2],
            dilation: [1, 2, 2],
            pad_lo: [0, 2, 0],
            pad_hi: [0, 2, 0],
            ..ConvParams::new(2)
        },
    ));
    out.push((
        [2, 16, 1, 1, 23],
        [4, 16, 1, 1, 4],
        ConvParams {
            rank: 1,
            stride: [1, 1, 3],
            pad_lo: [0, 0, 1],
            pad_hi: [0, 0, 1],
            ..ConvParams::new(1)
        },
    ));
    // Zero-padded layers whose column matrix copies each input cell >= 4 times:
    // the weight gradient on phase planes (stride 1 in 2-D and dilated 3-D, a 5x5
    // stride-2 layer, groups).
    out.push((
        [2, 6, 1, 7, 8],
        [6, 3, 1, 3, 3],
        ConvParams {
            rank: 2,
            pad_lo: [0, 1, 1],
            pad_hi: [0, 1, 1],
            groups: 2,
            ..ConvParams::new(2)
        },
    ));
    out.push((
        [1, 2, 4, 5, 9],
        [3, 2, 3, 3, 2],
        ConvParams {
            rank: 3,
            dilation: [1, 1, 2],
            pad_lo: [1, 1, 1],
            pad_hi: [1, 1, 1],
            ..ConvParams::new(3)
        },
    ));
    out.push((
        [2, 3, 1, 15, 14],
        [4, 3, 1, 5, 5],
        ConvParams {
            rank: 2,
            stride: [1, 2, 2],
            pad_lo: [0, 2, 2],
            pad_hi: [0, 2, 2],
            ..ConvParams::new(2)
        },
    ));
    // Depthwise (one input channel per group): the direct passes.
    for (mode, multiplier) in [
        (PaddingMode::Zeros, 1),
        (PaddingMode::Reflect, 2),
        (PaddingMode::Circular, 1),
    ] {
        out.push((
            [2, 3, 1, 9, 8],
            [3 * multiplier, 1, 1, 3, 3],
            ConvParams {
                rank: 2,
                stride: [1, 2, 1],
                pad_lo: [0, 1, 2],
                pad_hi: [0, 2, 1],
                groups: 3,
                padding_mode: mode,
                ..ConvParams::new(2)
            },
        ));
    }
    out
}

#[test]
fn forward_matches_direct_convolution() {
    for (xs, ws, p) in cases() {
        let (x, w) = (filled(xs, 1), filled(ws, 2));
        let got = conv_forward(x.view(), w.view(), None, &p).unwrap();
        let want = direct_conv(&x, &w, &p);
        assert_eq!(got.shape(), want.shape());
        let err = (&got - &want).mapv(f64::abs).fold(0.0f64, |a, &b| a.max(b));
        assert!(err < 1e-12, "{p:?}: max error {err}");
    }
}

#[test]
fn backward_is_adjoint_of_forward() {
    for (xs, ws, p) in cases() {
        let (x, w) = (filled(xs, 3), filled(ws, 4));
        let y = conv_forward(x.view(), w.view(), None, &p).unwrap();
        let g = filled(y.shape().try_into().unwrap(), 5);
        let grads = conv_backward(g.view(), x.view(), w.view(), &p, Needs::ALL).unwrap();
        let lhs = (&y * &g).sum();
        let via_x = (&x * grads.input.as_ref().unwrap()).sum();
        let via_w = (&w * grads.weight.as_ref().unwrap()).sum();
        assert!(
            (lhs - via_x).abs() < 1e-10 * (1.0 + lhs.abs()),
            "{p:?}: {lhs} vs {via_x}"
        );
        assert!(
            (lhs - via_w).abs() < 1e-10 * (1.0 + lhs.abs()),
            "{p:?}: {lhs} vs {via_w}"
        );
        let gb = grads.bias.unwrap();
        for c in 0..g.shape()[1] {
            let want: f64 = g.index_axis(ndarray::Axis(1), c).sum();
            assert!((gb[c] - want).abs() < 1e-12);
        }
    }
}

#[test]
fn transpose_forward_is_conv_backward_input() {
    for (xs, ws, p) in cases()
        .into_iter()
        .filter(|c| c.2.padding_mode == PaddingMode::Zeros)
    {
        if p.pad_lo != p.pad_hi {
            continue;
        }
        let (x, w) = (filled(xs, 6), filled(ws, 7));
        let y = conv_forward(x.view(), w.view(), None, &p).unwrap();
        let g = filled(y.shape().try_into().unwrap(), 8);
        let grad_x = conv_backward(g.view(), x.view(), w.view(), &p, Needs::ALL)
            .unwrap()
            .input
            .unwrap();
        let input = [xs[2], xs[3], xs[4]];
        let kernel = [ws[2], ws[3], ws[4]];
        let out = p.output_dims(input, kernel).unwrap();
        // output_padding recovers the input size the strided conv rounded away.
        let mut output_padding = [0; 3];
        for a in 0..3 {
            output_padding[a] = input[a] + 2 * p.pad_lo[a]
                - ((out[a] - 1) * p.stride[a] + p.dilation[a] * (kernel[a] - 1) + 1);
        }
        let tp = TransposeParams {
            rank: p.rank,
            stride: p.stride,
            dilation: p.dilation,
            pad_lo: p.pad_lo,
            pad_hi: p.pad_lo,
            output_padding,
            groups: p.groups,
        };
        let t = conv_transpose_forward(g.view(), w.view(), None, &tp).unwrap();
        assert_eq!(t, grad_x);
    }
}

#[test]
fn bad_shapes_are_errors() {
    let x = filled([1, 4, 1, 5, 5], 0);
    let w = filled([2, 3, 1, 3, 3], 0);
    let err = conv_forward(x.view(), w.view(), None, &ConvParams::new(2)).unwrap_err();
    assert!(
        err.to_string()
            .contains("weight has 3 input channels per group but x has 4 channels"),
        "{err}"
    );
    let w = filled([2, 4, 1, 3, 3], 0);
    let bias = ndarray::Array1::<f64>::zeros(3);
    let err = conv_forward(x.view(), w.view(), Some(bias.view()), &ConvParams::new(2)).unwrap_err();
    assert!(err.to_string().contains("bias"), "{err}");
    let g = filled([1, 2, 1, 4, 4], 0);
    let err = conv_backward(
        g.view(),
        x.view(),
        w.view(),
        &ConvParams::new(2),
        Needs::ALL,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("grad_out has shape (1, 2, 4, 4)"),
        "{err}"
    );
}

#[test]
fn results_are_identical_for_one_and_two_threads() {
    let x = filled([3, 8, 1, 40, 40], 9).mapv(|v| v as f32);
    let w = filled([8, 8, 1, 3, 3], 10).mapv(|v| v as f32);
    let p = ConvParams {
        rank: 2,
        pad_lo: [0, 1, 1],
        pad_hi: [0, 1, 1],
        ..ConvParams::new(2)
    };
    let run = |threads| {
        crate::threads::set_num_threads(threads).unwrap();
        let y = conv_forward(x.view(), w.view(), None, &p).unwrap();
        let g = y.mapv(|v| v.sin());
        let grads = conv_backward(g.view(), x.view(), w.view(), &p, Needs::ALL).unwrap();
        (
            y,
            grads.input.unwrap(),
            grads.weight.unwrap(),
            grads.bias.unwrap(),
        )
    };
    let one = run(1);
    let two = run(2);
    assert_eq!(one.0, two.0);
    assert_eq!(one.1, two.1);
    assert_eq!(one.2, two.2);
    assert_eq!(one.3, two.3);
}

#[test]
fn winograd_3x3_matches_direct_convolution_in_f64_and_within_1e4_in_f32() {
    // 3x3 stride 1 with >= 16 channels per group takes the Winograd path; ragged
    // output sizes exercise the cropped border tiles, and every padding mode the
    // mapped patches; 150 columns make runs of 38 tiles (several vectors of lanes).
    for (mode, groups, pad, width) in [
        (PaddingMode::Zeros, 1, 1, 10),
        (PaddingMode::Reflect, 2, 1, 10),
        (PaddingMode::Circular, 1, 2, 10),
        (PaddingMode::Zeros, 1, 0, 10),
        (PaddingMode::Zeros, 1, 1, 150),
        (PaddingMode::Reflect, 1, 1, 150),
    ] {
        let p = ConvParams {
            rank: 2,
            pad_lo: [0, pad, pad],
            pad_hi: [0, pad, 1],
            groups,
            padding_mode: mode,
            ..ConvParams::new(2)
        };
        let height = if width > 100 { 5 } else { 13 };
        // Six images: enough tiles for the plan to pay for Winograd's filter
        // transform (checked, so the test cannot drift onto another algorithm).
        let x = filled([6, 16 * groups, 1, height, width], 11);
        let w = filled([17 * groups, 16, 1, 3, 3], 12);
        let geo = ConvGeometry::for_conv(shape5(&x.view()), shape5(&w.view()), &p).unwrap();
        assert!(
            matches!(
                super::plan::forward::<f64>(&geo),
                super::plan::Forward::Winograd(_)
            ),
            "{mode:?} {width}: not planned as Winograd: {:?} {:?}",
            super::plan::forward::<f64>(&geo),
            geo.output
        );
        let want = direct_conv(&x, &w, &p);
        let got = conv_forward(x.view(), w.view(), None, &p).unwrap();
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let err64 = (&got - &want).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(
            err64 < 1e-12 * scale,
            "{mode:?}: f64 error {err64} of {scale}"
        );
        let got32 = conv_forward(
            x.mapv(|v| v as f32).view(),
            w.mapv(|v| v as f32).view(),
            None,
            &p,
        )
        .unwrap();
        let err32 = got32
            .iter()
            .zip(&want)
            .fold(0.0f64, |m, (&a, &b)| m.max((a as f64 - b).abs()));
        assert!(
            err32 < 1e-4 * scale,
            "{mode:?}: f32 relative error {}",
            err32 / scale
        );
    }
}

#[test]
fn huge_dilation_in_2d_strided_layers_reads_only_the_centre_tap() {
    // As below in 2-D with stride 2 and 16 input channels (the implicit GEMM and
    // sub-pixel paths must not size their buffers by the dilated reach).
    let dilation = 1usize << 62;
    let x = filled([1, 16, 1, 5, 6], 5);
    let w = filled([4, 16, 1, 3, 3], 6);
    let p = ConvParams {
        rank: 2,
        stride: [1, 2, 2],
        dilation: [1, dilation, dilation],
        pad_lo: [0, dilation, dilation],
        pad_hi: [0, dilation, dilation],
        ..ConvParams::new(2)
    };
    let y = conv_forward(x.view(), w.view(), None, &p).unwrap();
    assert_eq!(y.shape(), &[1, 4, 1, 3, 3]);
    for ((_, co, _, i, j), &v) in y.indexed_iter() {
        let want: f64 = (0..16)
            .map(|ci| w[[co, ci, 0, 1, 1]] * x[[0, ci, 0, 2 * i, 2 * j]])
            .sum();
        assert!((v - want).abs() < 1e-12, "{v} vs {want}");
    }
    let g = filled([1, 4, 1, 3, 3], 7);
    let grads = conv_backward(g.view(), x.view(), w.view(), &p, Needs::ALL).unwrap();
    let grad_x = grads.input.unwrap();
    for ((_, ci, _, i, j), &v) in grad_x.indexed_iter() {
        let want: f64 = if i % 2 == 0 && j % 2 == 0 {
            (0..4)
                .map(|co| w[[co, ci, 0, 1, 1]] * g[[0, co, 0, i / 2, j / 2]])
                .sum()
        } else {
            0.0
        };
        assert!((v - want).abs() < 1e-12, "{v} vs {want}");
    }
}

#[test]
fn huge_dilation_with_same_padding_reads_only_the_centre_tap() {
    // 'same' padding of a kernel dilated by 2^62: only the centre tap lands in the
    // input. The row kernels would pad rows to 2^63 columns; the direct passes
    // take such layers (found by the fuzz test: it used to panic allocating).
    let dilation = 1usize << 62;
    for c_in in [0usize, 2] {
        let x = filled([2, c_in, 1, 1, 7], 3);
        let w = filled([4, c_in / 2, 1, 1, 3], 4);
        let p = ConvParams {
            rank: 1,
            dilation: [1, 1, dilation],
            pad_lo: [0, 0, dilation],
            pad_hi: [0, 0, dilation],
            groups: 2,
            ..ConvParams::new(1)
        };
        let y = conv_forward(x.view(), w.view(), None, &p).unwrap();
        assert_eq!(y.shape(), &[2, 4, 1, 1, 7]);
        for ((n, co, _, _, j), &v) in y.indexed_iter() {
            let g = co / 2;
            let want: f64 = (0..c_in / 2)
                .map(|ci| w[[co, ci, 0, 0, 1]] * x[[n, g * (c_in / 2) + ci, 0, 0, j]])
                .sum();
            assert!((v - want).abs() < 1e-12, "{v} vs {want}");
        }
    }
}

#[test]
fn empty_batch_with_huge_spatial_size_builds_no_plan() {
    // No image, but 2^31 input rows: nothing may be sized by the rows (the row
    // kernels' plan used to allocate per output row and abort; found by fuzzing).
    let x = Array5::<f64>::zeros([0, 6, 6, 1 << 31, 2]);
    let w = filled([3, 2, 1, 4, 2], 9);
    let p = ConvParams {
        rank: 3,
        stride: [2, 3, 1],
        dilation: [3, 1, 3],
        pad_lo: [3, 2, 2],
        pad_hi: [3, 2, 2],
        groups: 3,
        ..ConvParams::new(3)
    };
    let y = conv_forward(x.view(), w.view(), None, &p).unwrap();
    assert_eq!(y.len(), 0);
    let grads = conv_backward(y.view(), x.view(), w.view(), &p, Needs::ALL).unwrap();
    assert_eq!(grads.input.unwrap().len(), 0);
    assert!(grads.weight.unwrap().iter().all(|&v| v == 0.0));
    assert!(grads.bias.unwrap().iter().all(|&v| v == 0.0));
}

#[test]
fn no_input_channels_and_a_huge_kernel_give_the_bias() {
    // 2^40 taps over no input channels (a broadcast weight): the output is the
    // bias, found without walking the taps (it used to hang; found by fuzzing).
    let x = Array5::<f32>::zeros([2, 0, 8, 1, 1]);
    let w = Array5::<f32>::zeros([1, 0, 1 << 40, 4, 1]);
    let bias = ndarray::Array1::from_vec(vec![1.5f32]);
    let p = ConvParams {
        rank: 3,
        dilation: [2, 1, 3],
        pad_lo: [(1 << 40) - 1, 1, 0],
        pad_hi: [(1 << 40) - 1, 2, 0],
        ..ConvParams::new(3)
    };
    let y = conv_forward(x.view(), w.view(), Some(bias.view()), &p).unwrap();
    assert_eq!(y.shape(), &[2, 1, 8, 1, 1]);
    assert!(y.iter().all(|&v| v == 1.5));
    let grads = conv_backward(y.view(), x.view(), w.view(), &p, Needs::ALL).unwrap();
    assert_eq!(grads.input.unwrap().len(), 0);
    assert_eq!(grads.bias.unwrap()[0], 24.0);
}

#[test]
fn padding_far_wider_than_the_input_matches_direct_convolution() {
    // Output runs lying wholly in the left padding of a tap (padding 4096 around
    // 7 inputs, dilation 3): the gather used to index before the input row
    // (found by fuzzing). Forward and both gradients against the reference.
    let (xs, ws) = ([1, 1, 1, 1, 7], [3, 1, 1, 1, 3]);
    let p = ConvParams {
        rank: 1,
        dilation: [1, 1, 3],
        pad_lo: [0, 0, 4096],
        pad_hi: [0, 0, 4096],
        ..ConvParams::new(1)
    };
    let (x, w) = (filled(xs, 10), filled(ws, 11));
    let y = conv_forward(x.view(), w.view(), None, &p).unwrap();
    let want = direct_conv(&x, &w, &p);
    assert_eq!(y.shape(), want.shape());
    for (a, b) in y.iter().zip(want.iter()) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    let g = filled(y.shape().try_into().unwrap(), 12);
    let grads = conv_backward(g.view(), x.view(), w.view(), &p, Needs::ALL).unwrap();
    // Adjointness: <conv(x), g> == <x, grad_x> and == <w, grad_w>.
    let lhs: f64 = y.iter().zip(g.iter()).map(|(a, b)| a * b).sum();
    let gx: f64 = x
        .iter()
        .zip(grads.input.unwrap().iter())
        .map(|(a, b)| a * b)
        .sum();
    let gw: f64 = w
        .iter()
        .zip(grads.weight.unwrap().iter())
        .map(|(a, b)| a * b)
        .sum();
    assert!((lhs - gx).abs() < 1e-9 * (1.0 + lhs.abs()), "{lhs} vs {gx}");
    assert!((lhs - gw).abs() < 1e-9 * (1.0 + lhs.abs()), "{lhs} vs {gw}");
}

#[test]
fn huge_stride_input_gradient_visits_only_the_phases_taps_reach() {
    // A stride of 2^40 with 16 input channels takes the sub-pixel input gradient,
    // which used to walk all 2^40 phases (a hang). Each input cell then gets at
    // most the centre tap of the one window: compare with the adjoint identity.
    let stride = 1usize << 40;
    let (xs, ws) = ([1, 16, 1, 5, 5], [4, 16, 1, 3, 3]);
    let p = ConvParams {
        rank: 2,
        stride: [1, stride, stride],
        pad_lo: [0, 1, 1],
        pad_hi: [0, 1, 1],
        ..ConvParams::new(2)
    };
    let (x, w) = (filled(xs, 13), filled(ws, 14));
    let y = conv_forward(x.view(), w.view(), None, &p).unwrap();
    let want = direct_conv(&x, &w, &p);
    assert_eq!(y.shape(), want.shape());
    assert!(y.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-12));
    let g = filled(y.shape().try_into().unwrap(), 15);
    let grads = conv_backward(g.view(), x.view(), w.view(), &p, Needs::ALL).unwrap();
    let grad_x = grads.input.unwrap();
    for ((_, ci, _, i, j), &v) in grad_x.indexed_iter() {
        // Output (0, 0) reads input (i, j) through tap (i + 1, j + 1).
        let want: f64 = if i < 2 && j < 2 {
            (0..4)
                .map(|co| w[[co, ci, 0, i + 1, j + 1]] * g[[0, co, 0, 0, 0]])
                .sum()
        } else {
            0.0
        };
        assert!((v - want).abs() < 1e-12, "({ci}, {i}, {j}): {v} vs {want}");
    }
}

/// Every forward algorithm (the shapes of `cases()` and a Winograd layer) with
/// each epilogue equals the unfused composition `act(conv + bias + residual)`,
/// bit for bit for the piecewise-linear activations, and the output may be the
/// residual itself.
#[test]
fn fused_epilogues_equal_the_unfused_composition() {
    let mut shapes = cases();
    shapes.push((
        [2, 16, 1, 17, 16],
        [16, 16, 1, 3, 3],
        ConvParams {
            pad_lo: [0, 1, 1],
            pad_hi: [0, 1, 1],
            ..ConvParams::new(2)
        },
    ));
    shapes.push(([1, 0, 1, 3, 3], [4, 0, 1, 2, 2], ConvParams::new(2)));
    shapes.push((
        [2, 6, 1, 9, 20],
        [6, 1, 1, 3, 3],
        ConvParams {
            pad_lo: [0, 1, 1],
            pad_hi: [0, 1, 1],
            groups: 6,
            ..ConvParams::new(2)
        },
    ));
    let activations = [
        Activation::Identity,
        Activation::Relu,
        Activation::Relu6,
        Activation::LeakyRelu(0.2),
        Activation::Sigmoid,
        Activation::Silu,
    ];
    let mut algorithms: Vec<String> = shapes
        .iter()
        .map(|(xs, ws, p)| {
            let report = explain_conv::<f64>(*xs, *ws, p, None).unwrap();
            report.passes[0].algorithm.clone()
        })
        .collect();
    algorithms.sort();
    algorithms.dedup();
    for algorithm in [
        "bias_only",
        "depthwise_rows",
        "direct",
        "im2col_gemm",
        "implicit_gemm",
        "winograd",
    ] {
        assert!(algorithms.iter().any(|a| a == algorithm), "{algorithms:?}");
    }
    for (i, (xs, ws, p)) in shapes.iter().enumerate() {
        let x = filled(*xs, 3 * i as u64).mapv(|v| v * 4.0);
        let w = filled(*ws, 3 * i as u64 + 1);
        let bias = filled([1, 1, 1, 1, ws[0]], 7)
            .into_shape_with_order(ws[0])
            .unwrap();
        let plain = conv_forward(x.view(), w.view(), Some(bias.view()), p).unwrap();
        let residual = filled(plain.dim().into(), 3 * i as u64 + 2).mapv(|v| v * 3.0);
        for &activation in &activations {
            let expected = (&plain + &residual).mapv(|v| match activation {
                Activation::Identity => v,
                Activation::Relu => v.max(0.0),
                Activation::Relu6 => v.clamp(0.0, 6.0),
                Activation::LeakyRelu(s) => {
                    if v < 0.0 {
                        v * s
                    } else {
                        v
                    }
                }
                Activation::Sigmoid => 1.0 / (1.0 + (-v).exp()),
                Activation::Silu => v / (1.0 + (-v).exp()),
            });
            let fused = Fused {
                precision: None,
                activation,
                residual: ResidualArg::Array(residual.view()),
            };
            let got = conv_forward_fused(x.view(), w.view(), Some(bias.view()), p, &fused, None)
                .unwrap()
                .unwrap();
            let mut out = residual.clone();
            let in_place = Fused {
                residual: ResidualArg::Out,
                ..fused.clone()
            };
            let none = conv_forward_fused(
                x.view(),
                w.view(),
                Some(bias.view()),
                p,
                &in_place,
                Some(out.view_mut()),
            )
            .unwrap();
            assert!(none.is_none());
            for ((&e, &g), &o) in expected.iter().zip(&got).zip(&out) {
                let close = |v: f64| (v - e).abs() <= 1e-15 * e.abs().max(1.0);
                assert!(close(g) && close(o), "case {i} {activation:?}: {e} {g} {o}");
            }
            if matches!(activation, Activation::Identity | Activation::Relu) {
                assert_eq!(got, expected, "case {i} {activation:?}");
                assert_eq!(out, expected, "case {i} {activation:?}");
            }
        }
    }
}

#[test]
fn highest_precision_never_plans_winograd() {
    let p = ConvParams {
        pad_lo: [0, 1, 1],
        pad_hi: [0, 1, 1],
        ..ConvParams::new(2)
    };
    let (x, w) = ([4, 64, 1, 28, 28], [64, 64, 1, 3, 3]);
    let report = |precision| explain_conv::<f32>(x, w, &p, precision).unwrap();
    let default = report(Some(Precision::Default));
    assert_eq!(default.passes[0].algorithm, "winograd");
    let highest = report(Some(Precision::Highest));
    for pass in &highest.passes {
        assert!(!pass.algorithm.contains("winograd"), "{}", pass.algorithm);
        assert!(pass
            .alternatives
            .iter()
            .all(|(name, _)| !name.contains("winograd")));
    }
    assert_eq!(highest.precision, Some("highest"));
}

/// `grad_W[co, ci, k] = sum over images and output positions of
/// grad_out[n, co, o] * x[n, g * cig + ci, o * stride + k * dilation - pad]`,
/// written as plainly as [`direct_conv`].
fn direct_weight_grad(
    x: &Array5<f64>,
    g: &Array5<f64>,
    w_shape: [usize; 5],
    p: &ConvParams,
) -> Array5<f64> {
    let input = [x.shape()[2], x.shape()[3], x.shape()[4]];
    let cig = w_shape[1];
    let cog = w_shape[0] / p.groups;
    let mut gw = Array5::zeros(w_shape);
    for ((co, ci, kz, ky, kx), v) in gw.indexed_iter_mut() {
        let group = co / cog;
        let mut acc = 0.0;
        for ((b, c, oz, oy, ox), &gv) in g.indexed_iter() {
            if c != co {
                continue;
            }
            let (iz, iy, ix) = (
                source(p, input, 0, oz, kz),
                source(p, input, 1, oy, ky),
                source(p, input, 2, ox, kx),
            );
            if let (Some(iz), Some(iy), Some(ix)) = (iz, iy, ix) {
                acc += gv * x[[b, group * cig + ci, iz, iy, ix]];
            }
        }
        *v = acc;
    }
    gw
}

#[test]
fn weight_gradient_of_small_planes_sums_images_side_by_side_correctly() {
    // Planes far smaller than a weight-gradient tile: the plan puts several
    // images' positions side by side (5 images of 4x4; 7 images of 7x7 in
    // groups of 4 and 3), with stride, padding and groups.
    let cases = [
        ([5, 4, 1, 4, 4], [6, 4, 1, 3, 3], 1, 1),
        ([7, 6, 1, 7, 7], [10, 3, 1, 3, 3], 1, 2),
        ([3, 4, 1, 8, 8], [4, 4, 1, 3, 3], 2, 1),
    ];
    for (xs, ws, stride, groups) in cases {
        let p = ConvParams {
            stride: [1, stride, stride],
            pad_lo: [0, 1, 1],
            pad_hi: [0, 1, 1],
            groups,
            ..ConvParams::new(2)
        };
        let report = explain_conv::<f64>(xs, ws, &p, None).unwrap();
        assert_eq!(report.passes[2].algorithm, "im2col_gemm", "{xs:?}");
        let (x, w) = (filled(xs, 11), filled(ws, 12));
        let y = conv_forward(x.view(), w.view(), None, &p).unwrap();
        let g = filled(y.shape().try_into().unwrap(), 13);
        let grads = conv_backward(g.view(), x.view(), w.view(), &p, Needs::ALL).unwrap();
        let want = direct_weight_grad(&x, &g, ws, &p);
        let got = grads.weight.unwrap();
        for (a, b) in got.iter().zip(&want) {
            assert!(
                (a - b).abs() < 1e-12 * (1.0 + b.abs()),
                "{xs:?}: {a} vs {b}"
            );
        }
    }
}

/// `grad_x[b, ci, i] = sum over output channels, positions and taps that read
/// input cell `i` (through any padding mode) of grad_out * w`, written as plainly
/// as [`direct_conv`].
fn direct_input_grad(
    g: &Array5<f64>,
    w: &Array5<f64>,
    x_shape: [usize; 5],
    p: &ConvParams,
) -> Array5<f64> {
    let input = [x_shape[2], x_shape[3], x_shape[4]];
    let (cig, kernel) = (w.shape()[1], [w.shape()[2], w.shape()[3], w.shape()[4]]);
    let cog = w.shape()[0] / p.groups;
    let mut gx = Array5::zeros(x_shape);
    for ((b, co, oz, oy, ox), &gv) in g.indexed_iter() {
        let group = co / cog;
        for kz in 0..kernel[0] {
            let Some(iz) = source(p, input, 0, oz, kz) else {
                continue;
            };
            for ky in 0..kernel[1] {
                let Some(iy) = source(p, input, 1, oy, ky) else {
                    continue;
                };
                for kx in 0..kernel[2] {
                    let Some(ix) = source(p, input, 2, ox, kx) else {
                        continue;
                    };
                    for ci in 0..cig {
                        gx[[b, group * cig + ci, iz, iy, ix]] += gv * w[[co, ci, kz, ky, kx]];
                    }
                }
            }
        }
    }
    gx
}

#[test]
fn small_planes_share_column_tiles_among_images_exactly() {
    // Planes far smaller than a column tile, filters of a few thousand elements
    // (the unit tests' threshold for sharing): the forward and the col2im input
    // gradient put several images side by side in one GEMM (13 images in blocks
    // of 7 and 6; 7 in blocks of 4 and 3), with strides, dilation, groups,
    // padding modes and a 1x1 layer (not read in place when images share a tile).
    let pad = |lo: [usize; 3], hi: [usize; 3]| ConvParams {
        pad_lo: lo,
        pad_hi: hi,
        ..ConvParams::new(2)
    };
    let cases = [
        (
            [13, 304, 1, 2, 2],
            [16, 304, 1, 3, 3],
            pad([0, 1, 1], [0, 1, 1]),
        ),
        (
            [13, 304, 1, 4, 4],
            [24, 304, 1, 3, 3],
            ConvParams {
                stride: [1, 2, 2],
                ..pad([0, 1, 1], [0, 1, 1])
            },
        ),
        (
            [7, 512, 1, 3, 3],
            [6, 256, 1, 3, 3],
            ConvParams {
                dilation: [1, 2, 2],
                groups: 2,
                padding_mode: PaddingMode::Reflect,
                ..pad([0, 2, 2], [0, 2, 2])
            },
        ),
        (
            [3, 3072, 1, 1, 20],
            [9, 1024, 1, 1, 4],
            ConvParams {
                rank: 1,
                stride: [1, 1, 3],
                groups: 3,
                padding_mode: PaddingMode::Circular,
                ..pad([0, 0, 2], [0, 0, 1])
            },
        ),
        ([6, 512, 1, 2, 2], [8, 512, 1, 1, 1], ConvParams::new(2)),
    ];
    // 13 images in blocks of 7 and 6 (one or two threads) or 5, 5 and 3 (three).
    let geo = ConvGeometry::for_conv(cases[0].0, cases[0].1, &cases[0].2).unwrap();
    let images = plan::tile_images(&geo);
    assert!(images > 1 && 13 % images != 0, "{images} images per tile");
    for (xs, ws, p) in cases {
        let geo = ConvGeometry::for_conv(xs, ws, &p).unwrap();
        assert!(plan::shares_tiles(&geo), "{xs:?}: one image per tile");
        let report = explain_conv::<f64>(xs, ws, &p, None).unwrap();
        assert_eq!(report.passes[0].algorithm, "im2col_gemm", "{xs:?}");
        assert!(
            ["col2im", "adjoint_im2col_gemm"].contains(&report.passes[1].algorithm.as_str()),
            "{xs:?}: {}",
            report.passes[1].algorithm
        );
        let (x, w) = (filled(xs, 21), filled(ws, 22));
        let y = conv_forward(x.view(), w.view(), None, &p).unwrap();
        let err = (&y - &direct_conv(&x, &w, &p))
            .mapv(f64::abs)
            .fold(0.0f64, |a, &b| a.max(b));
        assert!(err < 1e-10, "{xs:?}: forward error {err}");
        let g = filled(y.shape().try_into().unwrap(), 23);
        let input_only = Needs {
            input: true,
            weight: false,
            bias: false,
        };
        let grads = conv_backward(g.view(), x.view(), w.view(), &p, input_only).unwrap();
        let want = direct_input_grad(&g, &w, xs, &p);
        let err = (grads.input.unwrap() - &want)
            .mapv(f64::abs)
            .fold(0.0f64, |a, &b| a.max(b));
        assert!(err < 1e-10, "{xs:?}: input gradient error {err}");
        // float32: the same bits for one and two threads (which cut the images
        // and channels differently).
        let (x, w, g) = (
            x.mapv(|v| v as f32),
            w.mapv(|v| v as f32),
            g.mapv(|v| v as f32),
        );
        let run = |threads| {
            crate::threads::set_num_threads(threads).unwrap();
            let y = conv_forward(x.view(), w.view(), None, &p).unwrap();
            let grads = conv_backward(g.view(), x.view(), w.view(), &p, input_only).unwrap();
            (y, grads.input.unwrap())
        };
        assert!(run(1) == run(2), "{xs:?}: two threads differ from one");
    }
}
