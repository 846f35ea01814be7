"""Loading the scripts of examples/ as modules in tests."""

import importlib.util
import pathlib
import sys
import types

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def load_example(name: str) -> types.ModuleType:
    """``examples/<name>.py`` as a module (skips the test when examples/ is not
    next to the tests, e.g. when they run against an installed wheel)."""
    path = EXAMPLES / f"{name}.py"
    if not path.exists():
        pytest.skip("examples/ is not shipped with an installed package")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
