"""Side-by-side timing of ferroconv against NumPy (and PyTorch when installed).

Run as ``python -m ferroconv bench`` or ``python benches/bench.py``. Every
column is measured in the same process, with the same thread count, as the
median of repeated runs after a warm-up; only the ratios are meaningful.
"""

from __future__ import annotations

import argparse
import math
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from . import functional as F
from ._docs import cli_text
from ._simd import SIMD_PATHS, get_simd, set_simd


@dataclass
class ConvWorkload:
    """One convolution problem: ``x (N, C_in, *S)``, ``weight (C_out, C_in/g, *k)``."""

    name: str
    x_shape: tuple[int, ...]
    w_shape: tuple[int, ...]
    stride: int = 1
    padding: int = 0
    groups: int = 1
    dtype: Any = np.float32
    arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def rank(self) -> int:
        return len(self.x_shape) - 2

    def flops(self) -> float:
        out = self.out_shape()
        return 2.0 * float(np.prod(out)) * float(np.prod(self.w_shape[1:]))

    def out_shape(self) -> tuple[int, ...]:
        spatial = F.conv_output_shape(self.x_shape[2:], self.w_shape[2:], self.stride, self.padding)
        return (self.x_shape[0], self.w_shape[0], *spatial)

    def setup(self, rng: np.random.Generator) -> None:
        self.arrays = {
            "x": rng.standard_normal(self.x_shape).astype(self.dtype),
            "w": rng.standard_normal(self.w_shape).astype(self.dtype),
            "g": rng.standard_normal(self.out_shape()).astype(self.dtype),
        }


WORKLOADS = [
    ConvWorkload("conv2d 3x3 s1 p1 64->64 56x56 N8", (8, 64, 56, 56), (64, 64, 3, 3), 1, 1),
    ConvWorkload("conv2d 3x3 s1 p1 128->128 28x28 N8", (8, 128, 28, 28), (128, 128, 3, 3), 1, 1),
    ConvWorkload("conv2d 3x3 s2 p1 64->128 56x56 N8", (8, 64, 56, 56), (128, 64, 3, 3), 2, 1),
    ConvWorkload("conv2d 1x1 256->64 56x56 N8", (8, 256, 56, 56), (64, 256, 1, 1)),
    ConvWorkload("conv2d 7x7 s2 p3 3->64 224x224 N4", (4, 3, 224, 224), (64, 3, 7, 7), 2, 3),
    ConvWorkload("conv2d 5x5 1->6 28x28 N64 (LeNet)", (64, 1, 28, 28), (6, 1, 5, 5)),
    ConvWorkload("conv2d depthwise 3x3 128 56x56 N8", (8, 128, 56, 56), (128, 1, 3, 3), 1, 1, 128),
    ConvWorkload("conv1d k9 p4 64->64 L4096 N16", (16, 64, 4096), (64, 64, 9), 1, 4),
    ConvWorkload("conv3d 3x3x3 p1 16->32 32x64x64 N2", (2, 16, 32, 64, 64), (32, 16, 3, 3, 3), 1, 1),
    ConvWorkload("conv2d 3x3 s1 p1 64->64 56x56 N8 f64", (8, 64, 56, 56), (64, 64, 3, 3), 1, 1,
                 dtype=np.float64),
]


@dataclass
class PoolWorkload:
    """One pooling problem on an input of ``shape``. ``kind="fractional"`` is
    fractional max pooling (with indices) to ``output`` (default ``shape //
    stride`` per axis), with ``kernel``-sized windows at pseudo-random starts (the
    same samples for both libraries); ``padding`` does not apply to it.
    ``kind="lp"`` is Lp pooling of norm ``norm``; for a norm that is not a whole
    number the input is ``|x|`` (a negative base has no real fractional power:
    the outputs would be NaN)."""

    name: str
    kind: str  # "max" (with indices), "avg", "lp" (norm ``norm``) or "fractional"
    shape: tuple[int, ...]
    kernel: Union[int, tuple[int, ...]]  # one size for every axis, or one per axis
    stride: Union[int, tuple[int, ...]]
    padding: Union[int, tuple[tuple[int, int], ...]] = 0  # symmetric, or (lo, hi) per axis
    dtype: str = "float32"  # or float64; max pooling: also an integer type (random values over its range)
    norm: float = 2.0  # Lp pooling's p
    output: Optional[tuple[int, ...]] = None  # fractional pooling's output size

    def fractional_size(self) -> tuple[int, ...]:
        """The output size of fractional pooling."""
        return self.output if self.output is not None else tuple(n // s for n, s in zip(self.shape[2:],
                                                                                          self.strides()))

    def kernels(self) -> tuple[int, ...]:
        """The window size of every spatial axis."""
        return self.kernel if isinstance(self.kernel, tuple) else (self.kernel,) * self.rank

    def strides(self) -> tuple[int, ...]:
        """The stride of every spatial axis."""
        return self.stride if isinstance(self.stride, tuple) else (self.stride,) * self.rank

    def pads(self) -> list[tuple[int, int]]:
        """The (lo, hi) padding of every spatial axis."""
        if isinstance(self.padding, int):
            return [(self.padding, self.padding)] * self.rank
        return list(self.padding)

    @property
    def rank(self) -> int:
        return len(self.shape) - 2


