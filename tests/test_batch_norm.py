"""Batch normalisation and ReLU (``batch_norm``, ``batch_norm_backward``,
``relu``, ``relu_backward``) against plain NumPy references written from the
definitions: forward in training and eval mode, the running statistics, the
gradients against their formula and against finite differences in float64, the
fused ReLU, thread-count independence, memory layouts, 16-bit inputs, errors, and
(optionally) PyTorch.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ferroconv as fc


def reference_stats(x):
    """Per-channel mean and biased variance, channel by channel (float64)."""
    x = np.asarray(x, np.float64)
    mean = np.empty(x.shape[1])
    var = np.empty(x.shape[1])
    for c in range(x.shape[1]):
        values = x[:, c].ravel()
        mean[c] = values.sum() / values.size
        var[c] = ((values - mean[c]) ** 2).sum() / values.size
    return mean, var


def per_channel(v, ndim):
    return np.asarray(v).reshape((1, -1) + (1,) * (ndim - 2))


def reference_forward(x, mean, var, weight, bias, eps):
    y = (np.asarray(x, np.float64) - per_channel(mean, x.ndim)) / np.sqrt(per_channel(var, x.ndim) + eps)
    if weight is not None:
        y = y * per_channel(weight, x.ndim)
    if bias is not None:
        y = y + per_channel(bias, x.ndim)
    return y


def reference_backward(g, x, weight, mean, invstd, training):
    """The textbook gradients, channel by channel."""
    g, x = np.asarray(g, np.float64), np.asarray(x, np.float64)
    gi = np.empty_like(x)
    gw = np.empty(x.shape[1])
    gb = np.empty(x.shape[1])
    for c in range(x.shape[1]):
        xhat = (x[:, c] - mean[c]) * invstd[c]
        gc = g[:, c]
        w = 1.0 if weight is None else weight[c]
        gb[c] = gc.sum()
        gw[c] = (gc * xhat).sum()
        if training:
            count = gc.size
            gi[:, c] = w * invstd[c] * (gc - gb[c] / count - xhat * gw[c] / count)
        else:
            gi[:, c] = w * invstd[c] * gc
    return gi, gw, gb


shapes = st.sampled_from([(5, 3), (2, 4, 7), (3, 2, 3, 4), (2, 3, 2, 3, 2), (4, 1, 1), (2, 5, 33)])


@st.composite
def problems(draw, dtype=np.float64):
    shape = draw(shapes)
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    offset = draw(st.sampled_from([0.0, 3.0, -100.0]))
    x = (rng.standard_normal(shape) * draw(st.sampled_from([1.0, 0.01, 10.0])) + offset).astype(dtype)
    c = shape[1]
    affine = draw(st.booleans())
    weight = rng.uniform(0.5, 2.0, c).astype(dtype) if affine else None
    bias = rng.standard_normal(c).astype(dtype) if affine else None
    return x, weight, bias, rng


@given(problems(), st.sampled_from([0.1, 0.5, 1.0, 0.0]), st.booleans())
def test_training_forward_and_running_statistics_match_the_definition(problem, momentum, relu):
    x, weight, bias, rng = problem
    c = x.shape[1]
    running_mean, running_var = rng.standard_normal(c), rng.uniform(0.5, 2.0, c)
    rm, rv = running_mean.copy(), running_var.copy()
    y, mean, invstd = fc.batch_norm(x, rm, rv, weight, bias, training=True, momentum=momentum, eps=1e-5,
                                    relu=relu, return_stats=True)
    ref_mean, ref_var = reference_stats(x)
    expected = reference_forward(x, ref_mean, ref_var, weight, bias, 1e-5)
    if relu:
        expected = np.maximum(expected, 0)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(invstd, 1 / np.sqrt(ref_var + 1e-5), rtol=1e-11)
    count = x.size // c
    np.testing.assert_allclose(rm, (1 - momentum) * running_mean + momentum * ref_mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(rv, (1 - momentum) * running_var + momentum * ref_var * count / (count - 1),
                               rtol=1e-12)


@given(problems(), st.booleans())
def test_eval_forward_normalises_by_the_running_statistics_and_leaves_them(problem, relu):
    x, weight, bias, rng = problem
    c = x.shape[1]
    rm, rv = rng.standard_normal(c), rng.uniform(0.1, 3.0, c)
    before = rm.copy(), rv.copy()
    y, mean, invstd = fc.batch_norm(x, rm, rv, weight, bias, eps=1e-3, relu=relu, return_stats=True)
    expected = reference_forward(x, rm, rv, weight, bias, 1e-3)
    np.testing.assert_allclose(y, np.maximum(expected, 0) if relu else expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(rm, before[0])
    np.testing.assert_array_equal(rv, before[1])
    np.testing.assert_array_equal(mean, rm)
    np.testing.assert_allclose(invstd, 1 / np.sqrt(rv + 1e-3), rtol=1e-15)


@given(problems(), st.booleans())
def test_backward_matches_the_formula(problem, training):
    x, weight, bias, rng = problem
    g = rng.standard_normal(x.shape)
    if training:
        _, mean, invstd = fc.batch_norm(x, None, None, weight, bias, training=True, return_stats=True)
    else:
        mean, invstd = rng.standard_normal(x.shape[1]), rng.uniform(0.5, 2.0, x.shape[1])
    got = fc.batch_norm_backward(g, x, weight, mean, invstd, training)
    expected = reference_backward(g, x, weight, mean, invstd, training)
    scale = np.abs(g).max() * (1 if weight is None else weight.max()) * invstd.max()
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9 * scale * x.size)


def loss_of(x, weight, bias, probe, training, relu, stats=None):
    """<probe, batch_norm(x)>: a scalar whose gradient is the backward of ``probe``."""
    if training:
        y = fc.batch_norm(x, None, None, weight, bias, training=True, relu=relu)
    else:
        y = fc.batch_norm(x, stats[0], stats[1], weight, bias, relu=relu)
    return float((probe * y).sum())


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5), (2, 2, 3, 2)])
def test_gradients_match_finite_differences(shape, relu, training):
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape)
    weight, bias = rng.uniform(0.5, 2.0, shape[1]), rng.standard_normal(shape[1])
    probe = rng.standard_normal(shape)
    stats = (rng.standard_normal(shape[1]), rng.uniform(0.5, 2.0, shape[1]))
    if training:
        y, mean, invstd = fc.batch_norm(x, None, None, weight, bias, training=True, relu=relu, return_stats=True)
    else:
        y, mean, invstd = fc.batch_norm(x, *stats, weight, bias, relu=relu, return_stats=True)
    grads = fc.batch_norm_backward(probe, x, weight, mean, invstd, training, relu_output=y if relu else None)
    h = 1e-6

    def numeric(array, index):
        saved = array[index]
        array[index] = saved + h
        up = loss_of(x, weight, bias, probe, training, relu, stats)
        array[index] = saved - h
        down = loss_of(x, weight, bias, probe, training, relu, stats)
        array[index] = saved
        return (up - down) / (2 * h)

    for array, grad in ((x, grads[0]), (weight, grads[1]), (bias, grads[2])):
        for index in np.ndindex(array.shape):
            if relu and array is x and np.abs(y[(index[0],) + index[1:]]).min() < 1e-4:
                continue  # the kink of the ReLU
            np.testing.assert_allclose(grad[index], numeric(array, index), rtol=1e-5, atol=1e-6)


@given(problems())
def test_input_gradient_is_orthogonal_to_constant_shifts_in_training(problem):
    # Adding a per-channel constant to x leaves the training output unchanged, so
    # the input gradient sums to zero over every channel; with eps -> 0 a
    # per-channel scale changes nothing either, so it is orthogonal to x itself
    # (eps = 1e-300 is no change of the variance).
    x, weight, bias, rng = problem
    g = rng.standard_normal(x.shape)
    _, mean, invstd = fc.batch_norm(x, None, None, weight, bias, training=True, eps=1e-300, return_stats=True)
    gi, _, _ = fc.batch_norm_backward(g, x, None, mean, invstd)
    axes = (0,) + tuple(range(2, x.ndim))
    scale = np.abs(g).sum(axis=axes) * invstd
    assert np.all(np.abs(gi.sum(axis=axes)) <= 1e-9 * scale)
    xhat = (x - per_channel(mean, x.ndim)) * per_channel(invstd, x.ndim)
    assert np.all(np.abs((gi * xhat).sum(axis=axes)) <= 1e-9 * scale * np.abs(xhat).max())


def test_float32_statistics_are_accurate_for_offset_data():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((16, 4, 20, 20)) * 0.5 + 1000).astype(np.float32)
    _, mean, invstd = fc.batch_norm(x, None, None, training=True, return_stats=True)
    ref_mean, ref_var = reference_stats(x)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-7)
    np.testing.assert_allclose(invstd, 1 / np.sqrt(ref_var + 1e-5), rtol=2e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(64, 3, 40, 40), (32, 64, 10, 10), (4096, 8), (2, 2, 70000)])
def test_results_are_bit_identical_for_any_thread_count(shape, dtype, restore_threads):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    w = rng.uniform(0.5, 2, shape[1]).astype(dtype)
    runs = []
    for threads in (1, 2, 3):
        fc.set_num_threads(threads)
        rm, rv = np.zeros(shape[1], dtype), np.ones(shape[1], dtype)
        y, mean, invstd = fc.batch_norm(x, rm, rv, w, w, training=True, relu=True, return_stats=True)
        grads = fc.batch_norm_backward(g, x, w, mean, invstd, relu_output=y)
        runs.append([y, mean, invstd, rm, rv, *grads, fc.relu(x), fc.relu_backward(g, x)])
    for run in runs[1:]:
        for a, b in zip(runs[0], run):
            assert a.tobytes() == b.tobytes()


def test_any_layout_gives_the_result_of_the_contiguous_array():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4, 5, 6)).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    w = rng.uniform(0.5, 2, 4).astype(np.float32)
    big = np.full((7, 9, 10, 13), np.nan, np.float32)
    strided = big[1::2, 1::2, ::2, 1::2]
    strided[...] = x
    negative = x[::-1, ::-1, ::-1, ::-1].copy()[::-1, ::-1, ::-1, ::-1]
    readonly = x.copy()
    readonly.flags.writeable = False
    fortran = np.asfortranarray(x)
    bigendian = x.astype(">f4")
    expected = fc.batch_norm(x, None, None, w, w, training=True, return_stats=True)
    expected_grads = fc.batch_norm_backward(g, x, w, expected[1], expected[2])
    for variant in (strided, negative, readonly, fortran, bigendian):
        got = fc.batch_norm(variant, None, None, w[::-1][::-1], w, training=True, return_stats=True)
        for a, b in zip(got, expected):
            assert a.tobytes() == b.tobytes()
        grads = fc.batch_norm_backward(variant, variant, w, expected[1], expected[2])
        reference = fc.batch_norm_backward(x, x, w, expected[1], expected[2])
        for a, b in zip(grads, reference):
            assert a.tobytes() == b.tobytes()
        assert fc.relu(variant).tobytes() == fc.relu(x).tobytes()
    assert all(a.flags.c_contiguous for a in expected_grads)


def test_running_statistics_are_updated_in_place_in_any_layout():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 3, 4))
    reference = np.zeros(3), np.ones(3)
    fc.batch_norm(x, *reference, training=True)
    strided_mean = np.zeros(6)[::2]
    bigendian_var = np.ones(3, ">f8")
    fc.batch_norm(x, strided_mean, bigendian_var, training=True)
    np.testing.assert_array_equal(strided_mean, reference[0])
    np.testing.assert_array_equal(bigendian_var, reference[1])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_16_bit_input_is_computed_in_float32_and_rounded_once(dtype):
    ml_dtypes = pytest.importorskip("ml_dtypes") if dtype == "bfloat16" else None
    half = np.dtype(ml_dtypes.bfloat16) if ml_dtypes else np.dtype(np.float16)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 3, 5)).astype(half)
    w = rng.uniform(0.5, 2, 3).astype(np.float32)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    rm16, rv16 = rm.astype(half), rv.astype(half)
    y, mean, invstd = fc.batch_norm(x, rm, rv, w, None, training=True, return_stats=True)
    y32, mean32, invstd32 = fc.batch_norm(x.astype(np.float32), np.zeros(3, np.float32), np.ones(3, np.float32),
                                          w, None, training=True, return_stats=True)
    assert y.dtype == half and mean.dtype == np.float32
    assert y.tobytes() == y32.astype(half).tobytes()
    fc.batch_norm(x, rm16, rv16, w.astype(half), None, training=True)
    np.testing.assert_array_equal(rm16, rm.astype(half))
    g = rng.standard_normal(x.shape).astype(half)
    grads = fc.batch_norm_backward(g, x, w, mean, invstd)
    grads32 = fc.batch_norm_backward(g.astype(np.float32), x.astype(np.float32), w, mean32, invstd32)
    for a, b in zip(grads, grads32):
        assert a.dtype == half and a.tobytes() == b.astype(half).tobytes()
    assert fc.relu(x).tobytes() == np.maximum(x.astype(np.float32), 0).astype(half).tobytes()


def test_relu_and_its_backward():
    x = np.array([[-2.0, -0.0, 0.0], [0.5, np.nan, np.inf]], np.float32)
    y = fc.relu(x)
    assert y.tobytes() == np.array([[0, 0, 0], [0.5, np.nan, np.inf]], np.float32).tobytes()
    g = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(fc.relu_backward(g, y), [[0, 0, 0], [3, 0, 5]])
    np.testing.assert_array_equal(fc.relu_backward(g, x), fc.relu_backward(g, y))
    inplace = x.copy()
    assert fc.relu(inplace, out=inplace) is inplace
    assert inplace.tobytes() == y.tobytes()
    out = np.empty((4, 3), np.float32)[::2]
    assert fc.relu(x, out=out) is out and out.tobytes() == y.tobytes()
    overlap = np.arange(-3.0, 3.0)
    fc.relu(overlap[:5], out=overlap[1:])
    np.testing.assert_array_equal(overlap, [-3, 0, 0, 0, 0, 1])


def test_errors_name_the_function_and_the_argument():
    x = np.zeros((2, 3, 4), np.float32)
    v = np.zeros(3, np.float32)
    cases = [
        (lambda: fc.batch_norm(x, np.zeros(4, np.float32), v, training=True), ValueError,
         r"batch_norm: running_mean must have shape \(3,\)"),
        (lambda: fc.batch_norm(x, v, v, np.ones(2, np.float32)), ValueError, r"batch_norm: weight must have shape"),
        (lambda: fc.batch_norm(x, v, v.astype(np.float64)), TypeError, r"batch_norm: running_var has dtype float64"),
        (lambda: fc.batch_norm(x, None, None), ValueError, r"batch_norm: running_mean and running_var are required"),
        (lambda: fc.batch_norm(x, v, None, training=True), ValueError, "both be arrays or both be None"),
        (lambda: fc.batch_norm(x[:1, :, :1], None, None, training=True), ValueError,
         "more than 1 value per channel"),
        (lambda: fc.batch_norm(x, v, v, momentum=2), ValueError, r"batch_norm: momentum must be in \[0.0, 1.0\]"),
        (lambda: fc.batch_norm(x, v, v, eps=0), ValueError, "batch_norm: eps must be > 0.0"),
        (lambda: fc.batch_norm(x, v, v, eps="1"), TypeError, "batch_norm: eps must be a real number"),
        (lambda: fc.batch_norm(x, v, v, training=1), TypeError, "batch_norm: training must be a bool"),
        (lambda: fc.batch_norm(np.zeros(3, np.float32), v, v), ValueError, "x must have 2 to 5 dimensions"),
        (lambda: fc.batch_norm(x.astype(np.int32), v, v), TypeError, "batch_norm: x must have dtype"),
        (lambda: fc.batch_norm(x, v, v.copy(), np.ones((3, 1), np.float32)), ValueError, "weight must be 1-D"),
        (lambda: fc.batch_norm(x, *_readonly(v), training=True), ValueError, "running_mean is read-only"),
        (lambda: fc.batch_norm(x, v, v, training=True), ValueError, "share memory"),
        (lambda: fc.batch_norm_backward(x[:, :, :3], x, None, v, v), ValueError,
         r"batch_norm_backward: grad_out has shape \(2, 3, 3\) but x has shape \(2, 3, 4\)"),
        (lambda: fc.batch_norm_backward(x, x, None, v[:2], v), ValueError, r"mean must have shape \(3,\)"),
        (lambda: fc.batch_norm_backward(x, x, None, v, None), TypeError, "mean and invstd must be arrays"),
        (lambda: fc.batch_norm_backward(x.astype(np.float64), x, None, v, v), TypeError, "grad_out has dtype"),
        (lambda: fc.batch_norm_backward(x, x, None, v, v, relu_output=x[:1]), ValueError, "relu_output has shape"),
        (lambda: fc.relu(x, out=np.zeros((2, 3), np.float32)), ValueError, "relu: out has shape"),
        (lambda: fc.relu(x, out=x.astype(np.float64)), TypeError, "relu: out has dtype"),
        (lambda: fc.relu(x, out=[0.0]), TypeError, "relu: out must be a numpy.ndarray"),
        (lambda: fc.relu_backward(x, x[0]), ValueError, "relu_backward: grad_out has shape"),
        (lambda: fc.relu_backward(x, x.astype(np.float64)), TypeError, "relu_backward: grad_out has dtype"),
    ]
    for call, kind, message in cases:
        with pytest.raises(kind, match=message):
            call()


def _readonly(v):
    mean, var = v.copy(), v.copy()
    mean.flags.writeable = False
    return mean, var


def test_a_refused_call_leaves_the_running_statistics_alone():
    x = np.ones((2, 3, 4), np.float32)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    with pytest.raises(ValueError):
        fc.batch_norm(x, rm, rv, np.ones(4, np.float32), training=True)
    np.testing.assert_array_equal(rm, 0)
    np.testing.assert_array_equal(rv, 1)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 6), (2, 3, 4, 5), (2, 3, 2, 3, 4)])
def test_matches_pytorch_and_its_autograd(shape, training):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape) * 2 + 1
    g = rng.standard_normal(shape)
    w, b = rng.uniform(0.5, 2, shape[1]), rng.standard_normal(shape[1])
    rm, rv = rng.standard_normal(shape[1]), rng.uniform(0.5, 2, shape[1])
    tx = torch.tensor(x, requires_grad=True)
    tw, tb = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    ty = torch.nn.functional.batch_norm(tx, trm, trv, tw, tb, training=training, momentum=0.3, eps=1e-4)
    ty.backward(torch.tensor(g))
    y, mean, invstd = fc.batch_norm(x, rm, rv, w, b, training=training, momentum=0.3, eps=1e-4,
                                    return_stats=True)
    grads = fc.batch_norm_backward(g, x, w, mean, invstd, training)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(rm, trm.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(rv, trv.numpy(), rtol=1e-12)
    for got, want in zip(grads, (tx.grad, tw.grad, tb.grad)):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-9, atol=1e-9)
