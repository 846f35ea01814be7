"""ferroconv on the command line: train the demo, print the build, time the operators,
or explain which algorithm runs a layer. Each command has its own --help."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

import numpy as np

from . import _ferroconv, functional


def info() -> int:
    """Print the version, build profile, threads, SIMD features and dtypes."""
    build = _ferroconv.build_info()
    print(f"ferroconv {build['version']} ({build['profile']} build)")
    print(f"threads:  {functional.get_num_threads()} (FERROCONV_NUM_THREADS or set_num_threads to change)")
    print(f"simd:     {build['simd_path']} kernels; this CPU's best: {build['simd_best']} "
          f"(FERROCONV_SIMD or set_simd to cap; CPU features: {', '.join(build['simd']) or 'none detected'})")
    print(f"precision: {functional.get_precision()} (FERROCONV_PRECISION or set_precision to change)")
    print(f"dtypes:   {', '.join(build['dtypes'])}")
    print(f"numpy:    {np.__version__}")
    # A tiny end-to-end check, so `info` also proves the extension runs.
    x = np.ones((1, 3, 32, 32), np.float32)
    w = np.ones((6, 3, 5, 5), np.float32)
    out = functional.conv2d(x, w)
    print(f"check:    conv2d (1, 3, 32, 32) * (6, 3, 5, 5) -> {out.shape}, value {out.flat[0]:g} (expected 75)")
    return 0 if out.shape == (1, 6, 28, 28) and out.flat[0] == 75 else 1


def _ints(text: str) -> tuple[int, ...]:
    """``"8,64,56,56"`` (or ``"8x64x56x56"``) as a tuple of ints."""
    return tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())


def _per_axis(text: str) -> object:
    """An int, a tuple of ints, or a word (``same``, ``valid``)."""
    if text.isalpha():
        return text
    values = _ints(text)
    return values[0] if len(values) == 1 else values


def explain(argv: Sequence[str]) -> int:
    """Print the plan of one convolution or pooling layer."""
    parser = argparse.ArgumentParser(
        prog="python -m ferroconv explain",
        description="Which algorithm runs each pass of a layer on this machine, its estimated cost and "
                    "the alternatives'. Shapes are comma-separated, e.g. 8,64,56,56.",
    )
    kinds = parser.add_subparsers(dest="kind", required=True)
    conv = kinds.add_parser("conv", help="a convolution: x shape and weight shape")
    conv.add_argument("x_shape", type=_ints, help="input shape (N, C_in, *spatial)")
    conv.add_argument("weight_shape", type=_ints, help="weight shape (C_out, C_in / groups, *kernel)")
    conv.add_argument("--stride", type=_per_axis, default=1, help="int or comma-separated per axis (default 1)")
    conv.add_argument("--padding", type=_per_axis, default=0,
                      help="int, comma-separated per axis, same or valid (default 0)")
    conv.add_argument("--dilation", type=_per_axis, default=1, help="default 1")
    conv.add_argument("--groups", type=int, default=1, help="default 1")
    conv.add_argument("--padding-mode", default="zeros", help="zeros, reflect, replicate or circular")
    conv.add_argument("--transposed", action="store_true", help="a transposed convolution")
    conv.add_argument("--output-padding", type=_per_axis, default=0, help="of a transposed convolution")
    conv.add_argument("--dtype", default="float32", help="float32 (default) or float64")
    conv.add_argument("--precision", default=None, choices=["default", "highest"],
                      help="default: the process default (highest never uses Winograd)")
    pool = kinds.add_parser("pool", help="pooling: kind, x shape and kernel size (output size if adaptive)")
    pool.add_argument("pool_kind", choices=["max", "avg", "adaptive_max", "adaptive_avg"])
    pool.add_argument("x_shape", type=_ints, help="input shape (N, C, *spatial)")
    pool.add_argument("kernel_size", type=_per_axis, help="window (or output size of adaptive pooling)")
    pool.add_argument("--stride", type=_per_axis, default=None, help="default: the kernel size")
    pool.add_argument("--padding", type=_per_axis, default=0, help="default 0")
    pool.add_argument("--dilation", type=_per_axis, default=1, help="default 1")
    pool.add_argument("--ceil-mode", action="store_true", help="round output sizes up")
    pool.add_argument("--dtype", default="float32", help="float32 (default) or float64")
    args = parser.parse_args(argv)
    try:
        if args.kind == "conv":
            plan = functional.explain_conv(
                args.x_shape, args.weight_shape, dtype=args.dtype, stride=args.stride, padding=args.padding,
                dilation=args.dilation, groups=args.groups, padding_mode=args.padding_mode,
                transposed=args.transposed, output_padding=args.output_padding, precision=args.precision)
        else:
            plan = functional.explain_pool(
                args.pool_kind, args.x_shape, args.kernel_size, stride=args.stride, padding=args.padding,
                dilation=args.dilation, ceil_mode=args.ceil_mode, dtype=args.dtype)
    except (TypeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(plan)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ferroconv", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="train a small CNN offline (digits, signals or volumes) and plot it",
                        add_help=False)
    commands.add_parser("info", help="version, build profile, threads, SIMD features, dtypes")
    commands.add_parser("bench", help="time ferroconv against NumPy (and PyTorch if installed)",
                        add_help=False)
    commands.add_parser("explain", help="the plan of one layer: algorithm, cost, alternatives",
                        add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "info" and not rest:
        return info()
    if args.command == "explain":
        return explain(rest)
    if args.command == "demo":
        from . import demo

        return demo.main(rest)
    if args.command == "bench":
        from . import bench

        return bench.main(rest)
    parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # e.g. `python -m ferroconv info | head`: the reader left early
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
