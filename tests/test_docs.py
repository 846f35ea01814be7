"""The examples in the public modules' docstrings run and print what they claim
(the user guide's examples are run by test_guide_tutorial.py and test_lowp.py)."""

from __future__ import annotations

import doctest
import importlib

import pytest

import ferroconv

MODULES = ["ferroconv", "ferroconv.functional", "ferroconv.nn", "ferroconv.nn.module", "ferroconv.nn.activation",
           "ferroconv.nn.pooling", "ferroconv.nn.norm", "ferroconv.nn.loss", "ferroconv.nn.optim",
           "ferroconv.nn.upsample", "ferroconv.nn.utils", "ferroconv.nn.conv"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


@pytest.mark.parametrize("name", ["torch", "jax"])
def test_bridge_docstring_examples_run(name: str) -> None:
    pytest.importorskip(name)
    module = importlib.import_module(f"ferroconv.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_import_ferroconv_imports_no_bridge_framework() -> None:
    import subprocess
    import sys

    code = "import sys, ferroconv, ferroconv.nn; print(sorted({'torch', 'jax'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_docstring_examples_exist() -> None:
    finder = doctest.DocTestFinder()
    examples = sum(len(t.examples) for t in finder.find(ferroconv.functional))
    assert examples >= 10


def test_version_comes_from_the_package_metadata_and_matches_the_extension() -> None:
    from importlib import metadata

    from ferroconv import _ferroconv

    assert ferroconv.__version__ == metadata.version("ferroconv") == _ferroconv.__version__
