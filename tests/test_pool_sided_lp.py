"""Per-side and "same" padding for max/average/Lp pooling, dilated average
pooling and Lp pooling (issue 20), against the plain NumPy reference in
tests/support/sided_pool_reference.py, plus the properties that tie them to
ordinary pooling."""

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import ferroconv as fc
from pool_strategies import sided_cases, with_layout
from sided_pool_reference import out_len, pool, sides

def make_input(case, positive=False):
    rng = np.random.default_rng(case["seed"])
    x = rng.uniform(0.5, 2.0, case["shape"]) if positive else rng.standard_normal(case["shape"])
    return x


def user_input(case, x):
    """``x`` in the case's dtype, layout and batching."""
    arr = x.astype(case["dtype"])
    if not case["batched"]:
        arr = arr[0]
    return with_layout(arr, case["layout"])


def tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-11)


def call(name, case, *args, **kwargs):
    return getattr(fc, f"{name}{case['rank']}d")(*args, **kwargs)


def window_args(case):
    return dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"],
                ceil_mode=case["ceil_mode"])


def expect(case, y, expected):
    if not case["batched"]:
        expected = expected[0]
    assert y.dtype == case["dtype"] and y.shape == expected.shape
    np.testing.assert_allclose(y, expected, **tol(case["dtype"]))


# ------------------------------------------------------------- forward vs the reference


@given(sided_cases())
def test_max_pool_with_any_padding_matches_the_reference(case):
    x = make_input(case)
    y = call("max_pool", case, user_input(case, x), case["kernel"], **window_args(case))
    expect(case, y, pool(x.astype(case["dtype"]), "max", case["kernel"], **window_args(case)))


@given(sided_cases(), st.booleans())
def test_avg_pool_with_any_padding_and_dilation_matches_the_reference(case, include):
    x = make_input(case)
    y = call("avg_pool", case, user_input(case, x), case["kernel"], count_include_pad=include, **window_args(case))
    expect(case, y, pool(x.astype(case["dtype"]), "avg", case["kernel"], count_include_pad=include,
                         **window_args(case)))


@given(sided_cases(), st.sampled_from([1.0, 2.0, 3.0, 1.5, -1.0]))
def test_lp_pool_matches_the_reference(case, p):
    x = make_input(case, positive=p != 2.0 and p != 3.0)
    args = window_args(case)
    y = call("lp_pool", case, user_input(case, x), p, case["kernel"], args["stride"], args["ceil_mode"],
             args["padding"], args["dilation"])
    expected = pool(x.astype(case["dtype"]), "lp", case["kernel"], p=p, **args)
    if not case["batched"]:
        expected = expected[0]
    assert y.dtype == case["dtype"] and y.shape == expected.shape
    # odd powers of negative values: NaN where PyTorch's is NaN
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    np.testing.assert_allclose(np.nan_to_num(y), np.nan_to_num(expected), rtol=1e-4 if case["dtype"] == np.float32
                               else 1e-10, atol=1e-5 if case["dtype"] == np.float32 else 1e-10)


def test_dilation_one_is_todays_average_pooling_bit_for_bit():
    x = np.random.default_rng(3).standard_normal((2, 3, 9, 11)).astype(np.float32)
    for kwargs in (dict(padding=1), dict(padding=1, ceil_mode=True, count_include_pad=False), dict(stride=2)):
        np.testing.assert_array_equal(fc.avg_pool2d(x, 3, dilation=1, **kwargs), fc.avg_pool2d(x, 3, **kwargs))
        np.testing.assert_array_equal(fc.avg_pool2d(x, 3, dilation=(1, 1), **kwargs),
                                      fc.avg_pool2d(x, 3, **kwargs))


# ----------------------------------------------------------------- properties


@st.composite
def floor_cases(draw):
    case = draw(sided_cases(ceil=False))
    assume(case["padding"] != "valid")
    return case


