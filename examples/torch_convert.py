"""A PyTorch CNN trained on the CPU before and after ``ferroconv.torch.convert``.

The network: three 3x3 convolution blocks of widths 32, 64 and 128, each with
BatchNorm, ReLU and 2x2 max pooling; global average pooling; a linear layer.
Batch 32 of 3x32x32 inputs (synthetic, fixed seed), SGD with momentum.

Printed:

* the loss curves of the native and the converted model from the same initial
  weights (they agree to float rounding);
* the time per training step of each, float32 and float64 (median of
  ``--repeats`` runs of ``--steps`` steps, same thread count for both, each in
  a fresh process), and of the converted model when torch is imported before
  ferroconv.torch: PyTorch's OpenMP workers then keep their long spin after
  each of its own operators and take cores from ferroconv's threads;
* determinism: a network of layers ``convert`` replaces plus element-wise ones
  (no BatchNorm or Linear, whose PyTorch reductions may depend on the thread
  count) trained with 1 and 2 threads: a hash of its weights' bytes, converted
  and native;
* the bridge's per-call overhead over ferroconv's own call.

Run::

    pip install ".[torch]"
    python examples/torch_convert.py --threads 2
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import ferroconv.torch as fct  # first: it shortens PyTorch's OpenMP spin-wait (see docs/torch.md)
import torch  # noqa: E402

import ferroconv as fc  # noqa: E402


def small_cnn(dtype: torch.dtype = torch.float32, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    channels = 3
    for width in (32, 64, 128):
        layers += [torch.nn.Conv2d(channels, width, 3, padding=1), torch.nn.BatchNorm2d(width), torch.nn.ReLU(),
                   torch.nn.MaxPool2d(2)]
        channels = width
    layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(channels, 10)]
    return torch.nn.Sequential(*layers).to(dtype)


def data(dtype: torch.dtype, batch: int = 32, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, 32, 32, generator=gen).to(dtype), torch.randint(0, 10, (batch,), generator=gen)


def train(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> list[float]:
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def step_time(convert: bool, dtype: torch.dtype, steps: int, repeats: int) -> float:
    """Median seconds per training step over ``repeats`` runs of ``steps`` steps."""
    model = small_cnn(dtype)
    if convert:
        fct.convert(model)
    x, y = data(dtype)
    train(model, x, y, 2)  # warm-up
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        train(model, x, y, steps)
        runs.append((time.perf_counter() - start) / steps)
    return statistics.median(runs)


def determinism_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(64, 10, 3, padding=1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())


def weights_hash(convert: bool, threads: int, steps: int = 3) -> str:
    model = determinism_net()
    if convert:
        fct.convert(model)
    x, y = data(torch.float32)
    before = fc.get_num_threads(), torch.get_num_threads()
    fc.set_num_threads(threads)
    torch.set_num_threads(threads)
    try:
        train(model, x, y, steps)
    finally:
        fc.set_num_threads(before[0])
        torch.set_num_threads(before[1])
    digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters()))
    return digest.hexdigest()[:16]


def overhead_us(calls: int = 2000) -> tuple[float, float]:
    """Min-of-5 microseconds per call of a tiny convolution: through the
    bridge, and through ferroconv's NumPy API."""
    x, w = torch.randn(1, 1, 4, 4), torch.randn(1, 1, 1, 1)
    xn, wn = x.numpy(), w.numpy()

    def timed(fn: Any) -> float:
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            best = min(best, (time.perf_counter() - start) / calls)
        return best * 1e6

    bridge = timed(lambda: fct.conv2d(x, w))
    own = timed(lambda: fc.conv2d(xn, wn))
    return bridge, own


def timed_in_child(convert: bool, dtype: str, args: argparse.Namespace, torch_first: bool) -> float:
    """:func:`step_time` in a fresh process, importing torch before or after
    ferroconv.torch: PyTorch's OpenMP threads read their spin-wait setting once,
    when torch is imported, and ferroconv.torch shortens it when it comes first."""
    first = "import torch; " if torch_first else ""
    code = (f"{first}import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import torch_convert as t, torch, ferroconv as fc; fc.set_num_threads({args.threads}); "
            f"torch.set_num_threads({args.threads}); import warnings; warnings.simplefilter('ignore'); "
            f"print(t.step_time({convert}, torch.{dtype}, {args.steps}, {args.repeats}))")
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                         text=True).stdout
    return float(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="threads for both libraries (default 2)")
    parser.add_argument("--steps", type=int, default=5, help="training steps per timed run (default 5)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs; the median is shown (default 5)")
    parser.add_argument("--curve", type=int, default=8, help="steps of the loss curves (default 8)")
    args = parser.parse_args(argv)
    fc.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {}

    x, y = data(torch.float64)
    native, converted = small_cnn(torch.float64), small_cnn(torch.float64)
    report = fct.convert(converted)
    print(report)
    curves = train(native, x, y, args.curve), train(converted, x, y, args.curve)
    print("loss (float64)  native      converted")
    for i, (a, b) in enumerate(zip(*curves)):
        print(f"  step {i:2d}     {a:.12f}  {b:.12f}")
    results["max_loss_difference"] = max(abs(a - b) for a, b in zip(*curves))
    print(f"max |difference| {results['max_loss_difference']:.2e}")

    print("time per step (ms, median of runs; each in its own process):")
    for name in ("float32", "float64"):
        native = timed_in_child(False, name, args, torch_first=True)
        converted = timed_in_child(True, name, args, torch_first=False)
        long_spins = timed_in_child(True, name, args, torch_first=True)
        results[name] = (native, converted, long_spins)
        print(f"  {name}: native {native * 1e3:.1f}; converted {converted * 1e3:.1f} ({native / converted:.2f}x); "
              f"converted with torch imported first {long_spins * 1e3:.1f} ({native / long_spins:.2f}x)")

    hashes = {(c, t): weights_hash(c, t) for c in (True, False) for t in (1, 2)}
    results["hashes"] = hashes
    for convert in (True, False):
        same = hashes[(convert, 1)] == hashes[(convert, 2)]
        label = "converted" if convert else "native   "
        print(f"{label} weights after 3 steps: 1 thread {hashes[(convert, 1)]}, 2 threads "
              f"{hashes[(convert, 2)]} ({'identical' if same else 'different'})")

    bridge, own = overhead_us()
    results["overhead_us"] = bridge - own
    print(f"per-call: bridge {bridge:.1f} us, ferroconv {own:.1f} us, overhead {bridge - own:.1f} us")
    return results


if __name__ == "__main__":
    main()
