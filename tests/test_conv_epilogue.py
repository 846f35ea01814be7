"""Fused epilogues of the convolutions (``activation=``, ``residual=``, ``out=``):
the fused result equals the unfused composition ``act(conv(x, w, b) + residual)``
computed with NumPy from ferroconv's own plain convolution, for every rank,
dtype, memory layout and algorithm the strategies reach; ``out`` may be the
residual itself; bad arguments are errors naming them."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ferroconv as fc
from strategies import LAYOUTS, conv_cases, make_values, transpose_cases, with_layout

ACTIVATIONS = (None, "relu", "relu6", "leaky_relu", "sigmoid", "silu")
CONV = {1: fc.conv1d, 2: fc.conv2d, 3: fc.conv3d}
TRANSPOSE = {1: fc.conv_transpose1d, 2: fc.conv_transpose2d, 3: fc.conv_transpose3d}


def unfused(y, residual, activation, slope):
    """The composition the epilogue fuses, one NumPy operation per step."""
    z = y if residual is None else y + residual
    if activation is None:
        return z
    if activation == "relu":
        return np.where(z < 0, z.dtype.type(0), z)
    if activation == "relu6":
        return np.where(z < 0, z.dtype.type(0), np.where(z > 6, z.dtype.type(6), z))
    if activation == "leaky_relu":
        return np.where(z < 0, z * z.dtype.type(slope), z)
    with np.errstate(over="ignore"):
        s = 1 / (1 + np.exp(-z))
    return s if activation == "sigmoid" else z * s


def check(got, expected, activation):
    assert got.dtype == expected.dtype and got.shape == expected.shape
    if activation in ("sigmoid", "silu"):
        # exp may differ from NumPy's in its last bits
        tol = 8 * np.finfo(expected.dtype).eps
        np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(got, expected)


@given(case=conv_cases(), activation=st.sampled_from(ACTIVATIONS), where=st.sampled_from(("new", "out", "in_place")),
       layout=st.sampled_from(LAYOUTS), slope=st.sampled_from((0.01, 0.2, -1.5)), with_residual=st.booleans())
def test_fused_conv_equals_the_composition(case, activation, where, layout, slope, with_residual):
    conv = CONV[case.rank]
    plain = conv(case.x, case.weight, case.bias, **case.kwargs())
    residual = make_values(case.seed + 7, plain.shape, case.dtype) * 4 if with_residual else None
    expected = unfused(plain, residual, activation, slope)
    kwargs = dict(case.kwargs(), activation=activation, negative_slope=slope)
    if where == "new":
        res = None if residual is None else with_layout(residual, layout)
        got = conv(case.x, case.weight, case.bias, residual=res, **kwargs)
    elif where == "out" or residual is None:
        out = np.full(plain.shape, np.nan, case.dtype)
        res = None if residual is None else with_layout(residual, layout)
        got = conv(case.x, case.weight, case.bias, residual=res, out=out, **kwargs)
        assert got is out
    else:
        out = residual.copy()
        got = conv(case.x, case.weight, case.bias, residual=out, out=out, **kwargs)
        assert got is out
    check(got, expected, activation)


@given(case=transpose_cases(), activation=st.sampled_from(ACTIVATIONS), in_place=st.booleans())
def test_fused_transposed_conv_equals_the_composition(case, activation, in_place):
    conv = TRANSPOSE[case.rank]
    plain = conv(case.x, case.weight, case.bias, **case.kwargs())
    residual = make_values(case.seed + 7, plain.shape, case.dtype)
    expected = unfused(plain, residual, activation, 0.01)
    if in_place:
        out = residual.copy()
        got = conv(case.x, case.weight, case.bias, activation=activation, residual=out, out=out, **case.kwargs())
        assert got is out
    else:
        got = conv(case.x, case.weight, case.bias, activation=activation, residual=residual, **case.kwargs())
    check(got, expected, activation)


@pytest.mark.parametrize("shape, kernel, padding, groups", [
    ((2, 64, 20, 20), 3, 1, 1),     # Winograd
    ((2, 64, 14, 14), 1, 0, 1),     # in-place im2col GEMM
    ((2, 32, 15, 15), 3, 1, 1),     # stride 2 below: implicit GEMM
    ((2, 32, 16, 16), 3, 1, 32),    # depthwise row kernels
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_resnet_style_block_in_place(shape, kernel, padding, groups, dtype):
    """``out=shortcut, residual=shortcut``: the block's output overwrites the
    shortcut, as a ResNet basic block's second convolution would."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((shape[1], shape[1] // groups, kernel, kernel)).astype(dtype)
    b = rng.standard_normal(shape[1]).astype(dtype)
    y = fc.conv2d(x, w, b, padding=padding, groups=groups)
    shortcut = rng.standard_normal(y.shape).astype(dtype)
    expected = np.maximum(y + shortcut, 0)
    got = fc.conv2d(x, w, b, padding=padding, groups=groups, activation="relu", residual=shortcut, out=shortcut)
    assert got is shortcut
    np.testing.assert_array_equal(shortcut, expected)


