"""Transposed convolutions with per-side padding ((lo, hi) pairs, ONNX's pads),
"valid" / "same" / "same_lower" (ONNX's auto_pad), and PyTorch modules'
``output_size``: against a scalar-loop scatter written here, gradients against the
same loops, adjointness, and the errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ferroconv as fc
from ferroconv import nn


def scatter_reference(x, w, stride, lo, hi, output_padding, dilation, groups):
    """out[n, g*cog+co, i*s + t*d - lo] += x[n, g*cig+ci, i] w[g*cig+ci, co, t], for
    positions inside an output of size (L-1)s + d(k-1) + 1 + op - lo - hi."""
    rank = x.ndim - 2
    cig, cog = x.shape[1] // groups, w.shape[1]
    kernel = w.shape[2:]
    out_sp = tuple((x.shape[2 + a] - 1) * stride[a] + dilation[a] * (kernel[a] - 1) + 1 + output_padding[a]
                   - lo[a] - hi[a] for a in range(rank))
    out = np.zeros((x.shape[0], cog * groups) + out_sp)
    for n, cin in itertools.product(range(x.shape[0]), range(x.shape[1])):
        g = cin // cig
        for i in np.ndindex(*x.shape[2:]):
            for co, tap in itertools.product(range(cog), np.ndindex(*kernel)):
                pos = tuple(i[a] * stride[a] + tap[a] * dilation[a] - lo[a] for a in range(rank))
                if all(0 <= pos[a] < out_sp[a] for a in range(rank)):
                    out[(n, g * cog + co) + pos] += x[(n, cin) + i] * w[(cin, co) + tap]
    return out


def gradient_reference(grad_out, x, w, stride, lo, hi, output_padding, dilation, groups):
    rank = x.ndim - 2
    cig, cog = x.shape[1] // groups, w.shape[1]
    kernel = w.shape[2:]
    out_sp = grad_out.shape[2:]
    gx, gw = np.zeros_like(x), np.zeros_like(w)
    for n, cin in itertools.product(range(x.shape[0]), range(x.shape[1])):
        g = cin // cig
        for i in np.ndindex(*x.shape[2:]):
            for co, tap in itertools.product(range(cog), np.ndindex(*kernel)):
                pos = tuple(i[a] * stride[a] + tap[a] * dilation[a] - lo[a] for a in range(rank))
                if all(0 <= pos[a] < out_sp[a] for a in range(rank)):
                    value = grad_out[(n, g * cog + co) + pos]
                    gx[(n, cin) + i] += value * w[(cin, co) + tap]
                    gw[(cin, co) + tap] += value * x[(n, cin) + i]
    return gx, gw


@st.composite
def cases(draw):
    rank = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 2))
    cig, cog = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    size = (lambda: draw(st.integers(1, 4))) if rank < 3 else (lambda: draw(st.integers(1, 3)))
    spatial = tuple(size() for _ in range(rank))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    full = tuple((n - 1) * s + d * (k - 1) + 1 + op
                 for n, s, d, k, op in zip(spatial, stride, dilation, kernel, output_padding))
    lo = tuple(draw(st.integers(0, f - 1)) for f in full)
    hi = tuple(draw(st.integers(0, f - 1 - low)) for f, low in zip(full, lo))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((draw(st.integers(1, 2)), cig * groups) + spatial).astype(dtype)
    w = rng.standard_normal((cig * groups, cog) + kernel).astype(dtype)
    return rank, x, w, stride, lo, hi, output_padding, dilation, groups


@settings(deadline=None)
@given(cases())
def test_per_side_padding_matches_the_scatter_loops(case) -> None:
    rank, x, w, stride, lo, hi, op, dilation, groups = case
    pairs = tuple(zip(lo, hi))
    forward = getattr(fc, f"conv_transpose{rank}d")
    backward = getattr(fc, f"conv_transpose{rank}d_backward")
    out = forward(x, w, None, stride, pairs, op, groups, dilation)
    expected = scatter_reference(x.astype(np.float64), w.astype(np.float64), stride, lo, hi, op, dilation, groups)
    tol = 1e-4 if x.dtype == np.float32 else 1e-11
    assert out.dtype == x.dtype and out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)
    g = np.random.default_rng(1).standard_normal(out.shape).astype(x.dtype)
    gx, gw, gb = backward(g, x, w, stride, pairs, op, groups, dilation)
    ex, ew = gradient_reference(g.astype(np.float64), x.astype(np.float64), w.astype(np.float64), stride, lo, hi,
                                op, dilation, groups)
    np.testing.assert_allclose(gx, ex, rtol=tol, atol=tol)
    np.testing.assert_allclose(gw, ew, rtol=tol, atol=tol)
    np.testing.assert_allclose(gb, g.astype(np.float64).sum(axis=(0,) + tuple(range(2, 2 + rank))), rtol=tol,
                               atol=tol)
    # adjointness: <convT(x), g> == <x, convT_backward_input(g)>
    np.testing.assert_allclose(np.vdot(out.astype(np.float64), g), np.vdot(x.astype(np.float64), gx),
                               rtol=tol * 10, atol=tol * 10)
    if lo == hi:  # PyTorch's symmetric int padding is the same call
        np.testing.assert_array_equal(forward(x, w, None, stride, lo, op, groups, dilation), out)


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("mode", ["same", "same_lower", "valid"])
def test_auto_padding(rank: int, mode: str) -> None:
    rng = np.random.default_rng(rank)
    x = rng.standard_normal((2, 2) + (3, 4, 2)[:rank])
    w = rng.standard_normal((2, 3) + (3, 4, 2)[:rank])
    stride = (2, 3, 1)[:rank]
    out = getattr(fc, f"conv_transpose{rank}d")(x, w, stride=stride, padding=mode)
    full = scatter_reference(x, w, stride, (0,) * rank, (0,) * rank, (0,) * rank, (1,) * rank, 1)
    if mode == "valid":
        np.testing.assert_allclose(out, full, atol=1e-12)
        return
    assert out.shape[2:] == tuple(n * s for n, s in zip(x.shape[2:], stride))  # ONNX: input * stride
    crop = []
    for n, s, f in zip(x.shape[2:], stride, full.shape[2:]):
        total = f - n * s
        start = total // 2 if mode == "same" else total - total // 2  # the odd cell at the end for "same"
        crop.append(slice(start, start + n * s))
    np.testing.assert_allclose(out, full[(slice(None), slice(None)) + tuple(crop)], atol=1e-12)


def test_output_size_picks_the_output_padding_as_pytorch() -> None:
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((2, 3, 3, 3))
    for size in (9, 10):  # stride 2, padding 1: 9 or 10
        out = fc.conv_transpose2d(x, w, stride=2, padding=1, output_size=(size, 10))
        expected = fc.conv_transpose2d(x, w, stride=2, padding=1, output_padding=(size - 9, 1))
        np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(fc.conv_transpose2d(x, w, stride=2, padding=1, output_size=(1, 3, 10, 10)),
                                  fc.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1))
    g = rng.standard_normal((1, 3, 10, 9))
    for got, want in zip(fc.conv_transpose2d_backward(g, x, w, stride=2, padding=1, output_size=(10, 9)),
                         fc.conv_transpose2d_backward(g, x, w, stride=2, padding=1, output_padding=(1, 0))):
        np.testing.assert_array_equal(got, want)
    layer = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, rng=0, dtype=np.float64)
    assert layer(x, output_size=[10, 9]).shape == (1, 3, 10, 9)
    assert layer.backward(g).shape == x.shape
    with pytest.raises(ValueError, match="axis 0 can be 9 to 10 for an input of size 5 .* got 11"):
        fc.conv_transpose2d(x, w, stride=2, padding=1, output_size=(11, 10))
    with pytest.raises(ValueError, match="output_size or output_padding, not both"):
        fc.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1, output_size=(10, 10))
    with pytest.raises(ValueError, match="output_size must have 2 spatial sizes"):
        fc.conv_transpose2d(x, w, stride=2, output_size=(10, 10, 10, 10, 10))


def test_matches_pytorch_output_size() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 5, 6))
    theirs = torch.nn.ConvTranspose2d(4, 2, 3, stride=(2, 3), padding=1).double()
    ours = nn.ConvTranspose2d(4, 2, 3, stride=(2, 3), padding=1, dtype=np.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    for size in ((9, 16), (10, 17), (10, 18)):
        expected = theirs(torch.from_numpy(x), output_size=size).detach().numpy()
        np.testing.assert_allclose(ours(x, output_size=size), expected, atol=1e-12)


def test_errors() -> None:
    x, w = np.ones((1, 1, 3)), np.ones((1, 1, 2))
    with pytest.raises(ValueError, match="padding 1 before and 2 after is too large|too large"):
        fc.conv_transpose1d(x, w, padding=((1, 3),))
    with pytest.raises(ValueError, match="reaches the stride"):
        fc.conv_transpose1d(x, w, stride=4, padding="same")
    with pytest.raises(ValueError, match="'valid', 'same' or 'same_lower'"):
        fc.conv_transpose1d(x, w, padding="full")
    with pytest.raises(ValueError, match="per-side pairs must be 1 \\(lo, hi\\) pairs"):
        fc.conv_transpose1d(x, w, padding=((1, 2, 3),))
    with pytest.raises(ValueError, match="padding"):
        fc.conv_transpose1d(x, w, padding=((-1, 0),))
