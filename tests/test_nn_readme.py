"""The README's tutorial code runs: the doctest blocks give the outputs shown and
the training loop trains (its last line reports > 95% test accuracy)."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

from nn_gradcheck import needs_pooling

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def training_loops() -> list[str]:
    """The README's python blocks that train (other sections have plain code too)."""
    return [block for block in python_blocks() if ">>>" not in block and "optimizer.step()" in block]


def test_readme_has_a_training_loop_and_geometry_examples():
    blocks = python_blocks()
    assert len(training_loops()) == 1
    assert sum(">>>" in block for block in blocks) >= 3


def test_readme_geometry_examples_give_the_outputs_shown():
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    session = "\n".join(block for block in python_blocks() if ">>>" in block)  # one namespace, like a reader's
    runner.run(parser.get_doctest(session, {}, "README", str(README), 0))
    assert runner.failures == 0 and runner.tries >= 8


@needs_pooling
def test_readme_training_loop_trains(tmp_path, monkeypatch, capsys):
    pytest.importorskip("sklearn")
    (loop,) = training_loops()
    monkeypatch.chdir(tmp_path)
    exec(compile(loop, str(README), "exec"), {"__name__": "readme"})
    lines = capsys.readouterr().out.strip().splitlines()
    accuracy = float(re.search(r"test accuracy ([0-9.]+)%", lines[-1]).group(1))
    assert accuracy > 95, lines
    assert (tmp_path / "digits.npz").is_file()