POOL_WORKLOADS = [
    PoolWorkload("max_pool2d 3x3 s2 p1 indices (8,64,112,112)", "max", (8, 64, 112, 112), 3, 2, 1),
    PoolWorkload("max_pool2d 3x3 s2 p1 indices (8,64,112,112) uint8", "max", (8, 64, 112, 112), 3, 2, 1,
                 dtype="uint8"),
    PoolWorkload("max_pool2d 3x3 s2 p1 indices (8,64,112,112) int32", "max", (8, 64, 112, 112), 3, 2, 1,
                 dtype="int32"),
    PoolWorkload("avg_pool2d 2x2 (8,64,112,112)", "avg", (8, 64, 112, 112), 2, 2),
    PoolWorkload("max_pool3d 2x2x2 indices (2,32,32,64,64)", "max", (2, 32, 32, 64, 64), 2, 2),
    # per-side padding: PyTorch pads explicitly (F.pad with -inf / zeros), then pools
    PoolWorkload("max_pool2d 3x3 s2 pads (0,1) indices (8,64,111,111)", "max", (8, 64, 111, 111), 3, 2,
                 ((0, 1), (0, 1))),
    PoolWorkload("avg_pool2d 3x3 s2 pads (0,1) (8,64,111,111)", "avg", (8, 64, 111, 111), 3, 2,
                 ((0, 1), (0, 1))),
    PoolWorkload("lp_pool2d p=2 2x2 (8,64,112,112)", "lp", (8, 64, 112, 112), 2, 2),
    PoolWorkload("lp_pool2d p=3 2x2 (8,64,112,112)", "lp", (8, 64, 112, 112), 2, 2, norm=3.0),
    PoolWorkload("lp_pool2d p=1.5 2x2 (8,64,112,112)", "lp", (8, 64, 112, 112), 2, 2, norm=1.5),
    PoolWorkload("lp_pool1d p=2 k4 s2 (16,64,8192)", "lp", (16, 64, 8192), 4, 2),
    PoolWorkload("fractional_max_pool2d 2x2 to 56x56 indices (4,64,112,112)", "fractional", (4, 64, 112, 112),
                 2, 2),
    # a ratio whose windows are one or two cells apart, and small planes (rows of 11)
    PoolWorkload("fractional_max_pool2d 3x3 to 78x78 indices (4,64,112,112)", "fractional", (4, 64, 112, 112),
                 3, 1, output=(78, 78)),
    PoolWorkload("fractional_max_pool2d 2x2 to 11x11 indices (64,256,16,16)", "fractional", (64, 256, 16, 16),
                 2, 1, output=(11, 11)),
    PoolWorkload("fractional_max_pool3d 2x2x2 to 16x32x32 indices (2,16,32,64,64)", "fractional",
                 (2, 16, 32, 64, 64), 2, 2),
]


@dataclass
class NormWorkload:
    """Batch normalisation in training mode (batch statistics, running statistics
    updated) of an input of ``shape``; its backward from ``batch_norm_backward``."""

    name: str
    shape: tuple[int, ...]


NORM_WORKLOADS = [
    NormWorkload("batch_norm2d train (32,64,32,32)", (32, 64, 32, 32)),
]


def numpy_batch_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Reference training-mode batch normalisation in NumPy."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    scale = weight / np.sqrt(var + eps)
    out: np.ndarray = (x - mean.reshape(shape)) * scale.reshape(shape) + bias.reshape(shape)
    return out


def numpy_pool(x: np.ndarray, wl: PoolWorkload) -> Any:
    """Reference pooling in NumPy: pad, sliding windows, max+argmax or mean."""
    rank = wl.rank
    axes = tuple(range(2, 2 + rank))
    fill = (-np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min) if wl.kind == "max" else 0.0
    xp = np.pad(x, [(0, 0), (0, 0)] + wl.pads(), constant_values=fill)
    windows = np.lib.stride_tricks.sliding_window_view(xp, wl.kernels(), axis=axes)
    windows = windows[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in wl.strides())]
    flat = windows.reshape(windows.shape[: 2 + rank] + (-1,))
    if wl.kind == "avg":
        return flat.mean(axis=-1)
    if wl.kind == "lp":
        if wl.norm == 2:
            return np.sqrt(np.square(flat).sum(axis=-1))
        return np.power(np.power(flat, wl.norm).sum(axis=-1), 1.0 / wl.norm)
    return flat.max(axis=-1), flat.argmax(axis=-1)