@given(floor_cases())
def test_per_side_padding_is_an_explicit_pad_then_valid_pooling(case):
    x = make_input(case)
    pads = sides(case["padding"], case["shape"][2:], case["kernel"], case["stride"], case["dilation"])
    width = ((0, 0), (0, 0)) + tuple(pads)
    valid = dict(stride=case["stride"], padding=0, dilation=case["dilation"])
    fn = lambda name, a, **kw: getattr(fc, f"{name}{case['rank']}d")(a, case["kernel"], **valid, **kw)  # noqa: E731
    got_max = call("max_pool", case, x, case["kernel"], **window_args(case))
    np.testing.assert_array_equal(got_max, fn("max_pool", np.pad(x, width, constant_values=-np.inf)))
    # count_include_pad: zeros that count; otherwise the zero-padded sum over the
    # number of real cells (pooled ones)
    got_avg = call("avg_pool", case, x, case["kernel"], **window_args(case))
    np.testing.assert_allclose(got_avg, fn("avg_pool", np.pad(x, width)), rtol=1e-12, atol=1e-12)
    got_valid = call("avg_pool", case, x, case["kernel"], count_include_pad=False, **window_args(case))
    sums = fn("avg_pool", np.pad(x, width), divisor_override=1)
    counts = fn("avg_pool", np.pad(np.ones_like(x), width), divisor_override=1)
    np.testing.assert_allclose(got_valid, sums / counts, rtol=1e-12, atol=1e-12)


@given(sided_cases())
def test_lp_of_p_one_is_the_window_sum_and_large_p_tends_to_the_max(case):
    x = make_input(case, positive=True)
    args = window_args(case)
    lp = lambda p, a: call("lp_pool", case, a, p, case["kernel"], args["stride"], args["ceil_mode"],  # noqa: E731
                           args["padding"], args["dilation"])
    sums = call("avg_pool", case, x, case["kernel"], divisor_override=1, **args)
    if not case["ceil_mode"]:  # PyTorch scales the ceil-mode windows hanging over the end
        np.testing.assert_allclose(lp(1.0, x), sums, rtol=1e-12)
        # p = 1 sums x itself, sign included (PyTorch's x.pow(1)), not |x|
        np.testing.assert_allclose(lp(1.0, -x), -sums, rtol=1e-12)
    top = call("max_pool", case, x, case["kernel"], **args)
    big = lp(64.0, x)
    cells = int(np.prod(case["kernel"]))
    assert np.all(big >= top * (1 - 1e-12)) and np.all(big <= top * cells ** (1 / 64) * (1 + 1e-12))
    np.testing.assert_array_equal(lp(math.inf, x), top)
    np.testing.assert_array_equal(lp(-math.inf, x), -call("max_pool", case, -x, case["kernel"], **args))


@given(sided_cases())
def test_avg_pool_backward_is_the_adjoint_of_the_forward(case):
    x = make_input(case)
    args = window_args(case)
    y = call("avg_pool", case, x, case["kernel"], **args)
    g = np.random.default_rng(case["seed"] + 1).standard_normal(y.shape)
    gx = getattr(fc, f"avg_pool{case['rank']}d_backward")(g, x.shape, case["kernel"], **args)
    assert gx.shape == x.shape
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, gx), rtol=1e-10, atol=1e-10)


@given(sided_cases(), st.sampled_from([1.0, 2.0, 3.0, 2.5]))
def test_lp_pool_backward_matches_finite_differences(case, p):
    x = make_input(case, positive=True)
    args = window_args(case)
    lp = lambda a: call("lp_pool", case, a, p, case["kernel"], args["stride"], args["ceil_mode"],  # noqa: E731
                        args["padding"], args["dilation"])
    y = lp(x)
    rng = np.random.default_rng(case["seed"] + 2)
    g, v = rng.standard_normal(y.shape), rng.standard_normal(x.shape)
    gx = getattr(fc, f"lp_pool{case['rank']}d_backward")(g, x, p, case["kernel"], args["stride"],
                                                          args["ceil_mode"], args["padding"], args["dilation"])
    eps = 1e-6
    directional = np.vdot(g, (lp(x + eps * v) - lp(x - eps * v)) / (2 * eps))
    np.testing.assert_allclose(np.vdot(gx, v), directional, rtol=1e-6, atol=1e-6)


