"""Lp pooling for norms other than 1, 2 and 4 (issue 20): fractional norms, whole
norms above 4 (their powers and roots by the vectorised ``pow``), below 1 and
negative, p = 3 (a cube root), the special values of ``x^p``, on every SIMD
path, against the plain NumPy reference of tests/support/sided_pool_reference.py
(float64 windows through ``np.power``) and against PyTorch."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ferroconv as fc
from pool_strategies import sided_cases, with_layout
from sided_pool_reference import pool

NORMS = [0.5, 0.7, 1.5, 2.5, 3.0, 5.0, 6.0, -0.5, -1.0, -1.5, -2.0]
ALL_PATHS = ("avx512", "avx2", "portable")
SUPPORTED = ALL_PATHS[ALL_PATHS.index(fc._ferroconv.build_info()["simd_best"]):]
# Per output: a few rounded terms and sums, a root (all within an ulp or so).
RTOL = {np.float32: 4e-6, np.float64: 1e-13}


def args(case):
    return {k: case[k] for k in ("stride", "padding", "dilation", "ceil_mode")}


def lp(case, x, p):
    """Lp pooling of ``x (N, C, ...)`` in the case's layout, batched or one
    unbatched sample at a time."""
    a = args(case)
    pool_one = lambda arr: getattr(fc, f"lp_pool{case['rank']}d")(  # noqa: E731
        with_layout(arr, case["layout"]), p, case["kernel"], a["stride"], a["ceil_mode"], a["padding"],
        a["dilation"])
    return pool_one(x) if case["batched"] else np.stack([pool_one(sample) for sample in x])


def lp_backward(case, g, x, p):
    a = args(case)
    return getattr(fc, f"lp_pool{case['rank']}d_backward")(g, x, p, case["kernel"], a["stride"], a["ceil_mode"],
                                                           a["padding"], a["dilation"])


def reference(case, x, p):
    return pool(x, "lp", case["kernel"], p=p, **args(case))


def values(case, low=0.1, high=3.0, zeros=True):
    """Magnitudes in [low, high), some exact zeros planted."""
    rng = np.random.default_rng(case["seed"])
    x = rng.uniform(low, high, case["shape"])
    if zeros:
        x[rng.random(case["shape"]) < 0.15] = 0.0
    return x.astype(case["dtype"])


# ------------------------------------------------------------ forward vs the reference


@given(sided_cases(), st.sampled_from(NORMS))
def test_any_norm_matches_the_reference_on_nonnegative_inputs(case, p):
    x = values(case)
    y = lp(case, x, p)
    expected = reference(case, x, p)
    assert y.dtype == case["dtype"] and y.shape == expected.shape
    # zeros: 0^p = 0 (p > 0); for p < 0, 0^p = inf and the root of inf is 0
    np.testing.assert_allclose(y, expected, rtol=RTOL[case["dtype"]], atol=0)


@given(sided_cases(), st.sampled_from([0.5, 0.7, 1.5, 2.5, -0.5, -1.5]))
def test_a_negative_cell_makes_a_fractional_norm_nan(case, p):
    x = values(case) * np.where(np.random.default_rng(case["seed"] + 1).random(case["shape"]) < 0.2, -1, 1)
    x = x.astype(case["dtype"])
    y = lp(case, x, p)
    expected = reference(case, x, p)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    np.testing.assert_allclose(y, expected, rtol=RTOL[case["dtype"]], atol=0)


@given(sided_cases(), st.sampled_from([3.0, 5.0]))
def test_odd_norms_keep_the_sign_and_a_negative_sum_has_no_root(case, p):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["shape"]).astype(case["dtype"])
    y = lp(case, x, p)
    expected = reference(case, x, p)
    # Where the terms nearly cancel the sign of the sum is the rounding's: only
    # windows whose sum is not tiny next to the sum of |x|^p are compared.
    magnitude = reference(case, np.abs(x), p) ** p
    signed_sum = _power_sums(case, x.astype(np.float64), p)
    clear = np.abs(signed_sum) > 1e-3 * magnitude
    np.testing.assert_array_equal(np.isnan(y)[clear], (signed_sum < 0)[clear])
    np.testing.assert_allclose(y[clear], expected[clear], rtol=200 * RTOL[case["dtype"]], atol=0)


def _power_sums(case, x, p):
    """The scaled window sums of x^p (signed), by the reference's windows: the
    p = 1 pooling of x^p."""
    return pool(np.power(x, p), "lp", case["kernel"], p=1.0, **args(case))


# ------------------------------------------------------------ special values


SPECIALS = [0.0, -0.0, math.inf, -math.inf, math.nan, 1.0, -1.0, 2.0, -3.0, 1e30, -1e30, 1e-40, -1e-40,
            1e-310, 0.5, 7.0]


def c_pow(x, p):
    """C's ``pow`` (what Lp pooling's powers follow; NumPy and PyTorch take
    ``p = +-0.5`` as a square root, NaN at ``-inf`` where C's is ``inf`` or 0)."""
    odd = float(p).is_integer() and int(p) % 2 == 1
    if x == 0 and p < 0:  # Python raises; C has a pole
        return math.copysign(math.inf, x) if odd else math.inf
    try:
        return math.pow(x, p)
    except ValueError:  # a negative base and a fractional power
        return math.nan
    except OverflowError:
        return -math.inf if odd and x < 0 else math.inf


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [2.5, 0.5, -0.5, 3.0, 5.0, 6.0, -1.0, -1.5, -2.0, 7.0])
@pytest.mark.parametrize("kernel", [1, 2])
def test_special_values_are_those_of_pow_in_the_element_type(dtype, p, kernel):
    """Every special value alone (kernel 1: ``(x^p)^(1/p)``) and beside each
    other (kernel 2): each term ``x^p`` as C's ``pow`` (correctly rounded to the
    element type), summed in the element type from +0, then the root (for p = 3
    the cube root, with C's ``pow(s, 1/3)`` for negative and infinite sums):
    signed zeros, infinities, NaN, a term or a sum overflowing, subnormals."""
    specials = np.array(SPECIALS, dtype=dtype)
    cells = specials if kernel == 1 else np.array([(a, b) for a in specials for b in specials], dtype).ravel()
    y = fc.lp_pool1d(cells.reshape(1, 1, -1), p, kernel)[0, 0]
    pt = float(dtype(p))
    with np.errstate(all="ignore"):
        terms = np.array([c_pow(float(c), pt) for c in cells]).astype(dtype).reshape(-1, kernel)
        sums = terms.sum(axis=1, dtype=dtype, initial=dtype(0))
        if p == 3.0:  # the exact cube root, as C's pow(s, 1/3) for the special values
            want = np.where(sums == -np.inf, np.inf, np.where(sums < 0, np.nan, np.cbrt(sums))).astype(dtype)
        else:
            want = np.array([c_pow(float(s), float(dtype(1.0 / p))) for s in sums]).astype(dtype)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(want))
    numbers = ~np.isnan(want)  # (a NaN's sign is no one's business)
    np.testing.assert_array_equal(np.signbit(y)[numbers], np.signbit(want)[numbers])
    # finite: within a few units of the last place (subnormals: of the smallest)
    finite = np.isfinite(want)
    tiny = np.finfo(dtype).smallest_subnormal * 4
    np.testing.assert_allclose(y[finite], want[finite], rtol=8 * np.finfo(dtype).eps, atol=tiny)