def numpy_conv(x: np.ndarray, w: np.ndarray, stride: int, padding: int, groups: int) -> np.ndarray:
    """Reference convolution in NumPy: pad, sliding windows, one einsum per group."""
    rank = x.ndim - 2
    xp = np.pad(x, [(0, 0), (0, 0)] + [(padding, padding)] * rank)
    windows = np.lib.stride_tricks.sliding_window_view(xp, w.shape[2:], axis=tuple(range(2, 2 + rank)))
    windows = windows[(slice(None), slice(None)) + (slice(None, None, stride),) * rank]
    letters = "dhw"[3 - rank:]
    kernel = "DHW"[3 - rank:]
    cig, cog = w.shape[1], w.shape[0] // groups
    outs = [
        np.einsum(f"nc{letters}{kernel},oc{kernel}->no{letters}", windows[:, g * cig:(g + 1) * cig],
                  w[g * cog:(g + 1) * cog], optimize=True)
        for g in range(groups)
    ]
    return np.concatenate(outs, axis=1)


_SETTLE_SECONDS = 0.5


def _timeit(fn: Callable[[], object], repeat: int, min_time: float = 0.0, best: bool = False,
            settle: float = _SETTLE_SECONDS) -> float:
    # Let the previous library's worker threads stop spinning (OpenBLAS and OpenMP
    # busy-wait after a call and would steal the cores from this measurement).
    time.sleep(settle)
    for _ in range(3):  # warm-up (first calls also pay lazy initialisation, e.g. oneDNN kernels)
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeat or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 50:
            break
    return min(times) if best else statistics.median(times)


