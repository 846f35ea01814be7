"""A worker process killed in the middle of a ferroconv.dask computation is
replaced by its nanny, dask recomputes what was lost with it, and the result is
complete and equal to the single call."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import ferroconv as fc  # noqa: E402
import ferroconv.dask as fcd  # noqa: E402
from dask_support import assert_same_result, local_cluster  # noqa: E402
# importable by the workers (they cannot import this test module)
from distributed.utils_test import slowidentity  # noqa: E402


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting until {what}")
        time.sleep(0.02)


def test_a_killed_worker_is_replaced_and_nothing_is_lost():
    rng = np.random.default_rng(0)
    volume = rng.standard_normal((1, 2, 48, 48, 48))
    weight = rng.standard_normal((3, 2, 3, 3, 3))
    expected = fc.max_pool3d(fc.conv3d(volume, weight, padding="same", padding_mode="reflect"), 2)
    # 27 blocks of 0.1 s each on 2 single-threaded workers: still running when a
    # worker is killed
    x = da.from_array(volume, chunks=(1, 2, 16, 16, 16)).map_blocks(slowidentity, delay=0.1, dtype=volume.dtype)
    lazy = fcd.max_pool3d(fcd.conv3d(x, weight, padding="same", padding_mode="reflect"), 2)

    with local_cluster(n_workers=2) as cluster, distributed.Client(cluster, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
        future = client.compute(lazy)
        # kill a worker once it holds finished blocks and is busy with more
        victim: list[str] = []

        def busy_worker_with_results() -> bool:
            processing, held = client.processing(), client.has_what()
            victim[:] = [w for w in processing if processing[w] and held.get(w)][:1]
            return bool(victim)

        wait_until(busy_worker_with_results, 30, "a worker holds results and runs tasks")
        pid = client.run(os.getpid, workers=victim)[victim[0]]
        assert future.status == "pending"
        os.kill(pid, signal.SIGKILL)  # a hard crash, as an out-of-memory kill would be

        result = future.result(timeout=120)
        assert_same_result(np.asarray(result), expected)
        # the nanny started a new worker process in place of the killed one
        def replaced() -> bool:
            workers = client.scheduler_info()["workers"]
            return len(workers) == 2 and victim[0] not in workers

        wait_until(replaced, 60, "the worker is replaced")
        # and the cluster keeps working
        small = da.from_array(volume[:, :, :16], chunks=(1, 2, 8, 16, 16))
        assert_same_result(client.compute(fcd.conv3d(small, weight)).result(timeout=60),
                           fc.conv3d(volume[:, :, :16], weight))
