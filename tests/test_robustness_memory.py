"""Memory: bounded workspace and no leaks.

* Peak RSS (VmHWM, measured in a fresh subprocess) of a conv forward+backward
  exceeds what its inputs and outputs need by a bound independent of the batch:
  the extra memory at N=64 is within the design's 64 MiB workspace and not
  more than a few MiB above the extra at N=8 (no whole-batch im2col buffer).
* Calling an op in a loop does not grow RSS (every public array function,
  successful and rejected calls).
* Input arrays do not gain references, results are freed once dropped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import weakref

import numpy as np
import pytest

import fuzz_args as fa

MiB = 1 << 20
WORKSPACE_LIMIT = 64 * MiB   # the design's bound on a call's workspace
SLACK = 16 * MiB             # allocator / thread-stack noise on top of it
BATCH_GROWTH_LIMIT = 8 * MiB  # extra(N=64) - extra(N=8)
LEAK_LIMIT = 4 * MiB

FUNCTIONS = fa.public_functions()
ARRAY_FUNCTIONS = sorted(name for name, fn in FUNCTIONS.items()
                         if any(p.name in fa.ARRAY_NAMES for p in fa.signature(fn)))

_COMMON = r"""
import gc, json, os, sys
import numpy as np
sys.path.insert(0, TESTS_DIR)  # tests/support
import ferroconv as fc

