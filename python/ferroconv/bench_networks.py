"""Every convolution and pooling layer of standard CNNs, timed against PyTorch.

Run as ``python -m ferroconv bench --suite networks``. For each distinct layer
of :mod:`ferroconv.networks` it times the forward pass at batch 1 and 8 and
forward+backward (input, weight and bias gradients; pooling's input gradient) at
batch 8, ferroconv and PyTorch in the same process with the same thread count,
and prints per-layer ratios (PyTorch time / ferroconv time: above 1 ferroconv is
faster), the geometric mean per network and its worst layer. Without PyTorch
only ferroconv's times are printed.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ._docs import cli_text
from . import functional as F
from .bench import _timeit, same_threads
from .networks import NETWORKS, Layer, layers

# (label, batch, with backward): the three measurements of every layer.
CONFIGS = (("fwd N=1", 1, False), ("fwd N=8", 8, False), ("fwd+bwd N=8", 8, True))
# Shorter than the comparison bench's settle: there are hundreds of timings, and
# PyTorch's OpenMP workers stop spinning within this.
SETTLE_SECONDS = 0.2

Call = Callable[[], object]


@dataclass
class Arrays:
    x: np.ndarray
    weight: Optional[np.ndarray]
    bias: Optional[np.ndarray]
    grad_out: np.ndarray


def make_arrays(layer: Layer, batch: int, rng: np.random.Generator) -> Arrays:
    """Random float32 operands of ``layer`` at ``batch``."""
    def normal(shape: tuple[int, ...]) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32)

    conv = layer.op in ("conv", "conv_transpose")
    return Arrays(
        x=normal((batch, *layer.in_shape)),
        weight=normal(layer.weight_shape()) if conv else None,
        bias=normal((layer.out_channels,)) if conv else None,
        grad_out=normal((batch, *layer.out_shape())),
    )


def _pairs(layer: Layer) -> tuple[tuple[int, int], ...]:
    if isinstance(layer.padding, tuple):
        return layer.padding
    return ((layer.padding, layer.padding),) * layer.rank


def ferroconv_call(layer: Layer, a: Arrays, backward: bool) -> Call:
    """The forward (and backward) of ``layer`` through ``ferroconv.functional``."""
    r = layer.rank
    if layer.op == "conv":
        conv, conv_bwd = getattr(F, f"conv{r}d"), getattr(F, f"conv{r}d_backward")
        kw: dict[str, Any] = dict(stride=layer.stride, padding=_pairs(layer), dilation=layer.dilation,
                                  groups=layer.groups)
        if not backward:
            return lambda: conv(a.x, a.weight, a.bias, **kw)
        return lambda: (conv(a.x, a.weight, a.bias, **kw), conv_bwd(a.grad_out, a.x, a.weight, **kw))
    if layer.op == "conv_transpose":
        tconv, tconv_bwd = getattr(F, f"conv_transpose{r}d"), getattr(F, f"conv_transpose{r}d_backward")
        kw = dict(stride=layer.stride, padding=layer.padding, groups=layer.groups, dilation=layer.dilation)
        if not backward:
            return lambda: tconv(a.x, a.weight, a.bias, **kw)
        return lambda: (tconv(a.x, a.weight, a.bias, **kw), tconv_bwd(a.grad_out, a.x, a.weight, **kw))
    if layer.op == "max_pool":
        pool, pool_bwd = getattr(F, f"max_pool{r}d"), getattr(F, f"max_pool{r}d_backward")
        kw = dict(stride=layer.stride, padding=layer.padding, return_indices=True)
        if not backward:
            return lambda: pool(a.x, layer.kernel, **kw)

        def max_step() -> object:
            _, indices = pool(a.x, layer.kernel, **kw)
            return pool_bwd(a.grad_out, indices, a.x.shape)
        return max_step
    if layer.op == "adaptive_avg_pool":
        apool, apool_bwd = getattr(F, f"adaptive_avg_pool{r}d"), getattr(F, f"adaptive_avg_pool{r}d_backward")
        if not backward:
            return lambda: apool(a.x, 1)
        return lambda: (apool(a.x, 1), apool_bwd(a.grad_out, a.x.shape))
    raise ValueError(f"no ferroconv call for layer op {layer.op!r}")


def torch_call(torch: Any, layer: Layer, a: Arrays, backward: bool) -> Call:
    """The same computation in PyTorch eager (``torch.nn.functional``, autograd for
    the backward). Per-side padding goes through ``F.pad``, as a PyTorch user
    writes a causal convolution."""
    tf = torch.nn.functional
    r = layer.rank
    x = torch.from_numpy(a.x)
    params = [torch.from_numpy(v) for v in (a.weight, a.bias) if v is not None]
    grad_out = torch.from_numpy(a.grad_out)
    if layer.op == "conv":
        conv = getattr(tf, f"conv{r}d")
        pairs = _pairs(layer)
        symmetric = all(lo == hi for lo, hi in pairs)
        flat = [side for pair in reversed(pairs) for side in pair]

        def op(*args: Any) -> Any:
            x, w, b = args
            if not symmetric:
                x = tf.pad(x, flat)
            return conv(x, w, b, stride=layer.stride, padding=[lo for lo, _ in pairs] if symmetric else 0,
                        dilation=layer.dilation, groups=layer.groups)
    elif layer.op == "conv_transpose":
        tconv = getattr(tf, f"conv_transpose{r}d")

        def op(*args: Any) -> Any:
            x, w, b = args
            return tconv(x, w, b, stride=layer.stride, padding=layer.padding, groups=layer.groups,
                         dilation=layer.dilation)
    elif layer.op == "max_pool":
        pool = getattr(tf, f"max_pool{r}d")

        def op(*args: Any) -> Any:
            (x,) = args
            return pool(x, layer.kernel, stride=layer.stride, padding=layer.padding, return_indices=True)[0]
    elif layer.op == "adaptive_avg_pool":
        apool = getattr(tf, f"adaptive_avg_pool{r}d")

        def op(*args: Any) -> Any:
            (x,) = args
            return apool(x, 1)
    else:
        raise ValueError(f"no PyTorch call for layer op {layer.op!r}")
    if layer.op == "max_pool" and not backward:
        pool_fwd = getattr(tf, f"max_pool{r}d")
        return lambda: pool_fwd(x, layer.kernel, stride=layer.stride, padding=layer.padding,
                                return_indices=True)
    if not backward:
        def forward() -> object:
            with torch.no_grad():
                return op(x, *params)
        return forward
    leaves = [t.clone().requires_grad_() for t in (x, *params)]

    def step() -> object:
        return torch.autograd.grad(op(*leaves), leaves, grad_out)
    return step


def algorithm_times(layer: Layer, batch: int, repeat: int,
                    rng: np.random.Generator) -> tuple[str, dict[str, float]]:
    """The plan's forward algorithm for ``layer`` at ``batch``, and the forward
    time in ms of every algorithm it could run (forced one at a time).
    Tap-by-tap algorithms are left out for layers with more than two output
    channels per group (the plan never picks them there, and they take long)."""
    from . import _ferroconv as native

    arrays = make_arrays(layer, batch, rng)
    plan = F.explain_conv(arrays.x.shape, layer.weight_shape(), stride=layer.stride, padding=_pairs(layer),
                          dilation=layer.dilation, groups=layer.groups)
    forward = plan.passes[0]
    names = [forward.algorithm] + [alt.algorithm for alt in forward.alternatives]
    few_outputs = layer.out_channels // layer.groups <= 2
    times: dict[str, float] = {}
    try:
        for name in names:
            if name in ("direct", "depthwise_rows") and not few_outputs and name != forward.algorithm:
                continue
            native._set_plan_override("forward", name)
            times[name] = 1e3 * _timeit(ferroconv_call(layer, arrays, False), repeat, min_time=0.05,
                                        settle=SETTLE_SECONDS)
    finally:
        native._set_plan_override("forward", None)
    return forward.algorithm, times


def run_algorithms(networks: Optional[Sequence[str]] = None, repeat: int = 5, threads: Optional[int] = None,
                   names: Optional[Sequence[str]] = None) -> list[dict[str, Any]]:
    """Every forward algorithm of every conv layer at N=1 and N=8: how much slower
    the plan's choice is than the fastest (``--all-algorithms``)."""
    if threads is not None:
        F.set_num_threads(threads)
    rng = np.random.default_rng(0)
    rows = []
    for layer in layers(networks):
        if layer.op != "conv" or (names and not any(n in layer.name for n in names)):
            continue
        for batch in (1, 8):
            chosen, times = algorithm_times(layer, batch, repeat, rng)
            chosen_ms = times[chosen]
            fastest = min(times, key=lambda k: times[k])
            slowdown = chosen_ms / times[fastest]
            rows.append({"network": layer.network, "layer": layer.name, "batch": batch, "chosen": chosen,
                         "chosen_ms": chosen_ms, "fastest": fastest, "fastest_ms": times[fastest],
                         "slowdown": slowdown, "times_ms": times})
            flag = "  <-- plan > 10% slower than fastest" if slowdown > 1.10 else ""
            print(f"{layer.network:<12} {layer.name:<46} N={batch} chosen {chosen} {chosen_ms:.3f} ms, fastest "
                  f"{fastest} {times[fastest]:.3f} ms (x{slowdown:.2f}){flag}", flush=True)
    return rows


