"""bfloat16 and float16: every convolution and pooling operator takes 16-bit arrays,
returns the input's dtype and accumulates in float32.

The contract (docs/precision.md, "16-bit storage") is checked two ways:
- *exactly*: the 16-bit result equals the float32 result on the upcast inputs,
  rounded once to the 16-bit type (bit for bit), for any thread count;
- *against float64*: each output's error is at most one final rounding plus the
  float32 accumulation error of its reduction, |got - ref| <= u16 |ref| +
  (1 + u16) gamma_n S + tiny, where u16 is the 16-bit unit roundoff, gamma_n =
  n u32 / (1 - n u32) for n summed terms and S the sum of the terms' magnitudes
  (the same sum over |x| and |w|), from a plain-loop float64 reference.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ferroconv as fc
import pool_reference as pref
import reference as ref
from strategies import conv_cases, scaled, transpose_cases, with_layout

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)
HALVES = (F16, BF16)
# unit roundoff (half an ulp of 1) and half the smallest subnormal, per type
U16 = {F16: 2.0**-11, BF16: 2.0**-8}
TINY = {F16: 2.0**-25, BF16: 2.0**-134}
U32 = 2.0**-24


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.uint16)


def assert_rounded_once(got: np.ndarray, wide: np.ndarray, dtype: np.dtype, what: str = "") -> None:
    """``got`` (16-bit) is ``wide`` (the float32 result) rounded once, bit for bit."""
    assert got.dtype == dtype, f"{what}: dtype {got.dtype} != {dtype}"
    assert wide.dtype == np.float32
    expected = wide.astype(dtype)
    assert got.shape == expected.shape
    same = (bits(got) == bits(expected)) | (np.isnan(got.astype(np.float32)) & np.isnan(wide))
    assert same.all(), f"{what}: {np.count_nonzero(~same)} values differ from the float32 result rounded once"


def assert_within_bound(got: np.ndarray, exact: np.ndarray, magnitude: np.ndarray, n: int,
                        dtype: np.dtype, what: str = "") -> None:
    """The documented error bound against the float64 reference ``exact``, with
    ``magnitude`` the same reduction over the terms' magnitudes and ``n`` terms."""
    u16 = U16[dtype]
    gamma = n * U32 / (1 - n * U32)
    bound = u16 * np.abs(exact) + (1 + u16) * gamma * magnitude + TINY[dtype]
    err = np.abs(got.astype(np.float64) - exact)
    worst = np.max(err - bound) if err.size else 0.0
    assert worst <= 0, f"{what}: error exceeds the bound by {worst:g}"


def half(dtype: np.dtype, a: np.ndarray) -> np.ndarray:
    return np.asarray(a).astype(dtype)


def wide(a: object) -> object:
    return None if a is None else np.asarray(a).astype(np.float32)


def as_half_case(case, dtype):
    """The case's arrays in ``dtype`` (values rounded, layouts kept)."""
    case.x = with_layout(half(dtype, case.x), case.layouts.get("x", "C"))
    case.weight = with_layout(half(dtype, case.weight), case.layouts.get("weight", "C"))
    if case.bias is not None:
        case.bias = half(dtype, case.bias)
    return case


# ---------------------------------------------------------------------------
# convolution: exact against the float32 path, bounded against float64
# ---------------------------------------------------------------------------


def runs_native_bf16(case, dtype, precision=None, pass_name="forward"):
    """Whether pass ``pass_name`` of ``case`` runs on the native bfloat16 kernel
    (its sums are float32 but pair by pair, so not the float32 path's bits)."""
    if dtype != BF16:
        return False
    x_shape = case.x.shape if case.batched else (1,) + case.x.shape
    plan = fc.explain_conv(x_shape, case.weight.shape, dtype="bfloat16", **case.kwargs(), precision=precision)
    return plan.pass_named(pass_name).algorithm.endswith("_bf16")


def assert_forward_within_bound(case, got, dtype, activation=None):
    kw = case.ref_kwargs()
    x64 = case.x_batched
    w64 = np.asarray(case.weight, np.float64)
    b64 = None if case.bias is None else np.asarray(case.bias, np.float64)
    exact = ref.conv_nd(x64, w64, b64, **kw)
    magnitude = ref.conv_nd(np.abs(x64), np.abs(w64), None if b64 is None else np.abs(b64), **kw)
    if activation == "relu":  # 1-Lipschitz: the bound of the sum carries over
        exact = np.maximum(exact, 0)
    got = got if case.batched else got[None]
    assert_within_bound(got, exact, magnitude, w64[0].size + (b64 is not None), dtype, repr(case))