def test_lp_gradient_of_a_zero_window_is_zero_as_pytorch():
    x = np.zeros((1, 1, 4))
    x[0, 0, 2:] = [1.0, -2.0]
    g = fc.lp_pool1d_backward(np.ones((1, 1, 2)), x, 2, 2)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g[0, 0], [0, 0, 1 / math.sqrt(5), -2 / math.sqrt(5)])


@pytest.mark.parametrize("threads", [1, 2])
def test_results_are_bit_identical_for_any_thread_count(threads, restore_threads):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4, 16, 40, 40))
    fc.set_num_threads(1)
    pads = ((1, 2), (2, 0))
    reference = (fc.max_pool2d(x, 3, 2, pads), fc.avg_pool2d(x, 3, 2, "same", dilation=2),
                 fc.lp_pool2d(np.abs(x), 3.0, 3, 2, False, pads, 2),
                 fc.lp_pool2d_backward(np.ones((4, 16, 20, 20)), x, 2, 3, 2, False, "same"))
    fc.set_num_threads(threads)
    again = (fc.max_pool2d(x, 3, 2, pads), fc.avg_pool2d(x, 3, 2, "same", dilation=2),
             fc.lp_pool2d(np.abs(x), 3.0, 3, 2, False, pads, 2),
             fc.lp_pool2d_backward(np.ones((4, 16, 20, 20)), x, 2, 3, 2, False, "same"))
    for a, b in zip(reference, again):
        np.testing.assert_array_equal(a, b)


def test_global_lp_pool_is_the_norm_of_each_plane():
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 5))
    got = fc.global_lp_pool(x, 2)
    assert got.shape == (2, 3, 1, 1)
    np.testing.assert_allclose(got[..., 0, 0], np.sqrt((x ** 2).sum(axis=(2, 3))))
    a = np.abs(x)
    np.testing.assert_allclose(fc.global_lp_pool(a, 3, keepdims=False), np.cbrt((a ** 3).sum(axis=(2, 3))))
    # PyTorch's sign rule: a negative sum of cubes has no real cube root here
    negative = (x ** 3).sum(axis=(2, 3)) < 0
    assert np.array_equal(np.isnan(fc.global_lp_pool(x, 3, keepdims=False)), negative)


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("padding, message", [
    ((1, 2, 3), "padding must be an int or a tuple of 2 ints"),
    (((0, 1), (1,)), "padding given as per-side pairs must be 2 (lo, hi) pairs"),
    (((0, 1), (0, 1, 2)), "padding given as per-side pairs"),
    (((0, -1), (0, 0)), "padding must be >= 0"),
    (-1, "padding must be >= 0"),
    ("smae", "padding must be an int, a tuple of ints, a tuple of (lo, hi) pairs, 'valid', 'same'"),
    ("SAME_UPPER", "'same_lower'"),
    (((0, 3), (0, 0)), "padding ((0, 3), (0, 0)) must be smaller than the dilated kernel size (3, 3)"),
    (2, "padding (2, 2) must be at most half the kernel size (3, 3)"),
])
@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d", "lp_pool2d"])
def test_bad_padding_is_a_value_error_naming_op_and_argument(op, padding, message):
    x = np.ones((1, 1, 6, 6))
    args = (2.0, 3) if op == "lp_pool2d" else (3,)
    with pytest.raises(ValueError) as info:
        getattr(fc, op)(x, *args, padding=padding) if op != "lp_pool2d" else fc.lp_pool2d(x, *args, padding=padding)
    assert str(info.value).startswith(f"{op}: ") and message in str(info.value)


def test_the_old_misleading_message_is_gone():
    out = fc.max_pool2d(np.ones((1, 1, 4, 4)), 2, padding=((0, 1), (0, 1)))
    assert out.shape == (1, 1, 2, 2)