def matmul_gflops(threads: int, repeat: int = 5, n: int = 1024) -> float:
    """NumPy's float32 ``n x n`` matmul rate in GFLOP/s (its fastest call): the
    machine's practical peak, the yardstick of the GEMM-bound convolutions. BLAS
    is limited to ``threads`` threads while it runs when ``threadpoolctl`` is
    installed."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        seconds = _timeit(lambda: a @ b, repeat, best=True)
    else:
        with threadpool_limits(limits=threads, user_api="blas"):
            seconds = _timeit(lambda: a @ b, repeat, best=True)
    return 2.0 * n**3 / seconds / 1e9


def copy_gbps(threads: int, repeat: int = 5, nbytes: int = 1 << 26) -> float:
    """NumPy's copy rate in GB/s (bytes read plus bytes written) between two
    ``nbytes`` float32 arrays, far larger than the caches, split into ``threads``
    contiguous pieces copied side by side (``np.copyto`` releases the GIL), from
    its fastest call: the machine's practical memory bandwidth, the yardstick of
    pooling."""
    src = np.random.default_rng(2).standard_normal(nbytes // 4).astype(np.float32)
    dst = np.empty_like(src)
    bounds = np.linspace(0, src.size, max(1, threads) + 1).astype(int)
    pieces = [(dst[lo:hi], src[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])]
    with ThreadPoolExecutor(max_workers=len(pieces)) as pool:
        def copy() -> None:
            for done in [pool.submit(np.copyto, d, s) for d, s in pieces]:
                done.result()
        seconds = _timeit(copy, repeat, best=True)
    return 2.0 * src.nbytes / seconds / 1e9


def _torch() -> Optional[Any]:
    try:
        import torch  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    return torch


# PyTorch's own switches for the same instruction set as each of ferroconv's
# paths (oneDNN's convolutions and ATen's vectorised kernels). They are read when
# torch is imported, so --simd sets them and re-executes the bench. The avx512
# path leaves PyTorch at its default.
TORCH_SIMD_ENV: dict[str, dict[str, str]] = {
    "avx512": {},
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"},
    "portable": {"ONEDNN_MAX_CPU_ISA": "SSE41", "ATEN_CPU_CAPABILITY": "default"},
}


def limit_simd(path: str, argv: Sequence[str]) -> None:
    """Make this bench run with ferroconv capped at ``path`` and PyTorch limited
    to the same instruction set: returns when the environment already says so,
    otherwise re-executes ``python -m ferroconv bench argv`` with it set (what a
    user of a CPU without the faster paths would see, reproduced here)."""
    set_simd(path)  # a path this CPU lacks is a ValueError here, before any re-execution
    wanted = {"FERROCONV_SIMD": path, **TORCH_SIMD_ENV[path]}
    if all(os.environ.get(key) == value for key, value in wanted.items()):
        return
    if "torch" in sys.modules:
        raise RuntimeError("--simd: torch was imported before its instruction set could be limited")
    os.execve(sys.executable, [sys.executable, "-m", "ferroconv", "bench", *argv], {**os.environ, **wanted})


def _pop_simd(argv: list[str]) -> Optional[str]:
    """Remove ``--simd PATH`` (or ``--simd=PATH``) from ``argv`` and return PATH."""
    for at, arg in enumerate(argv):
        if arg == "--simd" or arg.startswith("--simd="):
            value = arg.partition("=")[2] if "=" in arg else (argv[at + 1] if at + 1 < len(argv) else "")
            del argv[at:at + (1 if "=" in arg else 2)]
            if value not in SIMD_PATHS:
                raise SystemExit(f"--simd: expected one of {', '.join(SIMD_PATHS)}, got {value!r}")
            return value
    return None


def same_threads(threads: Optional[int]) -> tuple[int, Optional[Any]]:
    """Set ferroconv's thread count (when given) and PyTorch's to the same value;
    the count and the ``torch`` module (None when it is not installed)."""
    if threads is not None:
        F.set_num_threads(threads)
    threads = F.get_num_threads()
    torch = _torch()
    if torch is not None:
        torch.set_num_threads(threads)
    return threads, torch


def run(names: Optional[Sequence[str]] = None, repeat: int = 5, threads: Optional[int] = None,
        backward: bool = True, numpy_ref: bool = True) -> list[dict[str, Any]]:
    """Time the workloads whose name contains any of ``names`` (all by default)."""
    threads, torch = same_threads(threads)
    # The yardsticks are measured before and after the workloads and the better
    # value kept, so a burst of load on a shared machine during one measurement
    # does not inflate every percentage.
    peak = matmul_gflops(threads, repeat) if numpy_ref else None
    if peak is not None:
        print(f"NumPy float32 matmul (1024^3, {threads} threads): {peak:.1f} GFLOP/s", flush=True)
    bandwidth = copy_gbps(threads, repeat) if numpy_ref else None
    if bandwidth is not None:
        print(f"NumPy copy of 64 MiB ({threads} threads): {bandwidth:.1f} GB/s", flush=True)
    rng = np.random.default_rng(0)
    rows = []
    for wl in WORKLOADS:
        if names and not any(n in wl.name for n in names):
            continue
        wl.setup(rng)
        x, w, g = wl.arrays["x"], wl.arrays["w"], wl.arrays["g"]
        conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[wl.rank]
        conv_bwd = {1: F.conv1d_backward, 2: F.conv2d_backward, 3: F.conv3d_backward}[wl.rank]
        row: dict[str, Any] = {"workload": wl.name, "threads": threads}
        row["ferroconv_fwd_ms"] = 1e3 * _timeit(
            lambda: conv(x, w, stride=wl.stride, padding=wl.padding, groups=wl.groups), repeat)
        row["ferroconv_gflops"] = wl.flops() / row["ferroconv_fwd_ms"] / 1e6
        _set_yardsticks(row, peak, bandwidth)
        if backward:
            row["ferroconv_fwd_bwd_ms"] = row["ferroconv_fwd_ms"] + 1e3 * _timeit(
                lambda: conv_bwd(g, x, w, stride=wl.stride, padding=wl.padding, groups=wl.groups), repeat)
        if numpy_ref:
            row["numpy_fwd_ms"] = 1e3 * _timeit(lambda: numpy_conv(x, w, wl.stride, wl.padding, wl.groups),
                                                max(1, repeat // 2))
            row["speedup_vs_numpy"] = row["numpy_fwd_ms"] / row["ferroconv_fwd_ms"]
        if torch is not None:
            tconv = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d,
                     3: torch.nn.functional.conv3d}[wl.rank]
            tx, tw = torch.from_numpy(x), torch.from_numpy(w)
            with torch.no_grad():
                row["torch_fwd_ms"] = 1e3 * _timeit(
                    lambda: tconv(tx, tw, stride=wl.stride, padding=wl.padding, groups=wl.groups), repeat)
            row["speedup_vs_torch"] = row["torch_fwd_ms"] / row["ferroconv_fwd_ms"]
            if backward:
                gx, gw, gy = tx.clone().requires_grad_(), tw.clone().requires_grad_(), torch.from_numpy(g)

                def torch_step() -> object:
                    y = tconv(gx, gw, stride=wl.stride, padding=wl.padding, groups=wl.groups)
                    return torch.autograd.grad(y, (gx, gw), gy)

                row["torch_fwd_bwd_ms"] = 1e3 * _timeit(torch_step, repeat)
                row["fwd_bwd_speedup_vs_torch"] = row["torch_fwd_bwd_ms"] / row["ferroconv_fwd_bwd_ms"]
        rows.append(row)
        print(_format_row(row), flush=True)
    for pwl in POOL_WORKLOADS:
        if names and not any(n in pwl.name for n in names):
            continue
        rows.append(_run_pool(pwl, rng, repeat, threads, torch, numpy_ref, backward))
        _set_yardsticks(rows[-1], peak, bandwidth)
        print(_format_row(rows[-1]), flush=True)
    for nwl in NORM_WORKLOADS:
        if names and not any(n in nwl.name for n in names):
            continue
        rows.append(_run_batch_norm(nwl, rng, repeat, threads, torch, numpy_ref, backward))
        _set_yardsticks(rows[-1], peak, bandwidth)
        print(_format_row(rows[-1]), flush=True)
    if numpy_ref and rows:
        peak = max(peak or 0.0, matmul_gflops(threads, repeat))
        bandwidth = max(bandwidth or 0.0, copy_gbps(threads, repeat))
        print(f"yardsticks, best of before and after: matmul {peak:.1f} GFLOP/s, "
              f"copy {bandwidth:.1f} GB/s", flush=True)
        for row in rows:
            _set_yardsticks(row, peak, bandwidth)
    return rows


def _set_yardsticks(row: dict[str, Any], peak: Optional[float], bandwidth: Optional[float]) -> None:
    """A convolution's share of the matmul ``peak``, or a pooling op's share of the
    copy ``bandwidth`` (nothing when that yardstick was not measured)."""
    if "ferroconv_gflops" in row and peak is not None:
        row["numpy_matmul_gflops"] = peak
        row["percent_of_matmul"] = 100.0 * row["ferroconv_gflops"] / peak
    if "ferroconv_gbps" in row and bandwidth is not None:
        row["numpy_copy_gbps"] = bandwidth
        row["percent_of_bandwidth"] = 100.0 * row["ferroconv_gbps"] / bandwidth


def _run_pool(wl: PoolWorkload, rng: np.random.Generator, repeat: int, threads: int,
              torch: Optional[Any], numpy_ref: bool, backward: bool = True) -> dict[str, Any]:
    if wl.dtype in ("float32", "float64"):
        x = rng.standard_normal(wl.shape).astype(wl.dtype)
        if wl.kind == "lp" and not float(wl.norm).is_integer():
            x = np.abs(x)
    else:
        info = np.iinfo(wl.dtype)
        x = rng.integers(info.min, info.max, size=wl.shape, dtype=wl.dtype, endpoint=True)
    kwargs = dict(stride=wl.stride, padding=wl.padding)
    # fractional pooling's window offsets, in [0, 1) after rounding to the input's type
    sample_type = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    samples = np.minimum(rng.random(wl.shape[:2] + (wl.rank,)).astype(sample_type),
                         np.nextafter(sample_type.type(1), sample_type.type(0)))
    if wl.kind == "fractional":
        ours = getattr(F, f"fractional_max_pool{wl.rank}d")
        size = wl.fractional_size()
        call: Callable[[], object] = lambda: ours(x, wl.kernel, size, return_indices=True, random_samples=samples)
    elif wl.kind == "max":
        ours = getattr(F, f"max_pool{wl.rank}d")
        call = lambda: ours(x, wl.kernel, return_indices=True, **kwargs)
    elif wl.kind == "lp":
        ours = getattr(F, f"lp_pool{wl.rank}d")
        call = lambda: ours(x, wl.norm, wl.kernel, **kwargs)
    else:
        ours = getattr(F, f"avg_pool{wl.rank}d")
        call = lambda: ours(x, wl.kernel, **kwargs)
    row: dict[str, Any] = {"workload": wl.name, "threads": threads}
    row["ferroconv_fwd_ms"] = 1e3 * _timeit(call, repeat)
    # Memory traffic: the input once, the output (and int64 indices) once.
    out_elems = (x.size / math.prod(wl.shape[2:]) * math.prod(wl.fractional_size()) if wl.kind == "fractional"
                 else x.size / math.prod(wl.strides()))
    moved = x.nbytes + out_elems * (x.itemsize + (8 if wl.kind in ("max", "fractional") else 0))
    row["ferroconv_gbps"] = moved / row["ferroconv_fwd_ms"] / 1e6
    if numpy_ref and wl.kind != "fractional":  # (no NumPy column: its windows differ per plane)
        row["numpy_fwd_ms"] = 1e3 * _timeit(lambda: numpy_pool(x, wl), max(1, repeat // 2))
        row["speedup_vs_numpy"] = row["numpy_fwd_ms"] / row["ferroconv_fwd_ms"]
    # The backward (floats only: integer pooling has no gradient), timed after
    # the forward as a training step runs them: fwd+bwd is the forward's time
    # plus the backward call's.
    backward = backward and x.dtype.kind == "f"
    if backward:
        result = call()
        out, indices = result if isinstance(result, tuple) else (result, None)
        g = rng.standard_normal(out.shape).astype(x.dtype)
        bwd = _pool_backward(wl, x, g, indices)
        row["ferroconv_fwd_bwd_ms"] = row["ferroconv_fwd_ms"] + 1e3 * _timeit(bwd, repeat)
    if torch is not None:
        row["torch_fwd_ms"] = 1e3 * _timeit(_torch_pool(torch, torch.from_numpy(x), wl, samples), repeat)
        row["speedup_vs_torch"] = row["torch_fwd_ms"] / row["ferroconv_fwd_ms"]
        if backward:
            tx = torch.from_numpy(x).requires_grad_()
            tg = torch.from_numpy(g)
            forward = _torch_pool(torch, tx, wl, samples)

            def torch_step() -> None:
                result: Any = forward()
                (result[0] if isinstance(result, tuple) else result).backward(tg)

            row["torch_fwd_bwd_ms"] = 1e3 * _timeit(torch_step, repeat)
            row["fwd_bwd_speedup_vs_torch"] = row["torch_fwd_bwd_ms"] / row["ferroconv_fwd_bwd_ms"]
    return row


def _pool_backward(wl: PoolWorkload, x: np.ndarray, g: np.ndarray,
                   indices: Optional[np.ndarray]) -> Callable[[], object]:
    """ferroconv's gradient call of ``wl`` for the output gradient ``g``: a scatter
    at the argmax ``indices`` (max, fractional), or the windows' adjoint."""
    if wl.kind == "fractional":
        frac = getattr(F, f"fractional_max_pool{wl.rank}d_backward")
        return lambda: frac(g, indices, x.shape)
    if wl.kind == "max":
        scatter = getattr(F, f"max_pool{wl.rank}d_backward")
        return lambda: scatter(g, indices, x.shape)
    kwargs = dict(stride=wl.stride, padding=wl.padding)
    if wl.kind == "lp":
        lp = getattr(F, f"lp_pool{wl.rank}d_backward")
        return lambda: lp(g, x, wl.norm, wl.kernel, **kwargs)
    avg = getattr(F, f"avg_pool{wl.rank}d_backward")
    return lambda: avg(g, x.shape, wl.kernel, **kwargs)


