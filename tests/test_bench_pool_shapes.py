"""The random pooling shapes of ``bench --suite pool-shapes``: every drawn
problem is one both libraries accept and agree on (so the suite times the same
thing twice), and a smoke run reports a row per problem and the summary."""

from __future__ import annotations

import numpy as np
import pytest

import ferroconv as fc
from ferroconv import bench_pool_shapes
from ferroconv.bench import _pool_backward, _torch_pool

torch = pytest.importorskip("torch")


def small(wl):
    """The problem on one image of at most 3 channels (same planes and windows)."""
    wl.shape = (1, min(3, wl.shape[1])) + wl.shape[2:]
    return wl


@pytest.mark.parametrize("kind", bench_pool_shapes.KINDS)
def test_drawn_problems_agree_with_pytorch(kind) -> None:
    rng = np.random.default_rng(2026)
    for _ in range(12):
        wl = small(bench_pool_shapes.draw(rng, kind))
        x = rng.standard_normal(wl.shape)
        if kind == "lp":
            x = np.abs(x)
        samples = rng.random(wl.shape[:2] + (wl.rank,)) * 0.999
        expected = _torch_pool(torch, torch.from_numpy(x), wl, samples)()
        expected = expected[0] if isinstance(expected, tuple) else expected
        if kind == "fractional":
            ours = getattr(fc, f"fractional_max_pool{wl.rank}d")(x, wl.kernel, wl.fractional_size(),
                                                                  random_samples=samples)
        elif kind == "max":
            ours = getattr(fc, f"max_pool{wl.rank}d")(x, wl.kernel, stride=wl.stride, padding=wl.padding)
        elif kind == "lp":
            ours = getattr(fc, f"lp_pool{wl.rank}d")(x, wl.norm, wl.kernel, stride=wl.stride)
        else:
            ours = getattr(fc, f"avg_pool{wl.rank}d")(x, wl.kernel, stride=wl.stride, padding=wl.padding)
        np.testing.assert_allclose(ours, expected.numpy(), rtol=1e-10, atol=1e-12, err_msg=wl.name)
        if kind in ("avg", "lp"):
            g = rng.standard_normal(ours.shape)
            assert _pool_backward(wl, x, g, None)().shape == x.shape


def test_a_smoke_run_reports_every_row_and_the_summary(capsys) -> None:
    assert bench_pool_shapes.main(["--count", "1", "--repeat", "1", "--seed", "4", "avg", "lp"]) == 0
    out = capsys.readouterr().out
    assert out.count("torch fwd+bwd") == 2
    assert "avg        fwd     worst" in out and "lp         fwd+bwd worst" in out
    assert "rows under 3x PyTorch" in out


def test_unknown_kinds_are_refused(capsys) -> None:
    with pytest.raises(SystemExit):
        bench_pool_shapes.main(["mean"])
    assert "unknown kind 'mean'" in capsys.readouterr().err
