"""A plain ``jax.grad`` training loop with ferroconv.jax against the same loop on
``jax.lax.conv_general_dilated``.

A small CNN (two 3x3 convolutions of widths 16 and 32 with ReLU and 2x2 max
pooling, global average pooling, a linear layer) written as a function of a
parameter dict, trained with SGD on synthetic 3x32x32 inputs (batch 32, fixed
seed) twice: once with ``ferroconv.jax`` convolutions and pooling, once with
``lax.conv_general_dilated`` and ``lax.reduce_window``. Printed: both loss
curves (they agree to float rounding), the time per jitted step, and the
3x3 64->64 56x56 batch-8 convolution alone under ``jit`` (forward, and forward
plus backward).

Run::

    pip install ".[jax]"
    python examples/jax_training.py
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

import ferroconv as fc
import ferroconv.jax as fcj

lax = jax.lax


def lax_conv(x: Any, w: Any, padding: int = 1) -> Any:
    return lax.conv_general_dilated(x, w, (1, 1), [(padding, padding)] * 2, dimension_numbers=("NCHW", "OIHW", "NCHW"))


def lax_max_pool(x: Any) -> Any:
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")


OPS = {
    "ferroconv": (lambda x, w: fcj.conv2d(x, w, padding=1), lambda x: fcj.max_pool2d(x, 2)),
    "lax": (lax_conv, lax_max_pool),
}


def init(seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)

    def he(*shape: int) -> Any:
        fan_in = int(np.prod(shape[1:]))
        return jnp.asarray(rng.standard_normal(shape) * np.sqrt(2.0 / fan_in), dtype=jnp.float32)

    return {"w1": he(16, 3, 3, 3), "w2": he(32, 16, 3, 3), "fc": he(10, 32), "b": jnp.zeros(10, jnp.float32)}


def forward(params: dict[str, Any], x: Any, ops: tuple[Callable[..., Any], Callable[..., Any]]) -> Any:
    conv, pool = ops
    h = pool(jax.nn.relu(conv(x, params["w1"])))
    h = pool(jax.nn.relu(conv(h, params["w2"])))
    return h.mean(axis=(2, 3)) @ params["fc"].T + params["b"]


def make_step(ops: tuple[Callable[..., Any], Callable[..., Any]], lr: float = 0.02) -> Callable[..., Any]:
    def loss(params: dict[str, Any], x: Any, y: Any) -> Any:
        logits = forward(params, x, ops)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))

    @jax.jit
    def step(params: dict[str, Any], x: Any, y: Any) -> tuple[dict[str, Any], Any]:
        value, grads = jax.value_and_grad(loss)(params, x, y)
        return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads), value

    return step


def timed(fn: Callable[[], Any], repeats: int) -> float:
    jax.block_until_ready(fn())
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=8, help="training steps (default 8)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs; the median is shown (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="ferroconv's threads (default 2)")
    args = parser.parse_args(argv)
    fc.set_num_threads(args.threads)
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((32, 3, 32, 32)), dtype=jnp.float32)
    y = jnp.asarray(rng.integers(0, 10, 32))
    results: dict[str, Any] = {}
    curves = {}
    for name, ops in OPS.items():
        step = make_step(ops)
        params, losses = init(), []
        for _ in range(args.steps):
            params, value = step(params, x, y)
            losses.append(float(value))
        curves[name] = losses
        results[f"{name}_step"] = timed(lambda: step(params, x, y), args.repeats)
    print("loss      ferroconv.jax   lax")
    for i, (a, b) in enumerate(zip(curves["ferroconv"], curves["lax"])):
        print(f"  step {i}  {a:.7f}       {b:.7f}")
    results["max_loss_difference"] = max(abs(a - b) for a, b in zip(curves["ferroconv"], curves["lax"]))
    print(f"max |difference| {results['max_loss_difference']:.2e}")
    print(f"time per step: ferroconv.jax {results['ferroconv_step'] * 1e3:.1f} ms, "
          f"lax {results['lax_step'] * 1e3:.1f} ms ({results['lax_step'] / results['ferroconv_step']:.2f}x)")

    xb = jnp.asarray(rng.standard_normal((8, 64, 56, 56)), dtype=jnp.float32)
    wb = jnp.asarray(rng.standard_normal((64, 64, 3, 3)) * 0.05, dtype=jnp.float32)
    for name, (conv, _) in OPS.items():
        fwd = jax.jit(conv)
        both = jax.jit(jax.value_and_grad(lambda x, w, conv=conv: conv(x, w).sum(), argnums=(0, 1)))
        results[f"{name}_conv"] = (timed(lambda: fwd(xb, wb), args.repeats),
                                   timed(lambda: both(xb, wb), args.repeats))
    ours, theirs = results["ferroconv_conv"], results["lax_conv"]
    print(f"conv 3x3 64->64 56x56 N8 under jit: forward {ours[0] * 1e3:.1f} ms vs lax {theirs[0] * 1e3:.1f} ms "
          f"({theirs[0] / ours[0]:.2f}x); forward+backward {ours[1] * 1e3:.1f} vs {theirs[1] * 1e3:.1f} ms "
          f"({theirs[1] / ours[1]:.2f}x)")
    # the bridge's per-call cost: a tiny convolution through a jitted ferroconv.jax call
    # against ferroconv's own call on NumPy arrays (min of 5 x 1000 calls)
    xs, ws = np.ones((1, 1, 4, 4), np.float32), np.ones((1, 1, 1, 1), np.float32)
    tiny = jax.jit(lambda x, w: fcj.conv2d(x, w))
    xj, wj = jnp.asarray(xs), jnp.asarray(ws)

    def per_call(fn: Callable[[], Any]) -> float:
        fn()
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(1000):
                fn()
            best = min(best, (time.perf_counter() - start) / 1000)
        return best * 1e6

    bridge = per_call(lambda: jax.block_until_ready(tiny(xj, wj)))
    own = per_call(lambda: fc.conv2d(xs, ws))
    results["overhead_us"] = bridge - own
    print(f"per-call: jitted ferroconv.jax {bridge:.1f} us, ferroconv {own:.1f} us, overhead {bridge - own:.1f} us")
    return results


if __name__ == "__main__":
    main()
