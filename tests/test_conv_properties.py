"""Algebraic properties of conv1d/2d/3d and their backward, checked on the package
alone (float64, so tolerances are tight): linearity, adjointness of the backward
pass, finite differences, shift equivariance, and identities that tie one
configuration to another (1x1 == matmul, dilation == zero-inserted kernel,
stride == subsampling, padding == explicit np.pad, groups == separate convs,
batching == per-sample calls)."""

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import ferroconv as fc
from strategies import conv_cases, make_values, scaled

f64 = (np.float64,)


def conv(case, x=None, w=None, b=None, **override):
    kwargs = case.kwargs()
    kwargs.update(override)
    return getattr(fc, f"conv{case.rank}d")(case.x if x is None else x,
                                           case.weight if w is None else w, b, **kwargs)


def conv_backward(case, grad_out, x=None, w=None, **override):
    kwargs = case.kwargs()
    kwargs.update(override)
    return getattr(fc, f"conv{case.rank}d_backward")(grad_out, case.x if x is None else x,
                                                    case.weight if w is None else w, **kwargs)


def dot(a, b):
    return float(np.sum(np.asarray(a, np.float64) * np.asarray(b, np.float64)))


def abs_dot(a, b):
    return float(np.sum(np.abs(np.asarray(a, np.float64)) * np.abs(np.asarray(b, np.float64))))


def close(a, b, scale, rtol=1e-10):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                               rtol=rtol, atol=rtol * max(scale, 1e-300))


def spatial_axes(case):
    return tuple(range(-case.rank, 0))


# ---------------------------------------------------------------------------
# linearity, adjointness, finite differences
# ---------------------------------------------------------------------------


@given(conv_cases(dtypes=f64, bias=False), st.integers(0, 2**32 - 1),
       st.floats(-3, 3), st.floats(-3, 3))
def test_conv_is_linear_in_x(case, seed, a, b):
    x2 = make_values(seed, case.x.shape, np.float64)
    lhs = conv(case, x=a * np.asarray(case.x) + b * x2)
    rhs = a * conv(case) + b * conv(case, x=x2)
    scale = (abs(a) + abs(b)) * np.max(np.abs(conv(case, x=np.abs(case.x) + np.abs(x2),
                                                   w=np.abs(case.weight))))
    close(lhs, rhs, scale)


@given(conv_cases(dtypes=f64, bias=False), st.integers(0, 2**32 - 1),
       st.floats(-3, 3), st.floats(-3, 3))
def test_conv_is_linear_in_weight(case, seed, a, b):
    w2 = make_values(seed, case.weight.shape, np.float64)
    lhs = conv(case, w=a * np.asarray(case.weight) + b * w2)
    rhs = a * conv(case) + b * conv(case, w=w2)
    scale = (abs(a) + abs(b)) * np.max(np.abs(conv(case, x=np.abs(case.x),
                                                   w=np.abs(case.weight) + np.abs(w2))))
    close(lhs, rhs, scale)


@scaled(0.5)
@given(conv_cases(dtypes=f64, bias=True))
def test_bias_adds_a_constant_per_output_channel(case):
    with_bias = conv(case, b=case.bias)
    without = conv(case)
    channel_axis = 1 if case.batched else 0
    shape = [1] * with_bias.ndim
    shape[channel_axis] = -1
    close(with_bias - without, np.broadcast_to(np.reshape(case.bias, shape), with_bias.shape),
          1 + np.max(np.abs(without)))


@given(conv_cases(dtypes=f64, bias=False), st.integers(0, 2**32 - 1))
def test_backward_is_adjoint_of_forward(case, seed):
    """<conv(x, w), g> == <x, grad_x(g)> == <w, grad_w(g)>, and grad_b = sum g."""
    y = conv(case)
    g = make_values(seed, y.shape, np.float64)
    gx, gw, gb = conv_backward(case, g)
    lhs = dot(y, g)
    tol = 1e-10 * (1.0 + abs_dot(conv(case, x=np.abs(case.x), w=np.abs(case.weight)), g))
    assert abs(lhs - dot(case.x, gx)) <= tol, (lhs, dot(case.x, gx))
    assert abs(lhs - dot(case.weight, gw)) <= tol, (lhs, dot(case.weight, gw))
    sum_axes = tuple(i for i in range(g.ndim) if i != (1 if case.batched else 0))
    close(gb, g.sum(axis=sum_axes), 1.0 + np.max(np.abs(g)) * g.size)


