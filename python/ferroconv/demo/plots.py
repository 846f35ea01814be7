"""The demo's figures (matplotlib, Agg backend): training curves, first-layer
filters, feature maps of one test sample after each convolution block, a
confusion matrix and the misclassified test samples. Each function draws 1-D,
2-D or 3-D data as fits its rank."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import nn
from .training import History

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
MAX_CHANNELS = 16  # feature maps shown per layer


def pyplot() -> Any:
    """matplotlib.pyplot with the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    return path


def plot_curves(history: History, path: Path, title: str) -> Path:
    """Loss and accuracy per epoch, on the training and the test set."""
    plt = pyplot()
    epochs = np.arange(1, len(history.train_loss) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    train_label = "train (running mean over the epoch's batches)"
    test_label = "test (after the epoch)"
    ax_loss.plot(epochs, history.train_loss, "o-", label=train_label)
    ax_loss.plot(epochs, history.test_loss, "s-", label=test_label)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_acc.plot(epochs, 100 * np.asarray(history.train_accuracy), "o-", label=train_label)
    ax_acc.plot(epochs, 100 * np.asarray(history.test_accuracy), "s-", label=test_label)
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.set_xticks(epochs if len(epochs) <= 20 else epochs[:: int(np.ceil(len(epochs) / 20))])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def _grid(plt: Any, count: int, columns: int, cell: float = 1.4) -> tuple[Any, np.ndarray]:
    rows = int(np.ceil(count / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(cell * columns, cell * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    return fig, axes.ravel()


def _show(ax: Any, data: np.ndarray, symmetric: bool = False,
          limits: tuple[float, float] | None = None) -> Any:
    """Draw a 1-D array as a line, a 2-D array as an image (colour range ``limits``
    when given), a 3-D array as its middle slice along the first axis; returns the
    image (None for a line)."""
    data = np.asarray(data, np.float32)  # matplotlib cannot draw 16-bit floats
    if data.ndim == 3:
        data = data[data.shape[0] // 2]
    if data.ndim == 1:
        ax.set_axis_on()
        ax.axhline(0, color="0.7", lw=0.8)
        ax.plot(data, lw=1)
        ax.set_xticks([])
        ax.set_yticks([])
        return None
    limit = float(np.abs(data).max()) or 1.0
    if symmetric:
        return ax.imshow(data, cmap="RdBu_r", vmin=-limit, vmax=limit)
    low, high = limits if limits is not None else (None, None)
    return ax.imshow(data, cmap="viridis", vmin=low, vmax=high)


def plot_filters(model: nn.Module, path: Path, title: str) -> Path:
    """The learned kernels of the first convolution (input channel 0), one panel per
    output channel; 3-D kernels are shown as their slices along depth."""
    plt = pyplot()
    conv = next(m for m in model.modules() if isinstance(m, CONV_TYPES))
    weights = conv.weight.data[:, 0]  # (C_out, *kernel)
    if weights.ndim == 4:  # 3-D: one column per filter, one row per depth slice
        depth = weights.shape[1]
        fig, axes = plt.subplots(depth, len(weights), figsize=(1.1 * len(weights), 1.1 * depth), squeeze=False)
        for index, kernel in enumerate(weights):
            for z in range(depth):
                axes[z, index].set_axis_off()
                _show(axes[z, index], kernel[z], symmetric=True)
            axes[0, index].set_title(f"filter {index}", fontsize=8)
        for z in range(depth):
            axes[z, 0].text(-0.15, 0.5, f"depth {z}", transform=axes[z, 0].transAxes, ha="right", va="center",
                            fontsize=8)
    else:
        fig, flat_axes = _grid(plt, len(weights), min(8, len(weights)))
        for index, kernel in enumerate(weights):
            _show(flat_axes[index], kernel, symmetric=True)
            flat_axes[index].set_title(f"filter {index}", fontsize=8)
    legend = "" if weights.ndim == 2 else ", red > 0 > blue"
    fig.suptitle(f"{title}: first-layer filters ({type(conv).__name__}{legend})", y=1.04)
    return _save(fig, path)


def _focus_slice(volume: np.ndarray) -> int:
    """The depth index holding most of a 3-D sample's signal above its median."""
    mass = np.clip(volume - np.median(volume), 0, None).sum(axis=(1, 2))
    return int(np.argmax(np.convolve(mass, np.ones(3), mode="same")))


# Layers that keep a convolution's shape and follow it inside a block.
BLOCK_TAIL_TYPES = (nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Dropout, nn.BatchNorm1d, nn.BatchNorm2d,
                    nn.BatchNorm3d)


def _block_name(layer: nn.Module) -> str:
    if not isinstance(layer, CONV_TYPES) and any(isinstance(inner, nn.Residual) for inner in layer.modules()):
        return "residual block"
    return type(layer).__name__


def conv_outputs(model: nn.Sequential, sample: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """``(label, output)`` of every convolution block for one sample (eval mode):
    a convolution and the normalisation and activation layers right after it, taken
    at the block's end (what the next layer sees); after the input itself. Outputs
    keep the batch axis of size 1."""
    model.eval()
    outputs: list[tuple[str, np.ndarray]] = [("input", sample[np.newaxis])]
    layers = list(model)
    activation = sample[np.newaxis]
    block: list[int] = []
    for index, layer in enumerate(layers):
        activation = layer(activation)
        if isinstance(layer, CONV_TYPES) or any(isinstance(inner, CONV_TYPES) for inner in layer.modules()):
            block = [index]
        elif block and isinstance(layer, BLOCK_TAIL_TYPES):
            block.append(index)
        else:
            continue
        if index + 1 < len(layers) and isinstance(layers[index + 1], BLOCK_TAIL_TYPES):
            continue  # the block goes on
        names = " + ".join(_block_name(layers[i]) for i in block)
        span = f"layer {block[0]}" if len(block) == 1 else f"layers {block[0]}-{block[-1]}"
        outputs.append((f"{span}: {names} -> {activation.shape[1:]}", activation))
        block = []
    return outputs


def plot_feature_maps(model: nn.Sequential, sample: np.ndarray, path: Path, title: str,
                      caption: str = "") -> Path:
    """One sample and the output of every convolution block for it (up to 16
    channels each, one colour scale per block with its colour bar). 1-D maps are
    drawn as heat maps (channel x position); 3-D maps are sliced at the depth where
    the sample holds the most signal. ``caption`` (e.g. the true and predicted
    class) joins the title."""
    plt = pyplot()
    outputs = conv_outputs(model, sample)
    rank = sample.ndim - 1
    notes = [caption] if caption else []
    if rank == 3:
        notes.append("slices at the shape's depth")
    title = f"{title}: feature maps of one test sample{' (' + ', '.join(notes) + ')' if notes else ''}"
    if rank == 1:
        fig, axes = plt.subplots(len(outputs), 1, figsize=(9, 1.6 * len(outputs)), squeeze=False)
        for ax, (name, output) in zip(axes[:, 0], outputs):
            if name == "input":
                ax.plot(output[0, 0], lw=1)
                ax.set_xlim(0, output.shape[-1] - 1)
            else:
                image = ax.imshow(np.asarray(output[0, :MAX_CHANNELS], np.float32), aspect="auto", cmap="viridis",
                                  interpolation="nearest")
                ax.set_ylabel("channel", fontsize=7)
                fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
            ax.set_title(name, fontsize=8, loc="left")
        fig.suptitle(title, y=1.0)
        fig.tight_layout()
        return _save(fig, path)
    columns = 8
    depth_fraction = (_focus_slice(sample[0]) + 0.5) / sample.shape[1] if rank == 3 else 0.0
    row_counts = [int(np.ceil(min(o.shape[1], MAX_CHANNELS) / columns)) for _, o in outputs]
    fig, axes = plt.subplots(sum(row_counts), columns, figsize=(1.3 * columns, 1.45 * sum(row_counts)),
                             squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    row = 0
    for (name, output), count in zip(outputs, row_counts):
        maps = np.asarray(output[0, :MAX_CHANNELS], np.float32)
        limits = (float(maps.min()), float(maps.max()))  # one scale per block: channels compare
        used = []
        for channel, data in enumerate(maps):
            if rank == 3:
                data = data[min(int(depth_fraction * data.shape[0]), data.shape[0] - 1)]
            ax = axes[row + channel // columns, channel % columns]
            image = _show(ax, data, limits=limits)
            used.append(ax)
            if channel == 0:
                ax.set_title(name, fontsize=8, loc="left")
        for channel in range(len(maps), count * columns):  # no empty panels
            fig.delaxes(axes[row + channel // columns, channel % columns])
        if image is not None:
            fig.colorbar(image, ax=used, fraction=0.02 if len(used) > 1 else 0.046, pad=0.01)
        row += count
    fig.suptitle(title)
    return _save(fig, path)


def plot_confusion(labels: np.ndarray, predicted: np.ndarray, class_names: list[str], path: Path,
                   title: str) -> Path:
    """Counts of (true class, predicted class) on the test set."""
    plt = pyplot()
    classes = len(class_names)
    matrix = np.zeros((classes, classes), np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    size = 1.0 + 0.5 * classes
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        color = "white" if count > matrix.max() / 2 else "black"
        ax.text(j, i, str(count), ha="center", va="center", color=color, fontsize=8)
    ax.set_xticks(range(classes), class_names, rotation=45 if classes <= 4 else 0)
    ax.set_yticks(range(classes), class_names)
    ax.set(xlabel="predicted", ylabel="true")
    fig.colorbar(image, ax=ax)
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set_title(f"{title}: confusion matrix (accuracy {accuracy:.1%})")
    return _save(fig, path)


def plot_mistakes(x: np.ndarray, y: np.ndarray, predicted: np.ndarray, class_names: list[str], path: Path,
                  title: str, most: int = 24) -> Path:
    """The misclassified test samples (up to ``most``), each with its true and
    predicted class (3-D samples sliced through the shape)."""
    plt = pyplot()
    wrong = np.flatnonzero(predicted != y)
    shown = wrong[:most]
    columns = max(1, min(8, len(shown)))
    rows = max(1, int(np.ceil(len(shown) / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.6 * rows + 0.4), squeeze=False)
    for ax in axes.ravel()[len(shown):]:
        fig.delaxes(ax)
    for ax, index in zip(axes.ravel(), shown):
        sample = np.asarray(x[index, 0], np.float32)
        if sample.ndim == 3:
            sample = sample[_focus_slice(sample)]
        _show(ax, sample)
        ax.set_axis_on()
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"true {class_names[y[index]]}\npredicted {class_names[predicted[index]]}", fontsize=7)
    if len(shown) == 0:
        axes[0, 0].set_axis_off()
        axes[0, 0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    more = f", first {len(shown)} shown" if len(wrong) > len(shown) else ""
    fig.suptitle(f"{title}: {len(wrong)} of {len(y)} test samples misclassified{more}")
    fig.tight_layout()
    return _save(fig, path)
