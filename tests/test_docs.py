"""The examples in docstrings and in README.md run and print what they claim."""

from __future__ import annotations

import doctest
import importlib
import pathlib

import pytest

import ferroconv

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
MODULES = ["ferroconv", "ferroconv.functional", "ferroconv._pooling"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_docstring_examples_exist() -> None:
    finder = doctest.DocTestFinder()
    examples = sum(len(t.examples) for t in finder.find(ferroconv.functional))
    assert examples >= 10


@pytest.mark.skipif(not README.exists(), reason="README.md is not shipped with an installed package")
def test_readme_examples_run() -> None:
    result = doctest.testfile(str(README), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 5
    assert result.failed == 0
