"""Input arrays: never modified, any memory layout accepted.

For every public function taking arrays (convolutions, their backward, pooling,
..., found in ``ferroconv.functional.__all__``; valid and invalid argument sets
drawn by ``fuzz_args``):

* every input array keeps its bytes, shape, strides and flags and stays
  writeable if it was (but those a call writes by contract: ``out=``, running
  statistics; ``fuzz_args.WRITTEN_NAMES``) (valid calls here; the fuzz worker checks every valid and
  invalid call the same way);
* each array argument in Fortran order, with non-unit or negative strides,
  read-only, unaligned, as a field of a packed record, or (for float and integer arrays)
  big-endian gives exactly the result of the C-contiguous native array.
"""

from __future__ import annotations

import ctypes
import zlib

import numpy as np
import pytest
from hypothesis import settings

import ferroconv as fc
import fuzz_args as fa

FUNCTIONS = fa.public_functions()
ARRAY_FUNCTIONS = sorted(name for name, fn in FUNCTIONS.items()
                         if any(p.name in fa.ARRAY_NAMES for p in fa.signature(fn)))
CASES = max(3, settings.default.max_examples // 10)
LAYOUTS = ("F", "strided", "negative", "readonly", "bigendian", "unaligned", "packed_field")
ACCEPTED = (ValueError, TypeError, MemoryError)


def arrays_in(obj, path="args"):
    """(path, array) for every ndarray in nested args."""
    if isinstance(obj, np.ndarray):
        return [(path, obj)]
    if isinstance(obj, dict):
        return [item for k, v in obj.items() for item in arrays_in(v, f"{path}[{k!r}]")]
    if isinstance(obj, (tuple, list)):
        return [item for i, v in enumerate(obj) for item in arrays_in(v, f"{path}[{i}]")]
    return []


def relayout(a, layout):
    """The values of ``a`` in another memory layout."""
    a = np.ascontiguousarray(a)
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "strided":
        big = np.zeros(tuple(2 * n + 1 for n in a.shape), a.dtype)
        if a.dtype.kind == "f":
            big[...] = np.nan  # reading outside the view poisons the result
        view = big[tuple(slice(1, 1 + 2 * n, 2) for n in a.shape)]
        view[...] = a
        return view
    if layout == "negative":
        flip = (slice(None, None, -1),) * a.ndim
        return a[flip].copy()[flip]
    if layout == "readonly":
        c = a.copy()
        c.flags.writeable = False
        return c
    if layout == "bigendian":
        return a.astype(a.dtype.newbyteorder(">" if a.dtype.byteorder != ">" else "<"))
    if layout == "unaligned":
        buf = np.zeros(a.nbytes + 1, np.uint8)
        view = np.ndarray(a.shape, a.dtype, buffer=buf.data, offset=1)
        view[...] = a
        return view
    if layout == "packed_field":
        rec = np.zeros(a.shape, np.dtype([("v", a.dtype), ("tag", np.int8)], align=False))
        rec["tag"] = 0x7F
        rec["v"] = a
        return rec["v"]
    raise ValueError(layout)


def same_result(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
                and a.dtype == b.dtype and a.tobytes() == b.tobytes())
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same_result(x, y) for x, y in zip(a, b))
    return a == b


def drawn_cases(name, kind, seed):
    for i in range(CASES):
        case = fa.draw_case(fa.RandomDraw(fa.bulk_seed(name, seed, i)), FUNCTIONS, name, kind=kind)
        try:
            args = fa.materialize(case.args, FUNCTIONS, {})
        except Exception:  # not buildable (e.g. its forward call was rejected)
            continue
        yield case, args


def memory(a):
    """The bytes of the memory region ``a`` spans (gaps of strided views included;
    for object arrays, the object pointers)."""
    low, high = np.lib.array_utils.byte_bounds(a)
    return ctypes.string_at(low, high - low) if high > low else b""


def snapshot(a):
    return dict(raw=memory(a), shape=a.shape, strides=a.strides, writeable=a.flags.writeable, dtype=a.dtype)


