"""3-D convolutions with a single input plane along depth, run by every algorithm.

Several paths are written for 2-D problems and ignore the depth axis; a depth of
1 alone does not make a problem 2-D: depth padding adds output planes that read
nothing, and a transposed convolution's output padding can leave its one output
plane reading no input plane (the high side of the adjoint convolution's padding
is negative). Every pass is forced through every algorithm the plan knows (a
name the plan cannot run falls back to its own choice) and compared with the
NumPy reference loops of tests/support/reference.py.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ferroconv as fc
from ferroconv import _ferroconv as native
from reference import (
    assert_matches,
    conv_nd_backward_naive,
    conv_nd_naive,
    conv_transpose_nd_backward_naive,
    conv_transpose_nd_naive,
)

ALGORITHMS = {
    "forward": ["direct", "depthwise_rows", "winograd", "implicit_gemm", "im2col_gemm"],
    "input_grad": [
        "direct", "depthwise_rows", "sub_pixel", "col2im", "adjoint_direct",
        "adjoint_depthwise_rows", "adjoint_winograd", "adjoint_implicit_gemm",
        "adjoint_im2col_gemm",
    ],
    "weight_grad": ["direct", "depthwise_rows", "phase_planes", "im2col_gemm"],
}


def forced():
    """(pass, algorithm) for every algorithm of every pass."""
    for pass_name, names in ALGORITHMS.items():
        for name in names:
            yield pass_name, name


def check(got, ref, what):
    assert_matches(got, ref, np.float64, 1, max(1.0, float(np.abs(ref).max(initial=0))), what)


def every_algorithm(forward, backward, x, w, gout, kw, wants):
    """``forward`` and ``backward`` (ferroconv's) against ``wants`` = (output,
    input gradient, weight gradient) with every pass forced through every
    algorithm in turn."""
    for pass_name, name in forced():
        native._set_plan_override(pass_name, name)
        try:
            gx, gw, _ = backward(gout, x, w, **kw)
            for got, want, what in zip((forward(x, w, **kw), gx, gw), wants,
                                       ("forward", "input gradient", "weight gradient")):
                check(got, want, f"{forward.__name__} {what}, {pass_name}={name}, {kw}")
        finally:
            native._set_plan_override(pass_name, None)


def run_conv(x, w, gout, kw):
    ref_kw = dict(stride=kw["stride"], pad_lo=kw["padding"], pad_hi=kw["padding"],
                  dilation=kw["dilation"], groups=kw["groups"])
    gx_want, gw_want, _ = conv_nd_backward_naive(gout, x, w, **ref_kw)
    every_algorithm(fc.conv3d, fc.conv3d_backward, x, w, gout, kw,
                    (conv_nd_naive(x, w, **ref_kw), gx_want, gw_want))


def run_transpose(x, w, gout, kw):
    ref_kw = dict(stride=kw["stride"], padding=kw["padding"], output_padding=kw["output_padding"],
                  groups=kw["groups"], dilation=kw["dilation"])
    gx_want, gw_want, _ = conv_transpose_nd_backward_naive(gout, x, w, **ref_kw)
    every_algorithm(fc.conv_transpose3d, fc.conv_transpose3d_backward, x, w, gout, kw,
                    (conv_transpose_nd_naive(x, w, **ref_kw), gx_want, gw_want))


def test_the_output_plane_that_reads_nothing() -> None:
    """The one output plane of this transposed convolution lies in the padding:
    it is zero (it was 1, the 2-D paths reading input plane 0)."""
    x = np.ones((1, 1, 1, 1, 1))
    kw = dict(stride=1, padding=(1, 0, 0), output_padding=(2, 0, 0), dilation=(3, 1, 1), groups=1)
    gout = np.ones((1, 1, 1, 1, 1))
    for pass_name, name in forced():
        native._set_plan_override(pass_name, name)
        try:
            assert fc.conv_transpose3d(x, x, **kw).ravel().tolist() == [0.0], (pass_name, name)
            gx, gw, _ = fc.conv_transpose3d_backward(gout, x, x, **kw)
            assert gx.ravel().tolist() == [0.0] and gw.ravel().tolist() == [0.0], (pass_name, name)
        finally:
            native._set_plan_override(pass_name, None)


@pytest.mark.parametrize(
    ("channels", "kernel", "depth_pad"),
    list(itertools.product([(1, 1, 1), (4, 4, 4), (8, 8, 1)], [1, 3], [1, 2])),
)
def test_depth_padding_adds_planes_of_bias_only(channels, kernel, depth_pad) -> None:
    """conv3d of a one-plane input with depth padding: the added output planes are
    zero for every algorithm (Winograd once filled them from the input plane)."""
    c_in, c_out, groups = channels
    rng = np.random.default_rng(kernel * 10 + depth_pad)
    x = rng.standard_normal((2, c_in, 1, 6, 6))
    w = rng.standard_normal((c_out, c_in // groups, 1, kernel, kernel))
    kw = dict(stride=1, padding=(depth_pad, kernel // 2, kernel // 2), dilation=1, groups=groups)
    gout = rng.standard_normal((2, c_out, 1 + 2 * depth_pad, 6, 6))
    run_conv(x, w, gout, kw)


@st.composite
def transposed_cases(draw):
    c_in, c_out, groups = draw(st.sampled_from([(1, 1, 1), (4, 4, 4), (3, 6, 3), (8, 8, 1)]))
    depth_kernel = draw(st.integers(1, 2))
    depth_stride = draw(st.integers(1, 3))
    depth_dilation = draw(st.integers(1, 3))
    depth_pad = draw(st.integers(0, 2))
    depth_out_pad = draw(st.integers(0, max(depth_stride, depth_dilation) - 1))
    depth = (depth_dilation * (depth_kernel - 1) + depth_out_pad + 1) - 2 * depth_pad
    if depth <= 0:
        depth_pad = 0
    kernel = draw(st.sampled_from([1, 3]))
    stride = draw(st.integers(1, 2))
    size = draw(st.integers(2, 6))
    kw = dict(stride=(depth_stride, stride, stride), padding=(depth_pad, kernel // 2, kernel // 2),
              output_padding=(depth_out_pad, stride - 1, 0), dilation=(depth_dilation, 1, 1),
              groups=groups)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((2, c_in, 1, size, size))
    w = rng.standard_normal((c_in, c_out // groups, depth_kernel, kernel, kernel))
    return x, w, kw, rng


@settings(max_examples=30)
@given(transposed_cases())
def test_transposed_one_plane_inputs_by_every_algorithm(case) -> None:
    x, w, kw, rng = case
    out_shape = conv_transpose_nd_naive(
        x, w, stride=kw["stride"], padding=kw["padding"], output_padding=kw["output_padding"],
        groups=kw["groups"], dilation=kw["dilation"]).shape
    run_transpose(x, w, rng.standard_normal(out_shape), kw)
