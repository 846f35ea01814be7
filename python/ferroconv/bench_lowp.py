"""``python -m ferroconv bench --suite lowp``: the bench workloads in bfloat16 and
float16 against ferroconv's own float32 and PyTorch's 16-bit CPU kernels, timed in
one run.

Each convolution row times the forward and the forward + backward (input and
weight gradients) in float32, bfloat16 and float16 through ferroconv, and in
bfloat16 (and float16, forward only: it is 20-35x slower than PyTorch's float32)
through PyTorch; each pooling row times average pooling, max pooling without and
with indices. Ratios above 1 mean the 16-bit ferroconv call is faster.
bfloat16 needs ml_dtypes; PyTorch columns are left out when it is not installed.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ._docs import cli_text
from . import functional as F
from .bench import POOL_WORKLOADS, WORKLOADS, _timeit, _torch, same_threads

CONVS = {1: (F.conv1d, F.conv1d_backward), 2: (F.conv2d, F.conv2d_backward), 3: (F.conv3d, F.conv3d_backward)}


def _dtypes() -> dict[str, np.dtype]:
    import ml_dtypes

    return {"float32": np.dtype(np.float32), "bfloat16": np.dtype(ml_dtypes.bfloat16),
            "float16": np.dtype(np.float16)}


def _ratio(row: dict[str, Any], key: str, num: str, den: str) -> None:
    if num in row and den in row:
        row[key] = row[num] / row[den]


def run_convs(names: Optional[Sequence[str]], repeat: int, threads: int, torch: Optional[Any],
              rng: np.random.Generator) -> list[dict[str, Any]]:
    dtypes = _dtypes()
    rows = []
    for wl in WORKLOADS:
        if wl.dtype != np.float32 or (names and not any(n in wl.name for n in names)):
            continue
        wl.setup(rng)
        conv, conv_bwd = CONVS[wl.rank]
        opts: dict[str, Any] = dict(stride=wl.stride, padding=wl.padding, groups=wl.groups)
        row: dict[str, Any] = {"workload": wl.name, "threads": threads}
        for label, dtype in dtypes.items():
            x, w, g = (wl.arrays[k].astype(dtype) for k in ("x", "w", "g"))
            row[f"{label}_fwd_ms"] = 1e3 * _timeit(lambda: conv(x, w, **opts), repeat)
            row[f"{label}_fwd_bwd_ms"] = row[f"{label}_fwd_ms"] + 1e3 * _timeit(
                lambda: conv_bwd(g, x, w, **opts, needs=(True, True, False)), repeat)
        if torch is not None:
            tconv = getattr(torch.nn.functional, f"conv{wl.rank}d")
            for label, tdtype, bwd, count in (("torch_bfloat16", torch.bfloat16, True, repeat),
                                              ("torch_float16", torch.float16, False, 1)):
                tx, tw, tg = (torch.from_numpy(wl.arrays[k]).to(tdtype) for k in ("x", "w", "g"))
                with torch.no_grad():
                    row[f"{label}_fwd_ms"] = 1e3 * _timeit(lambda: tconv(tx, tw, **opts), count)
                if bwd:
                    gx, gw = tx.clone().requires_grad_(), tw.clone().requires_grad_()

                    def step() -> object:
                        return torch.autograd.grad(tconv(gx, gw, **opts), (gx, gw), tg)

                    row[f"{label}_fwd_bwd_ms"] = 1e3 * _timeit(step, repeat)
        for pass_ in ("fwd", "fwd_bwd"):
            _ratio(row, f"bf16_vs_own_f32_{pass_}", f"float32_{pass_}_ms", f"bfloat16_{pass_}_ms")
            _ratio(row, f"f16_vs_own_f32_{pass_}", f"float32_{pass_}_ms", f"float16_{pass_}_ms")
            _ratio(row, f"bf16_vs_torch_bf16_{pass_}", f"torch_bfloat16_{pass_}_ms", f"bfloat16_{pass_}_ms")
        _ratio(row, "f16_vs_torch_f16_fwd", "torch_float16_fwd_ms", "float16_fwd_ms")
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


def run_pools(names: Optional[Sequence[str]], repeat: int, threads: int, torch: Optional[Any],
              rng: np.random.Generator) -> list[dict[str, Any]]:
    dtypes = _dtypes()
    rows = []
    for wl in POOL_WORKLOADS:
        if names and not any(n in wl.name for n in names):
            continue
        if wl.kind == "fractional":  # its windows are not a stride's: no avg/max rows of its geometry
            continue
        if wl.kind == "lp" and wl.norm != 2:  # the same geometry as the p = 2 row: its rows already ran
            continue
        x32 = rng.standard_normal(wl.shape).astype(np.float32)
        opts: dict[str, Any] = dict(stride=wl.stride, padding=wl.padding)
        avg = getattr(F, f"avg_pool{wl.rank}d")
        mx = getattr(F, f"max_pool{wl.rank}d")
        ops: dict[str, Callable[[Any], object]] = {
            "avg": lambda x: avg(x, wl.kernel, **opts),
            "max": lambda x: mx(x, wl.kernel, **opts),
            "max_indices": lambda x: mx(x, wl.kernel, return_indices=True, **opts),
        }
        for op, call in ops.items():
            title = {"avg": "avg_pool", "max": "max_pool", "max_indices": "max_pool+indices"}[op]
            geometry = " ".join(wl.name.split(" ")[1:]).replace(" indices", "")
            row: dict[str, Any] = {"workload": f"{title}{wl.rank}d {geometry}", "threads": threads}
            for label, dtype in dtypes.items():
                x = x32.astype(dtype)
                row[f"{label}_fwd_ms"] = 1e3 * _timeit(lambda: call(x), repeat)
            if torch is not None:
                tx = torch.from_numpy(x32).to(torch.bfloat16)
                kind = "avg" if op == "avg" else "max"
                tpool = getattr(torch.nn.functional, f"{kind}_pool{wl.rank}d")
                extra = dict(return_indices=True) if op == "max_indices" else {}
                try:
                    with torch.no_grad():
                        row["torch_bfloat16_fwd_ms"] = 1e3 * _timeit(
                            lambda: tpool(tx, wl.kernel, **opts, **extra), repeat)
                except (NotImplementedError, RuntimeError):  # e.g. no bfloat16 avg_pool3d
                    pass
            _ratio(row, "bf16_vs_own_f32_fwd", "float32_fwd_ms", "bfloat16_fwd_ms")
            _ratio(row, "f16_vs_own_f32_fwd", "float32_fwd_ms", "float16_fwd_ms")
            _ratio(row, "bf16_vs_torch_bf16_fwd", "torch_bfloat16_fwd_ms", "bfloat16_fwd_ms")
            rows.append(row)
            print(format_row(row), flush=True)
    return rows


def format_row(row: dict[str, Any]) -> str:
    def cell(key: str) -> str:
        return f"{row[key]:6.2f}x" if key in row else "     -"

    return (f"{row['workload']:<44} f32 {row['float32_fwd_ms']:8.2f} bf16 {row['bfloat16_fwd_ms']:8.2f} "
            f"f16 {row['float16_fwd_ms']:8.2f} ms | bf16/own f32 {cell('bf16_vs_own_f32_fwd')} "
            f"f16/own f32 {cell('f16_vs_own_f32_fwd')} bf16/torch bf16 {cell('bf16_vs_torch_bf16_fwd')} "
            f"(fwd+bwd {cell('bf16_vs_torch_bf16_fwd_bwd')})")


COLUMNS = [
    ("float32 ms", "float32_fwd_ms", "{:.2f}"),
    ("bfloat16 ms", "bfloat16_fwd_ms", "{:.2f}"),
    ("float16 ms", "float16_fwd_ms", "{:.2f}"),
    ("PyTorch bf16 ms", "torch_bfloat16_fwd_ms", "{:.2f}"),
    ("bf16 / own f32", "bf16_vs_own_f32_fwd", "{:.2f}x"),
    ("f16 / own f32", "f16_vs_own_f32_fwd", "{:.2f}x"),
    ("vs PyTorch bf16", "bf16_vs_torch_bf16_fwd", "{:.2f}x"),
    ("fwd+bwd vs PyTorch bf16", "bf16_vs_torch_bf16_fwd_bwd", "{:.2f}x"),
    ("f16 vs PyTorch f16", "f16_vs_torch_f16_fwd", "{:.1f}x"),
]


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table (forward times; ratios > 1: ferroconv 16-bit faster)."""
    lines = ["| workload | " + " | ".join(c[0] for c in COLUMNS) + " |",
             "|---" * (len(COLUMNS) + 1) + "|"]
    for row in rows:
        cells = [fmt.format(row[key]) if key in row else "-" for _, key, fmt in COLUMNS]
        lines.append(f"| {row['workload']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ferroconv bench --suite lowp", description=cli_text(__doc__))
    parser.add_argument("names", nargs="*", help="run only workloads whose name contains one of these")
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per measurement (default: 5)")
    parser.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    parser.add_argument("--markdown", default=None, help="write a Markdown table to this file")
    args = parser.parse_args(argv)
    try:
        import ml_dtypes  # noqa: F401
    except ImportError:
        parser.error("the lowp suite needs ml_dtypes for bfloat16: pip install ml_dtypes")
    threads, _ = same_threads(args.threads)
    torch = _torch()
    rng = np.random.default_rng(0)
    rows = run_convs(args.names, args.repeat, threads, torch, rng)
    rows += run_pools(args.names, args.repeat, threads, torch, rng)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as handle:
            handle.write(markdown_table(rows))
    return 0