@scaled(0.5)
@given(conv_cases(dtypes=f64, ranks=(1, 2), layouts=("C",)), st.integers(0, 2**32 - 1))
def test_backward_matches_central_finite_differences(case, seed):
    """loss = 0.5 * sum(conv(x, w, b)**2) is quadratic, so central differences
    are exact up to rounding for any step."""
    x = np.array(case.x, dtype=np.float64)
    w = np.array(case.weight, dtype=np.float64)
    b = make_values(seed, (w.shape[0],), np.float64)

    def loss(x_, w_, b_):
        return 0.5 * float(np.sum(conv(case, x=x_, w=w_, b=b_) ** 2))

    y = conv(case, x=x, w=w, b=b)
    gx, gw, gb = conv_backward(case, y, x=x, w=w)
    rng = np.random.default_rng(seed)
    h = 1e-2
    base = loss(x, w, b)
    for arr, grad, which in ((x, gx, 0), (w, gw, 1), (b, gb, 2)):
        flat = rng.choice(arr.size, size=min(arr.size, 6), replace=False)
        for i in flat:
            idx = np.unravel_index(i, arr.shape)
            plus, minus = [a.copy() for a in (x, w, b)], [a.copy() for a in (x, w, b)]
            plus[which][idx] += h
            minus[which][idx] -= h
            fd = (loss(*plus) - loss(*minus)) / (2 * h)
            assert abs(fd - grad[idx]) <= 1e-7 * (1 + abs(base)), (which, idx, fd, grad[idx])


@scaled(0.5)
@given(conv_cases(dtypes=f64, bias=False), st.integers(0, 2**32 - 1))
def test_backward_needs_flags_select_without_changing_values(case, seed):
    g = make_values(seed, conv(case).shape, np.float64)
    full = conv_backward(case, g)
    for i in range(3):
        needs = tuple(j == i for j in range(3))
        part = conv_backward(case, g, needs=needs)
        for j in range(3):
            if j == i:
                close(part[j], full[j], 1 + np.max(np.abs(full[j])), rtol=1e-12)
            else:
                assert part[j] is None
    assert all(p is None for p in conv_backward(case, g, needs=(False, False, False)))


# ---------------------------------------------------------------------------
# equivariance and identities between configurations
# ---------------------------------------------------------------------------


@given(conv_cases(dtypes=f64, padding_forms=("same",), padding_modes=("circular",)),
       st.data())
def test_circular_same_conv_commutes_with_circular_shifts(case, data):
    shifts = tuple(data.draw(st.integers(-n, n), label="shift")
                   for n in case.x.shape[-case.rank:])
    axes = spatial_axes(case)
    y = conv(case, b=case.bias)
    assert y.shape[-case.rank:] == case.x.shape[-case.rank:]
    y_shifted_input = conv(case, x=np.roll(case.x, shifts, axis=axes), b=case.bias)
    close(y_shifted_input, np.roll(y, shifts, axis=axes), 1 + np.max(np.abs(y)))


@given(conv_cases(dtypes=f64, kernel_sizes=(1,), padding_forms=("int", "valid"),
                  padding_modes=("zeros",), stride_one=True, groups_one=True))
def test_1x1_conv_is_a_matmul_over_channels(case):
    kw = dict(case.kwargs(), padding=0, dilation=1)
    y = getattr(fc, f"conv{case.rank}d")(case.x, case.weight, case.bias, **kw)
    w2 = np.asarray(case.weight).reshape(case.weight.shape[:2])
    x = case.x_batched
    expected = np.einsum("oc,nc...->no...", w2, x)
    if case.bias is not None:
        expected += np.reshape(case.bias, (1, -1) + (1,) * case.rank)
    if not case.batched:
        expected = expected[0]
    close(y, expected, 1 + np.max(np.abs(expected)))