def test_a_window_entirely_in_the_padding_is_an_error_not_minus_inf():
    # kernel 2, dilation 3, one cell, padding (2, 2): taps -2 and 1 miss the input
    for op in ("max_pool1d", "avg_pool1d"):
        with pytest.raises(ValueError, match="entirely in the padding"):
            getattr(fc, op)(np.ones((1, 1, 1)), 2, 1, padding=((2, 2),), dilation=3)
    with pytest.raises(ValueError, match="entirely in the padding"):
        fc.lp_pool1d(np.ones((1, 1, 1)), 2, 2, 1, padding=((2, 2),), dilation=3)


def test_norm_type_zero_and_non_numbers_are_refused():
    with pytest.raises(ValueError, match="lp_pool2d: norm_type must be a nonzero number"):
        fc.lp_pool2d(np.ones((1, 1, 4, 4)), 0, 2)
    with pytest.raises(TypeError, match="lp_pool2d: norm_type must be a number"):
        fc.lp_pool2d(np.ones((1, 1, 4, 4)), "2", 2)


# --------------------------------------------------- ONNX backend node cases

# The attributes of ONNX's backend node tests for AveragePool, MaxPool and
# LpPool (onnx/backend/test/case/node/{averagepool,maxpool,lppool}.py), each
# re-expressed with ferroconv's arguments and checked against our reference
# (their expected arrays are not used). pads are ONNX's [begins..., ends...].
ONNX_CASES = [
    # (name, op, x shape, kernel, strides, pads or auto_pad, dilations, ceil_mode, count_include_pad, p)
    ("averagepool_2d_precomputed_pads", "avg", (1, 1, 5, 5), (5, 5), None, [2, 2, 2, 2], None, False, 0, None),
    ("averagepool_2d_precomputed_pads_count_include_pad", "avg", (1, 1, 5, 5), (5, 5), None, [2, 2, 2, 2], None,
     False, 1, None),
    ("averagepool_2d_precomputed_strides", "avg", (1, 1, 5, 5), (2, 2), (2, 2), None, None, False, 0, None),
    ("averagepool_2d_precomputed_same_upper", "avg", (1, 1, 5, 5), (3, 3), (2, 2), "SAME_UPPER", None, False, 0,
     None),
    ("averagepool_1d_default", "avg", (1, 3, 32), (2,), None, None, None, False, 0, None),
    ("averagepool_2d_default", "avg", (1, 3, 32, 32), (2, 2), None, None, None, False, 0, None),
    ("averagepool_3d_default", "avg", (1, 3, 32, 32, 32), (2, 2, 2), None, None, None, False, 0, None),
    ("averagepool_2d_same_upper", "avg", (1, 3, 32, 32), (2, 2), None, "SAME_UPPER", None, False, 0, None),
    ("averagepool_2d_same_lower", "avg", (1, 3, 32, 32), (2, 2), None, "SAME_LOWER", None, False, 0, None),
    ("averagepool_2d_pads", "avg", (1, 3, 28, 28), (3, 3), None, [2, 2, 2, 2], None, False, 0, None),
    ("averagepool_2d_pads_count_include_pad", "avg", (1, 3, 28, 28), (3, 3), None, [2, 2, 2, 2], None, False, 1,
     None),
    ("averagepool_2d_strides", "avg", (1, 3, 32, 32), (5, 5), (3, 3), None, None, False, 0, None),
    ("averagepool_2d_ceil", "avg", (1, 1, 4, 4), (3, 3), (2, 2), None, None, True, 0, None),
    ("averagepool_2d_ceil_last_window_starts_on_pad", "avg", (1, 1, 2, 2), (3, 3), (2, 2), [1, 1, 1, 1], None, True,
     1, None),
    ("averagepool_2d_dilations", "avg", (1, 1, 4, 4), (2, 2), (1, 1), None, (2, 2), True, 0, None),
    ("averagepool_3d_dilations", "avg", (1, 1, 4, 4, 4), (2, 2, 2), (1, 1, 1), None, (2, 2, 2), True, 0, None),
    *[(f"averagepool_3d_dilations_large_count_include_pad_is_{c}_ceil_mode_is_{m}", "avg", (1, 1, 32, 32, 32),
       (5, 5, 5), (3, 3, 3), None, (2, 2, 2), m, c, None) for c in (0, 1) for m in (True, False)],
    ("maxpool_2d_precomputed_pads", "max", (1, 1, 5, 5), (5, 5), None, [2, 2, 2, 2], None, False, 0, None),
    ("maxpool_2d_precomputed_strides", "max", (1, 1, 5, 5), (2, 2), (2, 2), None, None, False, 0, None),
    ("maxpool_2d_precomputed_same_upper", "max", (1, 1, 5, 5), (3, 3), (2, 2), "SAME_UPPER", None, False, 0, None),
    ("maxpool_1d_default", "max", (1, 3, 32), (2,), None, None, None, False, 0, None),
    ("maxpool_2d_default", "max", (1, 3, 32, 32), (2, 2), None, None, None, False, 0, None),
    ("maxpool_3d_default", "max", (1, 3, 32, 32, 32), (2, 2, 2), None, None, None, False, 0, None),
    ("maxpool_2d_same_upper", "max", (1, 3, 32, 32), (2, 2), None, "SAME_UPPER", None, False, 0, None),
    ("maxpool_2d_same_lower", "max", (1, 3, 32, 32), (2, 2), None, "SAME_LOWER", None, False, 0, None),
    ("maxpool_2d_pads", "max", (1, 3, 28, 28), (3, 3), None, [2, 2, 2, 2], None, False, 0, None),
    ("maxpool_2d_strides", "max", (1, 3, 32, 32), (5, 5), (3, 3), None, None, False, 0, None),
    ("maxpool_2d_ceil", "max", (1, 1, 4, 4), (3, 3), (2, 2), None, None, True, 0, None),
    ("maxpool_2d_ceil_output_size_reduce_by_one", "max", (1, 1, 2, 2), (1, 1), (2, 2), None, None, True, 0, None),
    ("maxpool_2d_dilations", "max", (1, 1, 4, 4), (2, 2), (1, 1), None, (2, 2), False, 0, None),
    ("maxpool_3d_dilations", "max", (1, 1, 4, 4, 4), (2, 2, 2), (1, 1, 1), None, (2, 2, 2), False, 0, None),
    ("maxpool_3d_dilations_use_ref_impl_large", "max", (1, 1, 32, 32, 32), (5, 5, 5), (3, 3, 3), None, (2, 2, 2),
     True, 0, None),
    ("lppool_1d_default", "lp", (1, 3, 32), (2,), (1,), None, None, False, 0, 2),
    ("lppool_2d_default", "lp", (1, 3, 32, 32), (2, 2), None, None, None, False, 0, 4),
    ("lppool_3d_default", "lp", (1, 3, 32, 32, 32), (2, 2, 2), None, None, None, False, 0, 3),
    ("lppool_2d_same_upper", "lp", (1, 3, 32, 32), (2, 2), None, "SAME_UPPER", None, False, 0, 2),
    ("lppool_2d_same_lower", "lp", (1, 3, 32, 32), (2, 2), None, "SAME_LOWER", None, False, 0, 4),
    ("lppool_2d_pads", "lp", (1, 3, 28, 28), (3, 3), None, [2, 2, 2, 2], None, False, 0, 3),
    ("lppool_2d_strides", "lp", (1, 3, 32, 32), (5, 5), (3, 3), None, None, False, 0, 2),
    ("lppool_2d_dilations", "lp", (1, 1, 4, 4), (2, 2), (1, 1), None, (2, 2), False, 0, 2),
]


