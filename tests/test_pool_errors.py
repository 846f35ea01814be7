"""Bad input: every error is a ValueError or TypeError whose message starts with
the function's name and names the offending argument."""

from __future__ import annotations

import re

import numpy as np
import pytest

import ferroconv as fc

X2 = np.ones((2, 3, 6, 6), np.float32)


def raises(kind: type, op: str, *words: str):
    """``pytest.raises`` for ``kind`` whose message is ``"{op}: ..."`` and holds ``words``."""
    pattern = "^" + re.escape(op + ": ") + "".join(f"(?=.*{re.escape(w)})" for w in words)
    return pytest.raises(kind, match=pattern)


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
def test_kernel_of_zero(name: str) -> None:
    with raises(ValueError, name, "kernel_size", "(0, 2)"):
        getattr(fc, name)(X2, (0, 2))


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
def test_kernel_larger_than_the_padded_input(name: str) -> None:
    with raises(ValueError, name, "kernel_size (9, 9)", "padded input size (8, 8)"):
        getattr(fc, name)(X2, 9, padding=1)


@pytest.mark.parametrize("name", ["max_pool1d", "max_pool2d", "max_pool3d", "avg_pool2d", "pool_output_shape"])
def test_padding_above_half_the_kernel(name: str) -> None:
    rank = 2 if name == "pool_output_shape" else int(name[-2])
    x = (6,) * rank if name == "pool_output_shape" else np.ones((1, 1) + (6,) * rank)
    expected = "padding (2, 2) must be at most half the kernel size (3, 3)" if rank == 2 else "padding"
    with raises(ValueError, name, expected):
        getattr(fc, name)(x, 3, padding=2)


def test_padding_message_is_exact() -> None:
    with pytest.raises(ValueError) as info:
        fc.max_pool2d(X2, 3, padding=2)
    assert str(info.value) == (
        "max_pool2d: padding (2, 2) must be at most half the kernel size (3, 3) (PyTorch's rule; "
        "per-side (lo, hi) pairs may go up to the dilated kernel size minus 1)"
    )


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d", "max_unpool2d"])
def test_stride_of_zero(name: str) -> None:
    if name == "max_unpool2d":
        with raises(ValueError, name, "stride"):
            fc.max_unpool2d(X2, np.zeros(X2.shape, np.int64), 2, stride=0)
        return
    with raises(ValueError, name, "stride"):
        getattr(fc, name)(X2, 2, stride=(1, 0))


def test_dilation_of_zero_and_a_dilated_window_inside_the_padding() -> None:
    with raises(ValueError, "max_pool2d", "dilation"):
        fc.max_pool2d(X2, 2, dilation=0)
    # Taps at -1 and 1 around a single cell: PyTorch returns -inf and an index
    # outside the input; ferroconv refuses.
    with raises(ValueError, "max_pool1d", "dilation (2,)", "padding (1,)"):
        fc.max_pool1d(np.ones((1, 1, 1)), 2, stride=1, padding=1, dilation=2)


def test_output_sizes_that_are_empty_or_out_of_range() -> None:
    with raises(ValueError, "pool_output_shape", "output size would be (0,)"):
        fc.pool_output_shape(3, 4)
    with raises(ValueError, "adaptive_avg_pool2d", "output_size"):
        fc.adaptive_avg_pool2d(X2, (2, -1))
    with raises(ValueError, "max_unpool1d", "output_size (9,)", "strictly between (4,) and (8,)"):
        fc.max_unpool1d(np.ones((1, 1, 3)), np.zeros((1, 1, 3), np.int64), 2, output_size=9)
    with raises(ValueError, "max_unpool1d", "default output size", "(-1,)"):
        fc.max_unpool1d(np.ones((1, 1, 1)), np.zeros((1, 1, 1), np.int64), 1, padding=1)
    with raises(ValueError, "avg_pool2d", "divisor_override"):
        fc.avg_pool2d(X2, 2, divisor_override=0)


def test_empty_spatial_input() -> None:
    with raises(ValueError, "max_pool2d", "spatial size (0, 6)"):
        fc.max_pool2d(np.ones((1, 1, 0, 6)), 2)
    with raises(ValueError, "adaptive_max_pool1d", "spatial size (0,)"):
        fc.adaptive_max_pool1d(np.ones((1, 1, 0)), 2)


@pytest.mark.parametrize("name", ["max_pool2d_backward", "max_unpool2d", "adaptive_max_pool2d_backward"])
def test_indices_of_the_wrong_shape(name: str) -> None:
    values, indices = fc.max_pool2d(X2, 2, return_indices=True)
    args = (values, indices[:, :, :2], X2.shape) if "backward" in name else (values, indices[:, :, :2], 2)
    with raises(ValueError, name, "indices has shape (2, 3, 2, 3)"):
        getattr(fc, name)(*args)


