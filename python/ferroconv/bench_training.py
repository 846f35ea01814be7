"""Whole training steps of ``ferroconv.nn`` networks, timed against the same
networks in ``torch.nn``.

Run as ``python -m ferroconv bench --suite training``. Each network is built in
ferroconv.nn, copied layer by layer (same weights) into torch.nn, and trained for
a few steps of SGD with momentum on random data: forward, cross-entropy loss,
backward, update. Reported per network: the median over ``--repeat`` runs of the
mean step time, both libraries in the same process with the same thread count,
and the ratio (PyTorch time / ferroconv time: above 1 ferroconv is faster). The
networks:

* ``vgg``: 3x3 convolution + BatchNorm + ReLU blocks of widths 32, 32, max
  pooling, 64, 64, max pooling, 128, global average pooling, linear; batch 32 of
  3x32x32.
* ``resnet18``: ResNet-18 (7x7 stem, max pooling, basic blocks 2-2-2-2 of widths
  64-512, projection shortcuts), 10 classes; batch 16 of 3x64x64.
* ``batchnorm``: BatchNorm2d alone, forward + backward on (32, 64, 32, 32).

Without PyTorch only ferroconv's times are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from . import nn
from ._docs import cli_text
from .bench import same_threads
from .demo import single_threaded_blas

# PyTorch's OpenMP workers spin after each operator and would take the cores
# from ferroconv's threads between the two libraries' steps (ferroconv.torch does
# the same); PyTorch's own step time does not change with the shorter spin.
for _key, _value in {"GOMP_SPINCOUNT": "10000", "KMP_BLOCKTIME": "1"}.items():
    os.environ.setdefault(_key, _value)


@dataclass
class Network:
    name: str
    build: Callable[[np.random.Generator], nn.Module]
    input_shape: tuple[int, ...]
    classes: int
    loss: bool = True


def conv_bn_relu(cin: int, cout: int, rng: np.random.Generator) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False, rng=rng), nn.BatchNorm2d(cout), nn.ReLU()]


def vgg(rng: np.random.Generator) -> nn.Module:
    """The VGG-style CNN of the issue that asked for faster training steps."""
    return nn.Sequential(
        *conv_bn_relu(3, 32, rng), *conv_bn_relu(32, 32, rng), nn.MaxPool2d(2),
        *conv_bn_relu(32, 64, rng), *conv_bn_relu(64, 64, rng), nn.MaxPool2d(2),
        *conv_bn_relu(64, 128, rng), nn.GlobalAvgPool(), nn.Flatten(), nn.Linear(128, 10, rng=rng))


def basic_block(cin: int, cout: int, stride: int, rng: np.random.Generator) -> nn.Module:
    body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False, rng=rng),
                         nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False, rng=rng), nn.BatchNorm2d(cout))
    shortcut = None
    if stride != 1 or cin != cout:
        shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False, rng=rng), nn.BatchNorm2d(cout))
    return nn.Sequential(nn.Residual(body, shortcut), nn.ReLU())


def resnet18(rng: np.random.Generator, classes: int = 10) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False, rng=rng), nn.BatchNorm2d(64),
                               nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1)]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [basic_block(cin, cout, stride, rng), basic_block(cout, cout, 1, rng)]
        cin = cout
    layers += [nn.GlobalAvgPool(), nn.Flatten(), nn.Linear(512, classes, rng=rng)]
    return nn.Sequential(*layers)


NETWORKS = [
    Network("vgg", vgg, (32, 3, 32, 32), 10),
    Network("resnet18", resnet18, (16, 3, 64, 64), 10),
    Network("batchnorm", lambda rng: nn.BatchNorm2d(64), (32, 64, 32, 32), 0, loss=False),
]


def to_torch(module: nn.Module, torch: Any) -> Any:
    """The torch.nn twin of a ferroconv.nn network (same structure and key names;
    the weights are copied by :func:`copy_weights`)."""
    tnn = torch.nn
    if isinstance(module, nn.Sequential):
        return tnn.Sequential(*(to_torch(layer, torch) for layer in module))
    if isinstance(module, nn.Residual):
        class Residual(tnn.Module):  # type: ignore[misc, name-defined]
            def __init__(self, body: Any, shortcut: Any) -> None:
                super().__init__()
                self.body = body
                self.shortcut = shortcut

            def forward(self, x: Any) -> Any:
                return self.body(x) + (x if self.shortcut is None else self.shortcut(x))

        shortcut = None if module.shortcut is None else to_torch(module.shortcut, torch)
        return Residual(to_torch(module.body, torch), shortcut)
    if isinstance(module, nn.Conv2d):
        return tnn.Conv2d(module.in_channels, module.out_channels, module.kernel_size, module.stride,
                          module.padding, module.dilation, module.groups, module.bias is not None)
    if isinstance(module, nn.BatchNorm2d):
        return tnn.BatchNorm2d(module.num_features, module.eps, module.momentum)
    if isinstance(module, nn.MaxPool2d):
        return tnn.MaxPool2d(module.kernel_size, module.stride, module.padding)
    if isinstance(module, nn.Linear):
        return tnn.Linear(module.in_features, module.out_features, module.bias is not None)
    simple = {nn.ReLU: lambda: tnn.ReLU(), nn.Flatten: lambda: tnn.Flatten(),
              nn.GlobalAvgPool: lambda: tnn.AdaptiveAvgPool2d(1)}
    return simple[type(module)]()


def copy_weights(ours: nn.Module, theirs: Any, torch: Any) -> None:
    theirs.load_state_dict({key: torch.from_numpy(value) for key, value in ours.state_dict().items()})


def _median_step(step: Callable[[], object], steps: int, repeat: int) -> float:
    time.sleep(0.3)  # the other library's workers stop spinning
    for _ in range(2):
        step()
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        runs.append((time.perf_counter() - start) / steps)
    return statistics.median(runs)


def measure(network: Network, repeat: int, steps: int, torch: Optional[Any]) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    model = network.build(rng)
    x = rng.standard_normal(network.input_shape).astype(np.float32)
    labels = rng.integers(0, max(network.classes, 1), size=network.input_shape[0])
    loss_fn = nn.CrossEntropyLoss()
    optimizer = nn.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def ferroconv_step() -> None:
        optimizer.zero_grad()
        out = model(x)
        if network.loss:
            loss_fn(out, labels)
            model.backward(loss_fn.backward())
            optimizer.step()
        else:
            model.backward(np.ones_like(out))

    with single_threaded_blas():
        ours = _median_step(ferroconv_step, steps, repeat)
    row: dict[str, Any] = {"network": network.name, "input": network.input_shape, "ferroconv_ms": ours * 1e3}
    if torch is not None:
        twin = to_torch(network.build(np.random.default_rng(0)), torch)
        copy_weights(network.build(np.random.default_rng(0)), twin, torch)
        twin.train()
        tx = torch.from_numpy(x).requires_grad_(not network.loss)
        tlabels = torch.from_numpy(labels)
        toptimizer = torch.optim.SGD(twin.parameters(), lr=0.01, momentum=0.9)
        tloss = torch.nn.CrossEntropyLoss()

        def torch_step() -> None:
            toptimizer.zero_grad()
            out = twin(tx)
            if network.loss:
                tloss(out, tlabels).backward()
                toptimizer.step()
            else:
                out.backward(torch.ones_like(out))

        theirs = _median_step(torch_step, steps, repeat)
        row.update(torch_ms=theirs * 1e3, ratio=theirs / ours)
    return row


def run(names: Optional[Sequence[str]] = None, repeat: int = 5, steps: int = 5,
        threads: Optional[int] = None) -> list[dict[str, Any]]:
    threads, torch = same_threads(threads)
    print(f"training steps, SGD with momentum, {threads} threads, median of {repeat} runs of {steps} steps"
          + ("" if torch is not None else " (PyTorch not installed)"))
    rows = []
    for network in NETWORKS:
        if names and not any(name in network.name for name in names):
            continue
        row = measure(network, repeat, steps, torch)
        ratio = f"  {row['torch_ms']:8.2f} ms  {row['ratio']:5.2f}x" if "ratio" in row else ""
        print(f"{network.name:10s} {str(network.input_shape):18s} ferroconv {row['ferroconv_ms']:8.2f} ms"
              + (f"  PyTorch{ratio}" if ratio else ""), flush=True)
        rows.append(row)
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ferroconv bench --suite training", description=cli_text(__doc__))
    parser.add_argument("names", nargs="*", help="run only networks whose name contains one of these")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs; the median is reported (default: 5)")
    parser.add_argument("--steps", type=int, default=5, help="training steps per run (default: 5)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for ferroconv and PyTorch (default: ferroconv's current count)")
    args = parser.parse_args(argv)
    run(args.names, args.repeat, args.steps, args.threads)
    return 0