def onnx_padding(pads, rank):
    if pads is None:
        return 0
    if isinstance(pads, str):
        return {"SAME_UPPER": "same", "SAME_LOWER": "same_lower", "VALID": "valid"}[pads]
    return tuple((pads[a], pads[a + rank]) for a in range(rank))


@pytest.mark.parametrize("case", ONNX_CASES, ids=[c[0] for c in ONNX_CASES])
def test_onnx_backend_node_cases_are_expressible_and_agree(case):
    name, kind, shape, kernel, strides, pads, dilations, ceil_mode, include, p = case
    rank = len(kernel)
    # ONNX's default stride is 1 (PyTorch's is the kernel size)
    strides = strides or (1,) * rank
    dilations = dilations or (1,) * rank
    padding = onnx_padding(pads, rank)
    rng = np.random.default_rng(len(name))
    x = (np.arange(1, 26, dtype=np.float32).reshape(shape) if "precomputed" in name
         else rng.standard_normal(shape).astype(np.float32))
    if kind == "lp":
        x_onnx = np.abs(x)  # ONNX's LpPool takes |x|^p
        got = getattr(fc, f"lp_pool{rank}d")(x_onnx, p, kernel, strides, ceil_mode, padding, dilations)
        expected = pool(x_onnx, "lp", kernel, strides, padding, dilations, ceil_mode, p=p)
    elif kind == "avg":
        got = getattr(fc, f"avg_pool{rank}d")(x, kernel, strides, padding, ceil_mode, bool(include),
                                              dilation=dilations)
        expected = pool(x, "avg", kernel, strides, padding, dilations, ceil_mode, count_include_pad=bool(include))
    else:
        got = getattr(fc, f"max_pool{rank}d")(x, kernel, strides, padding, dilations, ceil_mode)
        expected = pool(x, "max", kernel, strides, padding, dilations, ceil_mode)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_onnx_precomputed_same_upper_average_by_hand():
    # 5x5 of 1..25, kernel 3, stride 2, SAME_UPPER: pads (1, 1) per axis, the
    # corner window reads x[0:2, 0:2] = 1, 2, 6, 7 (count_include_pad=0)
    x = np.arange(1, 26, dtype=np.float64).reshape(1, 1, 5, 5)
    got = fc.avg_pool2d(x, 3, 2, "same", count_include_pad=False)
    assert got.shape == (1, 1, 3, 3)
    assert got[0, 0, 0, 0] == (1 + 2 + 6 + 7) / 4
    assert got[0, 0, 1, 1] == x[0, 0, 1:4, 1:4].mean()