@scaled(0.5)
@given(conv_cases(dtypes=(np.float32,)), st.sampled_from(HALVES), st.sampled_from([None, "relu"]),
       st.sampled_from(["default", "highest"]))
def test_conv_forward_is_the_float32_result_rounded_once(case, dtype, activation, precision):
    case = as_half_case(case, dtype)
    fn = getattr(fc, f"conv{case.rank}d")
    got = fn(case.x, case.weight, case.bias, **case.kwargs(), activation=activation, precision=precision)
    if runs_native_bf16(case, dtype, precision):
        assert got.dtype == dtype
        assert_forward_within_bound(case, got, dtype, activation)
        return
    f32 = fn(wide(case.x), wide(case.weight), wide(case.bias), **case.kwargs(), activation=activation,
             precision=precision)
    assert_rounded_once(got, f32, dtype, repr(case))


@scaled(0.5)
@given(conv_cases(dtypes=(np.float32,), padding_modes=("zeros",), groups_one=True), st.integers(0, 2**32 - 1))
def test_native_bfloat16_forward_is_within_the_bound(case, seed):
    # Layers whose plan is a GEMM (most zero-padded ones) run on the native
    # bfloat16 kernel where the CPU has it; the bound holds either way.
    case = as_half_case(case, BF16)
    got = getattr(fc, f"conv{case.rank}d")(case.x, case.weight, case.bias, **case.kwargs(), precision="highest")
    assert_forward_within_bound(case, got, BF16)


