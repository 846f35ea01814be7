"""Small assertion helpers shared by the test modules."""

import numpy as np


def maxabs(a):
    """max |a| as a float (0 for None or empty)."""
    return 0.0 if a is None or np.size(a) == 0 else float(np.max(np.abs(np.asarray(a, np.float64))))


def snapshot(*arrays):
    return [None if a is None else np.array(a, copy=True) for a in arrays]


def assert_unchanged(before, arrays):
    for b, a in zip(before, arrays):
        if b is not None:
            assert np.array_equal(b, a, equal_nan=True), "an input array was modified"


def check_result(out, dtype, shape, inputs=()):
    """A result is a new C-contiguous ndarray of the input dtype and the expected shape."""
    assert isinstance(out, np.ndarray), type(out)
    assert out.dtype == np.dtype(dtype), f"result dtype {out.dtype}, input dtype {np.dtype(dtype)}"
    assert out.shape == tuple(shape), f"result shape {out.shape}, expected {tuple(shape)}"
    assert out.flags.c_contiguous, "result is not C-contiguous"
    for a in inputs:
        if a is not None:
            assert not np.shares_memory(out, a), "result shares memory with an input"
