"""examples/torch_convert.py and examples/jax_training.py run (shortened) and
show what they claim: loss curves that agree, and with ferroconv the same
weights for 1 and 2 threads. Skipped without torch / jax."""

import pytest

from example_scripts import load_example


def test_torch_example_curves_agree_and_converted_training_is_thread_independent(capsys):
    pytest.importorskip("torch")
    example = load_example("torch_convert")
    results = example.main(["--steps", "1", "--repeats", "1", "--curve", "3"])
    assert results["max_loss_difference"] < 1e-9  # float64 curves
    hashes = results["hashes"]
    assert hashes[(True, 1)] == hashes[(True, 2)]
    assert all(t > 0 for t in results["float32"] + results["float64"])
    assert "replaced 7 layer(s)" in capsys.readouterr().out


def test_jax_example_curves_agree():
    pytest.importorskip("jax")
    example = load_example("jax_training")
    results = example.main(["--steps", "3", "--repeats", "1"])
    assert results["max_loss_difference"] < 1e-4  # float32 curves of two summation orders
    assert results["ferroconv_step"] > 0 and results["lax_step"] > 0


def test_readme_bridge_example_runs(capsys):
    import pathlib
    import re

    pytest.importorskip("torch")
    text = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## Inside PyTorch and JAX", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    exec(compile(block, "README.md", "exec"), {})
    assert "replaced 2 layer(s): 0, 2" in capsys.readouterr().out
