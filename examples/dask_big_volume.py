"""Filter a 3-D volume that need not fit in memory with ferroconv on a dask cluster.

A synthetic CT-like volume (blobs of two densities in noise) is generated block by
block and written to a zarr store; it is then read back and filtered by a
3-D convolution and pooling stack (ferroconv.dask) on a ``dask.distributed``
LocalCluster of worker processes, and the result is written to a second zarr store.
Each block of the volume is one ferroconv call (plus a halo from its neighbours),
so only a few blocks per worker are in memory at a time.

    python examples/dask_big_volume.py --shape 384 --chunks 128 --workers 2

Needs ``pip install "dask[array,distributed]" zarr``. Prints the throughput in voxels per
second, with dask's progress bar while it runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

NOISE = 0.2


# --------------------------------------------------------------- the volume


def gaussian(sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian taps over +-3 sigma."""
    offsets = np.arange(-int(3 * sigma), int(3 * sigma) + 1)
    taps = np.exp(-0.5 * (offsets / sigma) ** 2)
    return np.asarray(taps / taps.sum())


def synthetic_volume(shape: tuple[int, int, int], chunks: tuple[int, int, int], seed: int) -> Any:
    """A CT-like float32 volume as a lazy dask array: blobs of two densities (level
    sets of smoothed noise) in Gaussian noise. Built from dask's random arrays and
    ferroconv.dask only, so workers need no code from this file, and any block can
    be recomputed alone."""
    import dask.array as da

    import ferroconv.dask as fcd

    rng = da.random.default_rng(seed)
    field = rng.standard_normal(shape, chunks=chunks, dtype=np.float32)[np.newaxis, np.newaxis]
    taps = gaussian(2.5).astype(np.float32)
    for axis in range(3):  # separable smoothing: three 1-D passes instead of one 3-D kernel
        kernel = taps.reshape((1, 1) + tuple(len(taps) if a == axis else 1 for a in range(3)))
        field = fcd.conv3d(field, kernel, padding="same", padding_mode="reflect")
    field = field[0, 0] / np.float32(np.sum(taps**2) ** 1.5)  # unit variance
    noise = rng.standard_normal(shape, chunks=chunks, dtype=np.float32)
    volume = 0.5 * (field > 1.0) + 0.5 * (field > 1.8) + NOISE * noise
    return volume.astype(np.float32)


# ------------------------------------------------------------------ the filter


