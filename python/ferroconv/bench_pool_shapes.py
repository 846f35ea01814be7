"""``python -m ferroconv bench --suite pool-shapes``: pooling on shapes drawn at
random from the space users meet, against PyTorch, in one run.

The bench's pooling rows are a fixed sample. This suite draws new ones from a
seed: the rank (1-D, 2-D, 3-D), the plane size (from a handful of cells to
large images and volumes), the batch and channels (batch 1 included), the
window and stride per axis (asymmetric ones included), per-side padding, the
dtype (float32, float64 and, for max pooling, integers) and, for Lp pooling,
the norm. Each row times ferroconv's forward and forward + backward and
PyTorch's, as the bench does. The summary gives each kind's worst and median
ratio and lists the rows under ``--target``. Another ``--seed`` draws another
sample, so a speed claim can be checked on shapes nobody tuned for.
"""

from __future__ import annotations

import argparse
import math
import statistics
from typing import Any, Optional, Sequence, Union

import numpy as np

from ._docs import cli_text
from .bench import PoolWorkload, _format_row, _run_pool, same_threads

KINDS = ("max", "avg", "lp", "fractional")
NORMS = (1.5, 2.0, 3.0, 0.7, 4.0)
INT_DTYPES = ("uint8", "int8", "int16", "int32", "int64")


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> int:
    return int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))


def _plane(rng: np.random.Generator, rank: int) -> tuple[int, ...]:
    """A spatial shape: 1-D signals of 8-8192 cells, 2-D planes of 5-128 per
    side, 3-D volumes of 4-40 per side; one side in four is drawn on its own
    (non-square planes)."""
    lo, hi = {1: (8, 8192), 2: (5, 128), 3: (4, 40)}[rank]
    side = _log_uniform(rng, lo, hi)
    return tuple(_log_uniform(rng, lo, hi) if rng.random() < 0.25 else side for _ in range(rank))


def draw(rng: np.random.Generator, kind: str) -> PoolWorkload:
    """One random pooling problem of ``kind`` (an input of 0.25-8 M elements)."""
    rank = int(rng.choice([2, 3])) if kind == "fractional" else int(rng.choice([1, 2, 2, 3]))
    plane = _plane(rng, rank)
    while min(plane) < 3:
        plane = _plane(rng, rank)
    dtype = "float32" if rng.random() < 0.6 else "float64"
    if kind == "max" and rng.random() < 0.3:
        dtype = str(rng.choice(INT_DTYPES))
    # Up to 5 per axis, one window in four asymmetric; never larger than the plane.
    kernel = tuple(min(n, int(k)) for n, k in zip(plane, rng.integers(2, 6, size=rank)))
    if rng.random() < 0.75:
        kernel = (min(min(plane), kernel[0]),) * rank
    norm = float(rng.choice(NORMS)) if kind == "lp" else 2.0
    if kind == "fractional":
        # PyTorch's rule: output + kernel - 1 <= input on every axis (< in 3-D).
        if rank == 3:
            kernel = tuple(min(k, n - 1) for n, k in zip(plane, kernel))
        most = [n - k + (1 if rank == 2 else 0) for n, k in zip(plane, kernel)]
        output = tuple(int(rng.integers(min(hi, max(1, (n + 2) // 3)), hi + 1)) for n, hi in zip(plane, most))
        stride: tuple[int, ...] = (1,) * rank
        padding: Union[int, tuple[tuple[int, int], ...]] = 0
    else:
        output = None
        stride = tuple(int(rng.integers(1, k + 1)) for k in kernel)
        if rng.random() < 0.5:
            stride = (stride[0],) * rank if len(set(kernel)) == 1 else stride
        # PyTorch has no padding for Lp pooling; the others get per-side pads
        # (at most half the window, PyTorch's limit) half of the time.
        pads = [(int(rng.integers(0, k // 2 + 1)), int(rng.integers(0, k // 2 + 1))) for k in kernel]
        padding = tuple(pads) if kind != "lp" and rng.random() < 0.5 else 0
    elems = _log_uniform(rng, 1 << 18, 1 << 23)
    batch = int(rng.choice([1, 2, 8, 32]))
    channels = max(1, elems // (batch * math.prod(plane)))
    shape = (batch, channels) + plane
    geometry = "x".join(map(str, kernel)) + " s" + ",".join(map(str, stride))
    pads_text = "" if padding == 0 else " pads " + ",".join(f"{lo}{hi}" for lo, hi in padding)  # type: ignore[union-attr]
    extra = {"lp": f" p={norm:g}", "fractional": " to " + "x".join(map(str, output or ()))}.get(kind, "")
    name = f"{kind}_pool{rank}d{extra} {geometry}{pads_text} {shape} {dtype}"
    return PoolWorkload(name, kind, shape, kernel if len(set(kernel)) > 1 else kernel[0],
                        stride if len(set(stride)) > 1 else stride[0], padding, dtype=dtype, norm=norm,
                        output=output)


def summary(rows: Sequence[dict[str, Any]], kinds: Sequence[str], target: float) -> list[str]:
    """Per kind, the worst and median forward and fwd+bwd ratios against PyTorch,
    then the rows under ``target``."""
    lines = []
    for kind in kinds:
        mine = [r for r in rows if r["kind"] == kind]
        for key, label in (("speedup_vs_torch", "fwd"), ("fwd_bwd_speedup_vs_torch", "fwd+bwd")):
            ratios = [r[key] for r in mine if key in r]
            if ratios:
                lines.append(f"{kind:<10} {label:<7} worst {min(ratios):5.2f}x  median "
                             f"{statistics.median(ratios):5.2f}x  ({len(ratios)} rows)")
    under = [r for r in rows if min(r.get("speedup_vs_torch", math.inf),
                                    r.get("fwd_bwd_speedup_vs_torch", math.inf)) < target]
    lines.append(f"{len(under)} of {len(rows)} rows under {target:g}x PyTorch:")
    lines += [f"  {r['workload']}: fwd {r.get('speedup_vs_torch', math.nan):.2f}x, "
              f"fwd+bwd {r.get('fwd_bwd_speedup_vs_torch', math.nan):.2f}x" for r in under]
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ferroconv bench --suite pool-shapes",
                                     description=cli_text(__doc__))
    parser.add_argument("kinds", nargs="*", help=f"the kinds to draw (default: all of {', '.join(KINDS)})")
    parser.add_argument("--count", type=int, default=8, help="rows per kind (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="the sample's seed (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="timed runs per measurement; the median is reported (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="threads for ferroconv and PyTorch")
    parser.add_argument("--target", type=float, default=3.0,
                        help="list the rows under this ratio to PyTorch (default: %(default)s)")
    args = parser.parse_args(argv)
    unknown = [kind for kind in args.kinds if kind not in KINDS]
    if unknown:
        parser.error(f"unknown kind {unknown[0]!r}: expected one of {', '.join(KINDS)}")
    threads, torch = same_threads(args.threads)
    if torch is None:
        parser.error("the pool-shapes suite compares against PyTorch: pip install torch")
    kinds = args.kinds or list(KINDS)
    rng = np.random.default_rng(args.seed)
    rows = []
    for kind in kinds:
        for _ in range(args.count):
            wl = draw(rng, kind)
            row = _run_pool(wl, rng, args.repeat, threads, torch, numpy_ref=False)
            row["kind"] = kind
            rows.append(row)
            print(_format_row(row), flush=True)
    print("\n".join(summary(rows, kinds, args.target)))
    return 0
