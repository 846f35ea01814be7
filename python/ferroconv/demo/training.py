"""The part every demo task shares: the task description, a stratified split,
mini-batch training with Adam and a progress bar, and evaluation."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from .. import nn


@dataclass(frozen=True)
class Task:
    """One demo: its data, its network and the hyper-parameters that reach the target.

    Attributes
    ----------
    name : str
        The ``--task`` value.
    description : str
        One line for the console.
    class_names : list of str
    load : callable
        ``load(rng, limit) -> (x, y)``: float64 inputs ``(N, C, *S)`` and int64 labels.
    build : callable
        ``build(dtype, rng) -> nn.Sequential``.
    epochs, batch_size, lr : defaults of the command-line options
    sample_noun : str
        What one input is called ("image", "signal", "volume").
    """

    name: str
    description: str
    class_names: list[str]
    load: Callable[[np.random.Generator, Optional[int]], tuple[np.ndarray, np.ndarray]]
    build: Callable[[np.dtype, np.random.Generator], nn.Sequential]
    epochs: int
    batch_size: int
    lr: float
    sample_noun: str = "sample"


@dataclass
class History:
    """Per-epoch metrics of a training run."""

    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def stratified_split(labels: np.ndarray, test_fraction: float, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)`` with ``round(test_fraction * n_c)`` test samples from
    every class ``c`` (at least one, when the class has two or more), shuffled."""
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = int(round(test_fraction * len(members)))
        if len(members) > 1:  # keep every class on both sides
            count = min(max(count, 1), len(members) - 1)
        test.append(members[:count])
        train.append(members[count:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def stratified_subset(labels: np.ndarray, limit: Optional[int], rng: np.random.Generator) -> np.ndarray:
    """Indices of at most ``limit`` samples with the class proportions of ``labels``."""
    if limit is None or limit >= len(labels):
        return np.arange(len(labels))
    _, subset = stratified_split(labels, limit / len(labels), rng)
    return np.sort(subset)


def predict(model: nn.Module, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Logits of ``model`` in eval mode, computed in batches."""
    model.eval()
    return np.concatenate([model(x[start:start + batch_size]) for start in range(0, len(x), batch_size)])


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray) -> tuple[float, float, np.ndarray]:
    """``(mean loss, accuracy, predicted labels)`` on a held-out set."""
    logits = predict(model, x)
    loss = nn.CrossEntropyLoss()(logits, y)
    predicted = logits.argmax(axis=1)
    return loss, float(np.mean(predicted == y)), predicted


def train(model: nn.Module, data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], *, epochs: int,
          batch_size: int, lr: float, rng: np.random.Generator, progress: Any = None,
          report: Optional[Callable[[str], None]] = None) -> History:
    """Train ``model`` with Adam (cosine learning-rate decay) on mini-batches drawn
    without replacement, evaluating on the test set after every epoch.

    Parameters
    ----------
    model : nn.Module
    data : (x_train, y_train, x_test, y_test)
    epochs, batch_size, lr : training schedule
    rng : numpy.random.Generator
        Shuffles the training set every epoch.
    progress : callable, optional
        ``progress(total=..., desc=...)`` returning a tqdm-like bar; None for no bar.
    report : callable, optional
        Receives one line per epoch (where no bar shows the progress).
    """
    x_train, y_train, x_test, y_test = data
    optimizer = nn.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    history = History()
    batches = math.ceil(len(x_train) / batch_size)
    start_time = time.perf_counter()
    for epoch in range(epochs):
        # cosine decay from lr to ~0 over the run: large steps first, fine-tuning last
        optimizer.lr = lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
        model.train()
        order = rng.permutation(len(x_train))
        loss_sum, correct, seen = 0.0, 0, 0
        bar = progress(total=batches, desc=f"epoch {epoch + 1}/{epochs}", unit="batch") if progress else None
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            logits = model(x_train[batch])
            loss = loss_fn(logits, y_train[batch])
            optimizer.zero_grad()
            model.backward(loss_fn.backward())
            optimizer.step()
            loss_sum += loss * len(batch)
            correct += int(np.sum(logits.argmax(axis=1) == y_train[batch]))
            seen += len(batch)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.1%}", refresh=False)
        test_loss, test_accuracy, _ = evaluate(model, x_test, y_test)
        history.train_loss.append(loss_sum / seen)
        history.train_accuracy.append(correct / seen)
        history.test_loss.append(test_loss)
        history.test_accuracy.append(test_accuracy)
        history.seconds.append(time.perf_counter() - start_time)
        if bar is not None:
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.1%}",
                            test_acc=f"{test_accuracy:.1%}")
            bar.close()
        if report is not None:
            report(f"epoch {epoch + 1}/{epochs}: train loss {loss_sum / seen:.3f} and accuracy "
                   f"{correct / seen:.1%} (running means), test accuracy {test_accuracy:.1%}, "
                   f"{history.seconds[-1]:.1f} s")
    return history