def filters(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(4, 1, 3, 3, 3)`` first-layer filters (a smoothing and three derivative
    filters: blobs and edges) and ``(2, 4, 3, 3, 3)`` random second-layer filters."""
    smooth = np.array([1.0, 2.0, 1.0]) / 4
    derivative = np.array([-1.0, 0.0, 1.0]) / 2
    first = np.empty((4, 1, 3, 3, 3), np.float32)
    first[0, 0] = np.einsum("i,j,k->ijk", smooth, smooth, smooth)
    for axis in range(3):
        factors = [smooth, smooth, smooth]
        factors[axis] = derivative
        first[1 + axis, 0] = np.einsum("i,j,k->ijk", *factors)
    second = np.random.default_rng(seed).standard_normal((2, 4, 3, 3, 3)).astype(np.float32) / 10
    return first, second


STACK = ("conv3d(1->4, 3^3, same, replicate) -> ReLU -> max_pool3d(2) -> conv3d(4->2, 3^3, padding 1) "
         "-> avg_pool3d(2)")


def filter_stack(volume: Any, seed: int) -> Any:
    """``(D, H, W)`` -> ``(2, D/4, H/4, W/4)``, lazily."""
    import dask.array as da

    import ferroconv.dask as fcd

    first, second = filters(seed)
    x = volume[np.newaxis, np.newaxis]  # (N=1, C=1, D, H, W)
    x = fcd.conv3d(x, first, padding="same", padding_mode="replicate")
    x = fcd.max_pool3d(da.maximum(x, np.float32(0)), 2)
    x = fcd.avg_pool3d(fcd.conv3d(x, second, padding=1), 2)
    return x[0]


def regular(array: Any) -> Any:
    """``array`` with chunks a zarr store accepts: equal sizes except the last."""
    if all(len(set(c[:-1])) <= 1 and c[-1] <= c[0] for c in array.chunks):
        return array
    return array.rechunk(tuple(c[0] for c in array.chunks))


# ------------------------------------------------------------------- running


def shape3(text: str, name: str) -> tuple[int, int, int]:
    """``"256"`` or ``"256,256,128"`` (or ``256x256x128``) as three positive ints."""
    try:
        values = [int(v) for v in text.replace("x", ",").split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name} must be an int or three ints, got {text!r}") from None
    if len(values) == 1:
        values *= 3
    if len(values) != 3 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{name} must be one or three positive ints, got {text!r}")
    return values[0], values[1], values[2]


def parse(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="dask_big_volume", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--shape", type=lambda t: shape3(t, "--shape"), default="384",
                        help="volume size D,H,W (or one size for a cube)")
    parser.add_argument("--chunks", type=lambda t: shape3(t, "--chunks"), default="128",
                        help="block size D,H,W (or one size)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the local cluster")
    parser.add_argument("--threads", type=int, default=1, help="ferroconv threads per worker")
    parser.add_argument("--out", default=None,
                        help="directory for the zarr stores volume.zarr and filtered.zarr "
                             "(None: a temporary directory, removed at the end)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", action="store_true",
                        help="also filter the whole volume in memory with ferroconv and compare (small volumes)")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.threads < 1:
        parser.error("--workers and --threads must be >= 1")
    return args


def check(volume_path: str, filtered_path: str, seed: int) -> bool:
    """The stored result equals the same filters applied to the whole volume in
    memory by single ferroconv calls."""
    import dask.array as da

    from ferroconv import functional as fc

    first, second = filters(seed)
    volume = np.asarray(da.from_zarr(volume_path))[np.newaxis, np.newaxis]
    x = fc.conv3d(volume, first, padding="same", padding_mode="replicate")
    pooled = fc.max_pool3d(np.maximum(x, np.float32(0)), 2)
    assert isinstance(pooled, np.ndarray)  # values only, no indices
    x = fc.avg_pool3d(fc.conv3d(pooled, second, padding=1), 2)[0]
    stored = np.asarray(da.from_zarr(filtered_path))
    same = stored.shape == x.shape and bool(np.array_equal(stored, x))
    print(f"check: {'equal' if same else 'NOT equal'} to the whole volume filtered in memory"
          + ("" if same else f" (max difference {np.max(np.abs(stored - x)):.3g})"))
    return same


def run(args: argparse.Namespace, directory: str) -> float:
    """Generate, store, filter and store; returns the filtering throughput."""
    import dask.array as da
    from dask.distributed import Client, LocalCluster, progress

    shape, chunks = args.shape, args.chunks
    volume_path = os.path.join(directory, "volume.zarr")
    filtered_path = os.path.join(directory, "filtered.zarr")
    voxels = int(np.prod(shape))
    print(f"volume {'x'.join(map(str, shape))} float32 ({voxels * 4 / 2**20:.0f} MiB) in blocks of "
          f"{'x'.join(map(str, chunks))}; {args.workers} worker process(es) x {args.threads} thread(s)")
    cluster_options = dict(n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, silence_logs=logging.ERROR,
                           env={"FERROCONV_NUM_THREADS": str(args.threads)})
    with LocalCluster(**cluster_options) as cluster, Client(cluster) as client:  # type: ignore[no-untyped-call]
        client.wait_for_workers(args.workers, timeout=120)
        print(f"1/2 generating the volume into {volume_path}")
        start = time.perf_counter()
        stored = client.compute(da.to_zarr(synthetic_volume(shape, chunks, args.seed), volume_path,
                                           overwrite=True, compute=False))
        progress(stored)
        stored.result()
        print(f"    {time.perf_counter() - start:.1f} s")

        print(f"2/2 filtering: {STACK}")
        start = time.perf_counter()
        filtered = regular(filter_stack(da.from_zarr(volume_path), args.seed))
        written = client.compute(da.to_zarr(filtered, filtered_path, overwrite=True, compute=False))
        progress(written)
        written.result()
        elapsed = time.perf_counter() - start
    throughput = voxels / elapsed
    result = da.from_zarr(filtered_path)
    print(f"    {elapsed:.1f} s: {throughput / 1e6:.2f} M voxels/s "
          f"(read, filter and write {voxels:,} voxels) -> {filtered_path} {result.shape} {result.dtype}")
    if args.check and not check(volume_path, filtered_path, args.seed):
        raise SystemExit(1)
    return throughput


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the example with command-line arguments ``argv`` (default: ``sys.argv``)."""
    args = parse(argv)
    try:
        import dask.distributed  # noqa: F401
        import zarr  # noqa: F401
    except ImportError as exc:
        print(f"this example needs dask.distributed and zarr ({exc}): pip install \"dask[array,distributed]\" zarr",
              file=sys.stderr)
        return 1
    if args.out is not None:
        os.makedirs(args.out, exist_ok=True)
        run(args, args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="ferroconv-big-volume-") as directory:
            run(args, directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