def test_unbatched_input_with_out_and_residual():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 9, 9))
    w = rng.standard_normal((4, 3, 3, 3))
    r = rng.standard_normal((4, 7, 7))
    out = np.empty((4, 7, 7))
    got = fc.conv2d(x, w, residual=r, out=out, activation="relu6")
    assert got is out
    np.testing.assert_array_equal(out, np.clip(fc.conv2d(x, w) + r, 0, 6))


class TestErrors:
    x = np.ones((1, 2, 6, 6), np.float32)
    w = np.ones((3, 2, 3, 3), np.float32)

    def test_out_of_the_wrong_shape(self):
        with pytest.raises(ValueError, match=r"conv2d: out has shape \(1, 3, 5, 5\) but the output has shape"):
            fc.conv2d(self.x, self.w, out=np.empty((1, 3, 5, 5), np.float32))

    def test_out_of_the_wrong_dtype(self):
        with pytest.raises(TypeError, match="conv2d: out has dtype float64 but x has dtype float32"):
            fc.conv2d(self.x, self.w, out=np.empty((1, 3, 4, 4)))

    def test_out_not_contiguous_or_read_only(self):
        with pytest.raises(ValueError, match="conv2d: out must be C-contiguous"):
            fc.conv2d(self.x, self.w, out=np.empty((1, 3, 4, 8), np.float32)[..., ::2])
        ro = np.empty((1, 3, 4, 4), np.float32)
        ro.flags.writeable = False
        with pytest.raises(ValueError, match="conv2d: out must be writeable"):
            fc.conv2d(self.x, self.w, out=ro)

    def test_out_sharing_memory_with_an_input(self):
        x = np.ones((1, 3, 6, 6), np.float32)
        w = np.ones((3, 3, 1, 1), np.float32)
        with pytest.raises(ValueError, match="conv2d: out must not share memory with x"):
            fc.conv2d(x, w, out=x)

    def test_residual_overlapping_out_partially(self):
        buf = np.zeros(64, np.float32)
        out, residual = buf[:48].reshape(1, 3, 4, 4), buf[16:].reshape(1, 3, 4, 4)
        with pytest.raises(ValueError, match="conv2d: residual overlaps out"):
            fc.conv2d(self.x, self.w, residual=residual, out=out)

    def test_residual_of_the_wrong_shape_or_dtype(self):
        with pytest.raises(ValueError, match="conv2d: residual has shape"):
            fc.conv2d(self.x, self.w, residual=np.ones((1, 3, 5, 5), np.float32))
        with pytest.raises(TypeError, match="conv2d: residual has dtype float64"):
            fc.conv2d(self.x, self.w, residual=np.ones((1, 3, 4, 4)))

    def test_unknown_activation_and_bad_slope(self):
        with pytest.raises(ValueError, match="conv2d: activation must be None or one of"):
            fc.conv2d(self.x, self.w, activation="gelu")
        with pytest.raises(TypeError, match="conv2d: negative_slope must be a number"):
            fc.conv2d(self.x, self.w, activation="leaky_relu", negative_slope="0.1")
        with pytest.raises(ValueError, match="conv2d: negative_slope must be a finite number"):
            fc.conv2d(self.x, self.w, activation="leaky_relu", negative_slope=float("nan"))

    def test_transposed_errors_name_their_function(self):
        with pytest.raises(ValueError, match="conv_transpose2d: out has shape"):
            fc.conv_transpose2d(np.ones((1, 3, 4, 4), np.float32), np.ones((3, 2, 3, 3), np.float32),
                                out=np.empty((1, 2, 5, 5), np.float32))