def _geomean(values: Sequence[float]) -> float:
    good = [v for v in values if v > 0 and math.isfinite(v)]
    return math.exp(sum(map(math.log, good)) / len(good)) if good else float("nan")


def run(networks: Optional[Sequence[str]] = None, repeat: int = 5, threads: Optional[int] = None,
        backward: bool = True, batch1: bool = True, names: Optional[Sequence[str]] = None) -> list[dict[str, Any]]:
    """Time every distinct layer of ``networks`` (all by default); one row per layer."""
    threads, torch = same_threads(threads)
    configs = [c for c in CONFIGS if (backward or not c[2]) and (batch1 or c[1] != 1)]
    rng = np.random.default_rng(0)
    rows = []
    for layer in layers(networks):
        if names and not any(n in layer.name for n in names):
            continue
        row: dict[str, Any] = {"network": layer.network, "layer": layer.name, "count": layer.count,
                               "threads": threads}
        for label, batch, bwd in configs:
            arrays = make_arrays(layer, batch, rng)
            ours = 1e3 * _timeit(ferroconv_call(layer, arrays, bwd), repeat, min_time=0.05,
                                 settle=SETTLE_SECONDS)
            row[f"ferroconv {label} ms"] = ours
            if torch is not None:
                theirs = 1e3 * _timeit(torch_call(torch, layer, arrays, bwd), repeat, min_time=0.05,
                                       settle=SETTLE_SECONDS)
                row[f"torch {label} ms"] = theirs
                row[f"x torch {label}"] = theirs / ours
        rows.append(row)
        print(_format_row(row, configs), flush=True)
    if torch is not None:
        print(summary_markdown(rows))
    return rows