@pytest.mark.parametrize("name", ["max_pool2d_backward", "max_unpool2d"])
@pytest.mark.parametrize("dtype", [np.int32, np.float64, np.uint64])
def test_indices_of_the_wrong_dtype(name: str, dtype) -> None:
    values, indices = fc.max_pool2d(X2, 2, return_indices=True)
    third = X2.shape if "backward" in name else 2
    with raises(TypeError, name, "indices", "int64"):
        getattr(fc, name)(values, indices.astype(dtype), third)


@pytest.mark.parametrize("name", ["max_pool2d_backward", "max_unpool2d", "adaptive_max_pool2d_backward"])
@pytest.mark.parametrize("bad", [-1, 36, 2**62])
def test_indices_out_of_range(name: str, bad: int) -> None:
    values, indices = fc.max_pool2d(X2, 2, return_indices=True)
    indices = indices.copy()
    indices[1, 2, 2, 1] = bad
    third = X2.shape if "backward" in name else 2
    with raises(ValueError, name, f"indices holds {bad}", "position 7 of plane 5", "36 elements"):
        getattr(fc, name)(values, indices, third)


@pytest.mark.parametrize("name", ["max_pool1d", "max_pool2d", "max_pool3d", "avg_pool2d", "adaptive_avg_pool2d",
                                  "adaptive_max_pool3d"])
@pytest.mark.parametrize("ndim", [1, 2, 6])
def test_wrong_number_of_axes(name: str, ndim: int) -> None:
    rank = int(name[-2])
    if ndim in (rank + 1, rank + 2):
        return
    x = np.ones((2,) * ndim)
    with raises(ValueError, name, "x must be", f"{rank + 2}-D"):
        getattr(fc, name)(x, 1)


def test_global_pooling_needs_batched_input_with_one_to_three_spatial_axes() -> None:
    for shape in [(4, 4), (1, 1, 1, 1, 1, 1)]:
        with raises(ValueError, "global_avg_pool", "x must be batched"):
            fc.global_avg_pool(np.ones(shape))
        with raises(ValueError, "global_max_pool", "x must be batched"):
            fc.global_max_pool(np.ones(shape))


@pytest.mark.parametrize("name", ["avg_pool2d", "adaptive_avg_pool2d"])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_, np.longdouble, np.complex128])
def test_non_float_input(name: str, dtype) -> None:
    with raises(TypeError, name, "x", "float32, float64, float16 or bfloat16"):
        getattr(fc, name)(np.ones((1, 1, 4, 4), dtype), 2)


@pytest.mark.parametrize("name", ["max_pool2d", "adaptive_max_pool2d"])
@pytest.mark.parametrize("dtype", [np.uint32, np.uint64, np.bool_, np.longdouble, np.complex128])
def test_max_pooling_input_of_no_float_or_listed_integer_dtype(name: str, dtype) -> None:
    # integer max pooling: tests/test_pool_integer.py
    with raises(TypeError, name, "x", "float32, float64, float16, bfloat16, int8, uint8, int16, uint16, int32 or int64"):
        getattr(fc, name)(np.ones((1, 1, 4, 4), dtype), 2)


def test_grad_out_of_the_wrong_shape_or_dtype() -> None:
    with raises(ValueError, "avg_pool2d_backward", "grad_out has shape (2, 3, 2, 2)", "(2, 3, 3, 3)"):
        fc.avg_pool2d_backward(np.ones((2, 3, 2, 2)), X2.shape, 2)
    with raises(TypeError, "max_pool2d_backward", "grad_out"):
        fc.max_pool2d_backward(np.ones((2, 3, 3, 3), np.int64), np.zeros((2, 3, 3, 3), np.int64), X2.shape)


def test_input_shape_that_does_not_fit_grad_out() -> None:
    grad = np.ones((2, 3, 3, 3))
    with raises(ValueError, "adaptive_avg_pool2d_backward", "input_shape", "batch size or channels"):
        fc.adaptive_avg_pool2d_backward(grad, (2, 4, 6, 6))
    with raises(ValueError, "avg_pool2d_backward", "input_shape", "got (6, 6, 6)"):
        fc.avg_pool2d_backward(grad, (6, 6, 6), 2)
    with raises(TypeError, "max_pool2d_backward", "input_shape"):
        fc.max_pool2d_backward(grad, np.zeros(grad.shape, np.int64), "6x6")


def test_flags_and_sizes_of_the_wrong_type() -> None:
    with raises(TypeError, "max_pool2d", "ceil_mode"):
        fc.max_pool2d(X2, 2, ceil_mode="yes")
    with raises(TypeError, "avg_pool2d", "count_include_pad"):
        fc.avg_pool2d(X2, 2, count_include_pad=1)
    with raises(TypeError, "max_pool2d", "kernel_size"):
        fc.max_pool2d(X2, 2.0)
    with raises(ValueError, "max_pool2d", "kernel_size", "tuple of 2 ints"):
        fc.max_pool2d(X2, (2, 2, 2))
    with raises(TypeError, "adaptive_avg_pool2d", "output_size"):
        fc.adaptive_avg_pool2d(X2, None)
    with raises(TypeError, "avg_pool2d", "divisor_override"):
        fc.avg_pool2d(X2, 2, divisor_override=1.5)
