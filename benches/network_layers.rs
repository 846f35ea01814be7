//! `cargo bench --bench network_layers`: every convolution and transposed
//! convolution layer of the network-shape suite (`benches/network_layers.json`,
//! written by `python -m ferroconv.networks > benches/network_layers.json`), forward
//! at batch 1 and 8 and the input and weight gradients at batch 8, in the
//! pure-Rust core. `python -m ferroconv bench --suite networks` compares the same
//! layers with PyTorch; this group times the core alone, e.g. to compare two
//! builds with criterion's baselines. Filter by network or layer name:
//! `cargo bench --bench network_layers -- "ResNet-18"`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferroconv::{
    conv_backward, conv_forward, conv_transpose_forward, ConvParams, Needs, TransposeParams,
};
use ndarray::Array5;
use serde_json::Value;
use std::hint::black_box;
use std::time::Duration;

fn filled(shape: [usize; 5]) -> Array5<f32> {
    let mut state = 0x2545F4914F6CDD1Du64;
    Array5::from_shape_fn(shape, |_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    })
}

/// A layer of the suite in the core's 5-D terms.
struct Layer {
    name: String,
    transposed: bool,
    /// `(C_in, *spatial)` as `[C, D, H, W]`.
    input: [usize; 4],
    weight: [usize; 5],
    stride: [usize; 3],
    dilation: [usize; 3],
    pad_lo: [usize; 3],
    pad_hi: [usize; 3],
    groups: usize,
}

fn ints(v: &Value) -> Vec<usize> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_u64())
                .map(|x| x as usize)
                .collect()
        })
        .unwrap_or_default()
}

/// `values` of a layer of `rank` axes as three axes (`fill` in front).
fn spatial(values: &[usize], fill: usize) -> [usize; 3] {
    let mut out = [fill; 3];
    out[3 - values.len()..].copy_from_slice(values);
    out
}

fn layers() -> Vec<Layer> {
    let text = include_str!("network_layers.json");
    let records: Vec<Value> =
        serde_json::from_str(text).expect("benches/network_layers.json parses");
    let mut out = Vec::new();
    for r in records {
        let op = r["op"].as_str().unwrap_or("");
        if op != "conv" && op != "conv_transpose" {
            continue;
        }
        let input = ints(&r["in_shape"]);
        let weight = ints(&r["weight_shape"]);
        let rank = input.len() - 1;
        let pads: Vec<Vec<usize>> = r["padding"]
            .as_array()
            .map(|a| a.iter().map(ints).collect())
            .unwrap_or_default();
        let lo: Vec<usize> = pads.iter().map(|p| p[0]).collect();
        let hi: Vec<usize> = pads.iter().map(|p| p[1]).collect();
        let s = spatial(&input[1..], 1);
        let k = spatial(&weight[2..], 1);
        let one = |v: &Value| spatial(&vec![v.as_u64().unwrap_or(1) as usize; rank], 1);
        out.push(Layer {
            name: format!(
                "{}: {}",
                r["network"].as_str().unwrap_or(""),
                r["name"].as_str().unwrap_or("")
            ),
            transposed: op == "conv_transpose",
            input: [input[0], s[0], s[1], s[2]],
            weight: [weight[0], weight[1], k[0], k[1], k[2]],
            stride: one(&r["stride"]),
            dilation: one(&r["dilation"]),
            pad_lo: spatial(&lo, 0),
            pad_hi: spatial(&hi, 0),
            groups: r["groups"].as_u64().unwrap_or(1) as usize,
        });
    }
    out
}

fn bench_layers(c: &mut Criterion) {
    let mut group = c.benchmark_group("network_layers_f32");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(1));
    for layer in layers() {
        let [ci, d, h, w] = layer.input;
        for n in [1, 8] {
            let x = filled([n, ci, d, h, w]);
            let weight = filled(layer.weight);
            let id = |pass: &str| BenchmarkId::new(format!("{pass}_n{n}"), &layer.name);
            if layer.transposed {
                let params = TransposeParams {
                    stride: layer.stride,
                    dilation: layer.dilation,
                    pad_lo: layer.pad_lo,
                    pad_hi: layer.pad_lo,
                    groups: layer.groups,
                    ..TransposeParams::new(2)
                };
                group.bench_function(id("forward"), |b| {
                    b.iter(|| {
                        conv_transpose_forward(black_box(x.view()), weight.view(), None, &params)
                    })
                });
                continue;
            }
            let params = ConvParams {
                stride: layer.stride,
                dilation: layer.dilation,
                pad_lo: layer.pad_lo,
                pad_hi: layer.pad_hi,
                groups: layer.groups,
                ..ConvParams::new(2)
            };
            let y = conv_forward(x.view(), weight.view(), None, &params).expect("a valid layer");
            let k = layer.weight[1] * layer.weight[2] * layer.weight[3] * layer.weight[4];
            group.throughput(Throughput::Elements(2 * (y.len() * k) as u64));
            group.bench_function(id("forward"), |b| {
                b.iter(|| conv_forward(black_box(x.view()), weight.view(), None, &params))
            });
            if n == 8 {
                for (pass, needs) in [
                    ("input_grad", (true, false)),
                    ("weight_grad", (false, true)),
                ] {
                    let needs = Needs {
                        input: needs.0,
                        weight: needs.1,
                        bias: false,
                    };
                    group.bench_function(id(pass), |b| {
                        b.iter(|| {
                            conv_backward(
                                black_box(y.view()),
                                x.view(),
                                weight.view(),
                                &params,
                                needs,
                            )
                        })
                    });
                }
            }
        }
    }
    group.finish();
}

criterion_group!(network_layers, bench_layers);
criterion_main!(network_layers);
