"""examples/dask_big_volume.py runs end to end (zarr in, cluster, zarr out) and
its result equals the same filters applied in memory."""

from __future__ import annotations

import sys

import pytest

from example_scripts import load_example

pytest.importorskip("dask.array")
pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")


@pytest.fixture(scope="module")
def example():
    module = load_example("dask_big_volume")
    yield module
    del sys.modules[module.__name__]


def test_the_example_filters_a_stored_volume_and_checks_it(example, tmp_path, capsys):
    argv = ["--shape", "40,36,30", "--chunks", "16,12,16", "--workers", "1", "--out", str(tmp_path), "--check"]
    assert example.main(argv) == 0
    output = capsys.readouterr().out
    assert "M voxels/s" in output
    assert "check: equal to the whole volume filtered in memory" in output
    assert zarr.open(str(tmp_path / "volume.zarr"), mode="r").shape == (40, 36, 30)
    assert zarr.open(str(tmp_path / "filtered.zarr"), mode="r").shape == (2, 10, 9, 7)


def test_the_example_rejects_bad_arguments(example):
    with pytest.raises(SystemExit):
        example.main(["--shape", "0"])
    with pytest.raises(SystemExit):
        example.main(["--workers", "0"])
