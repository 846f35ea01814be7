"""Command line: ``python -m ferroconv {demo,info,bench}``."""

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
    print(f"simd:     {', '.join(build['simd']) or 'none detected'}")
    print(f"dtypes:   {', '.join(build['dtypes'])}")
    print(f"numpy:    {np.__version__}")
    # A tiny end-to-end check, so `info` also proves the extension runs.
    x = np.ones((1, 3, 32, 32), np.float32)
    w = np.ones((6, 3, 5, 5), np.float32)
    out = functional.conv2d(x, w)
    print(f"check:    conv2d (1, 3, 32, 32) * (6, 3, 5, 5) -> {out.shape}, value {out.flat[0]:g} (expected 75)")
    return 0 if out.shape == (1, 6, 28, 28) and out.flat[0] == 75 else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ferroconv", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="train a small CNN offline (digits, signals or volumes) and plot it",
                        add_help=False)
    commands.add_parser("info", help="version, build profile, threads, SIMD features, dtypes")
    commands.add_parser("bench", help="time ferroconv against NumPy (and PyTorch if installed)",
                        add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "info" and not rest:
        return info()
    if args.command == "demo":
        from . import demo

        return demo.main(rest)
    if args.command == "bench":
        from . import bench

        return bench.main(rest)
    parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