def test_one_to_the_any_power_is_exactly_one():
    for dtype in (np.float32, np.float64):
        x = np.ones((1, 1, 4), dtype)
        for p in NORMS:
            np.testing.assert_array_equal(fc.lp_pool1d(x, p, 1), x)


# ------------------------------------------------------------ backward


@given(sided_cases(), st.sampled_from([0.5, 0.7, 1.5, 5.0, 6.0, -0.5, -1.0, -1.5, -2.0]))
def test_backward_matches_finite_differences(case, p):
    case = dict(case, dtype=np.float64)
    x = values(case, low=0.5, high=2.0, zeros=False)
    y = lp(case, x, p)
    rng = np.random.default_rng(case["seed"] + 2)
    g, v = rng.standard_normal(y.shape), rng.standard_normal(x.shape)
    gx = lp_backward(case, g, x, p)
    eps = 1e-6
    directional = np.vdot(g, (lp(case, x + eps * v, p) - lp(case, x - eps * v, p)) / (2 * eps))
    np.testing.assert_allclose(np.vdot(gx, v), directional, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.5, 0.7])
def test_a_zero_window_has_a_zero_gradient_even_where_x_to_the_p_minus_1_is_infinite(dtype, p):
    x = np.array([[[0.0, 0.0, 1.0, 0.0, 4.0, 9.0]]], dtype)
    g = fc.lp_pool1d_backward(np.ones((1, 1, 3), dtype), x, p, 2)[0, 0]
    # window 0 sums to 0: nothing (PyTorch's ReLU); window 1's zero cell: 0^(p-1) is infinite
    np.testing.assert_array_equal(g[:2], [0.0, 0.0])
    assert g[3] == math.inf
    s = 4.0 ** p + 9.0 ** p
    expected = [s ** (1 / p - 1) * 4.0 ** (p - 1), s ** (1 / p - 1) * 9.0 ** (p - 1)]
    np.testing.assert_allclose(g[4:], expected, rtol=RTOL[dtype] * 4)
    np.testing.assert_allclose(g[2], 1.0, rtol=RTOL[dtype])


