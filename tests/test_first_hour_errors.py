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


def test_public_signatures_show_types_not_alias_names():
    import inspect

    from ferroconv import nn

    for name in fc.functional.__all__:
        func = getattr(fc, name)
        if not callable(func) or isinstance(func, type):
            continue
        for parameter in inspect.signature(func).parameters.values():
            assert not isinstance(parameter.annotation, str), (name, parameter)
    for cls in (nn.Conv2d, nn.ConvTranspose3d, nn.MaxPool2d, nn.AvgPool3d, nn.BatchNorm2d, nn.Linear):
        for parameter in inspect.signature(cls).parameters.values():
            assert not isinstance(parameter.annotation, str), (cls, parameter)
    assert "Sequence[int]" in str(inspect.signature(fc.conv2d).parameters["stride"].annotation)


def test_every_layer_documents_its_own_parameters():
    import inspect

    from ferroconv import nn

    layers = [getattr(nn, name) for name in dir(nn)
              if isinstance(getattr(nn, name), type) and issubclass(getattr(nn, name), nn.Module)]
    for cls in layers:
        doc = inspect.getdoc(cls) or ""
        assert "parameters as" not in doc, cls
    for cls in (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.MaxPool3d, nn.AvgPool2d, nn.BatchNorm3d):
        doc = inspect.getdoc(cls)
        assert "Parameters\n----------" in doc and "kernel_size" in doc or "num_features" in doc, cls


def test_install_hints_work_without_pypi():
    """ferroconv is not on PyPI: no hint may tell users to pip install "ferroconv[...]"."""
    import pathlib

    package = pathlib.Path(fc.__file__).resolve().parent
    for path in package.rglob("*.py"):
        assert "ferroconv[" not in path.read_text(encoding="utf-8"), path
