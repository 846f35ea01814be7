"""Checks of the NumPy reference itself (no ferroconv import).

If these pass, a disagreement between ferroconv and ``reference.py`` points at
ferroconv: the tap-loop reference agrees with scalar loops written from the
definitions, its backward passes are the exact adjoints of its forward passes,
the transposed conv is the adjoint of the conv, and ``convolve_nd`` agrees with
``numpy.convolve``.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import reference as ref
from strategies import (TINY_LIMITS, TINY_T_LIMITS, conv_cases, convolve_cases, scaled,
                        transpose_cases)


def _dot(a, b):
    return float(np.sum(np.asarray(a, np.float64) * np.asarray(b, np.float64)))


def _abs_dot(a, b):
    return float(np.sum(np.abs(np.asarray(a, np.float64) * np.asarray(b, np.float64))))


@pytest.mark.parametrize("mode", ref.PADDING_MODES)
def test_np_pad_modes_match_textbook_index_formulas(mode):
    for size in range(1, 7):
        for lo in range(0, size + 1):
            for hi in range(0, size + 1):
                if mode == "reflect" and max(lo, hi) >= size:
                    continue
                src = ref.source_indices(size, lo, hi, mode)
                formula = [ref.source_index_formula(j, size, lo, mode) for j in range(lo + size + hi)]
                assert list(src) == formula, (mode, size, lo, hi)
                # and pad_input really copies those cells
                x = np.arange(1.0, size + 1)[None, None]
                padded = ref.pad_input(x, (lo,), (hi,), mode)[0, 0]
                expect = [0.0 if s < 0 else x[0, 0, s] for s in src]
                assert list(padded) == expect


def test_pad_input_2d_corners_are_products_of_axis_maps():
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    for mode in ("reflect", "replicate", "circular"):
        p = ref.pad_input(x, (2, 1), (1, 2), mode)[0, 0]
        r = ref.source_indices(3, 2, 1, mode)
        c = ref.source_indices(4, 1, 2, mode)
        assert np.array_equal(p, x[0, 0][np.ix_(r, c)])


@scaled(0.5)
@given(conv_cases(limits=TINY_LIMITS, layouts=("C",)))
def test_conv_reference_matches_scalar_loops(case):
    x = case.x_batched
    fast = ref.conv_nd(x, case.weight, case.bias, **case.ref_kwargs())
    slow = ref.conv_nd_naive(x, case.weight, case.bias, **case.ref_kwargs())
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)


@scaled(0.5)
@given(conv_cases(limits=TINY_LIMITS, layouts=("C",)), st.integers(0, 2**32 - 1))
def test_conv_backward_reference_matches_scalar_loops(case, seed):
    x = case.x_batched
    out_shape = (x.shape[0], case.weight.shape[0]) + case.out_spatial
    g = np.random.default_rng(seed).standard_normal(out_shape)
    fast = ref.conv_nd_backward(g, x, case.weight, **case.ref_kwargs())
    slow = ref.conv_nd_backward_naive(g, x, case.weight, **case.ref_kwargs())
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@given(conv_cases(layouts=("C",)), st.integers(0, 2**32 - 1))
def test_conv_backward_reference_is_adjoint_of_forward(case, seed):
    x = case.x_batched
    w = np.asarray(case.weight, np.float64)
    y = ref.conv_nd(x, w, None, **case.ref_kwargs())
    g = np.random.default_rng(seed).standard_normal(y.shape)
    gx, gw, gb = ref.conv_nd_backward(g, x, w, **case.ref_kwargs())
    tol = 1e-11 * (1 + _abs_dot(np.abs(y), np.abs(g)))
    assert abs(_dot(y, g) - _dot(x, gx)) <= tol
    assert abs(_dot(y, g) - _dot(w, gw)) <= tol
    np.testing.assert_allclose(gb, g.sum(axis=tuple(i for i in range(g.ndim) if i != 1)))


@scaled(0.5)
@given(transpose_cases(limits=TINY_T_LIMITS, layouts=("C",)), st.integers(0, 2**32 - 1))
def test_transpose_reference_matches_scalar_loops(case, seed):
    x = case.x_batched
    fast = ref.conv_transpose_nd(x, case.weight, case.bias, **case.ref_kwargs())
    slow = ref.conv_transpose_nd_naive(x, case.weight, case.bias, **case.ref_kwargs())
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(seed).standard_normal(fast.shape)
    fast_b = ref.conv_transpose_nd_backward(g, x, case.weight, **case.ref_kwargs())
    slow_b = ref.conv_transpose_nd_backward_naive(g, x, case.weight, **case.ref_kwargs())
    for a, b in zip(fast_b, slow_b):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@given(transpose_cases(layouts=("C",)), st.integers(0, 2**32 - 1))
def test_transpose_reference_backward_is_adjoint(case, seed):
    x = case.x_batched
    w = np.asarray(case.weight, np.float64)
    y = ref.conv_transpose_nd(x, w, None, **case.ref_kwargs())
    g = np.random.default_rng(seed).standard_normal(y.shape)
    gx, gw, gb = ref.conv_transpose_nd_backward(g, x, w, **case.ref_kwargs())
    tol = 1e-11 * (1 + _abs_dot(np.abs(y), np.abs(g)))
    assert abs(_dot(y, g) - _dot(x, gx)) <= tol
    assert abs(_dot(y, g) - _dot(w, gw)) <= tol


@given(transpose_cases(layouts=("C",), output_padding_below_stride=True, bias=False))
def test_transpose_reference_is_conv_input_gradient(case):
    """conv_transpose(g) == d/dx <conv(x), g> for the conv whose output has g's
    shape (padding p on both sides, same stride/dilation/groups)."""
    g = case.x_batched
    c_in, cog = case.weight.shape[:2]
    groups = case.groups
    # the transposed conv's weight (C_in, C_out/groups, *k) is the conv weight
    # (C_out', C_in'/groups, *k) of the conv mapping C_out -> C_in
    conv_w = np.asarray(case.weight, np.float64)
    x_shape = (g.shape[0], cog * groups) + case.out_spatial
    y = ref.conv_transpose_nd(g, conv_w, None, **case.ref_kwargs())
    assert y.shape == x_shape
    p = case.padding_t
    out_sp = tuple(ref.conv_out_size(s, k, st_, a, a, d) for s, k, st_, a, d in
                   zip(case.out_spatial, conv_w.shape[2:], case.stride_t, p, case.dilation_t))
    assert out_sp == g.shape[2:]
    gx, _, _ = ref.conv_nd_backward(g, np.zeros(x_shape), conv_w, stride=case.stride_t,
                                    pad_lo=p, pad_hi=p, dilation=case.dilation_t, groups=groups)
    np.testing.assert_allclose(y, gx, rtol=1e-12, atol=1e-12)


@given(convolve_cases(layouts=("C",), multichannel=False))
def test_convolve_reference_matches_scalar_loops(case):
    fast = ref.convolve_nd(case.x, case.kernel, case.mode)
    slow = ref.convolve_nd_naive(case.x, case.kernel, case.mode)
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)


@given(convolve_cases(ndims=(1,), layouts=("C",), multichannel=False))
def test_convolve_reference_matches_numpy_convolve(case):
    x = np.asarray(case.x, np.float64)
    k = np.asarray(case.kernel, np.float64)
    ours = ref.convolve_nd(x, k, case.mode)
    if case.mode == "same" and k.size > x.size:
        # numpy's "same" has length max(M, N); ours (scipy's) has the signal's length
        full = np.convolve(x, k, "full")
        start = (k.size - 1) // 2
        np.testing.assert_allclose(ours, full[start:start + x.size], rtol=1e-12, atol=1e-12)
    else:
        np.testing.assert_allclose(ours, np.convolve(x, k, case.mode), rtol=1e-12, atol=1e-12)


def test_convolve_reference_known_values():
    assert ref.convolve_nd(np.array([1.0, 2, 3]), np.array([0.0, 1, 0.5])).tolist() == [0, 1, 2.5, 4, 1.5]
    assert ref.convolve_nd(np.array([1.0, 2, 3, 4]), np.array([1.0, 1]), "same").tolist() == [1, 3, 5, 7]
    assert ref.convolve_nd(np.array([1.0, 2, 3, 4]), np.array([1.0, 1]), "valid").tolist() == [3, 5, 7]


def test_conv_reference_known_values():
    # 1D cross-correlation, stride 2, reflect padding 1: xpad = [2,1,2,3,4,5,4]
    x = np.array([[[1.0, 2, 3, 4, 5]]])
    w = np.array([[[1.0, 0, -1]]])
    y = ref.conv_nd(x, w, np.array([10.0]), stride=2, pad_lo=1, pad_hi=1, padding_mode="reflect")
    assert y.tolist() == [[[10 + 2 - 2, 10 + 2 - 4, 10 + 4 - 4]]]
    # transposed conv: stride 2 scatter of [1, 2] with kernel [1, 10, 100]
    t = ref.conv_transpose_nd(np.array([[[1.0, 2]]]), np.array([[[1.0, 10, 100]]]), stride=2)
    assert t.tolist() == [[[1, 10, 102, 20, 200]]]
    t = ref.conv_transpose_nd(np.array([[[1.0, 2]]]), np.array([[[1.0, 10, 100]]]), stride=2,
                              padding=1, output_padding=1)
    assert t.tolist() == [[[10, 102, 20, 200]]]


def _receptive_field_by_gradient(layers):
    """Span of input cells that one output cell depends on, from the reference's
    input-gradient of a stack of 1D convs."""
    size = 400
    shapes = [size]
    for layer in layers:
        k, s = layer[0], layer[1]
        d = layer[2] if len(layer) > 2 else 1
        shapes.append(ref.conv_out_size(shapes[-1], k, s, 0, 0, d))
    g = np.zeros((1, 1, shapes[-1]))
    g[0, 0, shapes[-1] // 2] = 1.0
    for i in range(len(layers) - 1, -1, -1):
        k, s = layers[i][0], layers[i][1]
        d = layers[i][2] if len(layers[i]) > 2 else 1
        w = np.ones((1, 1, k))
        g, _, _ = ref.conv_nd_backward(g, np.zeros((1, 1, shapes[i])), w, stride=s, dilation=d)
    nz = np.flatnonzero(g[0, 0])
    return int(nz[-1] - nz[0] + 1)


@pytest.mark.parametrize("layers", [
    [(3, 1)], [(3, 1)] * 4, [(5, 1, 1), (5, 1, 1)], [(3, 1, 2)], [(3, 2), (3, 2), (3, 1)],
    [(7, 2), (3, 2, 1), (3, 1, 2), (2, 2)], [(1, 1)], [(4, 3, 2), (2, 1, 3)],
])
def test_receptive_field_reference_matches_gradient_support(layers):
    assert ref.receptive_field(layers) == _receptive_field_by_gradient(layers)