@given(conv_cases(dtypes=f64))
def test_dilation_equals_conv_with_zero_inserted_kernel(case):
    w = np.asarray(case.weight)
    d = case.dilation_t
    k = w.shape[2:]
    big = np.zeros(w.shape[:2] + tuple(di * (ki - 1) + 1 for di, ki in zip(d, k)))
    big[(slice(None), slice(None)) + tuple(slice(None, None, di) for di in d)] = w
    pads = tuple(zip(case.pad_lo, case.pad_hi))
    y = conv(case, b=case.bias, padding=pads)
    y_big = conv(case, w=big, b=case.bias, padding=pads, dilation=1)
    close(y, y_big, 1 + np.max(np.abs(y)))


@given(conv_cases(dtypes=f64, padding_forms=("int", "tuple", "pairs", "valid")))
def test_strided_conv_is_subsampled_stride_one_conv(case):
    y = conv(case, b=case.bias)
    y1 = conv(case, b=case.bias, stride=1)
    sub = y1[(Ellipsis,) + tuple(slice(None, None, s) for s in case.stride_t)]
    close(y, sub, 1 + np.max(np.abs(y1)))


@given(conv_cases(dtypes=f64, padding_forms=("int", "tuple", "pairs", "same")))
def test_padding_equals_explicit_np_pad_then_unpadded_conv(case):
    np_mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
               "circular": "wrap"}[case.padding_mode]
    lead = [(0, 0)] * (case.x.ndim - case.rank)
    xp = np.pad(np.asarray(case.x), lead + list(zip(case.pad_lo, case.pad_hi)), mode=np_mode)
    y = conv(case, b=case.bias)
    y_explicit = conv(case, x=xp, b=case.bias, padding=0, padding_mode="zeros")
    close(y, y_explicit, 1 + np.max(np.abs(y)))


@given(conv_cases(dtypes=f64).filter(lambda c: c.groups > 1))
def test_grouped_conv_is_concatenation_of_per_group_convs(case):
    g = case.groups
    x = case.x_batched
    cig = x.shape[1] // g
    cog = case.weight.shape[0] // g
    y = conv(case, x=x, b=case.bias)
    parts = []
    for i in range(g):
        b = None if case.bias is None else np.asarray(case.bias)[i * cog:(i + 1) * cog]
        parts.append(conv(case, x=x[:, i * cig:(i + 1) * cig],
                          w=np.asarray(case.weight)[i * cog:(i + 1) * cog], b=b, groups=1))
    close(y, np.concatenate(parts, axis=1), 1 + np.max(np.abs(y)))


@scaled(0.5)
@given(conv_cases(dtypes=f64, allow_unbatched=False, min_batch=2), st.integers(0, 2**32 - 1))
def test_batch_samples_are_independent_and_unbatched_matches(case, seed):
    y = conv(case, b=case.bias)
    g = make_values(seed, y.shape, np.float64)
    gx, gw, gb = conv_backward(case, g)
    gw_sum = np.zeros_like(gw)
    for n in range(case.x.shape[0]):
        xn = np.asarray(case.x)[n]
        yn = conv(case, x=xn, b=case.bias)  # unbatched call
        assert yn.shape == y.shape[1:]
        close(yn, y[n], 1 + np.max(np.abs(y)))
        gxn, gwn, _ = conv_backward(case, g[n], x=xn)
        assert gxn.shape == xn.shape
        close(gxn, gx[n], 1 + np.max(np.abs(gx)))
        gw_sum += gwn
    close(gw_sum, gw, 1 + np.max(np.abs(gw)) * case.x.shape[0])


@scaled(0.5)
@given(conv_cases(dtypes=(np.float32,)))
def test_float32_agrees_with_float64_computation(case):
    """Same values in f32 and f64: the f32 result is the f64 one up to f32 rounding
    (catches a path that silently accumulates in lower precision or mixes dtypes)."""
    y32 = conv(case, b=case.bias)
    y64 = conv(case, x=np.asarray(case.x, np.float64), w=np.asarray(case.weight, np.float64),
               b=None if case.bias is None else np.asarray(case.bias, np.float64))
    assert y32.dtype == np.float32 and y64.dtype == np.float64
    n_terms = case.weight.shape[1] * math.prod(case.weight.shape[2:]) + 1
    term_max = (np.max(np.abs(case.x)) * np.max(np.abs(case.weight))
                + (0 if case.bias is None else np.max(np.abs(case.bias))))
    np.testing.assert_allclose(y32, y64, rtol=1e-6, atol=1e-5 * math.sqrt(n_terms) * term_max)
