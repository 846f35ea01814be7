"""The user guide's tutorial code (docs/guide.md) runs: the doctest blocks give the outputs shown and
the training loop trains (its last line reports > 95% test accuracy)."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest


README = Path(__file__).resolve().parent.parent / "docs" / "guide.md"
if not README.is_file():  # e.g. tests copied next to an installed wheel
    pytest.skip("docs/guide.md is not beside the tests", allow_module_level=True)


TUTORIAL = "## Tutorial: training a CNN with `ferroconv.nn`"


def python_blocks() -> list[str]:
    """The ```python blocks of the tutorial section (up to the next ``## `` heading)."""
    text = README.read_text(encoding="utf-8")
    assert TUTORIAL in text
    section = text.split(TUTORIAL, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def training_loop() -> str:
    (loop,) = [block for block in python_blocks() if ">>>" not in block and "from ferroconv import nn" in block]
    return loop


def test_readme_has_a_training_loop_and_geometry_examples():
    assert "optimizer.step()" in training_loop()
    assert sum(">>>" in block for block in python_blocks()) >= 3


def test_readme_geometry_examples_give_the_outputs_shown():
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    session = "\n".join(block for block in python_blocks() if ">>>" in block)  # one namespace, like a reader's
    runner.run(parser.get_doctest(session, {}, "README", str(README), 0))
    assert runner.failures == 0 and runner.tries >= 8


def test_readme_training_loop_trains(tmp_path, monkeypatch, capsys):
    pytest.importorskip("sklearn")
    monkeypatch.chdir(tmp_path)
    exec(compile(training_loop(), str(README), "exec"), {"__name__": "readme"})
    lines = capsys.readouterr().out.strip().splitlines()
    accuracy = float(re.search(r"test accuracy ([0-9.]+)%", lines[-1]).group(1))
    assert accuracy > 95, lines
    assert (tmp_path / "digits.npz").is_file()


SKIPS = "## Models with skips, summaries and checkpoints"


def test_guide_skips_summary_and_checkpoint_examples_give_the_outputs_shown():
    text = README.read_text(encoding="utf-8")
    section = text.split(SKIPS, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(parser.get_doctest("\n".join(blocks), {}, "guide", str(README), 0))
    assert runner.failures == 0 and runner.tries >= 15