def status(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    if key == "VmHWM":
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    raise RuntimeError("no /proc/self/status")

def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False

def values(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)  # no float64 temporary
"""

_PEAK_SCRIPT = _COMMON + r"""
CONFIGS = {
    "conv2d_3x3": (2, (32, 32, 32), (32, 32, 3, 3), dict(padding=1)),
    "conv2d_5x5_stride2": (2, (16, 64, 64), (32, 16, 5, 5), dict(stride=2, padding=2)),
    "conv2d_1x1": (2, (64, 32, 32), (64, 64, 1, 1), dict()),
    "conv2d_depthwise": (2, (64, 32, 32), (64, 1, 3, 3), dict(padding=1, groups=64)),
    "conv2d_reflect": (2, (16, 48, 48), (32, 16, 3, 3), dict(padding=2, dilation=2, padding_mode="reflect")),
    "conv1d": (1, (32, 1024), (32, 32, 7), dict(padding=3)),
    "conv3d": (3, (8, 16, 16, 16), (16, 8, 3, 3, 3), dict(padding=1)),
    "conv_transpose2d": (2, (32, 16, 16), (32, 16, 4, 4), dict(stride=2, padding=1)),
}
name, batches = sys.argv[1], [int(v) for v in sys.argv[2].split(",")]
rank, xs, ws, kw = CONFIGS[name]
transposed = name.startswith("conv_transpose")
op = getattr(fc, f"conv_transpose{rank}d" if transposed else f"conv{rank}d")
back = getattr(fc, f"conv_transpose{rank}d_backward" if transposed else f"conv{rank}d_backward")
w = values(ws, 1)
b = values((ws[1] * kw.get("groups", 1) if transposed else ws[0],), 2)
warm = values((1,) + xs, 0)   # build the pool and any lazy state first
back(np.ones_like(op(warm, w, b, **kw)), warm, w, **kw)
del warm
report = {}
for n in batches:
    x = values((n,) + xs, 3)
    y_shape = op(x[:1], w, b, **kw).shape
    g = values((n,) + y_shape[1:], 4)
    gc.collect()
    exact = reset_peak()
    base = status("VmHWM")
    y = op(x, w, b, **kw)
    grads = back(g, x, w, **kw)
    peak = status("VmHWM")
    outputs = y.nbytes + sum(a.nbytes for a in grads if a is not None)
    report[n] = dict(base=base, peak=peak, outputs=outputs, inputs=x.nbytes + g.nbytes + w.nbytes,
                     extra=peak - base - outputs, exact=exact)
    del x, g, y, grads
    gc.collect()
print(json.dumps(report))
"""


def _run(script, *args, timeout=300, exact_rss=False):
    support = os.path.join(os.path.dirname(os.path.abspath(__file__)), "support")
    code = script.replace("TESTS_DIR", repr(support))
    env = dict(os.environ)
    if exact_rss:
        # glibc: serve every block above 64 KiB with mmap, so freed memory leaves RSS
        # at once and RSS tracks live memory (no reuse of freed heap hiding a peak)
        env.update(MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                         env=env)
    assert out.returncode == 0, f"measurement subprocess failed ({out.returncode}):\n{out.stderr[-3000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.parametrize("config", ["conv2d_3x3", "conv2d_5x5_stride2", "conv2d_1x1", "conv2d_depthwise",
                                    "conv2d_reflect", "conv1d", "conv3d", "conv_transpose2d"])
def test_peak_memory_of_forward_and_backward_does_not_grow_with_the_batch(config):
    report = _run(_PEAK_SCRIPT, config, "8,64", exact_rss=True)
    if not report["8"]["exact"]:  # no peak reset: measure each batch in its own process
        report = {n: _run(_PEAK_SCRIPT, config, n, exact_rss=True)[n] for n in ("8", "64")}
    small, large = report["8"], report["64"]
    detail = (f"{config}: extra memory beyond inputs and outputs: N=8 {small['extra'] / MiB:.1f} MiB, "
              f"N=64 {large['extra'] / MiB:.1f} MiB (N=64: inputs {large['inputs'] / MiB:.1f} MiB, "
              f"outputs {large['outputs'] / MiB:.1f} MiB)")
    assert large["extra"] <= WORKSPACE_LIMIT + SLACK, detail
    assert large["extra"] - small["extra"] <= BATCH_GROWTH_LIMIT, detail


_LEAK_SCRIPT = _COMMON + r"""
import fuzz_args as fa
fns = fa.public_functions()
report = {}

def _try(f, *a, **k):
    try:
        f(*a, **k)
    except (ValueError, TypeError, MemoryError):
        pass

def loop(call, warm=30, n=200):
    for _ in range(warm):
        call()
    gc.collect()
    before = status("VmRSS")
    for _ in range(n):
        call()
    gc.collect()
    return status("VmRSS") - before

x, w = values((8, 16, 32, 32), 0), values((32, 16, 3, 3), 1)
g = values((8, 32, 32, 32), 2)
report["conv2d forward+backward"] = loop(lambda: (fc.conv2d(x, w, padding=1),
                                                 fc.conv2d_backward(g, x, w, padding=1)))
xt, wt = values((8, 16, 16, 16), 3), values((16, 8, 4, 4), 4)
gt = values((8, 8, 32, 32), 5)
report["conv_transpose2d forward+backward"] = loop(lambda: (fc.conv_transpose2d(xt, wt, stride=2, padding=1),
                                                           fc.conv_transpose2d_backward(gt, xt, wt, stride=2,
                                                                                        padding=1)))
if hasattr(fc, "max_pool2d"):
    xp = values((8, 16, 32, 32), 6)
    def pools():
        y, idx = fc.max_pool2d(xp, 3, stride=2, padding=1, return_indices=True)
        fc.max_pool2d_backward(y, idx, xp.shape)
        a = fc.avg_pool2d(xp, 2)
        fc.avg_pool2d_backward(a, xp.shape, 2)
        fc.max_unpool2d(y, idx, 3, stride=2, padding=1, output_size=xp.shape[2:])
        fc.adaptive_avg_pool2d_backward(fc.adaptive_avg_pool2d(xp, 5), xp.shape)
    report["pooling forward+backward"] = loop(pools)
report["rejected calls"] = loop(lambda: [f() for f in (
    lambda: _try(fc.conv2d, x, w, groups=3),
    lambda: _try(fc.conv2d, x, w.astype(np.float64)),
    lambda: _try(fc.conv2d_backward, g[:, :, 1:], x, w, padding=1),
    lambda: _try(fc.conv2d, x, w, padding=2**40),
)])

for name in sys.argv[1].split(","):
    case = fa.draw_case(fa.RandomDraw(fa.bulk_seed(name, 777, 0)), fns, name, kind="valid")
    try:
        args = fa.materialize(case.args, fns, {})
    except Exception:
        continue
    fn = fns[name]
    report[name] = loop(lambda: _try(fn, **args), warm=10, n=200)
    # the error path: the same call with one float array converted to int32
    key = next((k for k, v in args.items() if isinstance(v, np.ndarray) and v.dtype.kind == "f"), None)
    if key is not None:
        bad = dict(args, **{key: args[key].astype(np.int32)})
        report[f"{name} (rejected)"] = loop(lambda: _try(fn, **bad), warm=10, n=200)
print(json.dumps(report))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_repeated_calls_do_not_grow_memory():
    report = _run(_LEAK_SCRIPT, ",".join(ARRAY_FUNCTIONS))
    grown = {k: f"{v / MiB:.1f} MiB" for k, v in report.items() if v > LEAK_LIMIT}
    assert not grown, f"RSS grew over 200 calls: {grown}"


def _arrays(obj):
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [a for o in obj for a in _arrays(o)]
    if isinstance(obj, dict):
        return [a for o in obj.values() for a in _arrays(o)]
    return []


@pytest.mark.parametrize("name", ARRAY_FUNCTIONS)
def test_inputs_gain_no_references_and_results_are_freed(name):
    fn = FUNCTIONS[name]
    for i in range(4):
        case = fa.draw_case(fa.RandomDraw(fa.bulk_seed(name, 4242, i)), FUNCTIONS, name, kind="valid")
        try:
            args = fa.materialize(case.args, FUNCTIONS, {})
        except Exception:  # not buildable (e.g. its forward call was rejected)
            continue
        if i % 2:  # the error path: one array of the wrong dtype
            key = next((k for k in args if isinstance(args[k], np.ndarray) and args[k].dtype.kind == "f"), None)
            if key is None:
                continue
            args[key] = args[key].astype(np.int32)
        inputs = _arrays(args)
        before = [sys.getrefcount(a) for a in inputs]
        refs = []
        for _ in range(5):
            try:
                result = fn(**args)
            except (ValueError, TypeError, MemoryError):
                continue
            refs += [weakref.ref(a) for a in _arrays(result)]
            del result  # arrays hold no reference cycles: freed right here
        after = [sys.getrefcount(a) for a in inputs]
        assert after == before, f"input reference counts changed {before} -> {after}: {case!r}"
        alive = [r() for r in refs if r() is not None]
        assert not alive, f"{len(alive)} result arrays still alive after being dropped: {case!r}"
