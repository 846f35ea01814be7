"""Small planes: the column-matrix GEMMs put several images side by side.

When an output plane fills at most half a column tile and the filters of a
group do not fit beside a tile in cache, the im2col forward and the col2im
input gradient multiply the filters by the columns of several images at once
(equal groups of images; the last group may be smaller). These
properties draw such layers (deep filters over planes of up to a few dozen
positions) with batch sizes that do not divide into the groups, groups,
strides, dilation and every padding mode, and check values against the NumPy
reference and bits across thread counts.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import ferroconv as fc
import reference as ref
from checks import maxabs
from strategies import LAYOUTS, make_values, scaled, with_layout


@st.composite
def small_plane_layers(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    deep = draw(st.booleans())  # which of two tile lengths
    groups = draw(st.sampled_from([1, 1, 2]))
    kernel = (3, draw(st.sampled_from([2, 3])))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(2))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(2))
    mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    # Output planes drawn first (and the input sized to give them), far smaller
    # than a column tile (~131k elements over the reduction length): ~300 input
    # channels per group (a tile of 48 positions) over planes of 1..16
    # positions, or ~120 (a tile of 96) over planes of up to 36.
    cig, out_range = (draw(st.integers(290, 310)), (1, 4)) if deep else (draw(st.integers(100, 140)), (1, 6))
    pad = tuple(draw(st.integers(0, 2)) for _ in range(2))
    spatial = []
    for k, d, s, p in zip(kernel, dilation, stride, pad):
        out = draw(st.integers(*out_range))
        size = (out - 1) * s + d * (k - 1) + 1 - 2 * p + draw(st.integers(0, s - 1))
        fits = size >= 1 and (mode != "reflect" or size > p) and (mode not in ("replicate", "circular") or size >= p)
        assume(fits)
        spatial.append(size)
    # filters of a group at least a column tile's elements: the filters are
    # streamed from memory per GEMM, so images share tiles
    cog = -(-(1 << 17) // (cig * math.prod(kernel))) + draw(st.integers(0, 3))
    n = draw(st.integers(2, 13))
    seed = draw(st.integers(0, 2**32 - 1))
    layout = draw(st.sampled_from(LAYOUTS))
    x = with_layout(make_values(seed, (n, cig * groups, *spatial), dtype), layout)
    w = make_values(seed + 1, (cog * groups, cig, *kernel), dtype)
    return dict(x=x, w=w, stride=stride, padding=pad, dilation=dilation, groups=groups,
                padding_mode=mode, dtype=dtype)


def run(layer, grad_seed):
    kwargs = {k: layer[k] for k in ("stride", "padding", "dilation", "groups", "padding_mode")}
    y = fc.conv2d(layer["x"], layer["w"], **kwargs)
    g = make_values(grad_seed, y.shape, layer["dtype"])
    gx, gw, _ = fc.conv2d_backward(g, layer["x"], layer["w"], **kwargs)
    return y, g, gx, gw


@scaled(0.4)
@given(small_plane_layers(), st.integers(0, 2**32 - 1))
def test_images_side_by_side_match_the_reference_and_every_thread_count(layer, grad_seed):
    x, w = layer["x"], layer["w"]
    pad = layer["padding"]
    ref_kwargs = dict(stride=layer["stride"], pad_lo=pad, pad_hi=pad, dilation=layer["dilation"],
                      groups=layer["groups"], padding_mode=layer["padding_mode"])
    plan = fc.explain_conv(x.shape, w.shape, stride=layer["stride"], padding=pad,
                           dilation=layer["dilation"], groups=layer["groups"],
                           padding_mode=layer["padding_mode"], dtype=np.dtype(layer["dtype"]).name)
    assert plan.pass_named("forward").algorithm == "im2col_gemm"
    before = fc.get_num_threads()
    try:
        results = {}
        for threads in (1, 2, 3):
            fc.set_num_threads(threads)
            results[threads] = run(layer, grad_seed)
    finally:
        fc.set_num_threads(before)
    y, g, gx, gw = results[1]
    for threads in (2, 3):
        for name, a, b in zip(("output", "grad_out", "grad_x", "grad_weight"), results[1], results[threads]):
            assert a.tobytes() == b.tobytes(), f"{name}: 1 thread != {threads} threads"
    xd = np.asarray(x, np.float64)
    taps = w.shape[1] * math.prod(w.shape[2:])
    ref.assert_matches(y, ref.conv_nd(xd, w, None, **ref_kwargs), layer["dtype"], taps,
                       maxabs(x) * maxabs(w), "output")
    rgx, rgw, _ = ref.conv_nd_backward(np.asarray(g, np.float64), xd, w, **ref_kwargs)
    fold = 1 if layer["padding_mode"] == "zeros" else math.prod(1 + 2 * p for p in pad)
    cog = w.shape[0] // layer["groups"]
    ref.assert_matches(gx, rgx, layer["dtype"], cog * math.prod(w.shape[2:]) * fold,
                       maxabs(g) * maxabs(w), "grad_x")
    ref.assert_matches(gw, rgw, layer["dtype"], y.shape[0] * math.prod(y.shape[2:]),
                       maxabs(g) * maxabs(x), "grad_weight")


@pytest.mark.parametrize("x_shape, weight_shape, kwargs, input_grad", [
    # ResNet-18's last stage at batch 16: 2x2 planes, 4608-long reductions
    ((16, 512, 2, 2), (512, 512, 3, 3), dict(padding=1), "adjoint_im2col_gemm"),
    # its strided entry from 4x4 planes: col2im rather than sub-pixel
    ((16, 256, 4, 4), (512, 256, 3, 3), dict(stride=2, padding=1), "col2im"),
])
def test_small_planes_of_a_batch_take_the_column_tiles(x_shape, weight_shape, kwargs, input_grad,
                                                       restore_threads):
    fc.set_num_threads(2)
    plan = fc.explain_conv(x_shape, weight_shape, **kwargs)
    assert plan.pass_named("forward").algorithm == "im2col_gemm"
    assert plan.pass_named("input_grad").algorithm == input_grad
    # one image alone keeps the per-image plans (the implicit GEMM for the strided layer)
    single = fc.explain_conv((1, *x_shape[1:]), weight_shape, **kwargs)
    tasks = {p.name: p.chosen.tasks for p in plan.passes}
    assert tasks["forward"] == 2, "two threads: two groups of 8 images, one per thread"
    if "stride" in kwargs:
        assert single.pass_named("forward").algorithm == "implicit_gemm"
        assert single.pass_named("input_grad").algorithm == "sub_pixel"
