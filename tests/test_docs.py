"""The examples in the public modules' docstrings run and print what they claim
(README.md's examples are run by test_nn_readme.py)."""

from __future__ import annotations

import doctest
import importlib

import pytest

import ferroconv

MODULES = ["ferroconv", "ferroconv.functional"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_docstring_examples_exist() -> None:
    finder = doctest.DocTestFinder()
    examples = sum(len(t.examples) for t in finder.find(ferroconv.functional))
    assert examples >= 10


def test_version_comes_from_the_package_metadata_and_matches_the_extension() -> None:
    from importlib import metadata

    from ferroconv import _ferroconv

    assert ferroconv.__version__ == metadata.version("ferroconv") == _ferroconv.__version__