@scaled(0.5)
@given(conv_cases(dtypes=(np.float32,)), st.sampled_from(HALVES), st.integers(0, 2**32 - 1))
def test_conv_backward_is_the_float32_result_rounded_once(case, dtype, seed):
    case = as_half_case(case, dtype)
    g = half(dtype, np.random.default_rng(seed).standard_normal(case.out_shape))
    fn = getattr(fc, f"conv{case.rank}d_backward")
    got = fn(g, case.x, case.weight, **case.kwargs())
    f32 = fn(wide(g), wide(case.x), wide(case.weight), **case.kwargs())
    names = ("grad_x", "grad_weight", "grad_bias")
    native = {"grad_x": runs_native_bf16(case, dtype, pass_name="input_grad"),
              "grad_weight": runs_native_bf16(case, dtype, pass_name="weight_grad")}
    g64 = g.astype(np.float64) if case.batched else g.astype(np.float64)[None]
    w64 = np.asarray(case.weight, np.float64)
    for index, (name, a, b) in enumerate(zip(names, got, f32)):
        if native.get(name):
            # float32 sums on the bfloat16 kernel: within the bound of the rounding
            exact = ref.conv_nd_backward(g64, case.x_batched, w64, **case.ref_kwargs())[index]
            magnitude = ref.conv_nd_backward(np.abs(g64), np.abs(case.x_batched), np.abs(w64),
                                             **case.ref_kwargs())[index]
            if name == "grad_x":
                n = int(np.prod(w64.shape[2:])) * (w64.shape[0] // case.groups)
                a = a if case.batched else a[None]
            else:
                n = int(np.prod(g64.shape[2:])) * g64.shape[0]
            assert a.dtype == dtype
            assert_within_bound(a, exact, magnitude, n, dtype, f"{name} {case!r}")
            continue
        assert_rounded_once(a, b, dtype, f"{name} {case!r}")


@scaled(0.5)
@given(transpose_cases(dtypes=(np.float32,)), st.sampled_from(HALVES), st.integers(0, 2**32 - 1))
def test_conv_transpose_is_the_float32_result_rounded_once(case, dtype, seed):
    case = as_half_case(case, dtype)
    fn = getattr(fc, f"conv_transpose{case.rank}d")
    kwargs = case.kwargs()
    got = fn(case.x, case.weight, case.bias, **kwargs)
    assert_rounded_once(got, fn(wide(case.x), wide(case.weight), wide(case.bias), **kwargs), dtype)
    g = half(dtype, np.random.default_rng(seed).standard_normal(got.shape))
    bwd = getattr(fc, f"conv_transpose{case.rank}d_backward")
    for a, b in zip(bwd(g, case.x, case.weight, **kwargs), bwd(wide(g), wide(case.x), wide(case.weight), **kwargs)):
        assert_rounded_once(a, b, dtype, repr(case))


@scaled(0.5)
@given(conv_cases(dtypes=(np.float32,), padding_modes=("zeros",)), st.sampled_from(HALVES),
       st.integers(0, 2**32 - 1))
def test_conv_error_is_within_one_rounding_plus_float32_accumulation(case, dtype, seed):
    # precision="highest": plain sums only (Winograd's transforms have their own
    # bound, docs/precision.md), so the accumulation bound applies as written.
    case = as_half_case(case, dtype)
    kw = case.ref_kwargs()
    x64 = case.x_batched
    w64 = np.asarray(case.weight, np.float64)
    got = getattr(fc, f"conv{case.rank}d")(case.x, case.weight, case.bias, **case.kwargs(),
                                           precision="highest")
    assert_forward_within_bound(case, got, dtype)
    exact = ref.conv_nd(x64, w64, **kw)

    g = half(dtype, np.random.default_rng(seed).standard_normal(exact.shape))
    g64 = g.astype(np.float64)
    gx, gw, gb = getattr(fc, f"conv{case.rank}d_backward")(g if case.batched else g[0], case.x, case.weight,
                                                            **case.kwargs(), precision="highest")
    ex, ew, eb = ref.conv_nd_backward(g64, x64, w64, **kw)
    mx, mw, mb = ref.conv_nd_backward(np.abs(g64), np.abs(x64), np.abs(w64), **kw)
    gx = gx if case.batched else gx[None]
    out_cells = int(np.prod(exact.shape[2:])) * exact.shape[0]
    # a grad_x cell sums at most (C_out / groups) * kernel terms, a weight cell
    # N * output cells, a bias cell N * output cells
    taps = int(np.prod(w64.shape[2:])) * (w64.shape[0] // case.groups)
    assert_within_bound(gx, ex, mx, taps, dtype, f"grad_x {case!r}")
    assert_within_bound(gw, ew, mw, out_cells, dtype, f"grad_weight {case!r}")
    assert_within_bound(gb, eb, mb, out_cells, dtype, f"grad_bias {case!r}")


@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_large_reduction_stays_within_the_bound(dtype):
    # A reduction of 4608 terms (3x3 over 512 channels) of one sign: float32
    # accumulation keeps it to ~1 rounding, where 16-bit accumulation would lose
    # about log2(4608) bits.
    rng = np.random.default_rng(7)
    x = half(dtype, rng.uniform(0.5, 1.5, (1, 512, 6, 6)))
    w = half(dtype, rng.uniform(0.5, 1.5, (3, 512, 3, 3)))
    got = fc.conv2d(x, w, precision="highest")
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    exact = ref.conv_nd(x64, w64)
    assert_within_bound(got, exact, exact, w64[0].size, dtype)
    rel = np.max(np.abs(got.astype(np.float64) - exact) / exact)
    assert rel <= U16[dtype] * (1 + 1e-3)


# ---------------------------------------------------------------------------
# pooling: max exact, averages one rounding of the float32 result
# ---------------------------------------------------------------------------


@st.composite
def pool_inputs(draw):
    rank = draw(st.integers(1, 3))
    size = {1: 12, 2: 7, 3: 5}[rank]
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + tuple(
        draw(st.integers(3, size)) for _ in range(rank))
    seed = draw(st.integers(0, 2**32 - 1))
    kernel = draw(st.integers(1, 2))
    layout = draw(st.sampled_from(["C", "F", "strided", "negative", "readonly"]))
    dtype = draw(st.sampled_from(HALVES))
    # few distinct values, so ties between window cells are common
    values = np.random.default_rng(seed).integers(-4, 5, shape) * 0.37
    return rank, with_layout(half(dtype, values), layout), kernel, dtype


@scaled(0.5)
@given(pool_inputs(), st.booleans())
def test_max_pooling_is_exact_with_the_float32_indices(inputs, ceil_mode):
    rank, x, k, dtype = inputs
    pool = getattr(fc, f"max_pool{rank}d")
    values, indices = pool(x, k + 1, stride=k, ceil_mode=ceil_mode, return_indices=True)
    v32, i32 = pool(wide(x), k + 1, stride=k, ceil_mode=ceil_mode, return_indices=True)
    assert_rounded_once(values, v32, dtype)
    np.testing.assert_array_equal(indices, i32)
    # the reference: the first maximum of each window, exact in the 16-bit type
    ref_values, ref_indices = pref.max_pool(np.asarray(x, np.float64), (k + 1,) * rank, (k,) * rank,
                                            (0,) * rank, (1,) * rank, ceil_mode)
    np.testing.assert_array_equal(values.astype(np.float64), ref_values)
    np.testing.assert_array_equal(indices, ref_indices)
    grad = half(dtype, np.ones(values.shape))
    back = getattr(fc, f"max_pool{rank}d_backward")(grad, indices, x.shape)
    assert_rounded_once(back, getattr(fc, f"max_pool{rank}d_backward")(wide(grad), indices, x.shape), dtype)
    unpooled = getattr(fc, f"max_unpool{rank}d")(values, indices, k + 1, stride=k, output_size=x.shape[2:])
    assert_rounded_once(unpooled, getattr(fc, f"max_unpool{rank}d")(v32, i32, k + 1, stride=k,
                                                                      output_size=x.shape[2:]), dtype)
    av, ai = getattr(fc, f"adaptive_max_pool{rank}d")(x, 2, return_indices=True)
    bv, bi = getattr(fc, f"adaptive_max_pool{rank}d")(wide(x), 2, return_indices=True)
    assert_rounded_once(av, bv, dtype)
    np.testing.assert_array_equal(ai, bi)
    gv, gi = fc.global_max_pool(x, return_indices=True)
    hv, hi = fc.global_max_pool(wide(x), return_indices=True)
    assert_rounded_once(gv, hv, dtype)
    np.testing.assert_array_equal(gi, hi)


@scaled(0.5)
@given(pool_inputs(), st.booleans(), st.booleans())
def test_average_pooling_is_the_float32_result_rounded_once(inputs, ceil_mode, count_include_pad):
    rank, x, k, dtype = inputs
    kw = dict(stride=k, padding=(k + 1) // 2, ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    pool = getattr(fc, f"avg_pool{rank}d")
    got = pool(x, k + 1, **kw)
    f32 = pool(wide(x), k + 1, **kw)
    assert_rounded_once(got, f32, dtype)
    exact = pref.avg_pool(np.asarray(x, np.float64), (k + 1,) * rank, (k,) * rank, ((k + 1) // 2,) * rank,
                          ceil_mode, count_include_pad)
    magnitude = pref.avg_pool(np.abs(np.asarray(x, np.float64)), (k + 1,) * rank, (k,) * rank,
                              ((k + 1) // 2,) * rank, ceil_mode, count_include_pad)
    assert_within_bound(got, exact, magnitude, (k + 1) ** rank + 1, dtype)
    g = half(dtype, np.ones(got.shape) * 0.3)
    back = getattr(fc, f"avg_pool{rank}d_backward")(g, x.shape, k + 1, **kw)
    assert_rounded_once(back, getattr(fc, f"avg_pool{rank}d_backward")(wide(g), x.shape, k + 1, **kw), dtype)
    for name in (f"adaptive_avg_pool{rank}d",):
        a, b = getattr(fc, name)(x, 2), getattr(fc, name)(wide(x), 2)
        assert_rounded_once(a, b, dtype, name)
        ga = getattr(fc, name + "_backward")(a, x.shape)
        gb = getattr(fc, name + "_backward")(wide(a), x.shape)
        assert_rounded_once(ga, gb, dtype, name + "_backward")
    assert_rounded_once(fc.global_avg_pool(x), fc.global_avg_pool(wide(x)), dtype, "global_avg_pool")


# ---------------------------------------------------------------------------
# threads, out=, residuals, layouts, errors, optional ml_dtypes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_results_are_bit_identical_for_any_thread_count(dtype):
    rng = np.random.default_rng(3)
    x = half(dtype, rng.standard_normal((4, 32, 20, 20)))
    w = half(dtype, rng.standard_normal((48, 32, 3, 3)))
    threads = fc.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            fc.set_num_threads(n)
            y = fc.conv2d(x, w, padding=1)
            grads = fc.conv2d_backward(y, x, w, padding=1)
            strided = fc.conv2d(x, w, stride=2, padding=1)  # the native bfloat16 kernel
            results.append([bits(y), bits(strided)] + [bits(g) for g in grads] + [bits(fc.avg_pool2d(x, 3, 2))])
    finally:
        fc.set_num_threads(threads)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_out_and_residual_are_rounded_once(dtype):
    rng = np.random.default_rng(4)
    x = half(dtype, rng.standard_normal((2, 3, 8, 8)))
    w = half(dtype, rng.standard_normal((5, 3, 3, 3)))
    b = half(dtype, rng.standard_normal(5))
    r = half(dtype, rng.standard_normal((2, 5, 8, 8)))
    f32 = fc.conv2d(wide(x), wide(w), wide(b), padding=1, activation="relu", residual=wide(r))
    assert_rounded_once(fc.conv2d(x, w, b, padding=1, activation="relu", residual=r), f32, dtype)
    out = np.empty((2, 5, 8, 8), dtype)
    assert fc.conv2d(x, w, b, padding=1, activation="relu", residual=r, out=out) is out
    assert_rounded_once(out, f32, dtype, "out=")
    acc = r.copy()
    fc.conv2d(x, w, b, padding=1, activation="relu", residual=acc, out=acc)
    assert_rounded_once(acc, f32, dtype, "out=residual")


def test_mixed_dtypes_are_refused_naming_the_argument():
    x = np.ones((1, 2, 5, 5), BF16)
    with pytest.raises(TypeError, match="weight"):
        fc.conv2d(x, np.ones((3, 2, 3, 3), np.float32))
    with pytest.raises(TypeError, match="bias"):
        fc.conv2d(x, np.ones((3, 2, 3, 3), BF16), np.ones(3, F16))


def test_explain_accepts_16_bit_dtypes():
    plan = fc.explain_conv((1, 3, 8, 8), (4, 3, 3, 3), dtype="bfloat16")
    assert plan.dtype == "bfloat16" and plan.passes
    assert fc.explain_pool("max", (1, 3, 8, 8), 2, dtype=np.float16) is not None


def test_import_and_float16_work_without_ml_dtypes():
    code = textwrap.dedent("""
        import sys
        sys.modules["ml_dtypes"] = None  # importing it now fails
        import numpy as np
        import ferroconv as fc
        y = fc.conv2d(np.ones((1, 1, 4, 4), np.float16), np.ones((1, 1, 3, 3), np.float16))
        assert y.dtype == np.float16 and float(y[0, 0, 0, 0]) == 9.0, y
        print("ok")
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((2, 64, 15, 16), (40, 64, 3, 3), dict(stride=2, padding=1)),  # implicit GEMM in float32
    ((2, 96, 9, 10), (24, 96, 1, 1), {}),  # im2col in float32, the implicit GEMM in bfloat16
    ((2, 5, 33), (7, 5, 9), dict(padding=4)),  # odd reduction length (45)
    ((1, 4, 6, 7, 8), (6, 4, 3, 3, 3), dict(padding=1, dilation=(1, 2, 1))),
])
def test_native_bfloat16_kernel_runs_where_the_cpu_has_it(x_shape, w_shape, kwargs):
    native = fc._ferroconv.build_info()["bf16_native"]
    plan = fc.explain_conv(x_shape, w_shape, dtype="bfloat16", **kwargs)
    assert (plan.pass_named("forward").algorithm == "implicit_gemm_bf16") == native
    if kwargs.get("stride", 1) == 1:  # the input gradient is the adjoint forward
        assert (plan.pass_named("input_grad").algorithm == "adjoint_implicit_gemm_bf16") == native
    rng = np.random.default_rng(11)
    x, w = half(BF16, rng.standard_normal(x_shape)), half(BF16, rng.standard_normal(w_shape))
    b = half(BF16, rng.standard_normal(w_shape[0]))
    conv = getattr(fc, f"conv{len(x_shape) - 2}d")
    got = conv(x, w, b, **kwargs, activation="relu")
    x64, w64, b64 = (a.astype(np.float64) for a in (x, w, b))
    pads = kwargs.get("padding", 0)
    dil = kwargs.get("dilation", 1)
    rank = len(x_shape) - 2
    kw = dict(stride=kwargs.get("stride", 1), pad_lo=(pads,) * rank, pad_hi=(pads,) * rank,
              dilation=dil if isinstance(dil, tuple) else (dil,) * rank)
    exact = np.maximum(ref.conv_nd(x64, w64, b64, **kw), 0)
    magnitude = ref.conv_nd(np.abs(x64), np.abs(w64), np.abs(b64), **kw)
    assert_within_bound(got, exact, magnitude, w64[0].size + 1, BF16)
    g = half(BF16, rng.standard_normal(got.shape))
    grad_x = getattr(fc, f"conv{rank}d_backward")(g, x, w, **kwargs, needs=(True, False, False))[0]
    g64 = g.astype(np.float64)
    kw_b = dict(kw, stride=(kw["stride"],) * rank)
    exact_gx = ref.conv_nd_backward(g64, x64, w64, **kw_b)[0]
    magnitude_gx = ref.conv_nd_backward(np.abs(g64), np.abs(x64), np.abs(w64), **kw_b)[0]
    assert_within_bound(grad_x, exact_gx, magnitude_gx, w64.shape[0] * int(np.prod(w_shape[2:])), BF16)
    grad_w, grad_b = getattr(fc, f"conv{rank}d_backward")(g, x, w, **kwargs, needs=(False, True, True))[1:]
    exact_gw = ref.conv_nd_backward(g64, x64, w64, **kw_b)[1]
    magnitude_gw = ref.conv_nd_backward(np.abs(g64), np.abs(x64), np.abs(w64), **kw_b)[1]
    assert_within_bound(grad_w, exact_gw, magnitude_gw, int(np.prod(g.shape[2:])) * g.shape[0], BF16)
    # the bias gradient sums the widened planes as the float32 path does
    wide_grads = getattr(fc, f"conv{rank}d_backward")(wide(g), wide(x), wide(w), **kwargs)
    assert_rounded_once(grad_b, wide_grads[2], BF16, "grad_bias")
    # the same bits for any thread count
    threads = fc.get_num_threads()
    try:
        fc.set_num_threads(1)
        one = conv(x, w, b, **kwargs, activation="relu")
    finally:
        fc.set_num_threads(threads)
    np.testing.assert_array_equal(bits(one), bits(got))


def test_explain_takes_the_bfloat16_name_without_ml_dtypes_imported():
    code = textwrap.dedent("""
        import sys
        sys.modules["ml_dtypes"] = None
        import ferroconv as fc
        plan = fc.explain_conv((1, 8, 9, 9), (4, 8, 3, 3), dtype="bfloat16", stride=2)
        print(plan.dtype)
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "bfloat16", run.stderr


@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((2, 64, 15, 16), (40, 64, 3, 3), dict(stride=2, padding=1)),
    ((2, 96, 9, 10), (24, 96, 1, 1), {}),
    ((2, 5, 33), (7, 5, 9), dict(padding=4)),
])
def test_float16_planes_widened_in_the_kernel_give_the_float32_sums(x_shape, w_shape, kwargs):
    # On the AVX-512 path float16 GEMM layers widen their input planes in the
    # kernel instead of the whole input first; the sums are the float32 path's.
    avx512 = fc._ferroconv.build_info()["simd_path"] == "avx512"
    plan = fc.explain_conv(x_shape, w_shape, dtype="float16", **kwargs)
    assert (plan.pass_named("forward").algorithm == "implicit_gemm_f16") == avx512
    rng = np.random.default_rng(12)
    x, w = half(F16, rng.standard_normal(x_shape)), half(F16, rng.standard_normal(w_shape))
    b, r = half(F16, rng.standard_normal(w_shape[0])), None
    conv = getattr(fc, f"conv{len(x_shape) - 2}d")
    got = conv(x, w, b, **kwargs, activation="relu")
    r = half(F16, rng.standard_normal(got.shape))
    assert_rounded_once(got, conv(wide(x), wide(w), wide(b), **kwargs, activation="relu"), F16)
    with_residual = conv(x, w, b, **kwargs, residual=r)
    assert_rounded_once(with_residual, conv(wide(x), wide(w), wide(b), **kwargs, residual=wide(r)), F16)


def test_readme_16_bit_example_gives_the_output_shown():
    import doctest
    from pathlib import Path

    readme = Path(__file__).resolve().parent.parent / "docs" / "guide.md"
    if not readme.is_file():
        pytest.skip("docs/guide.md is not beside the tests")
    section = readme.read_text(encoding="utf-8").split("## 16-bit: bfloat16 and float16", 1)[1]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    test = doctest.DocTestParser().get_doctest(block, {}, "README 16-bit", None, 0)
    result = doctest.DocTestRunner().run(test)
    assert result.attempted >= 4 and result.failed == 0