# ------------------------------------------------------------ threads and SIMD paths


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_are_bit_identical_for_any_thread_count(threads, dtype, restore_threads):
    rng = np.random.default_rng(11)
    x = np.abs(rng.standard_normal((4, 16, 40, 40))).astype(dtype)
    g = rng.standard_normal((4, 16, 20, 20)).astype(dtype)

    def outputs():
        return (fc.lp_pool2d(x, 1.5, 2), fc.lp_pool2d(x, 3.0, 3, 2, False, 1), fc.lp_pool2d(x, 5.0, 3, 1),
                fc.lp_pool2d_backward(g, x, 0.7, 2))

    fc.set_num_threads(1)
    reference_outputs = outputs()
    fc.set_num_threads(threads)
    for a, b in zip(reference_outputs, outputs()):
        np.testing.assert_array_equal(a, b)


@pytest.fixture
def restore_simd():
    before = fc.get_simd()
    yield before
    fc.set_simd(before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [1.5, 0.7, 3.0, 5.0, 0.5, -1.0])
def test_every_simd_path_is_within_the_reference_tolerance(restore_simd, dtype, p):
    """The paths differ (fused or separate multiply-adds in the polynomials, the
    AVX-512 exponent instructions) but each is accurate: against the float64
    reference, windows overlapping (3, stride 1) and not (2)."""
    rng = np.random.default_rng(4)
    x = np.abs(rng.standard_normal((2, 5, 13, 17))).astype(dtype)
    x[0, 0, :3, :3] = 0.0
    g = rng.standard_normal((2, 5, 6, 8)).astype(dtype)
    for path in SUPPORTED:
        fc.set_simd(path)
        for kernel, stride in [(2, 2), (3, 1)]:
            np.testing.assert_allclose(fc.lp_pool2d(x, p, kernel, stride),
                                       pool(x, "lp", kernel, stride, p=p), rtol=RTOL[dtype], atol=0,
                                       err_msg=f"{path} kernel {kernel}")
        got = fc.lp_pool2d_backward(g, x, p, 2)
        if path == SUPPORTED[0]:
            first = got
        np.testing.assert_allclose(got, first, rtol=16 * RTOL[dtype], atol=0, err_msg=path)


# ------------------------------------------------------------ PyTorch parity


@pytest.mark.parametrize("p", [0.5, 0.7, 1.5, 2.5, 5.0, 6.0, -0.5, -1.0, -2.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_and_backward_match_pytorch(p, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(int(abs(p) * 10))
    x = rng.standard_normal((2, 3, 11, 9)).astype(dtype)
    if not float(p).is_integer():
        x = np.abs(x) + dtype(0.1)
    t = torch.tensor(x, requires_grad=True)
    ref = torch.nn.functional.lp_pool2d(t, p, 3, 2, ceil_mode=True)
    g = rng.standard_normal(tuple(ref.shape)).astype(dtype)
    ref.backward(torch.tensor(g))
    got = fc.lp_pool2d(x, p, 3, 2, True)
    want = ref.detach().numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=50 * RTOL[dtype], atol=0)
    grad = fc.lp_pool2d_backward(g, x, p, 3, 2, True)
    clear = np.isfinite(t.grad.numpy())
    np.testing.assert_allclose(grad[clear], t.grad.numpy()[clear], rtol=1e-3 if dtype == np.float32 else 1e-9,
                               atol=1e-5 if dtype == np.float32 else 1e-12)
