"""The instruction-set switch: ``set_simd`` / ``get_simd`` / ``FERROCONV_SIMD``,
what ``explain_*`` and ``info`` report, and the paths agreeing with each other.

Across paths results agree to float rounding: every element differs by at most
``PATH_TOLERANCE[dtype] * sum(|products|)`` (the sum of the absolute values of
the terms the element adds up, bias included), the bound documented in
docs/simd.md; the AVX2 and AVX-512 paths, which compute the same chains of
FMAs, agree bit for bit. Within a path they are bit-identical for any thread count
(tests/test_threads.py, run once per path by .ci/run). Max pooling picks
elements, so its values and indices are identical on every path.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import ferroconv as fc
from strategies import make_values

ALL_PATHS = ("avx512", "avx2", "portable")
BEST = fc._ferroconv.build_info()["simd_best"]
SUPPORTED = ALL_PATHS[ALL_PATHS.index(BEST):]

# Unit roundoff times 64: the GEMM paths sum in the same order, one FMA per
# product (AVX-512, AVX2) or a rounded product then a sum (portable), and the
# Winograd transforms amplify the product-domain differences by a small factor.
PATH_TOLERANCE = {np.float32: 64 * 2.0**-24, np.float64: 64 * 2.0**-53}


@pytest.fixture
def restore_simd():
    before = fc.get_simd()
    yield before
    fc.set_simd(before)


def test_default_path_is_the_cpus_best_unless_capped_by_the_environment():
    assert fc.get_simd() == os.environ.get("FERROCONV_SIMD", BEST)
    assert fc._ferroconv.build_info()["simd_path"] == fc.get_simd()


def test_set_simd_round_trips_every_supported_path(restore_simd):
    for name in (*SUPPORTED, *reversed(SUPPORTED)):
        fc.set_simd(name)
        assert fc.get_simd() == name
        assert fc._ferroconv.build_info()["simd_path"] == name


@pytest.mark.parametrize("name", ["avx3", "AVX2", "", "sse2", "avx512 "])
def test_unknown_paths_are_value_errors_listing_the_choices(restore_simd, name):
    with pytest.raises(ValueError, match="expected one of avx512, avx2, portable"):
        fc.set_simd(name)
    assert fc.get_simd() == restore_simd


@pytest.mark.parametrize("name", [None, 2, b"avx2"])
def test_a_name_that_is_not_a_string_is_a_type_error(name):
    with pytest.raises(TypeError, match="must be a str"):
        fc.set_simd(name)


@pytest.mark.skipif(BEST == "avx512", reason="this CPU supports every path (Rust tests cover the message)")
def test_a_path_above_the_cpu_says_what_the_cpu_supports(restore_simd):
    with pytest.raises(ValueError, match=f"it supports {', '.join(SUPPORTED)}"):
        fc.set_simd("avx512")
    assert fc.get_simd() == restore_simd


def _import_with(value):
    env = {**os.environ, "FERROCONV_SIMD": value}
    code = "import ferroconv as fc; print(fc.get_simd())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_the_environment_variable_caps_the_path_at_import():
    done = _import_with(SUPPORTED[-1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == SUPPORTED[-1]


def test_an_invalid_environment_value_fails_the_import_saying_why():
    done = _import_with("fastest")
    assert done.returncode != 0
    assert "ImportError" in done.stderr and "FERROCONV_SIMD" in done.stderr, done.stderr
    assert "expected one of avx512, avx2, portable" in done.stderr


def test_explain_reports_the_active_path(restore_simd):
    for name in SUPPORTED:
        fc.set_simd(name)
        assert fc.explain_conv((2, 16, 20, 20), (32, 16, 3, 3), padding=1).simd == name
        assert fc.explain_pool("max", (2, 16, 20, 20), 3, stride=2).simd == name


def test_info_reports_the_best_and_the_active_path():
    env = {**os.environ, "FERROCONV_SIMD": SUPPORTED[-1]}
    done = subprocess.run([sys.executable, "-m", "ferroconv", "info"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"simd:     {SUPPORTED[-1]} kernels; this CPU's best: {BEST}" in done.stdout


# ------------------------------------------------------------ paths agree

# (rank, x shape, weight shape, kwargs): a GEMM-bound 1x1, a Winograd 3x3, a
# strided 7x7, a depthwise, a grouped dilated 1D and a 3D layer, each with odd
# sizes so partial vectors and narrow panels run.
CONVS = [
    (2, (2, 40, 13, 11), (24, 40, 1, 1), {}),
    (2, (2, 32, 18, 17), (20, 32, 3, 3), dict(padding=1)),
    (2, (1, 3, 37, 33), (17, 3, 7, 7), dict(stride=2, padding=3)),
    (2, (2, 12, 15, 19), (12, 1, 3, 3), dict(padding=1, groups=12)),
    (1, (3, 8, 61), (12, 4, 5), dict(groups=2, dilation=2)),
    (3, (1, 5, 7, 9, 8), (6, 5, 3, 3, 3), dict(padding=1)),
]


def _conv_outputs(rank, x, w, b, g, kw):
    conv = getattr(fc, f"conv{rank}d")
    y = conv(x, w, b, **kw)
    return (y, *getattr(fc, f"conv{rank}d_backward")(g, x, w, **kw))


def _conv_bounds(rank, x, w, b, g, kw):
    """Per output: the sum of |products| of each element, in float64."""
    ax, aw, ab, ag = (np.abs(a).astype(np.float64) for a in (x, w, b, g))
    return _conv_outputs(rank, ax, aw, ab, ag, kw)


def _run_on(path, fn):
    fc.set_simd(path)
    return fn()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rank, x_shape, w_shape, kw", CONVS)
def test_conv_forward_and_backward_agree_on_every_path(restore_simd, dtype, rank, x_shape, w_shape, kw):
    x, w = make_values(0, x_shape, dtype), make_values(1, w_shape, dtype)
    b = make_values(2, (w_shape[0],), dtype)
    y = getattr(fc, f"conv{rank}d")(x, w, b, **kw)
    g = make_values(3, y.shape, dtype)
    results = {p: _run_on(p, lambda: _conv_outputs(rank, x, w, b, g, kw)) for p in SUPPORTED}
    bounds = _conv_bounds(rank, x, w, b, g, kw)
    if "avx512" in results and "avx2" in results:
        # the FMA paths compute every element as the same chain of FMAs
        for got, want in zip(results["avx2"], results["avx512"]):
            np.testing.assert_array_equal(got, want)
    reference = results[SUPPORTED[0]]
    for path, outputs in results.items():
        for name, got, want, bound in zip(("y", "grad_x", "grad_w", "grad_b"), outputs, reference, bounds):
            assert got.dtype == want.dtype == dtype
            excess = np.abs(got.astype(np.float64) - want) - PATH_TOLERANCE[dtype] * bound
            assert excess.max() <= 0, f"{name} on {path} vs {SUPPORTED[0]}: {excess.max()}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel_size, kw", [(3, dict(stride=2, padding=1)), (2, {}), ((3, 2), dict(stride=1)),
                                             (3, dict(stride=2, dilation=2))])
def test_pooling_agrees_on_every_path(restore_simd, dtype, kernel_size, kw):
    x = make_values(4, (2, 19, 37, 41), dtype)
    x[0, 0, 3, 3] = np.nan
    x[1, 2, :4, :4] = 1.5  # ties: the first index wins on every path
    for path in SUPPORTED:
        fc.set_simd(path)
        values, indices = fc.max_pool2d(x, kernel_size, return_indices=True, **kw)
        means = fc.avg_pool2d(x, kernel_size, **{k: v for k, v in kw.items() if k != "dilation"})
        grad = fc.max_pool2d_backward(values, indices, x.shape)
        if path == SUPPORTED[0]:
            want = (values, indices, means, grad)
            continue
        np.testing.assert_array_equal(values, want[0])
        np.testing.assert_array_equal(indices, want[1])
        np.testing.assert_array_equal(grad, want[3])
        # a window's mean adds at most a few hundred terms of |x| < 10
        np.testing.assert_allclose(means, want[2], rtol=0, atol=PATH_TOLERANCE[dtype] * 10 * 9)


# ------------------------------------------------------------ bench --simd


def test_bench_simd_option_is_parsed_and_validated():
    from ferroconv import bench

    argv = ["1x1", "--simd", "avx2", "--repeat", "1"]
    assert bench._pop_simd(argv) == "avx2" and argv == ["1x1", "--repeat", "1"]
    argv = ["--simd=portable"]
    assert bench._pop_simd(argv) == "portable" and argv == []
    assert bench._pop_simd(["--repeat", "1"]) is None
    with pytest.raises(SystemExit, match="expected one of avx512, avx2, portable"):
        bench._pop_simd(["--simd", "fast"])


def test_bench_simd_limits_pytorch_to_the_same_instruction_set(monkeypatch, restore_simd):
    from ferroconv import bench

    assert bench.TORCH_SIMD_ENV["avx2"] == {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    # With the environment in place (as in the re-executed bench) it only sets the cap.
    path = SUPPORTED[-1]
    for key, value in {"FERROCONV_SIMD": path, **bench.TORCH_SIMD_ENV[path]}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(bench.os, "execve", lambda *args: pytest.fail("re-executed"))
    bench.limit_simd(path, [])
    assert fc.get_simd() == path
