"""Messages a new user meets first name the real problem and how to fix it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import ferroconv as fc


def test_none_and_object_inputs_say_what_they_are():
    w = np.ones((2, 1, 3, 3), np.float32)
    with pytest.raises(TypeError, match="x must be an array of float32, float64, float16 or bfloat16, got None"):
        fc.conv2d(None, w)
    with pytest.raises(TypeError, match="bias must be an array .* got None|bias"):
        fc.conv2d(np.ones((1, 1, 5, 5), np.float32), w, bias=np.array([None, None]))


def test_a_python_list_is_named_as_the_source_of_float64():
    w = np.ones((2, 1, 3, 3), np.float32)
    x = np.ones((1, 1, 5, 5)).tolist()
    with pytest.raises(TypeError, match=r"x was given as a Python list or number, which NumPy converts to "
                                        r"float64, but weight has dtype float32: pass np.asarray\(x, "
                                        r"dtype=np.float32\)"):
        fc.conv2d(x, w)
    with pytest.raises(TypeError, match=r"bias was given as a Python list .* float64, but x has dtype float32"):
        fc.conv2d(np.ones((1, 1, 5, 5), np.float32), w, bias=[0.0, 0.0])
    # arrays of different dtypes keep the plain message
    with pytest.raises(TypeError, match="weight has dtype float64 but x has dtype float32; convert one"):
        fc.conv2d(np.ones((1, 1, 5, 5), np.float32), w.astype(np.float64))
    # and a list with float64 weights just works
    assert fc.conv2d(x, w.astype(np.float64)).dtype == np.float64


def test_masked_arrays_are_refused_rather_than_unmasked_silently():
    x = np.ma.masked_array(np.ones((1, 1, 4, 4), np.float32), mask=np.zeros((1, 1, 4, 4), bool))
    with pytest.raises(TypeError, match=r"x is a masked array.*x.filled\(value\).*x.data"):
        fc.max_pool2d(x, 2)
    with pytest.raises(TypeError, match="weight is a masked array"):
        fc.conv2d(np.ones((1, 1, 4, 4), np.float32), np.ma.masked_array(np.ones((1, 1, 3, 3), np.float32)))
    assert fc.max_pool2d(x.filled(-np.inf), 2).shape == (1, 1, 2, 2)


def test_backward_with_an_input_shape_too_small_names_input_shape():
    x = np.random.default_rng(0).standard_normal((1, 1, 8, 8)).astype(np.float32)
    values, indices = fc.max_pool2d(x, 2, return_indices=True)
    with pytest.raises(ValueError, match=r"spatial size \(4, 4\) from input_shape, which must be the forward "
                                         r"input's shape"):
        fc.max_pool2d_backward(np.ones_like(values), indices, (1, 1, 4, 4))


@pytest.mark.parametrize("command", [["--help"], ["bench", "--help"], ["explain", "--help"]])
def test_cli_help_is_plain_text_with_defaults(command):
    out = subprocess.run([sys.executable, "-m", "ferroconv", *command], capture_output=True, text=True,
                         check=True).stdout
    assert "``" not in out
    assert "issue" not in out.lower()
    if command[0] == "bench":
        for option in ("--repeat", "--threads", "--no-backward", "--no-numpy"):
            line = out[out.index(option):].split("\n--")[0]
            assert len(line.split()) > 2, f"{option} has no help: {line!r}"
        assert "default: 5" in out
        assert "networks" in out and "lowp" in out
