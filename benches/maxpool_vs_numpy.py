"""max_pool2d(k=3, s=2, p=1, return_indices=True) on (8, 64, 112, 112) float32:
ferroconv vs NumPy (pad with -inf + sliding_window_view + argmax), same process.

Usage: python benches/maxpool_vs_numpy.py [threads]   (default 2)"""
import statistics
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import ferroconv as fc


def numpy_max_pool(x, k=3, s=2, p=1):
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    windows = sliding_window_view(padded, (k, k), axis=(2, 3))[:, :, ::s, ::s]
    oh, ow = windows.shape[2:4]
    flat = windows.reshape(n, c, oh, ow, k * k)
    local = flat.argmax(axis=-1)
    values = np.take_along_axis(flat, local[..., None], axis=-1)[..., 0]
    rows = np.arange(oh)[:, None] * s - p + local // k
    cols = np.arange(ow)[None, :] * s - p + local % k
    return values, (rows * w + cols).astype(np.int64)


def median_time(fn, repeats=5):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


import sys
fc.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
x = np.random.default_rng(0).standard_normal((8, 64, 112, 112)).astype(np.float32)
ours_v, ours_i = fc.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
ref_v, ref_i = numpy_max_pool(x)
assert np.array_equal(ours_v, ref_v) and np.array_equal(ours_i, ref_i)
t_fc = median_time(lambda: fc.max_pool2d(x, 3, stride=2, padding=1, return_indices=True))
t_np = median_time(lambda: numpy_max_pool(x))
t_fc_novals = median_time(lambda: fc.max_pool2d(x, 3, stride=2, padding=1))
print(f"threads={fc.get_num_threads()} input={x.shape} {x.dtype} -> {ours_v.shape}")
print(f"ferroconv max_pool2d (return_indices=True): {t_fc * 1e3:8.1f} ms (median of 5)")
print(f"ferroconv max_pool2d (values only)        : {t_fc_novals * 1e3:8.1f} ms")
print(f"numpy sliding_window_view + argmax        : {t_np * 1e3:8.1f} ms  ({t_np / t_fc:.1f}x slower)")
