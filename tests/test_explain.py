"""explain_conv / explain_pool: the plan they report is the call's (same shapes,
same validation, same FLOPs), the documented rules pick the documented
algorithm for canonical layers, and the CLI prints it."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ferroconv as fc
from ferroconv.__main__ import main

CONV_ALGORITHMS = {"none", "bias_only", "depthwise_rows", "direct", "winograd", "implicit_gemm", "im2col_gemm"}
INPUT_ALGORITHMS = {"none", "direct", "depthwise_rows", "sub_pixel", "col2im"} | {f"adjoint_{a}" for a in CONV_ALGORITHMS}
WEIGHT_ALGORITHMS = {"none", "depthwise_rows", "direct", "phase_planes", "im2col_gemm"}
POOL_FORWARD = {"stride2_simd", "vector_runs_16", "vector_runs_8", "scalar"}
STRIDE2_SIMD = fc.get_simd() != "portable"


def chosen(plan: fc.Plan) -> dict[str, str]:
    return {p.name: p.algorithm for p in plan.passes}


@st.composite
def conv_layers(draw):
    rank = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cig, cog = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    padding = tuple(draw(st.integers(0, k)) for k in kernel)
    size = tuple(draw(st.integers(d * (k - 1) + 1, 24)) for k, d in zip(kernel, dilation))
    n = draw(st.integers(1, 3))
    mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "circular"]))
    if mode != "zeros":
        padding = tuple(min(p, s - 1) for p, s in zip(padding, size))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    return dict(x_shape=(n, cig * groups, *size), weight_shape=(cog * groups, cig, *kernel),
                stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=mode,
                dtype=dtype)


@settings(deadline=None, max_examples=60)
@given(conv_layers())
def test_conv_plan_reports_the_calls_shapes_flops_and_known_algorithms(layer):
    plan = fc.explain_conv(**layer)
    x = np.zeros(layer["x_shape"], layer["dtype"])
    w = np.zeros(layer["weight_shape"], layer["dtype"])
    kwargs = {k: layer[k] for k in ("stride", "padding", "dilation", "groups", "padding_mode")}
    out = getattr(fc, f"conv{len(layer['x_shape']) - 2}d")(x, w, **kwargs)
    assert plan.out_shape == out.shape
    assert plan.x_shape == tuple(layer["x_shape"]) and plan.weight_shape == tuple(layer["weight_shape"])
    useful_flops = 2 * out.size * int(np.prod(layer["weight_shape"][1:]))
    assert [p.name for p in plan.passes] == ["forward", "input_grad", "weight_grad"]
    assert all(p.flops == useful_flops for p in plan.passes)
    names = chosen(plan)
    assert names["forward"] in CONV_ALGORITHMS
    assert names["input_grad"] in INPUT_ALGORITHMS
    assert names["weight_grad"] in WEIGHT_ALGORITHMS
    for p in plan.passes:
        assert p.chosen.algorithm not in {a.algorithm for a in p.alternatives}
        for cost in (p.chosen, *p.alternatives):
            assert cost.ops >= 0 and cost.copied_bytes >= 0 and cost.workspace_bytes >= 0
            if cost.algorithm != "none":
                # an algorithm does at least the useful multiply-adds
                assert cost.ops >= useful_flops // 2 // 4 and cost.tasks >= 1
    assert plan.dtype == layer["dtype"]
    assert plan.simd == fc.get_simd()


@pytest.mark.parametrize("x_shape, weight_shape, kwargs, expected", [
    # 3x3 stride 1 with >= 16 channels per group: Winograd, and its stride-1 adjoint too
    ((8, 64, 56, 56), (64, 64, 3, 3), dict(padding=1),
     dict(forward="winograd", input_grad="adjoint_winograd")),
    # a 1x1 layer's column matrix is its input: the im2col GEMM reads it in place
    ((8, 256, 56, 56), (64, 256, 1, 1), {}, dict(forward="im2col_gemm")),
    # strided zero-padded layers: implicit GEMM forward, sub-pixel input gradient
    ((8, 64, 56, 56), (128, 64, 3, 3), dict(stride=2, padding=1),
     dict(forward="implicit_gemm", input_grad="sub_pixel")),
    # depthwise: the row kernels
    ((8, 128, 56, 56), (128, 1, 3, 3), dict(padding=1, groups=128),
     dict(forward="depthwise_rows", weight_grad="depthwise_rows")),
    # a padding mode other than zeros: only the column-matrix and direct paths read it
    ((2, 32, 20, 20), (32, 32, 3, 3), dict(padding=1, padding_mode="reflect", stride=2),
     dict(forward="im2col_gemm", input_grad="col2im", weight_grad="im2col_gemm")),
    # the 3-channel stem: col2im (too few input channels for the sub-pixel GEMM rows)
    ((4, 3, 224, 224), (64, 3, 7, 7), dict(stride=2, padding=3),
     dict(forward="implicit_gemm", input_grad="col2im")),
    # no input channels: the output is the bias
    ((2, 0, 8, 8), (4, 0, 3, 3), {}, dict(forward="bias_only", input_grad="none", weight_grad="none")),
])
def test_canonical_layers_take_the_documented_algorithms(x_shape, weight_shape, kwargs, expected):
    names = chosen(fc.explain_conv(x_shape, weight_shape, **kwargs))
    for name, algorithm in expected.items():
        assert names[name] == algorithm, (name, names)


def test_transposed_convolution_swaps_the_adjoint_passes():
    direct = fc.explain_conv((8, 64, 56, 56), (128, 64, 3, 3), stride=2, padding=1)
    transposed = fc.explain_conv((8, 128, 28, 28), (128, 64, 3, 3), stride=2, padding=1,
                                 output_padding=1, transposed=True)
    assert transposed.out_shape == (8, 64, 56, 56)
    assert transposed.pass_named("forward").algorithm == direct.pass_named("input_grad").algorithm
    assert transposed.pass_named("input_grad").algorithm == direct.pass_named("forward").algorithm
    y = fc.conv_transpose2d(np.zeros((8, 128, 28, 28), np.float32), np.zeros((128, 64, 3, 3), np.float32),
                            stride=2, padding=1, output_padding=1)
    assert y.shape == transposed.out_shape


def test_an_unbatched_shape_is_a_batch_of_one():
    assert fc.explain_conv((3, 32, 32), (6, 3, 5, 5)).out_shape == (1, 6, 28, 28)


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(x_shape=(1, 4, 8, 8), weight_shape=(2, 3, 3, 3)), "weight has 3 input channels per group but x has 4"),
    (dict(x_shape=(1, 3, 8, 8), weight_shape=(2, 3, 3, 3), stride=2, padding="same_upper"), "padding"),
    (dict(x_shape=(1, 3, 8, 8), weight_shape=(2, 3, 3, 3), padding_mode="mirror"), "padding_mode"),
    (dict(x_shape=(1, 3, 2, 2), weight_shape=(2, 3, 3, 3)), "kernel size"),
    (dict(x_shape=(1, 3, 8, 8), weight_shape=(2, 3, 3, 3), dtype="complex64"), "float32, float64, float16 or bfloat16"),
])
def test_conv_plan_refuses_what_the_call_refuses(kwargs, fragment):
    with pytest.raises((ValueError, TypeError), match=r"^explain_conv: .*" + re.escape(fragment)):
        fc.explain_conv(**kwargs)


def test_a_strided_same_plan_has_the_calls_shape():
    assert fc.explain_conv((1, 3, 9, 8), (2, 3, 3, 3), stride=2, padding="same").out_shape == (1, 2, 5, 4)


def test_the_plan_follows_the_thread_count(restore_threads):
    fc.set_num_threads(1)
    assert all(p.chosen.serial for p in fc.explain_conv((8, 64, 56, 56), (64, 64, 3, 3), padding=1).passes)
    fc.set_num_threads(2)
    plan = fc.explain_conv((8, 64, 56, 56), (64, 64, 3, 3), padding=1)
    assert plan.threads == 2 and not plan.pass_named("forward").chosen.serial


def test_plans_are_frozen_and_print_as_a_table():
    plan = fc.explain_conv((8, 64, 56, 56), (64, 64, 3, 3), padding=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.dtype = "float64"  # type: ignore[misc]
    text = str(plan)
    assert "conv2d" in text and "winograd" in text and "(alternative)" in text
    with pytest.raises(KeyError, match="bias_grad"):
        plan.pass_named("bias_grad")


@pytest.mark.parametrize("kind, kwargs, forward, backward", [
    ("max", dict(kernel_size=3, stride=2, padding=1), "stride2_simd" if STRIDE2_SIMD else "vector_runs_16", "scatter"),
    ("max", dict(kernel_size=2, stride=1), "vector_runs_16", "scatter"),
    ("avg", dict(kernel_size=2), "vector_runs_16", "window_adjoint"),
    ("adaptive_avg", dict(kernel_size=7), "tap_table", "window_adjoint"),
    ("adaptive_max", dict(kernel_size=(3, 5)), "scalar", "scatter"),
    ("adaptive_max", dict(kernel_size=28), "tap_table", "scatter"),
])
def test_pool_plans(kind, kwargs, forward, backward):
    plan = fc.explain_pool(kind, (8, 64, 112, 112), **kwargs)
    assert plan.pass_named("forward").algorithm == forward
    assert plan.pass_named("input_grad").algorithm == backward
    assert plan.weight_shape is None
    x = np.zeros((8, 64, 112, 112), np.float32)
    if kind == "max":
        out = fc.max_pool2d(x, **kwargs)
    elif kind == "avg":
        out = fc.avg_pool2d(x, **kwargs)
    else:
        out = getattr(fc, f"{kind}_pool2d")(x, kwargs["kernel_size"])
    assert plan.out_shape == out.shape


def test_pool_plan_refuses_what_the_call_refuses():
    with pytest.raises(ValueError, match=r"^explain_pool: padding \(2, 2\) must be at most half"):
        fc.explain_pool("max", (1, 1, 8, 8), 3, padding=2)
    with pytest.raises(ValueError, match=r"^explain_pool: kind must be one of"):
        fc.explain_pool("median", (1, 1, 8, 8), 3)


def test_cli_prints_a_conv_and_a_pool_plan(capsys):
    assert main(["explain", "conv", "8,64,56,56", "64,64,3,3", "--padding", "1"]) == 0
    out = capsys.readouterr().out
    assert "forward" in out and "winograd" in out
    assert main(["explain", "pool", "max", "8,64,112,112", "3", "--stride", "2", "--padding", "1"]) == 0
    assert "scatter" in capsys.readouterr().out
    assert main(["explain", "conv", "1,4,8,8", "2,3,3,3"]) == 2
    assert "input channels" in capsys.readouterr().err


def test_forcing_an_algorithm_changes_the_plan_not_the_result():
    # The hidden override behind `bench --suite networks --all-algorithms`: every
    # algorithm that can run a layer gives the reference result; a name that
    # cannot run it leaves the rules' choice; a bad pass name is a ValueError.
    from ferroconv import _ferroconv as native
    from reference import conv_nd

    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 16, 9, 10)).astype(np.float64)
    w = rng.standard_normal((20, 16, 3, 3)).astype(np.float64)
    want = conv_nd(x, w, None, stride=(1, 1), pad_lo=(1, 1), pad_hi=(1, 1), dilation=(1, 1), groups=1)
    chosen = fc.explain_conv(x.shape, w.shape, dtype="float64", padding=1).passes[0].algorithm
    try:
        for name in ("winograd", "implicit_gemm", "im2col_gemm", "direct", "depthwise_rows", "no_such"):
            native._set_plan_override("forward", name)
            plan = fc.explain_conv(x.shape, w.shape, dtype="float64", padding=1).passes[0].algorithm
            assert plan == (chosen if name == "no_such" else name)
            np.testing.assert_allclose(fc.conv2d(x, w, padding=1), want, rtol=1e-10, atol=1e-10)
    finally:
        native._set_plan_override("forward", None)
    assert fc.explain_conv(x.shape, w.shape, dtype="float64", padding=1).passes[0].algorithm == chosen
    with pytest.raises(ValueError, match="pass must be one of"):
        native._set_plan_override("backward", "direct")
