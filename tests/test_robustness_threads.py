"""Threads, the GIL, fork safety and determinism.

* The GIL is released while the Rust core computes: another Python thread keeps
  counting during a large conv (and its backward / transposed variants).
* Convolutions run concurrently from two Python threads give the bytes of serial
  calls.
* After the thread pool has run, ``os.fork()`` children (and a ``multiprocessing``
  pool with the "fork" start method) compute correct results without deadlocking
  on the parent's pool; a timeout turns a deadlock into a failure.
* Every public function taking arrays (convolutions, their backward, and
  pooling once exported) gives identical bytes with 1, 2 or 3 threads and across
  repeated runs (valid cases drawn by ``fuzz_args`` at sizes that go parallel).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sys
import threading
import time
import warnings

import numpy as np
import pytest
from hypothesis import settings

import ferroconv as fc
import fuzz_args as fa

FUNCTIONS = fa.public_functions()
ARRAY_FUNCTIONS = sorted(name for name, fn in FUNCTIONS.items()
                         if any(p.name in fa.ARRAY_NAMES for p in fa.signature(fn)))
DETERMINISM_CASES = max(3, settings.default.max_examples // 10)
CHILD_TIMEOUT = 60.0




def values(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def digest(result):
    """sha256 over every array of a result (a tuple of arrays / None, or an array)."""
    h = hashlib.sha256()
    for a in result if isinstance(result, tuple) else (result,):
        if a is None:
            h.update(b"None")
        else:
            a = np.asarray(a)
            h.update(repr((a.shape, a.dtype.str)).encode())
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


# ----------------------------------------------------------------------- GIL


def _gil_workload(name):
    if name == "conv2d":  # the example: (16, 64, 128, 128) with 64 3x3 filters
        x, w = values((16, 64, 128, 128)), values((64, 64, 3, 3), seed=1)
        return lambda: fc.conv2d(x, w, padding=1)
    if name == "conv2d_backward":
        x, w = values((16, 64, 64, 64)), values((64, 64, 3, 3), seed=1)
        g = values((16, 64, 64, 64), seed=2)
        return lambda: fc.conv2d_backward(g, x, w, padding=1)
    if name == "conv_transpose2d":
        x, w = values((16, 64, 48, 48)), values((64, 64, 4, 4), seed=1)
        return lambda: fc.conv_transpose2d(x, w, stride=2, padding=1)
    if name == "conv3d":
        x, w = values((8, 32, 24, 24, 24)), values((32, 32, 3, 3, 3), seed=1)
        return lambda: fc.conv3d(x, w, padding=1)
    raise KeyError(name)


@pytest.mark.parametrize("name", ["conv2d", "conv2d_backward", "conv_transpose2d", "conv3d"])
def test_gil_is_released_during_a_large_call(name, restore_threads):
    call = _gil_workload(name)
    min_window = 0.3 if name == "conv2d" else 0.15
    stamps = []
    stop = threading.Event()

    def count():
        n = 0
        while not stop.is_set():
            n += 1
            if n % 1000 == 0:
                stamps.append(time.perf_counter())

    counter = threading.Thread(target=count, daemon=True)
    counter.start()
    try:
        while not stamps:
            time.sleep(0.001)
        t = time.perf_counter()
        time.sleep(0.1)  # calibrate the counter alone
        solo_rate = 1000 * sum(1 for s in stamps if s > t) / (time.perf_counter() - t)
        windows = []
        while sum(b - a for a, b in windows) < min_window and len(windows) < 100:
            t0 = time.perf_counter()
            call()
            windows.append((t0, time.perf_counter()))
    finally:
        stop.set()
        counter.join(timeout=10)
    # count only the increments made well inside a call: with the GIL held the
    # counter gets at most a switch interval (5 ms) at either end of each call
    margin = 2 * sys.getswitchinterval()
    inside = 1000 * sum(1 for s in stamps for a, b in windows if a + margin < s < b - margin)
    busy = sum(max(0.0, b - a - 2 * margin) for a, b in windows)
    assert sum(b - a for a, b in windows) >= min_window
    assert inside >= max(20_000, 0.02 * solo_rate * busy), (
        f"{name}: the counter thread advanced by {inside} during {busy:.2f} s of calls "
        f"(alone it counts {solo_rate:.3g}/s): the GIL is held while computing")


# ------------------------------------------------------- concurrent callers


def _concurrent_workloads():
    x2, w2 = values((4, 16, 40, 40)), values((24, 16, 3, 3), seed=1)
    g2 = values((4, 24, 40, 40), seed=2)
    x1, w1 = values((8, 16, 700), np.float64, 3), values((16, 4, 9), np.float64, 4)
    xt, wt = values((4, 16, 20, 20), seed=5), values((16, 8, 4, 4), seed=6)
    return [
        lambda: fc.conv2d(x2, w2, padding=1),
        lambda: fc.conv2d_backward(g2, x2, w2, padding=1),
        lambda: fc.conv1d(x1, w1, stride=2, padding=4, groups=4, padding_mode="reflect"),
        lambda: fc.conv_transpose2d(xt, wt, stride=2, padding=1, output_padding=1),
        lambda: fc.conv_transpose2d_backward(values((4, 8, 41, 41), seed=7), xt, wt, stride=2, padding=1,
                                             output_padding=1),
    ]


@pytest.mark.parametrize("threads", [1, 2])
def test_two_python_threads_calling_concurrently_match_serial_calls(threads, restore_threads):
    fc.set_num_threads(threads)
    work = _concurrent_workloads()
    expected = [digest(w()) for w in work]
    errors = []
    barrier = threading.Barrier(2)

    def run(order):
        try:
            for _ in range(2):
                barrier.wait(timeout=60)
                for i in order:
                    got = digest(work[i]())
                    if got != expected[i]:
                        errors.append(f"workload {i} differs from the serial result")
        except Exception as exc:  # reported below
            errors.append(repr(exc))

    threads_ = [threading.Thread(target=run, args=(order,)) for order in
                (range(len(work)), reversed(range(len(work))))]
    for t in threads_:
        t.start()
    for t in threads_:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads_), "a concurrent call hung"
    assert not errors, errors


# ----------------------------------------------------------------- fork


def _fork_workloads():
    x, w = values((8, 16, 32, 32)), values((32, 16, 3, 3), seed=1)
    g = values((8, 32, 32, 32), seed=2)
    xt, wt = values((4, 16, 16, 16), np.float64, 3), values((16, 8, 3, 3), np.float64, 4)
    return [
        lambda: fc.conv2d(x, w, padding=1),
        lambda: fc.conv2d_backward(g, x, w, padding=1),
        lambda: fc.conv_transpose2d(xt, wt, stride=2, padding=1),
        lambda: fc.conv1d(values((4, 8, 3000)), values((8, 8, 5), seed=9), padding=2),
    ]


def _wait_child(pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return None


def _fork():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (Python >= 3.12)
        return os.fork()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("child_threads", [None, 1, 2])
def test_forked_child_computes_correct_results_after_the_parent_used_the_pool(child_threads, restore_threads):
    fc.set_num_threads(2)
    work = _fork_workloads()
    expected = [digest(w()) for w in work]  # the parent's pool has run
    read_end, write_end = os.pipe()
    pid = _fork()
    if pid == 0:  # child: compute and report, whatever happens
        code = 3
        try:
            os.close(read_end)
            if child_threads is not None:
                fc.set_num_threads(child_threads)
            lines = [digest(w()) for w in work]
            lines.append(str(fc.get_num_threads()))
            os.write(write_end, "\n".join(lines).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    status = _wait_child(pid, CHILD_TIMEOUT)
    with os.fdopen(read_end, "rb") as f:
        answer = f.read().decode().split("\n")
    assert status is not None, f"the forked child deadlocked (killed after {CHILD_TIMEOUT:.0f} s)"
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"forked child failed: status {status}"
    assert answer[:-1] == expected, "the forked child computed different results"
    assert int(answer[-1]) == (child_threads or 2)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_of_a_forked_child(restore_threads):
    """Two generations of fork, each using the pool before forking again."""
    fc.set_num_threads(2)
    work = _fork_workloads()[0]
    expected = digest(work())
    pid = _fork()
    if pid == 0:
        code = 3
        try:
            if digest(work()) != expected:
                os._exit(4)
            grandchild = _fork()
            if grandchild == 0:
                os._exit(0 if digest(work()) == expected else 4)
            status = _wait_child(grandchild, CHILD_TIMEOUT / 2)
            code = 5 if status is None else os.WEXITSTATUS(status) if os.WIFEXITED(status) else 6
        finally:
            os._exit(code)
    status = _wait_child(pid, CHILD_TIMEOUT)
    assert status is not None, "the forked child deadlocked"
    assert os.WIFEXITED(status), status
    assert os.WEXITSTATUS(status) != 5, "the grandchild deadlocked"
    assert os.WEXITSTATUS(status) == 0, f"exit status {os.WEXITSTATUS(status)}"


def _pool_task(i):
    """A task of the multiprocessing test (module level, so it pickles by name)."""
    work = _fork_workloads()
    return i, digest(work[i % len(work)]())


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_multiprocessing_fork_pool_runs_convolutions(restore_threads):
    fc.set_num_threads(2)
    work = _fork_workloads()
    expected = [digest(w()) for w in work]
    ctx = multiprocessing.get_context("fork")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pool = ctx.Pool(2)
    try:
        pending = pool.map_async(_pool_task, range(2 * len(work)))
        try:
            results = pending.get(timeout=CHILD_TIMEOUT)
        except multiprocessing.TimeoutError:
            pytest.fail(f"the fork-started pool deadlocked (no result within {CHILD_TIMEOUT:.0f} s)")
    finally:
        pool.terminate()
        pool.join()
    for i, got in results:
        assert got == expected[i % len(work)], f"task {i} computed a different result"


# ------------------------------------------------------------ determinism


def _determinism_cases(name):
    for i in range(DETERMINISM_CASES):
        d = fa.RandomDraw(fa.bulk_seed(name, 12345, i))
        yield fa.draw_case(d, FUNCTIONS, name, kind="valid", big=True)


def _run(case):
    args = fa.materialize(case.args, FUNCTIONS, {})
    return FUNCTIONS[case.fn](**args)


@pytest.mark.parametrize("name", ARRAY_FUNCTIONS)
def test_results_are_identical_for_any_thread_count_and_run(name, restore_threads):
    ran = 0
    for case in _determinism_cases(name):
        results = {}
        for threads in (1, 2, 3):
            fc.set_num_threads(threads)
            try:
                first = _run(case)
            except (ValueError, TypeError, MemoryError, fa.Underivable):
                if fa.family(name)[0] == "generic":
                    break  # the generator's guess at an unknown signature was wrong
                raise
            again = _run(case)
            assert digest(first) == digest(again), f"two runs with {threads} threads differ: {case!r}"
            results[threads] = digest(first)
        else:
            ran += 1
            assert results[1] == results[2] == results[3], f"results depend on the thread count: {case!r}"
    if fa.family(name)[0] != "generic":
        assert ran == DETERMINISM_CASES
