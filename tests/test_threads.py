"""Thread count control and determinism: results are bit-identical for any
thread count (forward and backward, every conv flavour), the pool is
configurable via FERROCONV_NUM_THREADS, concurrent calls from Python threads are
safe, and a forked child does not deadlock on the parent's pool."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import ferroconv as fc
from strategies import make_values




def test_set_and_get_num_threads_round_trip(restore_threads):
    for n in (1, 2, 3, 1):
        fc.set_num_threads(n)
        assert fc.get_num_threads() == n


def _conv_fwd_bwd(rank, xs, ws, dtype, **kw):
    x = make_values(0, xs, dtype)
    w = make_values(1, ws, dtype)
    b = make_values(2, (ws[0],), dtype)

    def run():
        y = getattr(fc, f"conv{rank}d")(x, w, b, **kw)
        g = make_values(3, y.shape, dtype)
        return (y,) + tuple(getattr(fc, f"conv{rank}d_backward")(g, x, w, **kw))
    return run


def _tconv_fwd_bwd(rank, xs, ws, dtype, **kw):
    x = make_values(0, xs, dtype)
    w = make_values(1, ws, dtype)

    def run():
        y = getattr(fc, f"conv_transpose{rank}d")(x, w, None, **kw)
        g = make_values(3, y.shape, dtype)
        return (y,) + tuple(getattr(fc, f"conv_transpose{rank}d_backward")(g, x, w, **kw))
    return run


WORKLOADS = {
    "conv2d_3x3_f32": lambda: _conv_fwd_bwd(2, (8, 16, 32, 32), (32, 16, 3, 3), np.float32, padding=1),
    "conv2d_3x3_f64": lambda: _conv_fwd_bwd(2, (4, 16, 30, 30), (24, 16, 3, 3), np.float64, padding=1),
    "conv2d_1x1_f32": lambda: _conv_fwd_bwd(2, (8, 32, 24, 24), (48, 32, 1, 1), np.float32),
    "conv2d_5x5_s2_f32": lambda: _conv_fwd_bwd(2, (4, 8, 45, 41), (16, 8, 5, 5), np.float32, stride=2, padding=2),
    "conv2d_depthwise_f32": lambda: _conv_fwd_bwd(2, (4, 32, 28, 28), (32, 1, 3, 3), np.float32, padding=1, groups=32),
    "conv2d_grouped_reflect_f32": lambda: _conv_fwd_bwd(2, (4, 16, 26, 26), (16, 4, 3, 3), np.float32, padding=1, groups=4, padding_mode="reflect"),
    "conv1d_f32": lambda: _conv_fwd_bwd(1, (16, 16, 500), (32, 16, 7), np.float32, padding=3),
    "conv3d_f32": lambda: _conv_fwd_bwd(3, (2, 8, 14, 14, 14), (16, 8, 3, 3, 3), np.float32, padding=1),
    # Batch 1, small planes, many output channels: few tasks per image, so the
    # forward passes are cut along the output channels, into a number of chunks
    # that follows the thread count (Winograd, implicit GEMM, im2col; f32 and f64).
    "conv2d_3x3_small_plane_n1_f32": lambda: _conv_fwd_bwd(2, (1, 32, 28, 27), (256, 32, 3, 3), np.float32, padding=1),
    "conv2d_3x3_small_plane_n1_f64": lambda: _conv_fwd_bwd(2, (1, 24, 26, 26), (200, 24, 3, 3), np.float64, padding=1),
    "conv2d_3x3_7x7_n1_f32": lambda: _conv_fwd_bwd(2, (1, 24, 7, 7), (200, 24, 3, 3), np.float32, padding=1),
    "conv2d_5x5_small_plane_n1_f32": lambda: _conv_fwd_bwd(2, (1, 16, 12, 12), (264, 16, 5, 5), np.float32, padding=2),
    "conv2d_1x1_s2_small_plane_n1_f32": lambda: _conv_fwd_bwd(2, (1, 64, 14, 14), (512, 64, 1, 1), np.float32, stride=2),
    "conv_transpose2d_f32": lambda: _tconv_fwd_bwd(2, (4, 32, 16, 16), (32, 16, 4, 4), np.float32, stride=2, padding=1),
    "conv_transpose3d_f64": lambda: _tconv_fwd_bwd(3, (2, 8, 8, 8, 8), (8, 8, 3, 3, 3), np.float64, stride=2, padding=1, output_padding=1),
}


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_results_are_bit_identical_for_any_thread_count(name, restore_threads):
    run = WORKLOADS[name]()
    results = {}
    for n in (1, 2, 4):
        fc.set_num_threads(n)
        results[n] = run()
        again = run()
        for a, b in zip(results[n], again):
            assert a.tobytes() == b.tobytes(), f"{name}: two runs with {n} threads differ"
    labels = ("output", "grad_x", "grad_weight", "grad_bias")
    for n in (2, 4):
        for label, a, b in zip(labels, results[1], results[n]):
            assert a.dtype == b.dtype and a.shape == b.shape
            if a.tobytes() != b.tobytes():
                diff = np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))
                pytest.fail(f"{name}: {label} with 1 thread != with {n} threads (max |diff| {diff:g})")


def test_convolve_is_bit_identical_for_any_thread_count(restore_threads):
    x = make_values(0, (4, 64, 64), np.float32)
    k = make_values(1, (4, 7, 7), np.float32)
    out = {}
    for n in (1, 2, 4):
        fc.set_num_threads(n)
        out[n] = fc.convolve(x, k, "same", multichannel=True).tobytes()
    assert out[1] == out[2] == out[4]


def test_concurrent_calls_from_python_threads_agree_with_serial(restore_threads):
    fc.set_num_threads(2)
    x = make_values(0, (4, 8, 40, 40), np.float32)
    w = make_values(1, (16, 8, 3, 3), np.float32)
    expected = fc.conv2d(x, w, padding=1)
    g = make_values(2, expected.shape, np.float32)
    expected_grads = fc.conv2d_backward(g, x, w, padding=1)
    errors = []

    def worker():
        try:
            for _ in range(5):
                if fc.conv2d(x, w, padding=1).tobytes() != expected.tobytes():
                    errors.append("forward differs")
                grads = fc.conv2d_backward(g, x, w, padding=1)
                if any(a.tobytes() != b.tobytes() for a, b in zip(grads, expected_grads)):
                    errors.append("backward differs")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a conv call from a Python thread hung"
    assert not errors, errors


def _child_env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "FERROCONV_NUM_THREADS"}
    env.update(extra)
    return env


def test_num_threads_environment_variable_sets_the_default():
    code = "import ferroconv; print(ferroconv.get_num_threads())"
    out = subprocess.run([sys.executable, "-c", code], env=_child_env(FERROCONV_NUM_THREADS="3"),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "3"


def test_default_thread_count_is_the_available_cores():
    code = "import ferroconv; print(ferroconv.get_num_threads())"
    out = subprocess.run([sys.executable, "-c", code], env=_child_env(), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    cores = {os.cpu_count()}
    if hasattr(os, "sched_getaffinity"):
        cores.add(len(os.sched_getaffinity(0)))
    assert int(out.stdout.strip()) in cores


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_can_convolve_after_parent_used_the_pool(restore_threads):
    fc.set_num_threads(2)
    x = make_values(0, (8, 16, 32, 32), np.float32)
    w = make_values(1, (32, 16, 3, 3), np.float32)
    expected = fc.conv2d(x, w, padding=1)  # the parent's pool has run
    pid = os.fork()
    if pid == 0:  # child: must not deadlock, must compute the same result
        code = 1
        try:
            y = fc.conv2d(x, w, padding=1)
            g = fc.conv2d_backward(np.ones_like(y), x, w, padding=1)
            code = 0 if (y.tobytes() == expected.tobytes() and g[0].shape == x.shape) else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("forked child deadlocked in conv2d (killed after 60 s)")
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (
        f"forked child failed: status {status}")


_WORKER_AFFINITY = """
import glob, json, os, sys
import numpy as np, ferroconv
ferroconv.set_num_threads(int(sys.argv[1]))
ferroconv.avg_pool2d(np.ones((8, 64, 128, 128), np.float32), 2)  # large enough to use the pool
masks = {}
for task in glob.glob("/proc/self/task/*"):
    with open(task + "/comm") as f:
        name = f.read().strip()
    if name.startswith("ferroconv-"):
        masks[name] = sorted(os.sched_getaffinity(int(task.rsplit("/", 1)[1])))
print(json.dumps(masks))
"""


def _worker_masks(threads, **env):
    import json
    out = subprocess.run([sys.executable, "-c", _WORKER_AFFINITY, str(threads)], env=_child_env(**env),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs Linux and >= 2 usable CPUs")
def test_workers_are_pinned_only_with_one_worker_per_usable_cpu():
    cpus = sorted(os.sched_getaffinity(0))
    pinned = _worker_masks(len(cpus))
    assert sorted(pinned) == [f"ferroconv-{i}" for i in range(len(cpus))]
    assert sorted(mask for masks in pinned.values() for mask in masks) == cpus
    assert all(len(mask) == 1 for mask in pinned.values())
    # More workers than CPUs, or pinning turned off: every worker may run anywhere.
    for masks in (_worker_masks(len(cpus) + 1), _worker_masks(len(cpus), FERROCONV_PIN_THREADS="0")):
        assert masks and all(mask == cpus for mask in masks.values())
