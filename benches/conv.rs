//! `cargo bench`: the convolution passes of the pure-Rust core on the workloads of
//! the performance issue (see benches/bench.py for the comparison with NumPy/PyTorch).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferroconv::{
    conv_backward, conv_forward, conv_transpose_forward, ConvParams, Needs, TransposeParams,
};
use ndarray::Array5;
use std::hint::black_box;

fn filled<T: ferroconv::Element>(shape: [usize; 5]) -> Array5<T> {
    let mut state = 0x2545F4914F6CDD1Du64;
    Array5::from_shape_fn(shape, |_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        T::from((state >> 40) as f64 / (1u64 << 24) as f64 - 0.5).unwrap_or_else(T::zero)
    })
}

struct Workload {
    name: &'static str,
    x: [usize; 5],
    w: [usize; 5],
    params: ConvParams,
}

fn workloads() -> Vec<Workload> {
    let p2 = |stride: usize, pad: usize, groups: usize| ConvParams {
        stride: [1, stride, stride],
        pad_lo: [0, pad, pad],
        pad_hi: [0, pad, pad],
        groups,
        ..ConvParams::new(2)
    };
    vec![
        Workload {
            name: "conv2d_3x3_64_56_n8",
            x: [8, 64, 1, 56, 56],
            w: [64, 64, 1, 3, 3],
            params: p2(1, 1, 1),
        },
        Workload {
            name: "conv2d_1x1_256to64_56_n8",
            x: [8, 256, 1, 56, 56],
            w: [64, 256, 1, 1, 1],
            params: p2(1, 0, 1),
        },
        Workload {
            name: "conv2d_lenet_5x5_n64",
            x: [64, 1, 1, 28, 28],
            w: [6, 1, 1, 5, 5],
            params: p2(1, 0, 1),
        },
        Workload {
            name: "conv2d_depthwise_128_56_n8",
            x: [8, 128, 1, 56, 56],
            w: [128, 1, 1, 3, 3],
            params: p2(1, 1, 128),
        },
        Workload {
            name: "conv1d_k9_64_4096_n16",
            x: [16, 64, 1, 1, 4096],
            w: [64, 64, 1, 1, 9],
            params: ConvParams {
                pad_lo: [0, 0, 4],
                pad_hi: [0, 0, 4],
                ..ConvParams::new(1)
            },
        },
        Workload {
            name: "conv3d_3x3x3_16to32_16x32x32_n1",
            x: [1, 16, 16, 32, 32],
            w: [32, 16, 3, 3, 3],
            params: ConvParams {
                pad_lo: [1; 3],
                pad_hi: [1; 3],
                ..ConvParams::new(3)
            },
        },
    ]
}

fn bench_conv<T: ferroconv::Element>(c: &mut Criterion, dtype: &str) {
    let mut group = c.benchmark_group(format!("conv_{dtype}"));
    group.sample_size(10);
    for wl in workloads() {
        let (x, w) = (filled::<T>(wl.x), filled::<T>(wl.w));
        let y = conv_forward(x.view(), w.view(), None, &wl.params).expect("valid workload");
        let flops = 2 * y.len() as u64 * (wl.w[1] * wl.w[2] * wl.w[3] * wl.w[4]) as u64;
        group.throughput(Throughput::Elements(flops));
        group.bench_function(BenchmarkId::new("forward", wl.name), |b| {
            b.iter(|| conv_forward(black_box(x.view()), w.view(), None, &wl.params))
        });
        let only = |input, weight| Needs {
            input,
            weight,
            bias: false,
        };
        group.bench_function(BenchmarkId::new("backward_input", wl.name), |b| {
            b.iter(|| {
                conv_backward(
                    black_box(y.view()),
                    x.view(),
                    w.view(),
                    &wl.params,
                    only(true, false),
                )
            })
        });
        group.bench_function(BenchmarkId::new("backward_weight", wl.name), |b| {
            b.iter(|| {
                conv_backward(
                    black_box(y.view()),
                    x.view(),
                    w.view(),
                    &wl.params,
                    only(false, true),
                )
            })
        });
    }
    let tp = TransposeParams {
        stride: [1, 2, 2],
        pad_lo: [0, 1, 1],
        pad_hi: [0, 1, 1],
        ..TransposeParams::new(2)
    };
    let (x, w) = (
        filled::<T>([8, 64, 1, 28, 28]),
        filled::<T>([64, 32, 1, 4, 4]),
    );
    group.bench_function("conv_transpose2d_4x4_s2_64to32_28_n8", |b| {
        b.iter(|| conv_transpose_forward(black_box(x.view()), w.view(), None, &tp))
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_conv::<f32>(c, "f32");
    bench_conv::<f64>(c, "f64");
}

criterion_group!(conv, benches);
criterion_main!(conv);
