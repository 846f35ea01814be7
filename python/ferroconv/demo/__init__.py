"""``python -m ferroconv demo``: train a small CNN with :mod:`ferroconv.nn`, fully
offline, and write figures of what it learned.

Tasks (``--task``):

* ``digits`` (default): scikit-learn's 8x8 handwritten digits, LeNet-style 2-D CNN.
* ``signals``: synthetic noisy 1-D waveforms (sine / square / sawtooth / chirp).
* ``volumes``: synthetic noisy 16^3 volumes (sphere / cube / hollow shell).

Every random choice (synthetic data, the stratified 25% test split, the
initialisation, the batch order) derives from ``--seed``, so a run is repeatable;
results do not depend on ``--threads``.

Needs the ``examples`` extra (scikit-learn, matplotlib, tqdm).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager, Optional, Sequence

import numpy as np

from .. import functional
from ..nn.module import float_dtype
from . import digits, plots, resnet, signals, volumes
from .training import History, Task, evaluate, stratified_split, train

TASKS: dict[str, Task] = {task.name: task for task in (digits.TASK, signals.TASK, volumes.TASK)}
TEST_FRACTION = 0.25
MODELS = ("cnn", "resnet")


@dataclass
class DemoResult:
    """What a demo run produced."""

    task: str
    test_accuracy: float
    history: History
    files: list[Path] = field(default_factory=list)
    train_size: int = 0
    test_size: int = 0
    seconds: float = 0.0


def single_threaded_blas() -> ContextManager[object]:
    """Keep NumPy's BLAS (the Linear layers' small matrix products) on one thread
    while ferroconv's own threads run the convolutions: two thread pools on a few
    busy cores make every tiny product wait milliseconds for a thread to be
    scheduled. Uses threadpoolctl (a scikit-learn dependency) when installed."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return nullcontext()
    limits: ContextManager[object] = threadpool_limits(limits=1, user_api="blas")
    return limits


def missing_dependencies(task: str) -> list[str]:
    """The packages of the ``examples`` extra that this task needs and cannot import."""
    needed = ["matplotlib", "tqdm"] + (["sklearn"] if task == "digits" else [])
    return [name for name in needed if importlib.util.find_spec(name) is None]