def median_rows(runs: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per layer from several runs of :func:`run` over the same layers:
    the median of every time and of every per-run ratio, and each ratio's range
    (``"spread <label>"``: lowest and highest run)."""
    out = []
    for i, first in enumerate(runs[0]):
        same = [r[i] for r in runs]
        if any(r["layer"] != first["layer"] or r["network"] != first["network"] for r in same):
            raise ValueError("runs: every run must time the same layers in the same order")
        row: dict[str, Any] = {k: first[k] for k in ("network", "layer", "count", "threads")}
        for key in first:
            if key.endswith(" ms") or key.startswith("x torch "):
                values = [r[key] for r in same if key in r]
                row[key] = float(np.median(values))
                if key.startswith("x torch "):
                    row[key.replace("x torch ", "spread ", 1)] = (min(values), max(values))
        out.append(row)
    return out


def _format_row(row: dict[str, Any], configs: Sequence[tuple[str, int, bool]]) -> str:
    parts = [f"{row['network']:<12} {row['layer']:<46}"]
    for label, _, _ in configs:
        cell = f"{label} {row[f'ferroconv {label} ms']:8.3f} ms"
        if f"x torch {label}" in row:
            cell += f" (x{row[f'x torch {label}']:.2f})"
        parts.append(cell)
    return " | ".join(parts)


def _ratio_labels(rows: Sequence[dict[str, Any]]) -> list[str]:
    return [label for label, _, _ in CONFIGS if any(f"x torch {label}" in r for r in rows)]


def summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per network and measurement: geometric mean of the per-layer ratios, the
    worst layer, and the ratio of the summed times of all the network's layers
    (each distinct layer counted as often as it occurs)."""
    out = []
    for network in dict.fromkeys(r["network"] for r in rows):
        mine = [r for r in rows if r["network"] == network]
        entry: dict[str, Any] = {"network": network, "layers": len(mine)}
        for label in _ratio_labels(mine):
            ratios = [(r[f"x torch {label}"], r["layer"]) for r in mine if f"x torch {label}" in r]
            worst = min(ratios)
            total_ours = sum(r["count"] * r[f"ferroconv {label} ms"] for r in mine)
            total_theirs = sum(r["count"] * r[f"torch {label} ms"] for r in mine)
            entry[label] = {"geomean": _geomean([v for v, _ in ratios]), "worst": worst[0],
                            "worst_layer": worst[1], "total": total_theirs / total_ours}
        out.append(entry)
    return out


def summary_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The per-network summary as a Markdown table."""
    labels = _ratio_labels(rows)
    head = "| network | layers | " + " | ".join(
        f"{label}: geomean / all layers / worst (layer)" for label in labels) + " |"
    lines = [head, "|---|---|" + "---|" * len(labels)]
    for entry in summary(rows):
        cells = [f"{entry[label]['geomean']:.2f} / {entry[label]['total']:.2f} / {entry[label]['worst']:.2f} "
                 f"({entry[label]['worst_layer']})" for label in labels if label in entry]
        lines.append(f"| {entry['network']} | {entry['layers']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    """Per-layer tables (one per network) and the summary, in Markdown; ratios are
    PyTorch time / ferroconv time."""
    labels = [label for label, _, _ in CONFIGS if any(f"ferroconv {label} ms" in r for r in rows)]
    parts = [summary_markdown(rows)] if _ratio_labels(rows) else []
    for network in dict.fromkeys(r["network"] for r in rows):
        parts.append(f"\n### {network}\n")
        parts.append("| layer | count | " + " | ".join(f"{label} ms (x PyTorch)" for label in labels) + " |")
        parts.append("|---|---|" + "---|" * len(labels))
        for r in (r for r in rows if r["network"] == network):
            cells = []
            for label in labels:
                cell = f"{r[f'ferroconv {label} ms']:.3f}"
                if f"x torch {label}" in r:
                    spread = r.get(f"spread {label}")
                    runs = f", {spread[0]:.2f}-{spread[1]:.2f}" if spread else ""
                    cell += f" (x{r[f'x torch {label}']:.2f}{runs})"
                cells.append(cell)
            parts.append(f"| {r['layer']} | {r['count']} | " + " | ".join(cells) + " |")
    return "\n".join(parts) + "\n"


def chart(rows: Sequence[dict[str, Any]], path: str) -> None:
    """A PNG of the per-layer ratios, one panel per network (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = _ratio_labels(rows)
    networks = list(dict.fromkeys(r["network"] for r in rows))
    heights = [sum(r["network"] == n for r in rows) for n in networks]
    fig, axes = plt.subplots(len(networks), 1, figsize=(10, 0.32 * sum(heights) + 1.2 * len(networks)),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, network in zip(axes[:, 0], networks):
        mine = [r for r in rows if r["network"] == network]
        positions = np.arange(len(mine))
        width = 0.8 / max(1, len(labels))
        for i, label in enumerate(labels):
            values = [r.get(f"x torch {label}", np.nan) for r in mine]
            ax.barh(positions + (i - (len(labels) - 1) / 2) * width, values, height=width, label=label)
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_yticks(positions, [r["layer"] for r in mine], fontsize=7)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_title(network, fontsize=9)
    axes[0, 0].legend(fontsize=7)
    axes[-1, 0].set_xlabel("PyTorch time / ferroconv time (same process, same threads); > 1 is faster")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ferroconv bench --suite networks", description=cli_text(__doc__),
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("names", nargs="*", help="run only layers whose name contains one of these")
    parser.add_argument("--networks", default=",".join(NETWORKS),
                        help="comma-separated networks to run")
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per measurement (median)")
    parser.add_argument("--runs", type=int, default=1,
                        help="run the whole suite this many times and report per-layer medians (and the "
                             "range of each ratio over the runs)")
    parser.add_argument("--threads", type=int, default=None, help="threads (default: ferroconv's default)")
    parser.add_argument("--no-backward", action="store_true", help="skip forward+backward")
    parser.add_argument("--no-batch1", action="store_true", help="skip the batch-1 forward")
    parser.add_argument("--json", default=None, help="write the rows to this JSON file")
    parser.add_argument("--markdown", default=None, help="write Markdown tables to this file")
    parser.add_argument("--chart", default=None, help="write a PNG chart of the ratios (needs matplotlib)")
    parser.add_argument("--all-algorithms", action="store_true",
                        help="instead: time every forward algorithm of every conv layer at N=1 and N=8 and "
                             "report where the plan's choice is more than 10%% slower than the fastest")
    args = parser.parse_args(argv)
    if args.all_algorithms:
        algo_rows = run_algorithms([n for n in args.networks.split(",") if n], args.repeat, args.threads,
                                   args.names)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(algo_rows, fh, indent=1)
        return 0
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    runs = [run([n for n in args.networks.split(",") if n], args.repeat, args.threads, not args.no_backward,
                not args.no_batch1, args.names) for _ in range(args.runs)]
    rows = runs[0] if args.runs == 1 else median_rows(runs)
    if args.runs > 1 and any("x torch " in key for row in rows for key in row):
        print(f"Medians of {args.runs} runs:")
        print(summary_markdown(rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"runs": args.runs, "rows": rows, "summary": summary(rows)}, fh, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(markdown(rows))
    if args.chart:
        chart(rows, args.chart)
    return 0
