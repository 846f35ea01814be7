"""Support of the ``ferroconv.dask`` tests: one local ``dask.distributed`` cluster
for the whole session, chunkings to draw, and the comparison with the single-call
result.

Nothing here imports dask at import time, so the rest of the suite runs without
the ``dask`` extra (the dask tests skip).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import strategies as st


def local_cluster(n_workers: int = 2, **kwargs: Any) -> Any:
    """A LocalCluster of Nanny-supervised worker processes (one thread each, one
    ferroconv thread each: the machine has few cores), bound to the loopback
    interface, without dashboards. Use it as a context manager."""
    distributed = pytest.importorskip("distributed")
    return distributed.LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, silence_logs=logging.ERROR, env={"FERROCONV_NUM_THREADS": "1"}, **kwargs,
    )


@pytest.fixture(scope="session")
def dask_client() -> Iterator[Any]:
    """A client of a 2-worker local cluster, shared by every dask test."""
    distributed = pytest.importorskip("distributed")
    with local_cluster() as cluster, distributed.Client(cluster, set_as_default=False) as client:
        yield client


def compute(client: Any, array: Any) -> np.ndarray:
    """``array`` computed on the cluster of ``client``."""
    return np.asarray(client.compute(array).result(timeout=120))


@st.composite
def splits(draw: Any, length: int, max_chunks: int = 4) -> tuple[int, ...]:
    """Chunk sizes of an axis of ``length`` cells: up to ``max_chunks`` chunks cut
    at random places, so chunks of one cell (smaller than most halos) occur."""
    cut_count = draw(st.integers(0, min(max_chunks - 1, length - 1)))
    cuts = sorted(draw(st.sets(st.integers(1, length - 1), min_size=cut_count, max_size=cut_count))
                  if cut_count else set())
    edges = [0, *cuts, length]
    return tuple(end - start for start, end in zip(edges, edges[1:]))


@st.composite
def chunkings(draw: Any, shape: tuple[int, ...], max_chunks: int = 4) -> tuple[tuple[int, ...], ...]:
    """A chunking of every axis of ``shape`` (channel axes included: the dask layer
    must merge them)."""
    return tuple(draw(splits(length, max_chunks)) for length in shape)


def assert_same_result(got: np.ndarray, expected: np.ndarray) -> None:
    """Same shape, dtype and bytes (NaN payloads included): every output is the
    same reduction, in the same order, as the single call computes."""
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype
    if got.tobytes() != expected.tobytes():
        differ = ~((got == expected) | (np.isnan(got) & np.isnan(expected)))
        raise AssertionError(
            f"{int(differ.sum())} of {got.size} values differ; largest difference "
            f"{np.nanmax(np.abs(got.astype(np.float64) - expected))}"
        )


def assert_same_sums(got: np.ndarray, expected: np.ndarray, x: np.ndarray, window_cells: int) -> None:
    """Same shape and dtype, values equal to the rounding of a reordered sum: the
    core sums a window that covers a whole plane (a block cut to one window) in
    lane sums rather than in window order, so average pooling on dask agrees
    with the single call to ``window_cells`` roundings of the largest input,
    not bit for bit."""
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype
    eps = float(np.finfo(got.dtype).eps)
    scale = float(np.max(np.abs(x))) if x.size else 0.0
    bound = 2.0 * window_cells * eps * scale
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    worst = float(np.nanmax(diff)) if diff.size else 0.0
    assert worst <= bound, f"largest difference {worst} > {bound}"