def _torch_pool(torch: Any, tx: Any, wl: PoolWorkload, samples: np.ndarray) -> Callable[[], object]:
    """PyTorch's call for ``wl``: per-side padding as an explicit ``F.pad`` first
    (PyTorch's pooling pads symmetrically only); fractional pooling with the
    window offsets ``samples``."""
    tf = torch.nn.functional
    if wl.kind == "fractional":
        fractional = getattr(tf, f"fractional_max_pool{wl.rank}d")
        size = wl.fractional_size()
        tu = torch.from_numpy(samples)
        return lambda: fractional(tx, wl.kernel, size, return_indices=True, _random_samples=tu)
    padding: Union[int, tuple[tuple[int, int], ...]] = wl.padding
    pad_first = not isinstance(padding, int)
    flat = [side for lo_hi in reversed(wl.pads()) for side in lo_hi]  # F.pad: last axis first
    fill: float = 0.0
    if wl.kind == "max":
        fill = -math.inf if np.dtype(wl.dtype).kind == "f" else int(np.iinfo(wl.dtype).min)
    pool = getattr(tf, f"{wl.kind}_pool{wl.rank}d")

    def call() -> object:
        t = tf.pad(tx, flat, value=fill) if pad_first else tx
        if wl.kind == "max":
            return pool(t, wl.kernel, wl.stride, 0 if pad_first else padding, return_indices=True)
        if wl.kind == "lp":
            return pool(t, wl.norm, wl.kernel, wl.stride)
        return pool(t, wl.kernel, wl.stride, 0 if pad_first else padding)

    return call


