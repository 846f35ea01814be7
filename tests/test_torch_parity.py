"""Optional: ferroconv against PyTorch's torch.nn.functional itself (skipped when torch
is not installed). The NumPy reference is the primary oracle; this checks that the
reference and ferroconv share PyTorch's conventions (padding modes, ceil_mode,
count_include_pad, index layout, NaN and tie handling aside)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ferroconv as fc

torch = pytest.importorskip("torch")
F = torch.nn.functional

CONV = {1: (fc.conv1d, fc.conv1d_backward, F.conv1d), 2: (fc.conv2d, fc.conv2d_backward, F.conv2d),
        3: (fc.conv3d, fc.conv3d_backward, F.conv3d)}
TRANSPOSE = {1: (fc.conv_transpose1d, F.conv_transpose1d), 2: (fc.conv_transpose2d, F.conv_transpose2d),
             3: (fc.conv_transpose3d, F.conv_transpose3d)}
MODES = {"zeros": None, "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


@st.composite
def conv_cases(draw: st.DrawFn) -> dict:
    rank = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    cig, cog = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    size = tuple(draw(st.integers(4, 7)) for _ in range(rank))
    mode = draw(st.sampled_from(list(MODES)))
    pad = tuple(draw(st.integers(0, 2)) for _ in range(rank))
    return dict(rank=rank, groups=groups, cig=cig, cog=cog, kernel=kernel, stride=stride,
                dilation=dilation, size=size, mode=mode, pad=pad, seed=draw(st.integers(0, 2**16)))


@settings(deadline=None, max_examples=60)
@given(conv_cases())
def test_conv_forward_and_backward_match_torch(case: dict) -> None:
    rng = np.random.default_rng(case["seed"])
    rank, groups = case["rank"], case["groups"]
    x = rng.standard_normal((2, case["cig"] * groups, *case["size"]))
    w = rng.standard_normal((case["cog"] * groups, case["cig"], *case["kernel"]))
    b = rng.standard_normal(case["cog"] * groups)
    ours, ours_bwd, theirs = CONV[rank]
    kwargs = dict(stride=case["stride"], dilation=case["dilation"], groups=groups)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    try:
        if case["mode"] == "zeros":
            ty = theirs(tx, tw, tb, padding=case["pad"], **kwargs)
        else:
            torch_pad = [p for p in reversed(case["pad"]) for _ in range(2)]
            if case["mode"] == "reflect" and any(p >= s for p, s in zip(case["pad"], case["size"])):
                return
            ty = theirs(F.pad(tx, torch_pad, mode=MODES[case["mode"]]), tw, tb, **kwargs)
    except RuntimeError:
        # PyTorch refuses the problem (e.g. a dilated kernel larger than the padded
        # input): ferroconv must refuse it too, with a ValueError.
        with pytest.raises(ValueError):
            ours(x, w, b, padding=case["pad"], padding_mode=case["mode"], **kwargs)
        return
    y = ours(x, w, b, padding=case["pad"], padding_mode=case["mode"], **kwargs)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(y.shape)
    ty.backward(torch.tensor(g))
    gx, gw, gb = ours_bwd(g, x, w, padding=case["pad"], padding_mode=case["mode"], **kwargs)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gw, tw.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gb, tb.grad.numpy(), rtol=1e-10, atol=1e-10)


@settings(deadline=None, max_examples=40)
@given(conv_cases(), st.integers(0, 1))
def test_conv_transpose_matches_torch(case: dict, extra: int) -> None:
    rng = np.random.default_rng(case["seed"])
    rank, groups = case["rank"], case["groups"]
    x = rng.standard_normal((2, case["cig"] * groups, *case["size"]))
    w = rng.standard_normal((case["cig"] * groups, case["cog"], *case["kernel"]))
    output_padding = tuple(min(extra, max(s, d) - 1) for s, d in zip(case["stride"], case["dilation"]))
    kwargs = dict(stride=case["stride"], padding=case["pad"], output_padding=output_padding,
                  groups=groups, dilation=case["dilation"])
    ours, theirs = TRANSPOSE[rank]
    try:
        want = theirs(torch.tensor(x), torch.tensor(w), **kwargs).numpy()
    except RuntimeError:
        with pytest.raises(ValueError):
            ours(x, w, **kwargs)
        return
    np.testing.assert_allclose(ours(x, w, **kwargs), want, rtol=1e-10, atol=1e-10)


@st.composite
def pool_cases(draw: st.DrawFn) -> dict:
    rank = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    return dict(
        rank=rank,
        kernel=kernel,
        stride=tuple(draw(st.integers(1, 3)) for _ in range(rank)),
        pad=tuple(draw(st.integers(0, k // 2)) for k in kernel),
        size=tuple(draw(st.integers(3, 8)) for _ in range(rank)),
        ceil_mode=draw(st.booleans()),
        count_include_pad=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )


@settings(deadline=None, max_examples=80)
@given(pool_cases())
def test_pooling_matches_torch(case: dict) -> None:
    rng = np.random.default_rng(case["seed"])
    rank = case["rank"]
    x = rng.permutation(np.arange(2 * 3 * int(np.prod(case["size"])), dtype=np.float64))
    x = x.reshape((2, 3, *case["size"]))  # distinct values: no ties
    kwargs = dict(stride=case["stride"], padding=case["pad"], ceil_mode=case["ceil_mode"])
    max_pool = getattr(fc, f"max_pool{rank}d")
    avg_pool = getattr(fc, f"avg_pool{rank}d")
    t_max = getattr(F, f"max_pool{rank}d")
    t_avg = getattr(F, f"avg_pool{rank}d")
    want, want_idx = t_max(torch.tensor(x), case["kernel"], return_indices=True, **kwargs)
    got, idx = max_pool(x, case["kernel"], return_indices=True, **kwargs)
    np.testing.assert_array_equal(got, want.numpy())
    np.testing.assert_array_equal(idx, want_idx.numpy())
    want = t_avg(torch.tensor(x), case["kernel"], count_include_pad=case["count_include_pad"], **kwargs)
    got = avg_pool(x, case["kernel"], count_include_pad=case["count_include_pad"], **kwargs)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-12)
    out = tuple(max(1, s // 2) for s in case["size"])
    np.testing.assert_allclose(getattr(fc, f"adaptive_avg_pool{rank}d")(x, out),
                               getattr(F, f"adaptive_avg_pool{rank}d")(torch.tensor(x), out).numpy(),
                               rtol=1e-12)
    got, idx = getattr(fc, f"adaptive_max_pool{rank}d")(x, out, return_indices=True)
    want, want_idx = getattr(F, f"adaptive_max_pool{rank}d")(torch.tensor(x), out, return_indices=True)
    np.testing.assert_array_equal(got, want.numpy())
    np.testing.assert_array_equal(idx, want_idx.numpy())