# ------------------------------------------------------------- PyTorch parity


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, 1.5, math.inf])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_lp_pool_and_its_gradient_match_pytorch(rank, p, ceil_mode):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(rank)
    x = rng.standard_normal((2, 3) + (7,) * rank)
    if p not in (2.0, math.inf):
        x = np.abs(x) + 0.1  # no NaN roots of negative sums
    t = torch.tensor(x, requires_grad=True)
    ref = getattr(torch.nn.functional, f"lp_pool{rank}d")(t, p, 3, 2, ceil_mode)
    g = rng.standard_normal(tuple(ref.shape))
    ref.backward(torch.tensor(g))
    got = getattr(fc, f"lp_pool{rank}d")(x, p, 3, 2, ceil_mode)
    np.testing.assert_allclose(got, ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    grad = getattr(fc, f"lp_pool{rank}d_backward")(g, x, p, 3, 2, ceil_mode)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_padded_pooling_matches_pytorch_on_an_explicit_pad():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = np.random.default_rng(5).standard_normal((2, 3, 9, 8))
    pads = ((2, 0), (1, 2))
    t = torch.tensor(x)
    flat = (pads[1][0], pads[1][1], pads[0][0], pads[0][1])
    np.testing.assert_array_equal(fc.max_pool2d(x, 3, 2, pads),
                                  F.max_pool2d(F.pad(t, flat, value=-math.inf), 3, 2).numpy())
    np.testing.assert_allclose(fc.avg_pool2d(x, 3, 2, pads), F.avg_pool2d(F.pad(t, flat), 3, 2).numpy(),
                               rtol=1e-12)