@pytest.mark.parametrize("name", ARRAY_FUNCTIONS)
def test_inputs_are_never_modified(name):
    """Valid calls here (in-process); every fuzz case, valid or not, is checked the
    same way in the worker of test_robustness_fuzz.py."""
    fn = FUNCTIONS[name]
    for kind, seed in (("valid", 1), ("valid", 2)):
        for case, args in drawn_cases(name, kind, seed):
            inputs = arrays_in({k: v for k, v in args.items() if k not in fa.WRITTEN_NAMES})
            before = [snapshot(a) for _, a in inputs]
            try:
                fn(**args)
            except ACCEPTED:
                pass
            for (path, a), b in zip(inputs, before):
                where = f"{path} of {case!r}"
                assert a.shape == b["shape"] and a.strides == b["strides"] and a.dtype == b["dtype"], where
                assert a.flags.writeable == b["writeable"], f"writeable flag changed: {where}"
                assert memory(a) == b["raw"], f"input modified: {where}"
                if a.flags.writeable and a.size:
                    a.reshape(-1)[:1] = a.reshape(-1)[:1]  # still writable (no borrow left behind)


@pytest.mark.parametrize("name", ARRAY_FUNCTIONS)
def test_every_layout_gives_the_result_of_the_c_contiguous_array(name):
    fn = FUNCTIONS[name]
    checked = 0
    for case, args in drawn_cases(name, "valid", 5):
        # the array arguments proper (not e.g. a stride given as an ndarray)
        inputs = [(path, a) for name_, value in args.items() if name_ in fa.ARRAY_NAMES
                  for path, a in arrays_in(value, f"args[{name_!r}]")]
        if not inputs:
            continue
        native = {path: np.ascontiguousarray(a, a.dtype.newbyteorder("=")) for path, a in inputs}

        def build(replace):
            def walk(obj, path):
                if isinstance(obj, np.ndarray) and path in native:
                    return replace(path, native[path])
                if isinstance(obj, dict):
                    return {k: walk(v, f"{path}[{k!r}]") for k, v in obj.items()}
                if isinstance(obj, (tuple, list)):
                    return type(obj)(walk(v, f"{path}[{i}]") for i, v in enumerate(obj))
                return obj
            return walk(args, "args")

        try:
            expected = fn(**build(lambda p, a: a))
        except ACCEPTED:
            continue  # the generator's guess was not a valid call
        checked += 1
        for path in native:
            for layout in LAYOUTS:
                if layout == "bigendian" and native[path].dtype.kind not in "fiu":
                    continue
                variant = build(lambda p, a: relayout(a, layout) if p == path else a)
                try:
                    got = fn(**variant)
                except ACCEPTED as exc:
                    pytest.fail(f"{path} in layout {layout!r} is refused ({type(exc).__name__}: {exc}) "
                                f"although the C-ordered array is accepted: {case!r}")
                assert same_result(got, expected), (
                    f"{path} in layout {layout!r} gives a different result than C order: {case!r}")

        def odd(p, a):
            layouts = LAYOUTS if a.dtype.kind == "f" else LAYOUTS[:4]
            return relayout(a, layouts[zlib.crc32(p.encode()) % len(layouts)])

        assert same_result(fn(**build(odd)), expected), f"all inputs in odd layouts: {case!r}"
    if fa.family(name)[0] != "generic":
        assert checked, "no valid case was accepted"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_big_endian_input_is_converted_not_misread(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 8)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    expected = fc.conv2d(x, w, padding=1)
    be_x, be_w = x.astype(x.dtype.newbyteorder(">")), w.astype(w.dtype.newbyteorder(">"))
    assert be_x.tobytes() != x.tobytes()  # misreading the bytes would change the values
    for args in ((be_x, w), (x, be_w), (be_x, be_w)):
        got = fc.conv2d(*args, padding=1)
        assert got.dtype == np.dtype(dtype) and got.dtype.isnative
        assert got.tobytes() == expected.tobytes()
    grads = fc.conv2d_backward(expected.astype(expected.dtype.newbyteorder(">")), be_x, be_w, padding=1)
    for got, ref in zip(grads, fc.conv2d_backward(expected, x, w, padding=1)):
        assert got.dtype.isnative and got.tobytes() == ref.tobytes()


@pytest.mark.parametrize("argument", ["out", "residual"])
def test_arrays_of_more_than_32_axes_are_a_value_error_not_a_panic(argument):
    # NumPy 2 allows up to 64 axes; rust-numpy panics on views of more than 32.
    x = np.ones((2, 1, 3), np.float32)
    w = np.ones((1, 1, 2), np.float32)
    with pytest.raises(ValueError, match=rf"{argument} must have 3 dimensions for a 1-D operator, got 33"):
        fc.conv1d(x, w, **{argument: np.ones((1,) * 33, np.float32)})
