"""The precision policy: ``precision="highest"`` never plans Winograd and has the
accuracy of direct summation; ``"default"`` stays within Winograd's documented
error budget; the process default follows ``set_precision`` and
``FERROCONV_PRECISION``.

Errors are measured on float32 inputs against a float64 NumPy reference of the
same (float32-representable) inputs, relative to ``sum |x * w|`` of each output
(the scale of its rounding errors) and as an RMS relative error."""

import os
import subprocess
import sys

import numpy as np
import pytest

import ferroconv as fc
import reference as ref

U32 = 2.0**-24
# The user guide's error budget (docs/guide.md) (float32): measured maxima were 9.5 u for direct
# summation and 91 u for Winograd; the tests allow a margin over both.
DIRECT_BUDGET = 32 * U32
WINOGRAD_BUDGET = 512 * U32


def layer(cin, cout, hw, spread, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, cin, hw, hw))
    x *= np.exp(rng.uniform(0, spread, cin))[None, :, None, None]
    w = rng.standard_normal((cout, cin, 3, 3))
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    x64, w64 = x32.astype(np.float64), w32.astype(np.float64)
    exact = ref.conv_nd(x64, w64, pad_lo=1, pad_hi=1)
    magnitude = ref.conv_nd(np.abs(x64), np.abs(w64), pad_lo=1, pad_hi=1)
    return x32, w32, exact, magnitude


def float32_loop(x, w):
    """3x3, padding 1: each output summed in float32, tap by tap, in order."""
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    n, _, h, wd = x.shape
    acc = np.zeros((n, w.shape[0], h, wd), np.float32)
    for c in range(x.shape[1]):
        for i in range(3):
            for j in range(3):
                acc += xp[:, c, None, i:i + h, j:j + wd] * w[None, :, c, i, j, None, None]
    return acc


def errors(y, exact, magnitude):
    err = y.astype(np.float64) - exact
    return np.abs(err / magnitude).max(), np.sqrt((err**2).sum() / (exact**2).sum())


@pytest.mark.parametrize("cin, hw, spread", [(16, 20, 0), (64, 20, 0), (64, 20, 8), (192, 16, 8)])
def test_highest_has_direct_summation_accuracy_and_default_stays_in_budget(cin, hw, spread):
    x, w, exact, magnitude = layer(cin, 32, hw, spread, seed=cin + spread)
    shape = dict(padding=1)
    assert fc.explain_conv(x.shape, w.shape, **shape).pass_named("forward").algorithm == "winograd"
    plan = fc.explain_conv(x.shape, w.shape, precision="highest", **shape)
    assert plan.precision == "highest" and plan.pass_named("forward").algorithm != "winograd"

    high_max, high_rms = errors(fc.conv2d(x, w, precision="highest", **shape), exact, magnitude)
    default_max, default_rms = errors(fc.conv2d(x, w, **shape), exact, magnitude)
    # Any order of summing K products keeps each error within gamma_K * sum|x w|.
    k = cin * 9
    assert high_max <= k * U32 / (1 - k * U32)
    assert high_max <= DIRECT_BUDGET
    # Direct summation written plainly: a float32 accumulator, one tap after
    # another. "highest" is as accurate as it.
    _, loop_rms = errors(float32_loop(x, w), exact, magnitude)
    assert high_rms <= 1.5 * loop_rms
    assert default_max <= WINOGRAD_BUDGET
    assert high_rms < default_rms


def test_highest_backward_never_plans_winograd_and_matches_the_reference():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 64, 20, 20)).astype(np.float32)
    w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    g = rng.standard_normal((2, 64, 20, 20)).astype(np.float32)
    assert fc.explain_conv(x.shape, w.shape, padding=1).pass_named("input_grad").algorithm == "adjoint_winograd"
    plan = fc.explain_conv(x.shape, w.shape, padding=1, precision="highest")
    assert all("winograd" not in p.algorithm for p in plan.passes)
    gx, _, _ = fc.conv2d_backward(g, x, w, padding=1, needs=(True, False, False), precision="highest")
    exact, _, _ = ref.conv_nd_backward(g.astype(np.float64), x.astype(np.float64), w.astype(np.float64),
                                       pad_lo=1, pad_hi=1)
    magnitude, _, _ = ref.conv_nd_backward(np.abs(g.astype(np.float64)), x.astype(np.float64),
                                           np.abs(w.astype(np.float64)), pad_lo=1, pad_hi=1)
    assert np.abs((gx - exact) / magnitude).max() <= DIRECT_BUDGET


def test_process_default_follows_set_precision():
    x = np.ones((4, 32, 16, 16), np.float32)
    w = np.ones((32, 32, 3, 3), np.float32)
    assert fc.get_precision() == "default"
    try:
        fc.set_precision("highest")
        assert fc.get_precision() == "highest"
        assert fc.explain_conv(x.shape, w.shape, padding=1).pass_named("forward").algorithm != "winograd"
        # an explicit per-call precision wins over the process default
        plan = fc.explain_conv(x.shape, w.shape, padding=1, precision="default")
        assert plan.pass_named("forward").algorithm == "winograd"
    finally:
        fc.set_precision("default")
    with pytest.raises(ValueError, match="set_precision: precision must be one of"):
        fc.set_precision("high")
    with pytest.raises(TypeError, match="set_precision: precision must be a str"):
        fc.set_precision(None)  # type: ignore[arg-type]


def test_layers_built_before_set_precision_follow_it():
    """A spec without its own precision reads the process default at each call."""
    spec = fc._spec.conv_spec(2, padding=1)
    assert spec.precision is None
    assert "precision" not in repr(spec)
    assert fc._spec.conv_spec(2, precision="highest").precision == "highest"


@pytest.mark.parametrize("value, ok", [("highest", True), ("default", True), ("higest", False)])
def test_environment_variable(value, ok):
    env = dict(os.environ, FERROCONV_PRECISION=value)
    run = subprocess.run([sys.executable, "-c", "import ferroconv as fc; print(fc.get_precision())"],
                         env=env, capture_output=True, text=True)
    if ok:
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == value
    else:
        assert run.returncode != 0
        assert "FERROCONV_PRECISION must be one of" in run.stderr and "higest" in run.stderr