def _run_batch_norm(wl: NormWorkload, rng: np.random.Generator, repeat: int, threads: int,
                    torch: Optional[Any], numpy_ref: bool, backward: bool) -> dict[str, Any]:
    x = rng.standard_normal(wl.shape).astype(np.float32)
    g = rng.standard_normal(wl.shape).astype(np.float32)
    channels = wl.shape[1]
    weight, bias = np.ones(channels, np.float32), np.zeros(channels, np.float32)
    running_mean, running_var = np.zeros(channels, np.float32), np.ones(channels, np.float32)
    row: dict[str, Any] = {"workload": wl.name, "threads": threads}
    row["ferroconv_fwd_ms"] = 1e3 * _timeit(
        lambda: F.batch_norm(x, running_mean, running_var, weight, bias, training=True), repeat)
    # Memory traffic: the input once, the output once.
    row["ferroconv_gbps"] = 2 * x.nbytes / row["ferroconv_fwd_ms"] / 1e6

    def step() -> object:
        _, mean, invstd = F.batch_norm(x, running_mean, running_var, weight, bias, training=True,
                                       return_stats=True)
        return F.batch_norm_backward(g, x, weight, mean, invstd)

    if backward:
        row["ferroconv_fwd_bwd_ms"] = 1e3 * _timeit(step, repeat)
    if numpy_ref:
        row["numpy_fwd_ms"] = 1e3 * _timeit(lambda: numpy_batch_norm(x, weight, bias), max(1, repeat // 2))
        row["speedup_vs_numpy"] = row["numpy_fwd_ms"] / row["ferroconv_fwd_ms"]
    if torch is not None:
        batch_norm = torch.nn.functional.batch_norm
        tx, tg = torch.from_numpy(x), torch.from_numpy(g)
        tw, tb = torch.from_numpy(weight), torch.from_numpy(bias)
        trm, trv = torch.from_numpy(running_mean.copy()), torch.from_numpy(running_var.copy())
        with torch.no_grad():
            row["torch_fwd_ms"] = 1e3 * _timeit(lambda: batch_norm(tx, trm, trv, tw, tb, training=True), repeat)
        row["speedup_vs_torch"] = row["torch_fwd_ms"] / row["ferroconv_fwd_ms"]
        if backward:
            gx, gw, gb = (t.clone().requires_grad_() for t in (tx, tw, tb))

            def torch_step() -> object:
                y = batch_norm(gx, trm, trv, gw, gb, training=True)
                return torch.autograd.grad(y, (gx, gw, gb), tg)

            row["torch_fwd_bwd_ms"] = 1e3 * _timeit(torch_step, repeat)
            row["fwd_bwd_speedup_vs_torch"] = row["torch_fwd_bwd_ms"] / row["ferroconv_fwd_bwd_ms"]
    return row


def _format_row(row: dict[str, Any]) -> str:
    parts = [f"{row['workload']:<44}", f"fwd {row['ferroconv_fwd_ms']:8.2f} ms"]
    if "ferroconv_gflops" in row:
        parts.append(f"{row['ferroconv_gflops']:6.1f} GFLOP/s")
    if "percent_of_matmul" in row:
        parts.append(f"{row['percent_of_matmul']:4.0f}% of matmul")
    if "ferroconv_gbps" in row:
        parts.append(f"{row['ferroconv_gbps']:6.1f} GB/s")
    if "percent_of_bandwidth" in row:
        parts.append(f"{row['percent_of_bandwidth']:4.0f}% of copy")
    if "ferroconv_fwd_bwd_ms" in row:
        parts.append(f"fwd+bwd {row['ferroconv_fwd_bwd_ms']:8.2f} ms")
    if "numpy_fwd_ms" in row:
        parts.append(f"numpy {row['numpy_fwd_ms']:8.2f} ms (x{row['speedup_vs_numpy']:.2f})")
    if "torch_fwd_ms" in row:
        parts.append(f"torch {row['torch_fwd_ms']:8.2f} ms (x{row['speedup_vs_torch']:.2f})")
    if "torch_fwd_bwd_ms" in row:
        parts.append(f"torch fwd+bwd {row['torch_fwd_bwd_ms']:8.2f} ms (x{row['fwd_bwd_speedup_vs_torch']:.2f})")
    return " | ".join(parts)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    simd = _pop_simd(argv)
    if simd is not None:
        # keep --simd in the re-executed command line, so its own check passes
        limit_simd(simd, [*argv, "--simd", simd])
    print(f"ferroconv SIMD path: {get_simd()}", flush=True)
    if "--suite" in argv:
        at = argv.index("--suite")
        suite = argv[at + 1] if at + 1 < len(argv) else ""
        if suite == "lowp":
            from . import bench_lowp

            return bench_lowp.main(argv[:at] + argv[at + 2:])
        if suite == "training":
            from . import bench_training

            return bench_training.main(argv[:at] + argv[at + 2:])
        if suite == "pool-shapes":
            from . import bench_pool_shapes

            return bench_pool_shapes.main(argv[:at] + argv[at + 2:])
        if suite != "networks":
            raise SystemExit(f"--suite: expected 'networks', 'lowp', 'training' or 'pool-shapes', got {suite!r}")
        from . import bench_networks

        return bench_networks.main(argv[:at] + argv[at + 2:])
    parser = argparse.ArgumentParser(prog="python -m ferroconv bench", description=cli_text(__doc__))
    parser.add_argument("--suite", choices=["networks", "lowp", "training", "pool-shapes"], default=None,
                        help="networks: time every layer of standard CNNs instead (see --suite networks "
                             "--help); lowp: the workloads in bfloat16 and float16 (see --suite lowp --help); "
                             "training: whole ferroconv.nn training steps against torch.nn (see --suite "
                             "training --help); pool-shapes: pooling on randomly drawn shapes against PyTorch "
                             "(see --suite pool-shapes --help)")
    parser.add_argument("--simd", choices=list(SIMD_PATHS), default=None,
                        help="cap ferroconv at this instruction set and limit PyTorch to the same one "
                             "(re-executes the bench with FERROCONV_SIMD, ONEDNN_MAX_CPU_ISA and "
                             "ATEN_CPU_CAPABILITY set)")
    parser.add_argument("names", nargs="*", help="run only workloads whose name contains one of these")
    parser.add_argument("--repeat", type=int, default=5,
                        help="timed runs per measurement; the median is reported (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for ferroconv and PyTorch (default: ferroconv's current count)")
    parser.add_argument("--no-backward", action="store_true",
                        help="time the forward passes only (default: forward and backward)")
    parser.add_argument("--no-numpy", action="store_true",
                        help="skip the NumPy reference columns, which are slow on large layers")
    parser.add_argument("--json", default=None, help="write the rows to this JSON file")
    parser.add_argument("--markdown", default=None, help="write a Markdown table to this file")
    parser.add_argument("--chart", default=None, help="write a PNG bar chart of the ratios (needs matplotlib)")
    args = parser.parse_args(argv)
    rows = run(args.names, args.repeat, args.threads, not args.no_backward, not args.no_numpy)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(markdown_table(rows))
    if args.chart:
        ratio_chart(rows, args.chart)
    return 0


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    return format(row[key], fmt) if key in row else "-"


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table (times in ms; ratios > 1 mean ferroconv is faster)."""
    lines = [
        "| workload | ferroconv fwd ms | GFLOP/s or GB/s | % of NumPy matmul or copy | NumPy ms | x NumPy | PyTorch ms "
        "| x PyTorch | ferroconv fwd+bwd ms | PyTorch fwd+bwd ms | x PyTorch fwd+bwd |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        rate = _cell(row, "ferroconv_gflops", ".0f") if "ferroconv_gflops" in row else (
            _cell(row, "ferroconv_gbps", ".1f") + " GB/s")
        lines.append(
            f"| {row['workload']} | {row['ferroconv_fwd_ms']:.2f} | {rate} | "
            f"{_cell(row, 'percent_of_matmul' if 'percent_of_matmul' in row else 'percent_of_bandwidth', '.0f')} | "
            f"{_cell(row, 'numpy_fwd_ms', '.2f')} | {_cell(row, 'speedup_vs_numpy', '.2f')} | "
            f"{_cell(row, 'torch_fwd_ms', '.2f')} | {_cell(row, 'speedup_vs_torch', '.2f')} | "
            f"{_cell(row, 'ferroconv_fwd_bwd_ms', '.2f')} | {_cell(row, 'torch_fwd_bwd_ms', '.2f')} | "
            f"{_cell(row, 'fwd_bwd_speedup_vs_torch', '.2f')} |"
        )
    return "\n".join(lines) + "\n"


def ratio_chart(rows: Sequence[dict[str, Any]], path: str) -> None:
    """A horizontal bar chart of the speed-ups against NumPy and PyTorch."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [row["workload"] for row in rows]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(rows) + 1.5))
    positions = np.arange(len(rows))
    series = (("speedup_vs_numpy", "forward vs NumPy"), ("speedup_vs_torch", "forward vs PyTorch"),
              ("fwd_bwd_speedup_vs_torch", "fwd+bwd vs PyTorch"))
    # Only the comparisons measured get bars, centred on their label whatever their number.
    present = [(key, label) for key, label in series
               if not all(np.isnan([float(row.get(key, np.nan)) for row in rows]))]
    height = 0.8 / max(len(present), 1)
    for i, (key, label) in enumerate(present):
        values = [row.get(key, np.nan) for row in rows]
        offset = (i - (len(present) - 1) / 2) * height
        ax.barh(positions + offset, values, height=height, label=label)
    ax.axvline(1.0, color="black", linewidth=0.8)
    compared = " and ".join(sorted({label.split(" vs ")[1] for _, label in present})) or "nothing"
    ax.set_title(f"ferroconv's speed-up over {compared}, per workload")
    ax.set_yticks(positions, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    plain = matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}x")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("speed-up of ferroconv (same process, same threads); > 1 is faster")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