def run(task: str = "digits", *, epochs: Optional[int] = None, batch_size: Optional[int] = None,
        lr: Optional[float] = None, model: str = "cnn", seed: int = 0, threads: Optional[int] = None,
        out: str | Path = "ferroconv-demo", dtype: str = "float32", limit: Optional[int] = None,
        progress: bool = True, log: Callable[[str], None] = print) -> DemoResult:
    """Train the network of ``task``, report its test accuracy and write the figures.

    Parameters
    ----------
    task : {"digits", "signals", "volumes"}
    epochs, batch_size, lr : optional
        Override the task's defaults.
    model : {"cnn", "resnet"}
        The task's own small CNN, or a small residual network (two basic blocks
        of :class:`ferroconv.nn.Residual`) in the task's dimensionality.
    seed : int
        Seeds the data (synthetic tasks), the split, the initialisation and the
        batch order.
    threads : int, optional
        Threads of the convolution kernels (default: all cores).
    out : path
        Folder for ``<task>-*.png`` and the trained weights ``<task>-model.npz``
        (``<task>-resnet-*.png`` and ``<task>-resnet.npz`` for the residual network).
    dtype : {"float32", "float64", "bfloat16", "float16"}
        The 16-bit types train in mixed precision: 16-bit activations and
        weights, float32 sums and float32 master weights in the optimiser
        (bfloat16 needs the ml_dtypes package).
    limit : int, optional
        Use only this many samples (a stratified subset), e.g. for a quick test.
    progress : bool
        Show a tqdm progress bar per epoch (on stderr).
    log : callable
        Receives the report lines.

    Returns
    -------
    DemoResult
    """
    started = time.perf_counter()
    spec = TASKS[task]
    if model not in MODELS:
        raise ValueError(f"demo: model must be one of {', '.join(MODELS)}, got {model!r}")
    epochs = spec.epochs if epochs is None else epochs
    batch_size = spec.batch_size if batch_size is None else batch_size
    lr = spec.lr if lr is None else lr
    if threads is not None:
        functional.set_num_threads(threads)
    data_rng, model_rng, order_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))

    x, y = spec.load(data_rng, limit)
    train_index, test_index = stratified_split(y, TEST_FRACTION, data_rng)
    np_dtype = float_dtype(dtype, "demo")
    x = x.astype(np_dtype)
    x_train, y_train, x_test, y_test = x[train_index], y[train_index], x[test_index], y[test_index]
    network = (spec.build(np_dtype, model_rng) if model == "cnn" else
               resnet.build(x.ndim - 2, x.shape[1], len(spec.class_names), np_dtype, model_rng))
    parameter_count = sum(p.data.size for p in network.parameters())
    description = spec.description if model == "cnn" else f"{spec.description.split(',')[0]}, small ResNet"
    log(f"ferroconv demo --task {task} --model {model}: {description}")
    log(f"data:  {len(x_train)} training / {len(x_test)} test {spec.sample_noun}s of shape {x.shape[1:]} "
        f"({TEST_FRACTION:.0%} stratified split, seed {seed})")
    log(f"model: {parameter_count:,} parameters, {dtype}, {functional.get_num_threads()} threads, "
        f"{epochs} epoch{'s' if epochs != 1 else ''} of batch {batch_size}, Adam lr {lr:g} (cosine decay)")
    for line in str(network.summary((1,) + x.shape[1:], show=False)).splitlines():
        log("      " + line)

    bar = None
    # A bar redraws its line; in a piped log that repeats every epoch line, so
    # there each epoch is one plain line instead.
    if progress and sys.stderr.isatty():
        from tqdm.auto import tqdm

        def bar(**options: object) -> object:
            return tqdm(file=sys.stderr, dynamic_ncols=True, leave=True, **options)

    with single_threaded_blas():
        history = train(network, (x_train, y_train, x_test, y_test), epochs=epochs, batch_size=batch_size, lr=lr,
                        rng=order_rng, progress=bar, report=None if bar is not None else log)
        _, accuracy, predicted = evaluate(network, x_test, y_test)
    correct = int(np.sum(predicted == y_test))
    log(f"test accuracy: {accuracy:.2%} ({correct}/{len(y_test)} held-out {spec.sample_noun}s), "
        f"training took {history.seconds[-1]:.1f} s")

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    title = f"ferroconv demo: {task}" + ("" if model == "cnn" else f" ({model})")
    name = task if model == "cnn" else f"{task}-{model}"
    files = [
        plots.plot_curves(history, folder / f"{name}-curves.png", title),
        plots.plot_filters(network, folder / f"{name}-filters.png", title),
        plots.plot_feature_maps(network, x_test[0], folder / f"{name}-feature-maps.png", title,
                                f"true {spec.class_names[y_test[0]]}, predicted {spec.class_names[predicted[0]]}"),
        plots.plot_confusion(y_test, predicted, spec.class_names, folder / f"{name}-confusion.png", title),
        plots.plot_mistakes(x_test, y_test, predicted, spec.class_names, folder / f"{name}-mistakes.png", title),
    ]
    weights = folder / f"{task}-{'model' if model == 'cnn' else model}.npz"
    network.save(weights)
    seconds = time.perf_counter() - started
    log(f"wrote: {', '.join(str(f) for f in files + [weights])}")
    log(f"total time: {seconds:.1f} s")
    return DemoResult(task, accuracy, history, files, len(x_train), len(x_test), seconds)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    """The ``demo`` command line."""
    defaults = "; ".join(f"{t.name}: {t.epochs} epochs, batch {t.batch_size}, lr {t.lr:g}" for t in TASKS.values())
    cli = argparse.ArgumentParser(
        prog="python -m ferroconv demo",
        description="Train a small CNN with ferroconv.nn, fully offline, and write figures of what it learned "
                    "(training curves, first-layer filters, feature maps, confusion matrix).",
        epilog=f"Task defaults: {defaults}. Needs scikit-learn, matplotlib and tqdm: pip install scikit-learn "
               "matplotlib tqdm (or the examples extra, pip install \".[examples]\" in a clone).")
    cli.add_argument("--task", choices=sorted(TASKS), default="digits",
                     help="digits: scikit-learn's 8x8 digits (2-D); signals: synthetic waveforms (1-D); "
                          "volumes: synthetic shapes (3-D). Default: %(default)s")
    cli.add_argument("--model", choices=MODELS, default="cnn",
                     help="cnn: the task's small CNN; resnet: a small residual network (two basic blocks) "
                          "in the task's dimensionality, with its summary printed. Default: %(default)s")
    cli.add_argument("--epochs", type=_positive_int, help="passes over the training set")
    cli.add_argument("--batch-size", type=_positive_int, help="samples per optimiser step")
    cli.add_argument("--lr", type=_positive_float, help="Adam's initial learning rate")
    cli.add_argument("--seed", type=int, default=0,
                     help="seed of the data, split, initialisation and batch order (default: %(default)s)")
    cli.add_argument("--threads", type=_positive_int, help="threads for the convolutions (default: all cores)")
    cli.add_argument("--out", default="ferroconv-demo", metavar="DIR",
                     help="folder for the PNG figures and the trained weights (default: %(default)s)")
    cli.add_argument("--dtype", choices=["float32", "float64", "bfloat16", "float16"], default="float32",
                     help="element type of weights and activations; the 16-bit types train in mixed "
                          "precision with float32 sums and master weights (default: %(default)s)")
    cli.add_argument("--limit", type=_positive_int, metavar="N",
                     help="use only N samples (a stratified subset), for quick tests")
    return cli


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_args(argv)
    missing = missing_dependencies(args.task)
    if missing:
        packages = " ".join("scikit-learn" if name == "sklearn" else name for name in missing)
        print(f"the demo needs {', '.join(missing)}: pip install {packages}", file=sys.stderr)
        return 2
    classes = len(TASKS[args.task].class_names)
    if args.limit is not None and args.limit < 4 * classes:
        print(f"--limit must be at least {4 * classes} for --task {args.task} "
              f"(a few samples of each of {classes} classes on both sides of the split)", file=sys.stderr)
        return 2
    run(args.task, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, model=args.model, seed=args.seed,
        threads=args.threads, out=args.out, dtype=args.dtype, limit=args.limit)
    return 0
