"""Argument sets for the robustness tests, drawn by *parameter name* for every
public function of ``ferroconv.functional`` (so a function is covered the moment
it is exported), and a disposable worker process that runs them.

A case is pure data (:class:`Case`): the function name and, per parameter, a
*spec*: a plain value (int, float, str, None, tuple, list, dict, NumPy scalar) or
one of the nodes below, which the worker turns into objects:

``Arr(shape, dtype, fill, layout, seed)``
    an array (``layout`` picks C / Fortran / strided / negative strides /
    read-only / broadcast / unaligned / packed field / nested list ...);
``Call(fn, args, pick)``
    the result of calling another public function (a backward's ``grad_out``
    comes from its forward, ``indices`` from a max pool), item ``pick``;
``Like(node, fill, seed)``
    random values in the shape and dtype of the array ``node`` produces;
``ShapeOf(node, spatial)``
    the shape of that array (``spatial=r``: its last ``r`` axes);
``Relayout(node, layout)``
    that array in another memory layout;
``Obj(tag, value)``
    values without a literal (``object()``, a generator, an ``__index__`` object).

``repr(case)`` is valid Python in this module's namespace, so a failure prints a
reproducer: ``python tests/support/fuzz_args.py "<repr>"``.

Draws go through a tiny interface (:class:`RandomDraw` for seeded bulk runs in
the worker, :class:`HypothesisDraw` for hypothesis with shrinking) so both share
one generator. Every choice lists its simplest option first (what hypothesis
shrinks towards): valid before invalid, small before huge.

The worker (``Worker``) is a subprocess with a 4 GiB address-space limit (an
absurd allocation fails with MemoryError instead of swapping); a segfault or an
abort is seen as its exit status, a hang as a timeout; it is restarted after
either.
"""

from __future__ import annotations

import base64
import inspect
import json
import math
import os
import pickle
import re
import select
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction

import numpy as np

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
WORKER_ADDRESS_SPACE = 4 << 30
ACCEPTED = (ValueError, TypeError, MemoryError)

# ---------------------------------------------------------------------------
# formatting (eval-able reprs)
# ---------------------------------------------------------------------------


def _int_src(v):
    if abs(v) < 2**30:
        return str(v)
    sign = "-" if v < 0 else ""
    a = abs(v)
    for k in range(a.bit_length() - 1, a.bit_length() + 1):
        delta = a - 2**k
        if abs(delta) <= 2:
            tail = "" if delta == 0 else f"{delta:+d}"
            return f"{sign}(2**{k}{tail})" if sign and tail else f"{sign}2**{k}{tail}"
    return str(v)


def src(v):
    """Python source that evaluates (in this module) to the spec ``v``."""
    if isinstance(v, (bool, type(None))):
        return repr(v)
    if isinstance(v, np.generic):
        if isinstance(v, np.bool_):
            return f"np.bool_({bool(v)})"
        return f"np.{type(v).__name__}({src(v.item())})"
    if isinstance(v, int):
        return _int_src(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "float('nan')"
        if math.isinf(v):
            return "float('inf')" if v > 0 else "float('-inf')"
        return repr(v)
    if isinstance(v, tuple):
        inner = ", ".join(src(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, list):
        return "[" + ", ".join(src(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{src(k)}: {src(x)}" for k, x in v.items()) + "}"
    return repr(v)


# ---------------------------------------------------------------------------
# spec nodes
# ---------------------------------------------------------------------------


class Arr:
    """An array: ``shape``, ``dtype`` name, value ``fill``, memory ``layout``."""

    def __init__(self, shape, dtype="float32", fill="rand", layout="C", seed=0):
        self.shape, self.dtype, self.fill, self.layout, self.seed = tuple(shape), dtype, fill, layout, seed

    def __repr__(self):
        return f"Arr({src(self.shape)}, {self.dtype!r}, {self.fill!r}, {self.layout!r}, {self.seed})"


class Call:
    """The result of the public function ``fn(**args)`` (item ``pick`` of a tuple)."""

    def __init__(self, fn, args, pick=None):
        self.fn, self.args, self.pick = fn, args, pick

    def __repr__(self):
        return f"Call({self.fn!r}, {src(self.args)}, {self.pick!r})"


class Like:
    """Random values with the shape and dtype of the array ``node`` evaluates to."""

    def __init__(self, node, fill="rand", seed=0):
        self.node, self.fill, self.seed = node, fill, seed

    def __repr__(self):
        return f"Like({self.node!r}, {self.fill!r}, {self.seed})"


class ShapeOf:
    """The shape of the array ``node`` gives (``spatial=r``: its last ``r`` axes)."""

    def __init__(self, node, spatial=False):
        self.node, self.spatial = node, spatial

    def __repr__(self):
        return f"ShapeOf({self.node!r}, {self.spatial!r})"


class Relayout:
    """The array ``node`` evaluates to, in another memory ``layout`` (see ``Arr``)."""

    def __init__(self, node, layout):
        self.node, self.layout = node, layout

    def __repr__(self):
        return f"Relayout({self.node!r}, {self.layout!r})"


class Obj:
    """A value without a literal, built in the worker from ``tag``."""

    def __init__(self, tag, value=None):
        self.tag, self.value = tag, value

    def __repr__(self):
        return f"Obj({self.tag!r}, {src(self.value)})"


class IndexLike:
    """An object whose ``__index__`` returns ``value`` (like a NumPy integer)."""

    def __init__(self, value):
        self.value = value

    def __index__(self):
        return self.value

    def __repr__(self):
        return f"IndexLike({self.value!r})"


class Case:
    """One call: ``fn(**args)``; ``kind`` is valid / mutated / random; ``meta`` holds
    what the generator knows about a valid case (expected values, resolved padding)."""

    def __init__(self, fn, args, kind="valid", meta=None):
        self.fn, self.args, self.kind, self.meta = fn, args, kind, meta or {}

    def __repr__(self):
        return f"Case({self.fn!r}, {src(self.args)}, {self.kind!r}, {src(self.meta)})"

    def call_src(self):
        return f"{self.fn}(" + ", ".join(f"{k}={src(v)}" for k, v in self.args.items()) + ")"


# ---------------------------------------------------------------------------
# draws
# ---------------------------------------------------------------------------


class RandomDraw:
    """Draws from a seeded ``random.Random``-like generator (NumPy's)."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def int(self, lo, hi):
        return int(self.rng.integers(lo, hi + 1))

    def pick(self, seq):
        return seq[int(self.rng.integers(0, len(seq)))]

    def chance(self, percent):
        return self.rng.random() * 100 < percent


class HypothesisDraw:
    """The same interface over hypothesis' ``draw`` (choices shrink to the first)."""

    def __init__(self, draw):
        from hypothesis import strategies as st

        self.draw, self.st = draw, st

    def int(self, lo, hi):
        return self.draw(self.st.integers(lo, hi))

    def pick(self, seq):
        return seq[self.draw(self.st.integers(0, len(seq) - 1))]

    def chance(self, percent):
        return self.draw(self.st.integers(0, 99)) >= 100 - percent


def bulk_seed(fn, seed, index):
    """Seed of case ``index`` of the seeded run of ``fn`` (stable across runs)."""
    return [zlib.crc32(fn.encode()), seed, index]


# ---------------------------------------------------------------------------
# the public functions
# ---------------------------------------------------------------------------


def public_functions():
    """name -> function for every callable in ``ferroconv.functional.__all__``."""
    import ferroconv.functional as F

    return {name: getattr(F, name) for name in F.__all__ if callable(getattr(F, name, None))}


def family(name):
    """(family, rank) of a public function from its name."""
    for fam, pattern in (
        ("conv", r"conv([123])d"),
        ("conv_backward", r"conv([123])d_backward"),
        ("transpose", r"conv_transpose([123])d"),
        ("transpose_backward", r"conv_transpose([123])d_backward"),
    ):
        m = re.fullmatch(pattern, name)
        if m:
            return fam, int(m.group(1))
    if name in ("batch_norm", "batch_norm_backward"):
        return "batch_norm", None
    if name in ("convolve", "conv_output_shape", "conv_transpose_output_shape", "same_padding",
                "receptive_field", "set_num_threads", "get_num_threads", "explain_conv", "explain_pool",
                "set_precision", "get_precision"):
        return name, None
    m = re.search(r"([123])d(?:_|$)", name)
    return "generic", int(m.group(1)) if m else None


def signature(fn):
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


# ---------------------------------------------------------------------------
# valid argument sets
# ---------------------------------------------------------------------------

FLOATS = ("float32", "float64")
# max pooling and unpooling take these too (and unpooling's backward, a gather)
INTS = ("int8", "uint8", "int16", "int32", "int64")
SAFE_FILLS = ("rand", "int", "zeros", "ones", "tiny")
LAYOUTS = ("C", "F", "strided", "negative", "readonly", "bigendian", "broadcast", "unaligned",
           "packed_field", "list")
VALID_LAYOUTS = ("C", "C", "C", "F", "strided", "negative", "readonly", "bigendian")


def _form(d, values):
    """An int when every axis agrees (sometimes), else a tuple / list / array."""
    values = tuple(int(v) for v in values)
    if len(set(values)) == 1 and d.chance(60):
        return values[0]
    how = d.int(0, 9)
    if how < 6:
        return values
    if how < 9:
        return list(values)
    return Obj("array", list(values))


def _arr(d, shape, dtype, fill=None):
    fill = fill or ("rand" if d.chance(85) else d.pick(SAFE_FILLS))
    layout = "C" if d.chance(60) else d.pick(VALID_LAYOUTS)
    return Arr(shape, dtype, fill, layout, d.int(0, 2**16))


def _channels(d, big):
    groups = d.pick((1, 1, 1, 2, 3)) if not big else d.pick((1, 1, 2, 4))
    per_in = d.pick((1, 2, 3, 0)) if not big else d.int(2, 6)
    per_out = d.pick((1, 2, 3, 0)) if not big else d.int(2, 6)
    return groups, per_in, per_out


def _batch(d, big):
    return d.pick((1, 2, 0, 3)) if not big else d.int(2, 4)


def _big_size(rank):
    return {1: (600, 1200), 2: (24, 40), 3: (8, 12)}[rank]


def conv_setup(d, rank, big=False):
    """A valid conv{rank}d configuration (PyTorch's rules)."""
    groups, cig, cog = _channels(d, big)
    n, c_in, c_out = _batch(d, big), groups * cig, groups * cog
    mode = d.pick(("zeros", "zeros", "reflect", "replicate", "circular"))
    ks = [d.int(1, 4) for _ in range(rank)]
    dil = [d.pick((1, 1, 2, 3)) for _ in range(rank)]
    st = [d.pick((1, 1, 2, 3)) for _ in range(rank)]
    how = d.pick(("int", "tuple", "same", "valid", "pairs"))
    if how == "int":
        p = d.int(0, 3)
        lo = hi = [p] * rank
        padding = p
    elif how == "tuple":
        lo = hi = [d.int(0, 3) for _ in range(rank)]
        padding = _form(d, lo)
    elif how == "same":
        st = [1] * rank
        lo = [dl * (k - 1) // 2 for k, dl in zip(ks, dil)]
        hi = [dl * (k - 1) - a for k, dl, a in zip(ks, dil, lo)]
        padding = "same"
    elif how == "valid":
        lo = hi = [0] * rank
        padding = "valid"
    else:
        lo = [d.int(0, 3) for _ in range(rank)]
        hi = [d.int(0, 3) for _ in range(rank)]
        padding = tuple((a, b) for a, b in zip(lo, hi))
    sizes = []
    for k, dl, a, b in zip(ks, dil, lo, hi):
        need = dl * (k - 1) + 1 - a - b
        if mode == "reflect" and max(a, b) > 0:
            need = max(need, max(a, b) + 1)
        elif mode in ("replicate", "circular"):
            need = max(need, max(a, b))
        lo_size, hi_size = _big_size(rank) if big else (0, 8)
        sizes.append(max(need, d.int(lo_size, hi_size), 0))
    out = [(s + a + b - dl * (k - 1) - 1) // t + 1 for s, a, b, dl, k, t in zip(sizes, lo, hi, dil, ks, st)]
    return dict(rank=rank, n=n, c_in=c_in, c_out=c_out, groups=groups, cig=cig, ks=ks, dil=dil, st=st,
                lo=lo, hi=hi, padding=padding, mode=mode, sizes=sizes, out=out,
                batched=big or d.chance(85), dtype=d.pick(FLOATS))


def transpose_setup(d, rank, big=False):
    """A valid conv_transpose{rank}d configuration."""
    groups, cig, cog = _channels(d, big)
    n, c_in, c_out = _batch(d, big), groups * cig, groups * cog
    ks = [d.int(1, 4) for _ in range(rank)]
    dil = [d.pick((1, 1, 2, 3)) for _ in range(rank)]
    st = [d.pick((1, 1, 2, 3)) for _ in range(rank)]
    lo_size, hi_size = (max(1, _big_size(rank)[0] // 2), _big_size(rank)[1] // 2) if big else (1, 6)
    sizes = [d.int(lo_size, hi_size) for _ in range(rank)]
    op = [d.int(0, max(t, dl) - 1) for t, dl in zip(st, dil)]
    pad = [d.int(0, min(3, ((s - 1) * t + dl * (k - 1) + o) // 2))
           for s, t, dl, k, o in zip(sizes, st, dil, ks, op)]
    out = [(s - 1) * t - 2 * p + dl * (k - 1) + o + 1 for s, t, p, dl, k, o in zip(sizes, st, pad, dil, ks, op)]
    return dict(rank=rank, n=n, c_in=c_in, c_out=c_out, groups=groups, cog=cog, ks=ks, dil=dil, st=st,
                pad=pad, op=op, sizes=sizes, out=out, batched=big or d.chance(85), dtype=d.pick(FLOATS))


def valid_conv(d, name, rank, backward, big=False):
    c = conv_setup(d, rank, big)
    lead = (c["n"],) if c["batched"] else ()
    dt = c["dtype"]
    x = _arr(d, lead + (c["c_in"],) + tuple(c["sizes"]), dt)
    w = _arr(d, (c["c_out"], c["cig"]) + tuple(c["ks"]), dt)
    args = {}
    if backward:
        args["grad_out"] = _arr(d, lead + (c["c_out"],) + tuple(c["out"]), dt)
    args["x"], args["weight"] = x, w
    if not backward and d.chance(60):
        args["bias"] = _arr(d, (c["c_out"],), dt)
    for key, value, default in (("stride", _form(d, c["st"]), 1), ("padding", c["padding"], 0),
                                ("dilation", _form(d, c["dil"]), 1), ("groups", c["groups"], 1),
                                ("padding_mode", c["mode"], "zeros")):
        if value != default or d.chance(50):
            args[key] = value
    if backward and d.chance(50):
        args["needs"] = tuple(d.chance(70) for _ in range(3))
    meta = dict(lo=tuple(c["lo"]), hi=tuple(c["hi"]), st=tuple(c["st"]), dil=tuple(c["dil"]),
                groups=c["groups"], mode=c["mode"])
    return args, meta


def valid_transpose(d, name, rank, backward, big=False):
    c = transpose_setup(d, rank, big)
    lead = (c["n"],) if c["batched"] else ()
    dt = c["dtype"]
    args = {}
    if backward:
        args["grad_out"] = _arr(d, lead + (c["c_out"],) + tuple(c["out"]), dt)
    args["x"] = _arr(d, lead + (c["c_in"],) + tuple(c["sizes"]), dt)
    args["weight"] = _arr(d, (c["c_in"], c["cog"]) + tuple(c["ks"]), dt)
    if not backward and d.chance(60):
        args["bias"] = _arr(d, (c["c_out"],), dt)
    for key, value, default in (("stride", _form(d, c["st"]), 1), ("padding", _form(d, c["pad"]), 0),
                                ("output_padding", _form(d, c["op"]), 0), ("groups", c["groups"], 1),
                                ("dilation", _form(d, c["dil"]), 1)):
        if value != default or d.chance(50):
            args[key] = value
    if backward and d.chance(50):
        args["needs"] = tuple(d.chance(70) for _ in range(3))
    meta = dict(st=tuple(c["st"]), pad=tuple(c["pad"]), op=tuple(c["op"]), dil=tuple(c["dil"]),
                groups=c["groups"])
    return args, meta


def valid_convolve(d, big=False):
    ndim = d.int(1, 3)
    mode = d.pick(("full", "same", "valid"))
    multichannel = d.chance(30)
    dt = d.pick(FLOATS)
    hi_size = {1: 3000, 2: 60, 3: 16}[ndim] if big else 8
    sizes = [d.int(1 if not big else hi_size // 2, hi_size) for _ in range(ndim)]
    ks = [d.int(1, min(s, 5)) for s in sizes]
    args = {}
    if multichannel:
        c = d.int(1, 3) if not big else 4
        args["x"] = _arr(d, (c,) + tuple(sizes), dt)
        args["kernel"] = _arr(d, ((c,) if d.chance(50) else ()) + tuple(ks), dt)
        args["multichannel"] = True
    else:
        args["x"] = _arr(d, tuple(sizes), dt)
        args["kernel"] = _arr(d, tuple(ks), dt)
    if mode != "full" or d.chance(50):
        args["mode"] = mode
    return args, {}


def valid_geometry(d, name):
    rank = d.int(1, 3)
    if name == "conv_output_shape":
        c = conv_setup(d, rank)
        shape = c["sizes"][0] if rank == 1 and d.chance(30) else d.pick((tuple, list))(c["sizes"])
        args = dict(input_shape=shape,
                    kernel_size=_form(d, c["ks"]), stride=_form(d, c["st"]), padding=c["padding"],
                    dilation=_form(d, c["dil"]), padding_mode=c["mode"])
        return args, dict(expect=tuple(c["out"]))
    if name == "conv_transpose_output_shape":
        c = transpose_setup(d, rank)
        args = dict(input_shape=tuple(c["sizes"]), kernel_size=_form(d, c["ks"]), stride=_form(d, c["st"]),
                    padding=_form(d, c["pad"]), output_padding=_form(d, c["op"]), dilation=_form(d, c["dil"]))
        return args, dict(expect=tuple(c["out"]))
    if name == "same_padding":
        k, dl = d.int(1, 9), d.int(1, 4)
        total = dl * (k - 1)
        return dict(kernel_size=k, dilation=dl), dict(expect=(total // 2, total - total // 2))
    if name == "receptive_field":
        layers, rf, jump = [], 1, 1
        for _ in range(d.int(0, 5)):
            k, s, dl = d.int(1, 7), d.int(1, 3), d.int(1, 3)
            form = d.int(0, 2)
            layers.append(k if form == 0 else (k, s) if form == 1 else (k, s, dl))
            s, dl = (1, 1) if form == 0 else (s, 1) if form == 1 else (s, dl)
            rf += (k - 1) * dl * jump
            jump *= s
        return dict(layers=layers), dict(expect=rf)
    if name == "set_num_threads":
        t = d.int(1, 4)
        return dict(threads=t), dict(expect_threads=t)
    if name == "set_precision":
        return dict(precision=d.pick(("default", "highest"))), {}
    return {}, {}


def takes_integers(name):
    """Whether ``name`` takes integer arrays: the max-pooling and unpooling
    forwards and unpooling's backward (not the backward passes that make a float
    gradient)."""
    return bool(re.search(r"max_(un)?pool", name)) and (
        not name.endswith("_backward") or "unpool" in name)


def _generic_setup(d, rank, big=False, ints=False):
    rank = rank or d.int(1, 3)
    n, ch = (_batch(d, big), d.pick((1, 2, 3, 0))) if not big else (d.int(2, 4), d.int(16, 32))
    # big: enough element visits (> 2**17) for the thread pool to take part
    lo_size, hi_size = {1: (3000, 5000), 2: (48, 64), 3: (14, 18)}[rank] if big else (1, 8)
    sizes = [d.int(lo_size, hi_size) for _ in range(rank)]
    ks = [d.int(1, min(3, s)) for s in sizes]
    pad = [d.int(0, k // 2) for k in ks]
    dil = [d.pick((1, 1, 2)) if 2 * (k - 1) + 1 <= s + 2 * p else 1 for k, s, p in zip(ks, sizes, pad)]
    st = [d.int(1, 3) for _ in range(rank)]
    out_size = [d.int(1, s + 1) for s in sizes]
    return dict(rank=rank, n=n, c=ch, sizes=sizes, ks=ks, pad=pad, dil=dil, st=st, out_size=out_size,
                dtype=d.pick(FLOATS + INTS if ints and d.chance(50) else FLOATS), batched=big or d.chance(85))


def valid_generic(d, name, fns, rank, big=False, depth=0, floats=False):
    """Arguments of a function we know only by its parameter names (pooling, ...);
    integer arrays where the function takes them, unless ``floats``."""
    fn = fns[name]
    params = signature(fn)
    names = [p.name for p in params]
    floats = floats or not takes_integers(name)
    if name.endswith("_backward") and name[: -len("_backward")] in fns and depth < 3:
        return _derived_backward(d, name, fns, rank, big, depth, floats)
    if "unpool" in name and "indices" in names and depth < 3:
        pool = name.replace("unpool", "pool")
        if pool in fns:
            return _derived_unpool(d, name, pool, fns, rank, big, depth, floats)
    g = _generic_setup(d, rank, big, ints=not floats)
    lead = (g["n"],) if g["batched"] else ()
    x = _arr(d, lead + (g["c"],) + tuple(g["sizes"]), g["dtype"])
    args = {}
    for p in params:
        value = _generic_value(d, p, g, x)
        if value is not _OMIT:
            args[p.name] = value
    return args, {}


_OMIT = object()


def _pool_padding(d, g):
    """Pooling padding of any accepted form: symmetric ints, per-side ``(lo, hi)``
    pairs (one side one cell more, below the dilated kernel) or a string. The
    pairs and "same" come only where no dilation exceeds the input (so no window
    can miss it)."""
    extents = [dl * (k - 1) + 1 for k, dl in zip(g["ks"], g["dil"])]
    fits = all(dl <= s for dl, s in zip(g["dil"], g["sizes"]))
    kind = d.pick(("ints", "ints", "pairs", "same", "valid")) if fits else "ints"
    if kind == "pairs":
        return tuple((p, min(p + d.int(0, 1), e - 1)) for p, e in zip(g["pad"], extents))
    if kind == "same":
        return d.pick(("same", "same_lower"))
    if kind == "valid" and all(e <= s for e, s in zip(extents, g["sizes"])):
        return "valid"
    return _form(d, g["pad"])


def _generic_value(d, p, g, x):
    name, has_default = p.name, p.default is not inspect.Parameter.empty
    if name in ("x", "input"):
        return x
    if name == "kernel_size":
        return _form(d, g["ks"])
    if name == "stride":
        if has_default and p.default is None and d.chance(40):
            return None
        return _form(d, g["st"])
    if name == "padding":
        return _pool_padding(d, g)
    if name == "dilation":
        return _form(d, g["dil"])
    if name == "norm_type":
        # powers whose window sums of mixed-sign input stay finite (3, 2.5 or -1
        # give NaN or inf by definition, as PyTorch's; tests/test_pool_sided_lp.py)
        return d.pick((1, 2, 4, 2.0, float("inf"), -float("inf"), np.float32(2)))
    if name in ("ceil_mode", "return_indices", "count_include_pad"):
        return d.chance(50)
    if name == "divisor_override":
        return None if d.chance(60) else d.int(1, 5)
    if name == "output_size":
        return _form(d, g["out_size"])
    if name in ("input_shape", "input_size"):
        return g["sizes"][0] if g["rank"] == 1 and d.chance(30) else d.pick((tuple, list))(g["sizes"])
    if name == "needs":
        return tuple(d.chance(70) for _ in range(3))
    if name == "rng":  # a seed: the same call gives the same result (fractional pooling's windows)
        return d.int(0, 100)
    if has_default:
        return _OMIT
    return _nasty_any(d)


def _derived_backward(d, name, fns, rank, big, depth, floats):
    fwd = name[: -len("_backward")]
    fwd_args, _ = valid_args(d, fwd, fns, big=big, depth=depth + 1, floats=floats)
    fwd_names = [p.name for p in signature(fns[fwd])]
    bwd_params = signature(fns[name])
    bwd_names = [p.name for p in bwd_params]
    if "indices" in bwd_names and "return_indices" in fwd_names:
        fwd_args["return_indices"] = True
    out = Call(fwd, fwd_args, 0 if fwd_args.get("return_indices") else None)
    x = fwd_args.get("x", fwd_args.get("input"))
    args = {}
    for p in bwd_params:
        if p.name in ("grad_out", "grad_output", "grad"):
            args[p.name] = Like(out, "rand", d.int(0, 2**16))
        elif p.name == "indices" and fwd_args.get("return_indices"):
            args[p.name] = Call(fwd, fwd_args, 1)
        elif p.name in ("output", "out", "y", "result"):
            args[p.name] = out
        elif p.name in ("input_shape", "input_size", "x_shape") and x is not None:
            args[p.name] = ShapeOf(x, spatial=(rank or 1) if d.chance(10) else False)
        elif p.name in fwd_args and p.name != "return_indices":
            args[p.name] = fwd_args[p.name]
        elif p.name == "needs":
            args[p.name] = tuple(d.chance(70) for _ in range(3))
        elif p.default is inspect.Parameter.empty:
            g = _generic_setup(d, rank, big)
            value = _generic_value(d, p, g, x)
            if value is not _OMIT:
                args[p.name] = value
    return args, {}


def _derived_unpool(d, name, pool, fns, rank, big, depth, floats):
    pool_args, _ = valid_args(d, pool, fns, big=big, depth=depth + 1, floats=floats)
    pool_args["return_indices"] = True
    # windows that unpooling can invert: no dilation, no extra ceil-mode window,
    # symmetric padding (unpooling takes ints only)
    padding = pool_args.get("padding", 0)
    if isinstance(padding, str) or (isinstance(padding, (tuple, list))
                                    and any(isinstance(p, (tuple, list)) for p in padding)):
        pool_args["padding"] = 0
    for key, plain in (("dilation", 1), ("ceil_mode", False)):
        if key in pool_args:
            pool_args[key] = plain
    x = pool_args.get("x", pool_args.get("input"))
    args = {}
    for p in signature(fns[name]):
        if p.name in ("x", "input"):
            args[p.name] = Call(pool, pool_args, 0)
        elif p.name == "indices":
            args[p.name] = Call(pool, pool_args, 1)
        elif p.name == "output_size":
            if d.chance(50) and x is not None:
                args[p.name] = ShapeOf(x, spatial=(rank or 1) if d.chance(70) else False)
        elif p.name in pool_args and p.name != "return_indices":
            args[p.name] = pool_args[p.name]
        elif p.default is inspect.Parameter.empty:
            args[p.name] = _nasty_any(d)
    return args, {}


def valid_explain(d, name, fns, big=False, depth=0):
    """``explain_conv`` / ``explain_pool`` of the shapes and arguments of a valid
    convolution or pooling call (the explanation validates as the call does)."""
    rank = d.int(1, 3)
    if name == "explain_conv":
        transposed = d.chance(30)
        if transposed:
            args, _ = valid_transpose(d, f"conv_transpose{rank}d", rank, False, big)
        else:
            args, _ = valid_conv(d, f"conv{rank}d", rank, False, big)
        x, w = args.pop("x"), args.pop("weight")
        args.pop("bias", None)
        args.update(x_shape=x.shape, weight_shape=w.shape, dtype=x.dtype, transposed=transposed)
        return args, {}
    kind = d.pick(("max", "avg"))
    args, _ = valid_generic(d, f"{kind}_pool{rank}d", fns, rank, big, depth, floats=True)
    x = args.pop("x")
    args.pop("return_indices", None)
    x_shape = x.shape if len(x.shape) == rank + 2 else (1,) + x.shape
    return dict(args, kind=kind, x_shape=x_shape, dtype=x.dtype), {}


def valid_batch_norm(d, name, big=False):
    """A valid ``batch_norm`` call (training or eval, with or without running
    statistics and affine parameters, fused ReLU or not), or the
    ``batch_norm_backward`` of one (its statistics from the forward)."""
    ndim = d.int(2, 5)
    n = d.int(2, 4) if big else d.pick((2, 3, 5))
    c = d.int(16, 32) if big else d.pick((1, 2, 3))
    hi = {2: 1, 3: 3000, 4: 48, 5: 14}[ndim] if big else 5
    shape = (n, c) + tuple(d.int(max(1, hi // 2), hi) for _ in range(ndim - 2))
    dtype = d.pick(FLOATS)
    if big and ndim == 2:
        shape = (d.int(4000, 6000), c)

    def per_channel(fill):
        # written in place in training: writeable layouts only
        return Arr((c,), dtype, fill, d.pick(("C", "C", "strided", "negative")), d.int(0, 2**16))

    training = d.chance(50)
    args = dict(x=_arr(d, shape, dtype), running_mean=None, running_var=None)
    if not training or d.chance(60):
        args.update(running_mean=per_channel("rand"), running_var=per_channel("ones"))
    if d.chance(70):
        args.update(weight=per_channel("rand"), bias=per_channel("rand"))
    args.update(training=training, momentum=d.pick((0.1, 0.0, 1.0, 0.5)), eps=d.pick((1e-5, 1e-3, 1.0)))
    relu = d.chance(30)
    if relu:
        args["relu"] = True
    if name == "batch_norm":
        return args, {}
    forward = dict(args, return_stats=True)
    backward = dict(grad_out=Like(Call("batch_norm", forward, 0), "rand", d.int(0, 2**16)), x=args["x"],
                    weight=args.get("weight"), mean=Call("batch_norm", forward, 1),
                    invstd=Call("batch_norm", forward, 2), training=training)
    if relu:
        backward["relu_output"] = Call("batch_norm", forward, 0)
    return backward, {}


def valid_args(d, name, fns, big=False, depth=0, floats=False):
    """(args, meta) of a valid call of ``name`` (a best guess for unknown functions;
    ``floats``: float arrays even where ``name`` takes integers)."""
    fam, rank = family(name)
    if fam == "batch_norm":
        return valid_batch_norm(d, name, big)
    if fam in ("conv", "conv_backward"):
        return valid_conv(d, name, rank, fam == "conv_backward", big)
    if fam in ("transpose", "transpose_backward"):
        return valid_transpose(d, name, rank, fam == "transpose_backward", big)
    if fam == "convolve":
        return valid_convolve(d, big)
    if fam in ("explain_conv", "explain_pool"):
        return valid_explain(d, name, fns, big, depth)
    if fam != "generic":
        return valid_geometry(d, name)
    return valid_generic(d, name, fns, rank, big, depth, floats)


# ---------------------------------------------------------------------------
# invalid values
# ---------------------------------------------------------------------------

HUGE_INTS = (2**31 - 1, 2**31, 2**32, 2**32 + 1, 2**40, 2**48, 2**53 + 1, 2**61, 2**62 - 1, 2**62,
             2**62 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**64 + 1, 2**65, 2**100)
NEGATIVE_INTS = (-1, -2, -(2**31), -(2**62), -(2**63), -(2**63) - 1, -(2**64), -(2**100))
SPECIAL_INTS = (0, -1) + HUGE_INTS + NEGATIVE_INTS + (1, 2, 3, 4096, 4097)
SPECIAL_FLOATS = (1.0, 2.0, 0.5, -0.0, float("nan"), float("inf"), float("-inf"), 1e300, 2.0**62, 2.0**64)
NP_SCALARS = (np.int64(2), np.int32(-1), np.uint64(2**64 - 1), np.uint8(255), np.int8(-128),
              np.int64(2**62), np.float32(2.0), np.float64(float("nan")), np.bool_(True), np.uint64(2**63))
ODD_OBJECTS = (Obj("object"), Obj("generator"), Obj("lambda"), Obj("set"), Obj("fraction"), Obj("decimal"),
               Obj("slice"), Obj("ellipsis"), Obj("bytearray"), Obj("memoryview"), Obj("type"),
               Obj("index", 3), Obj("index", 2**64), Obj("index", -(2**63)), Obj("index", 2**62))
NON_ARRAYS = (None, "abc", "", 1.0, 3, True, 1j, b"abc", [], {}, {"a": 1}, [1.0, 2.0], [[1.0]],
              [[1.0, 2.0], [3.0]], ((),), Obj("array0d", 1.0), Obj("object"), Obj("generator"),
              Obj("set"), Obj("lambda"), Obj("memoryview"), Obj("bytearray"), np.float32(1.0))
BAD_DTYPES = ("int32", "int64", "bool", "complex64", "complex128", "object", "longdouble",
              "uint8", "U4", "S3", "datetime64[s]", "timedelta64[ms]", "V8", "struct", ">f4", ">f8",
              "float32", "float64")
BAD_FILLS = ("nan", "inf", "-inf", "mixed", "huge", "tiny", "zeros")
STRINGS = ("", "zeros", "reflect", "replicate", "circular", "same", "valid", "full", "ZEROS", "Zeros ",
           "zeros\0", "abc", "é", "x" * 300)
# Array arguments a call writes by contract (an ``out=``, running statistics
# updated in training): exempt from the "inputs are never modified" checks.
WRITTEN_NAMES = {"out", "running_mean", "running_var"}
ARRAY_NAMES = {"x", "weight", "bias", "grad_out", "grad_output", "grad", "kernel", "indices", "input",
               "output", "out", "y"}
BOOL_NAMES = {"ceil_mode", "return_indices", "count_include_pad", "multichannel"}
STR_NAMES = {"padding_mode", "mode"}


def _nasty_int(d):
    return d.pick(SPECIAL_INTS)


def _nasty_any(d):
    what = d.int(0, 5)
    if what == 0:
        return _nasty_int(d)
    if what == 1:
        return d.pick(SPECIAL_FLOATS)
    if what == 2:
        return d.pick(NON_ARRAYS)
    if what == 3:
        return d.pick(ODD_OBJECTS)
    if what == 4:
        return d.pick(NP_SCALARS)
    return d.pick(STRINGS)


def _nasty_intlike(d, name, value, rank):
    rank = rank or 2
    op = d.pick(("special", "element", "length", "float", "bool", "none", "str", "object", "np", "index",
                 "nested", "array"))
    if op == "special":
        return _nasty_int(d)
    if op == "element":
        items = list(value) if isinstance(value, (tuple, list)) else [value if isinstance(value, int) else 1] * rank
        if not items:
            items = [1]
        i = d.int(0, len(items) - 1)
        items[i] = d.pick((_nasty_int(d), _nasty_int(d), d.pick(SPECIAL_FLOATS), None, True, "1",
                           d.pick(NP_SCALARS), (1, 2)))
        return tuple(items) if d.chance(70) else items
    if op == "length":
        n = d.pick(tuple(v for v in (0, rank - 1, rank + 1, 4, 7) if v != rank))
        return (d.int(1, 3),) * n
    if op == "float":
        return d.pick(SPECIAL_FLOATS)
    if op == "bool":
        return d.pick((True, False, np.bool_(False)))
    if op == "none":
        return None
    if op == "str":
        return d.pick(STRINGS + (b"1",))
    if op == "object":
        return d.pick(ODD_OBJECTS + ({}, {"a": 1}, [], 1j, set()))
    if op == "np":
        return d.pick(NP_SCALARS)
    if op == "index":
        return Obj("index", _nasty_int(d))
    if op == "nested":
        return d.pick((((1, 2),) * rank, ((1, 2, 3),) * rank, (((1,),),), [(2**62, 2**62)] * rank,
                       [(1, None)] * rank, [(0, -1)] * rank, ((2**64, 0),) * rank, ((1.5, 1),) * rank,
                       ("ab",) * rank, [[1, 2], 3][:rank]))
    return d.pick((Obj("array", [1] * rank), Obj("array", [[1, 2]] * rank), Obj("array0d", 2),
                   Obj("array_u64", [2**63] * rank), Obj("array", [1.5] * rank), Obj("array", [])))


def _nasty_bool(d):
    return d.pick((None, 0, 1, 2, -1, "yes", "", np.bool_(True), [], [1], 1.5, float("nan"), Obj("object"),
                   2**64))


def _nasty_needs(d):
    return d.pick(((True, True), (True,) * 4, (1, 0, 1), "abc", "", None, 1, True, [True, False, True],
                   (np.bool_(True),) * 3, (None, None, None), {}, {"a": 1, "b": 2, "c": 3}, ([], [], []),
                   Obj("generator"), (float("nan"),) * 3, Obj("set")))


def _nasty_layers(d):
    return d.pick(([], [0], [-1], [(3, 0)], [(3, 2, 0)], [(3, 2, 2, 2)], [()], [(2**62,) * 3] * 3,
                   [(2**63, 1, 1)], [(2**62, 2**62, 2**62)], [(3, 2**62)] * 40, [(2**40, 2**40, 2**40)] * 2,
                   [None], [[1.5]], [3.0], "abc", "", None, {}, {3: 1}, 5, [(3, None)], [np.array([3, 2])],
                   [np.int64(3)], [True], [Obj("object")], Obj("generator"), [Obj("index", 2**64)],
                   [(2**64, 1)], [(-(2**63), 1)], [(3, 2)] * 200, [[3, 2, 1]], [Obj("array0d", 3)]))


def _mutate_array(d, spec, rank):
    if isinstance(spec, (Call, Like)) and d.chance(30):
        return Relayout(spec, d.pick(LAYOUTS))
    if not isinstance(spec, Arr):
        nd = (rank or 2) + 2
        spec = Arr(tuple(d.int(0, 4) for _ in range(nd)), d.pick(FLOATS), "rand", "C", d.int(0, 2**16))
    op = d.pick(("dtype", "ndim", "axis0", "axis", "huge_axis", "fill", "layout", "nonarray", "list",
                 "none", "swap_dtype"))
    shape = list(spec.shape)
    if op == "dtype":
        return Arr(shape, d.pick(BAD_DTYPES), spec.fill, spec.layout, spec.seed)
    if op == "swap_dtype":
        other = "float64" if spec.dtype in ("float32", ">f4") else "float32"
        return Arr(shape, other, spec.fill, spec.layout, spec.seed)
    if op == "ndim":
        new = d.pick(((), (1,) * 7, (2, 1, 3, 1, 2, 1, 1), shape[:-1], shape + [1], [1] + shape, (1,) * 33))
        return Arr(new, spec.dtype, spec.fill, spec.layout, spec.seed)
    if op in ("axis0", "axis", "huge_axis") and shape:
        i = d.int(0, len(shape) - 1)
        layout = spec.layout
        if op == "axis0":
            shape[i] = 0
            if len(shape) > 1 and d.chance(30):
                j = d.int(0, len(shape) - 1)
                if j != i:
                    shape[j], layout = d.pick((2**31, 2**40, 2**50)), "broadcast"
        elif op == "axis":
            shape[i] = d.pick((max(shape[i] - 1, 0), shape[i] + 1, d.int(1, 9)))
        else:
            shape[i] = d.pick((2**31, 2**40, 2**50))
            layout = "broadcast"
            while math.prod(shape) >= 2**62:
                j = max(range(len(shape)), key=lambda a: shape[a])
                shape[j] //= 2**8
        return Arr(shape, spec.dtype, spec.fill, layout, spec.seed)
    if op == "fill":
        return Arr(shape, spec.dtype, d.pick(BAD_FILLS), spec.layout, spec.seed)
    if op == "layout":
        return Arr(shape, spec.dtype, spec.fill, d.pick(LAYOUTS), spec.seed)
    if op == "list":
        return Arr(shape, spec.dtype, spec.fill, "list", spec.seed)
    if op == "none":
        return None
    return d.pick(NON_ARRAYS)


def mutate_value(d, name, spec, rank):
    if name in ARRAY_NAMES or isinstance(spec, (Arr, Like, Call)):
        return _mutate_array(d, spec, rank)
    if name in BOOL_NAMES:
        return _nasty_bool(d)
    if name in STR_NAMES:
        return d.pick(STRINGS + (None, 1, b"zeros", ("zeros",), Obj("object")))
    if name == "needs":
        return _nasty_needs(d)
    if name == "layers":
        return _nasty_layers(d)
    if name == "padding" and d.chance(25):
        return d.pick(("same", "valid", "same_lower", "SAME", "SAME_UPPER", "full", "", ((1, 2, 3),),
                       ((2**62, 2**62),) * (rank or 1), ((0, 2**64),) * (rank or 1), (("a", "b"),),
                       ((-1, 0),) * (rank or 1), ((0, 1),) * ((rank or 1) + 1)))
    if name == "norm_type":
        return d.pick((0, 0.0, float("nan"), "2", None, True, -0.0, complex(2, 0), np.bool_(True)))
    return _nasty_intlike(d, name, spec, rank)


def random_value(d, name, rank):
    if name in ARRAY_NAMES:
        nd = d.pick(((rank or 2) + 2, (rank or 2) + 1, 0, 1, 7, d.int(0, 6)))
        return Arr(tuple(d.pick((1, 2, 3, 0, 5)) for _ in range(nd)), d.pick(FLOATS + BAD_DTYPES),
                   d.pick(("rand",) + BAD_FILLS), d.pick(LAYOUTS), d.int(0, 2**16))
    return mutate_value(d, name, None, rank)


def draw_case(d, fns, name=None, kind=None, big=False):
    """One case of ``name`` (drawn from ``fns`` when None)."""
    names = sorted(fns)
    name = name or d.pick(names)
    fn = fns[name]
    params = signature(fn)
    _, rank = family(name)
    kind = kind or d.pick(("valid", "valid", "mutated", "mutated", "mutated", "mutated", "mutated",
                           "random"))
    args, meta = valid_args(d, name, fns, big=big)
    if kind == "mutated":
        for _ in range(d.pick((1, 1, 1, 2, 3))):
            if not params:
                break
            p = d.pick(params)
            args[p.name] = mutate_value(d, p.name, args.get(p.name), rank)
        if d.chance(3):
            args["bogus_keyword"] = 1
        if d.chance(3) and args:
            args.pop(d.pick(sorted(args)))
    elif kind == "random":
        args = {p.name: random_value(d, p.name, rank) for p in params
                if p.default is inspect.Parameter.empty or d.chance(60)}
    return Case(name, args, kind, meta if kind == "valid" else {})


# ---------------------------------------------------------------------------
# materialising specs (in the worker)
# ---------------------------------------------------------------------------


class Underivable(Exception):
    """A spec could not be built (e.g. the forward call a grad_out comes from was
    rejected): the case is skipped."""


class BadDerivation(Exception):
    """A public function called to build an argument failed in a forbidden way."""

    def __init__(self, call, result):
        super().__init__(call)
        self.call, self.result = call, result


def _values(fill, shape, seed):
    return np.asarray(_raw_values(fill, shape, seed), dtype=np.float64)


def _raw_values(fill, shape, seed):
    rng = np.random.default_rng(seed)
    if fill == "rand":
        return rng.uniform(-1.0, 1.0, shape)
    if fill == "int":
        return rng.integers(-3, 4, shape).astype(np.float64)
    if fill == "zeros":
        return np.zeros(shape)
    if fill == "ones":
        return np.ones(shape)
    if fill == "tiny":
        return rng.uniform(-1.0, 1.0, shape) * 1e-310
    if fill == "huge":
        return rng.uniform(-1.0, 1.0, shape) * 1e300
    if fill in ("nan", "inf", "-inf"):
        return np.full(shape, float(fill))
    if fill == "mixed":
        v = rng.uniform(-1.0, 1.0, shape)
        flat = v.reshape(-1)
        if flat.size:
            specials = np.array([np.nan, np.inf, -np.inf, 1e300, -0.0])
            idx = rng.integers(0, flat.size, max(1, flat.size // 3))
            flat[idx] = specials[rng.integers(0, len(specials), idx.size)]
        return v
    raise Underivable(f"unknown fill {fill!r}")


def _cast(values, dtype):
    return np.asarray(_cast_raw(values, dtype))


def _cast_raw(values, dtype):
    if dtype == "struct":
        out = np.zeros(values.shape, dtype=[("a", "f4"), ("b", "i4")])
        out["a"] = values
        return out
    dt = np.dtype(dtype)
    if dt.kind == "c":
        return (values + 0.5j * values).astype(dt)
    if dt.kind in "iu":
        # small values (ties) and the type's extremes, from values in [-1, 1]
        info = np.iinfo(dt)
        small = np.clip(np.rint(np.nan_to_num(values * 3, nan=0, posinf=0, neginf=0)), max(info.min, -3), 3)
        out = small.astype(dt)
        out[values > 0.9] = info.max
        out[values < -0.9] = info.min
        return out
    if dt.kind == "b":
        return np.nan_to_num(values * 3, nan=0, posinf=0, neginf=0).astype(dt)
    if dt.kind in "US":
        return values.astype(np.float32).astype(dt)
    if dt.kind in "mM":
        return np.nan_to_num(values * 100, nan=0, posinf=0, neginf=0).astype(np.int64).astype(dt)
    if dt.kind == "V":
        return np.zeros(values.shape, dt)
    if dt.kind == "O":
        return values.astype(object)
    with np.errstate(all="ignore"):
        return values.astype(dt)


def make_array(a):
    """The array an :class:`Arr` describes."""
    shape = tuple(int(s) for s in a.shape)
    size = math.prod(shape)
    dtype = a.dtype
    if a.layout == "bigendian" and dtype in ("float32", "float64"):
        dtype = ">f4" if dtype == "float32" else ">f8"
    if a.layout == "broadcast" or size > 2**23:
        if size >= 2**62:
            raise Underivable(f"shape {shape} does not fit an array")
        base = _cast(_values(a.fill, (), a.seed), dtype)
        return np.broadcast_to(base, shape)
    return with_layout(_cast(_values(a.fill, shape, a.seed), dtype), a.layout)


def with_layout(v, layout):
    """The values of the array ``v`` in memory ``layout``."""
    if layout == "bigendian" and v.dtype.kind in "fiuc" and v.dtype.isnative:
        v = v.astype(v.dtype.newbyteorder(">"))
    if v.ndim == 0 and layout in ("strided", "negative"):
        layout = "C"
    if layout in ("C", "bigendian"):
        return np.ascontiguousarray(v)
    if layout == "F":
        return np.asfortranarray(v)
    if layout == "strided":
        big = np.zeros(tuple(2 * n + 1 for n in v.shape), dtype=v.dtype)
        if v.dtype.kind == "f":
            big[...] = np.nan  # reading outside the view poisons the result
        view = big[tuple(slice(1, 1 + 2 * n, 2) for n in v.shape)]
        view[...] = v
        return view
    if layout == "negative":
        return v[(slice(None, None, -1),) * v.ndim].copy()[(slice(None, None, -1),) * v.ndim]
    if layout == "readonly":
        v = v.copy()
        v.flags.writeable = False
        return v
    if layout == "unaligned":
        if v.dtype.hasobject:
            return v
        buf = np.zeros(v.nbytes + 1, dtype=np.uint8)
        view = np.ndarray(v.shape, v.dtype, buffer=buf.data, offset=1)
        view[...] = v
        return view
    if layout == "packed_field":
        if v.dtype.hasobject or v.dtype.names:
            return v
        rec = np.zeros(v.shape, dtype=np.dtype([("v", v.dtype), ("tag", np.int8)], align=False))
        rec["v"] = v
        return rec["v"]
    if layout == "list":
        return v.tolist()
    return v


def _make_obj(o):
    tag, value = o.tag, o.value
    if tag == "object":
        return object()
    if tag == "generator":
        return (i for i in range(3))
    if tag == "lambda":
        return lambda: 1
    if tag == "set":
        return {1, 2}
    if tag == "fraction":
        return Fraction(3, 1)
    if tag == "decimal":
        return Decimal(3)
    if tag == "slice":
        return slice(1, 3)
    if tag == "ellipsis":
        return ...
    if tag == "bytearray":
        return bytearray(b"ab")
    if tag == "memoryview":
        return memoryview(b"abcd")
    if tag == "type":
        return int
    if tag == "index":
        return IndexLike(value)
    if tag == "array0d":
        return np.array(value)
    if tag == "array":
        return np.array(value)
    if tag == "array_u64":
        return np.array(value, dtype=np.uint64)
    raise Underivable(f"unknown object tag {tag!r}")


def materialize(spec, fns, cache):
    """Objects for a spec (the worker side); ``cache`` shares Call results in a case."""
    key = id(spec)
    if isinstance(spec, (Arr, Call, Like, ShapeOf, Obj, Relayout)) and key in cache:
        return cache[key]
    if isinstance(spec, Arr):
        out = make_array(spec)
    elif isinstance(spec, Obj):
        out = _make_obj(spec)
    elif isinstance(spec, Call):
        args = materialize(spec.args, fns, cache)
        try:
            out = fns[spec.fn](**args)
        except ACCEPTED as exc:
            if not str(exc).strip():
                raise BadDerivation(f"{spec.fn}(...)", classify(exc)) from None
            raise Underivable(f"{spec.fn} rejected the derivation call: {type(exc).__name__}: {exc}") from None
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise BadDerivation(f"{spec.fn}({', '.join(f'{k}={describe(v)}' for k, v in args.items())})",
                                classify(exc)) from None
        if spec.pick is not None:
            if isinstance(out, tuple):
                if spec.pick >= len(out):
                    raise Underivable(f"{spec.fn} returned {len(out)} items")
                out = out[spec.pick]
            elif spec.pick != 0:
                raise Underivable(f"{spec.fn} did not return a tuple")
    elif isinstance(spec, Like):
        base = materialize(spec.node, fns, cache)
        if isinstance(base, tuple):
            base = base[0]
        if not isinstance(base, np.ndarray):
            raise Underivable(f"Like of a {type(base).__name__}")
        out = _cast(_values(spec.fill, base.shape, spec.seed), base.dtype.str)
    elif isinstance(spec, Relayout):
        base = materialize(spec.node, fns, cache)
        if not isinstance(base, np.ndarray):
            raise Underivable(f"Relayout of a {type(base).__name__}")
        out = with_layout(np.ascontiguousarray(base), spec.layout)
    elif isinstance(spec, ShapeOf):
        base = materialize(spec.node, fns, cache)
        shape = np.shape(base)
        out = tuple(shape[len(shape) - int(spec.spatial):] if spec.spatial else shape)
    elif isinstance(spec, tuple):
        return tuple(materialize(v, fns, cache) for v in spec)
    elif isinstance(spec, list):
        return [materialize(v, fns, cache) for v in spec]
    elif isinstance(spec, dict):
        return {k: materialize(v, fns, cache) for k, v in spec.items()}
    else:
        return spec
    cache[key] = out
    return out


def describe(v):
    """A short description of an argument object (arrays by shape, dtype, strides)."""
    if isinstance(v, np.ndarray):
        flags = "" if v.flags.writeable else " read-only"
        return f"<ndarray shape={v.shape} dtype={v.dtype.str} strides={v.strides}{flags}>"
    if isinstance(v, (list, tuple)) and len(v) > 8:
        return f"<{type(v).__name__} of {len(v)}>"
    r = repr(v)
    return r if len(r) <= 120 else r[:117] + "..."


# ---------------------------------------------------------------------------
# running one case and judging it
# ---------------------------------------------------------------------------


def classify(exc):
    """Outcome of a call that raised ``exc``."""
    kind = type(exc).__name__
    msg = str(exc)
    if kind == "PanicException":
        return dict(outcome="bad", category="panic", exc=kind, message=msg[:500])
    if isinstance(exc, ACCEPTED):
        if not msg.strip():
            return dict(outcome="bad", category="empty-message", exc=kind, message=repr(msg))
        return dict(outcome="rejected", exc=kind, message=msg[:300])
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:])
    return dict(outcome="bad", category="wrong-exception", exc=kind, message=msg[:500], traceback=tb[-2000:])


def _arrays(obj):
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [a for o in obj for a in _arrays(o)]
    return []


def _spec_arrays(spec):
    if isinstance(spec, Arr):
        return [spec]
    if isinstance(spec, Like):
        return [Arr((), "float64", spec.fill)] + _spec_arrays(spec.node)
    if isinstance(spec, Call):
        return _spec_arrays(spec.args)
    if isinstance(spec, Relayout):
        return _spec_arrays(spec.node)
    if isinstance(spec, ShapeOf):
        return []
    if isinstance(spec, (tuple, list)):
        return [a for s in spec for a in _spec_arrays(s)]
    if isinstance(spec, dict):
        return [a for s in spec.values() for a in _spec_arrays(s)]
    return []


def _finite_inputs(case):
    specs = _spec_arrays(case.args)
    return all(a.fill in SAFE_FILLS and a.dtype in ("float32", "float64", ">f4", ">f8") for a in specs)


def _native(dtype):
    return np.dtype(dtype).newbyteorder("=")


def _first_float_dtype(fn, args):
    for p in signature(fn):
        v = args.get(p.name)
        if isinstance(v, np.ndarray) and v.dtype.kind == "f":
            return _native(v.dtype)
    return None


def check_result(case, fns, args, result):
    """Cheap correctness checks of a call that returned: a list of problems."""
    import ferroconv.functional as F

    problems = []
    fn = fns[case.fn]
    fam, rank = family(case.fn)
    inputs = read_only_inputs(args)
    outputs = _arrays(result)
    for out in outputs:
        if not out.flags.c_contiguous:
            problems.append(f"result of shape {out.shape} is not C-contiguous (strides {out.strides})")
        if any(np.may_share_memory(out, a) for a in inputs if a.size and out.size):
            problems.append(f"result of shape {out.shape} shares memory with an input")
    ref_dtype = _first_float_dtype(fn, args)
    if ref_dtype is not None:
        for out in outputs:
            if out.dtype.kind == "f" and out.dtype != ref_dtype:
                problems.append(f"result dtype {out.dtype} but the input dtype is {ref_dtype}")
    if _finite_inputs(case):
        for out in outputs:
            if out.dtype.kind == "f" and out.size and not np.isfinite(out).all():
                problems.append(f"non-finite values in a result of shape {out.shape} from finite inputs")
    try:
        if fam in ("conv", "transpose"):
            problems += _check_conv_shape(F, fam, rank, args, result)
        elif fam in ("conv_backward", "transpose_backward"):
            problems += _check_conv_grads(F, fam, rank, args, result)
        elif fam == "convolve":
            problems += _check_convolve(args, result)
        elif fam == "generic" and "pool" in case.fn:
            problems += _check_pool(fns, case.fn, args, result, _finite_inputs(case))
    except ACCEPTED as exc:
        problems.append(f"the geometry helper rejects arguments {case.fn} accepted: {type(exc).__name__}: {exc}")
    if case.kind == "valid":
        problems += _check_valid(F, case, fam, rank, args, result)
    return problems


def _conv_geometry(F, fam, rank, args):
    x = np.asarray(args["x"])
    w = np.asarray(args["weight"])
    spatial, ks = x.shape[x.ndim - rank:], w.shape[2:]
    groups = args.get("groups", 1)
    if fam.startswith("conv"):
        out = F.conv_output_shape(spatial, ks, args.get("stride", 1), args.get("padding", 0),
                                  args.get("dilation", 1), args.get("padding_mode", "zeros"))
        c_out = w.shape[0]
    else:
        out = F.conv_transpose_output_shape(spatial, ks, args.get("stride", 1), args.get("padding", 0),
                                            args.get("output_padding", 0), args.get("dilation", 1))
        c_out = w.shape[1] * int(groups)
    lead = x.shape[:1] if x.ndim == rank + 2 else ()
    return x, w, lead + (c_out,) + tuple(out), c_out


def _check_conv_shape(F, fam, rank, args, result):
    _, _, expected, _ = _conv_geometry(F, fam, rank, args)
    if not isinstance(result, np.ndarray) or result.shape != expected:
        return [f"result shape {getattr(result, 'shape', type(result))} != expected {expected}"]
    return []


def _check_conv_grads(F, fam, rank, args, result):
    x, w, _, c_out = _conv_geometry(F, fam.replace("_backward", ""), rank, args)
    if not isinstance(result, tuple) or len(result) != 3:
        return [f"backward returned {type(result).__name__}, not a 3-tuple"]
    needs = args.get("needs", (True, True, True))
    needs = [bool(v) for v in needs]
    problems = []
    for label, got, need, shape in zip(("grad_x", "grad_weight", "grad_bias"), result, needs,
                                       (x.shape, w.shape, (c_out,))):
        if not need and got is not None:
            problems.append(f"{label} computed although needs says False")
        if need and (not isinstance(got, np.ndarray) or got.shape != tuple(shape)):
            problems.append(f"{label} shape {getattr(got, 'shape', got)} != expected {tuple(shape)}")
    return problems


def _check_convolve(args, result):
    x, k = np.asarray(args["x"]), np.asarray(args["kernel"])
    mode = args.get("mode", "full")
    multi = bool(args.get("multichannel", False))
    sig = x.shape[1:] if multi else x.shape
    ker = k.shape[-len(sig):] if sig else ()
    size = {"full": lambda s, q: s + q - 1, "same": lambda s, q: s, "valid": lambda s, q: s - q + 1}[mode]
    expected = (x.shape[:1] if multi else ()) + tuple(size(s, q) for s, q in zip(sig, ker))
    if not isinstance(result, np.ndarray) or result.shape != expected:
        return [f"convolve result shape {getattr(result, 'shape', None)} != expected {expected}"]
    return []


def _pool_output_size(value, spatial):
    """The spatial output of adaptive pooling for ``output_size`` (int, tuple with
    None entries; one entry means every axis)."""
    is_seq = isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, (str, bytes))
    items = list(value) if is_seq else [value] * len(spatial)
    if len(items) == 1:
        items = items * len(spatial)
    return tuple(s if v is None else int(v) for s, v in zip(spatial, items))


def rank_of(name):
    """The spatial rank in a function's name (``max_unpool2d_backward``: 2)."""
    match = re.search(r"([123])d", name)
    return int(match.group(1)) if match else 0


def _check_pool(fns, name, args, result, finite):
    """Shapes, indices and conservation checks of the pooling functions."""
    params = {p.name for p in signature(fns[name])}
    problems = []
    if name.endswith("_backward") and "unpool" in name:
        # the gradient of unpooling is a gather: grad_out read at the indices
        grad, indices = args.get("grad_out"), args.get("indices")
        lead = grad.ndim - rank_of(name) if isinstance(grad, np.ndarray) else 0
        if (isinstance(grad, np.ndarray) and isinstance(indices, np.ndarray) and isinstance(result, np.ndarray)
                and grad.ndim == indices.ndim and grad.shape[:lead] == indices.shape[:lead]):
            planes = grad.reshape(grad.shape[:lead] + (math.prod(grad.shape[lead:]),))
            index_planes = indices.reshape(indices.shape[:lead] + (math.prod(indices.shape[lead:]),))
            expected = (np.take_along_axis(planes, index_planes, axis=-1) if indices.size
                        else np.zeros(index_planes.shape, grad.dtype))
            if result.shape != indices.shape or not np.array_equal(
                    result, expected.reshape(indices.shape), equal_nan=True):
                problems.append("the gathered gradient differs from grad_out read at the indices")
        return problems
    if name.endswith("_backward"):
        grad = args.get("grad_out")
        shape = args.get("input_shape")
        if isinstance(result, np.ndarray) and isinstance(shape, (tuple, list)):
            try:
                expected = tuple(int(v) for v in shape)
            except (TypeError, ValueError):
                expected = None
            if expected is not None and len(expected) == result.ndim and result.shape != expected:
                problems.append(f"gradient shape {result.shape} != input_shape {expected}")
        if ("indices" in params and finite and isinstance(grad, np.ndarray) and isinstance(result, np.ndarray)
                and grad.size and grad.dtype.kind == "f"):
            total, expected_total = float(result.sum(dtype=np.float64)), float(grad.sum(dtype=np.float64))
            tol = (1e-4 if grad.dtype.itemsize == 4 else 1e-10) * max(1.0, float(np.abs(grad).sum()))
            if abs(total - expected_total) > tol:
                problems.append(f"the scattered gradient sums to {total!r}, grad_out to {expected_total!r}")
        return problems
    x = args.get("x")
    if x is None or "unpool" in name:
        return problems
    x = np.asarray(x)
    wants_indices = bool(args.get("return_indices", False))
    if "return_indices" in params and isinstance(result, tuple) != wants_indices:
        return [f"return_indices={wants_indices} but the result is a {type(result).__name__}"]
    values, indices = result if isinstance(result, tuple) else (result, None)
    rank = family(name)[1] or x.ndim - 2
    spatial = x.shape[x.ndim - rank:]
    expected = None
    if name.startswith("global"):
        expected = x.shape[:2] + ((1,) * rank if args.get("keepdims", True) else ())
    elif "adaptive" in name:
        expected = x.shape[:x.ndim - rank] + _pool_output_size(args["output_size"], spatial)
    elif "fractional" in name:
        # output_size as given, or the input's size times output_ratio (truncated)
        if args.get("output_size") is not None:
            expected = x.shape[:x.ndim - rank] + _pool_output_size(args["output_size"], spatial)
        else:
            ratio = args["output_ratio"]
            ratios = list(ratio) if isinstance(ratio, (tuple, list)) else [ratio]
            ratios = ratios * rank if len(ratios) == 1 else ratios
            expected = x.shape[:x.ndim - rank] + tuple(int(n * float(r)) for n, r in zip(spatial, ratios))
    elif "kernel_size" in params and "pool_output_shape" in fns:
        extra = {k: args[k] for k in ("dilation", "ceil_mode") if k in args}
        out = fns["pool_output_shape"](spatial, args["kernel_size"], args.get("stride"), args.get("padding", 0),
                                       **extra)
        expected = x.shape[:x.ndim - rank] + tuple(out)
    if expected is not None and getattr(values, "shape", None) != tuple(expected):
        problems.append(f"result shape {getattr(values, 'shape', None)} != expected {tuple(expected)}")
        return problems
    if x.dtype.kind in "iu" and getattr(values, "dtype", None) != _native(x.dtype):
        problems.append(f"integer max pooling of {x.dtype} returned {describe(values)}")
    if indices is not None:
        if not isinstance(indices, np.ndarray) or indices.dtype != np.int64 or indices.shape != values.shape:
            return problems + [f"indices {describe(indices)} are not int64 of the values' shape {values.shape}"]
        plane = math.prod(spatial)
        if indices.size and (indices.min() < 0 or indices.max() >= plane):
            problems.append(f"indices outside [0, {plane}): {indices.min()}..{indices.max()}")
        elif indices.size and x.size <= 1 << 20 and x.dtype.kind in "fiu":
            planes = x.reshape(-1, plane)
            picked = np.take_along_axis(planes, indices.reshape(planes.shape[0], -1), axis=1)
            got = values.reshape(planes.shape[0], -1)
            if not np.array_equal(picked.astype(got.dtype), got, equal_nan=True):
                problems.append("values are not the input at the returned indices")
    return problems


def _check_valid(F, case, fam, rank, args, result):
    """A valid case of a known function: compare with the NumPy reference (small cases)."""
    meta = case.meta
    if "expect" in meta:
        got = result
        if isinstance(got, tuple):
            got = tuple(int(v) for v in got)
        if got != meta["expect"]:
            return [f"returned {got!r}, expected {meta['expect']!r}"]
        return []
    if "expect_threads" in meta:
        if F.get_num_threads() != meta["expect_threads"]:
            return [f"get_num_threads() is {F.get_num_threads()} after set_num_threads({meta['expect_threads']})"]
        return []
    if fam not in ("conv", "conv_backward", "transpose", "transpose_backward", "convolve"):
        return []
    if not _finite_inputs(case):
        return []
    try:
        import reference as ref
    except ImportError:  # pragma: no cover
        return []
    f64 = {k: np.asarray(v, dtype=np.float64) if isinstance(v, (np.ndarray, list)) else v
           for k, v in args.items()}
    if fam == "convolve":
        x, k = f64["x"], f64["kernel"]
        mode = args.get("mode", "full")
        expected = (ref.convolve_multichannel(x, k, mode) if args.get("multichannel")
                    else ref.convolve_nd(x, k, mode))
        return _compare(result, expected, np.asarray(args["x"]).dtype, x.size + k.size,
                        _absmax(x) * _absmax(k), "convolve")
    x, w = f64["x"], f64["weight"]
    batched = x.ndim == rank + 2
    xb = x if batched else x[None]
    work = xb.shape[0] * w.size * max(1, math.prod(xb.shape[2:]))
    if work > 200_000 or any(np.size(v) == 0 for v in f64.values() if isinstance(v, np.ndarray)):
        return []  # empty cases: see test_robustness_empty.py
    dtype = np.asarray(args["x"]).dtype
    problems = []
    terms = xb.size + w.size
    scale = _absmax(xb) * _absmax(w) + _absmax(f64.get("bias"))
    if fam == "conv":
        expected = ref.conv_nd(xb, w, f64.get("bias"), meta["st"], meta["lo"], meta["hi"], meta["dil"],
                               meta["groups"], meta["mode"])
        problems += _compare(result if batched else result[None], expected, dtype, terms, scale, "output")
    elif fam == "transpose":
        expected = ref.conv_transpose_nd(xb, w, f64.get("bias"), meta["st"], meta["pad"], meta["op"],
                                         meta["groups"], meta["dil"])
        problems += _compare(result if batched else result[None], expected, dtype, terms, scale, "output")
    else:
        g = f64["grad_out"]
        gb = g if batched else g[None]
        if fam == "conv_backward":
            expected = ref.conv_nd_backward(gb, xb, w, meta["st"], meta["lo"], meta["hi"], meta["dil"],
                                            meta["groups"], meta["mode"])
        else:
            expected = ref.conv_transpose_nd_backward(gb, xb, w, meta["st"], meta["pad"], meta["op"],
                                                      meta["groups"], meta["dil"])
        terms += gb.size
        for label, got, exp, other in zip(("grad_x", "grad_weight", "grad_bias"), result, expected,
                                          (w, xb, None)):
            if got is None:
                continue
            if label == "grad_x" and not batched:
                got = got[None]
            scale = _absmax(gb) * (1.0 if other is None else _absmax(other))
            problems += _compare(got, exp, dtype, terms, scale, label)
    return problems


def _absmax(a):
    return 0.0 if a is None or not np.size(a) else float(np.abs(a).max())


def _compare(got, expected, dtype, terms, scale, what):
    got = np.asarray(got, dtype=np.float64)
    if got.shape != expected.shape:
        return [f"{what}: shape {got.shape} != reference {expected.shape}"]
    tol = (1e-9 if np.dtype(dtype) == np.float64 else 2e-5) * math.sqrt(terms) * max(scale, 1.0) + 1e-30
    err = np.abs(got - expected).max() if got.size else 0.0
    if not err <= tol:
        return [f"{what}: max |got - reference| = {err:.3g} > {tol:.3g}"]
    return []


def _memory_state(a):
    """The bytes of the memory ``a`` spans (object arrays: the pointers), its
    shape, strides and flags."""
    import ctypes

    low, high = np.lib.array_utils.byte_bounds(a)
    data = ctypes.string_at(low, high - low) if high > low else b""
    return data, a.shape, a.strides, a.flags.writeable, a.dtype.str


def read_only_inputs(args):
    """The arrays of a call's arguments it must not modify (all but
    ``WRITTEN_NAMES``)."""
    return _arrays([v for k, v in args.items() if k not in WRITTEN_NAMES])


def _modified(inputs, before):
    changed = []
    for i, (a, state) in enumerate(zip(inputs, before)):
        now = _memory_state(a)
        if now != state:
            what = "values" if now[0] != state[0] else "shape/strides/flags"
            changed.append(f"input array #{i} {describe(a)} ({what} changed)")
    return "; ".join(changed)


def run_case(case, fns, default_threads=None):
    """Run one case; a dict with ``outcome`` ok / rejected / skipped / bad."""
    import ferroconv.functional as F

    cache = {}
    try:
        args = materialize(case.args, fns, cache)
    except Underivable as exc:
        return dict(outcome="skipped", message=str(exc)[:300])
    except BadDerivation as exc:
        res = dict(exc.result)
        res["message"] = f"while building an argument with {exc.call}: {res.get('message', '')}"
        return res
    except Exception as exc:  # the generator asked for something NumPy cannot build
        return dict(outcome="skipped", message=f"cannot build the arguments: {type(exc).__name__}: {exc}"[:300])
    fn = fns[case.fn]
    inputs = read_only_inputs(args)
    before = [_memory_state(a) for a in inputs]
    try:
        result = fn(**args)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # PanicException is a BaseException
        res = classify(exc)
        res["args"] = {k: describe(v) for k, v in args.items()}
        if res["outcome"] == "rejected" and case.kind == "valid" and (
                family(case.fn)[0] != "generic" or case.meta.get("must_succeed")):
            res.update(outcome="bad", category="valid-rejected")
        modified = _modified(inputs, before)
        if modified and res["outcome"] != "bad":
            res.update(outcome="bad", category="input-modified",
                       message=f"a rejected call modified its inputs: {modified}; {res.get('message', '')}")
        return res
    finally:
        if case.fn == "set_num_threads" and case.kind != "valid" and default_threads:
            F.set_num_threads(default_threads)
        if case.fn == "set_precision":
            F.set_precision("default")
    try:
        problems = check_result(case, fns, args, result)
    except Exception as exc:  # a check that cannot run is itself a finding
        problems = [f"checking the result raised {type(exc).__name__}: {exc}"]
    modified = _modified(inputs, before)
    if modified:
        return dict(outcome="bad", category="input-modified", message=f"the call modified its inputs: {modified}",
                    args={k: describe(v) for k, v in args.items()})
    if case.fn == "set_num_threads" and default_threads:
        F.set_num_threads(default_threads)
    if problems:
        return dict(outcome="bad", category="wrong-result", message="; ".join(problems)[:1500],
                    args={k: describe(v) for k, v in args.items()})
    return dict(outcome="ok")


# ---------------------------------------------------------------------------
# the worker process
# ---------------------------------------------------------------------------


def _limit_memory():
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = WORKER_ADDRESS_SPACE if hard == resource.RLIM_INFINITY else min(hard, WORKER_ADDRESS_SPACE)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):  # pragma: no cover - best effort
        pass


def worker_main():
    """Serve cases on stdin; answer one JSON line each on the original stdout."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything else printed (by Python or Rust) goes to stderr
    sys.stdout = sys.stderr
    import warnings

    warnings.filterwarnings("ignore", module="fuzz_args")  # casts of NaN / inf while building arrays
    _limit_memory()
    import ferroconv.functional as F

    fns = public_functions()
    default_threads = F.get_num_threads()
    proto.write(json.dumps({"ready": True, "functions": sorted(fns)}) + "\n")
    for line in sys.stdin:
        cmd, _, payload = line.strip().partition(" ")
        if cmd == "CASE":
            case = pickle.loads(base64.b64decode(payload))
            res = run_case(case, fns, default_threads)
            proto.write(json.dumps(res) + "\n")
        elif cmd == "BULK":
            job = json.loads(payload)
            for i in range(job["start"], job["stop"]):
                case = draw_case(RandomDraw(bulk_seed(job["fn"], job["seed"], i)), fns, job["fn"])
                proto.write(json.dumps({"start": i, "case": repr(case)}) + "\n")
                res = run_case(case, fns, default_threads)
                res["index"] = i
                proto.write(json.dumps(res) + "\n")
            proto.write(json.dumps({"end": True}) + "\n")
        elif cmd == "QUIT":
            break


class WorkerDied(Exception):
    pass


class Worker:
    """The parent's handle on a worker subprocess (restarted after a crash/hang)."""

    def __init__(self, timeout=30.0):
        self.timeout = timeout
        self.proc = None
        self.restarts = 0
        self._buf = b""

    def start(self):
        env = dict(os.environ)
        env["RUST_BACKTRACE"] = "0"  # short panic and allocation-failure messages
        env["PYTHONFAULTHANDLER"] = "1"
        self.stderr = tempfile.TemporaryFile()
        code = f"import sys; sys.path.insert(0, {TESTS_DIR!r}); import fuzz_args; fuzz_args.worker_main()"
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, env=env)
        self._buf = b""
        hello = self._readline(120.0)
        if hello is None or not hello.get("ready"):
            raise WorkerDied(f"the fuzz worker did not start: {self.stderr_tail()}")
        self.functions = hello["functions"]

    def stderr_tail(self, limit=3000):
        try:
            self.stderr.seek(0)
            data = self.stderr.read().decode(errors="replace")
        except (OSError, ValueError):
            return ""
        data = "\n".join(line for line in data.splitlines() if not line.startswith("Extension modules:"))
        return data[-limit:]

    def _readline(self, timeout):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None  # timeout
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise WorkerDied("EOF")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return json.loads(line)

    def _send(self, text):
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        try:
            self.proc.stdin.write(text.encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerDied("broken pipe") from None

    def _death(self, what):
        """Outcome for a worker that died or hung, and a fresh start next time."""
        if what == "hang":
            self.proc.kill()
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover
            self.proc.kill()
            code = self.proc.wait()
        tail = self.stderr_tail()
        self.proc = None
        self.restarts += 1
        if what == "hang":
            return dict(outcome="bad", category="hang", message=f"no answer within {self.timeout:.0f} s",
                        stderr=tail)
        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        return dict(outcome="bad", category="crash", message=f"the worker process died ({how})", stderr=tail)

    def run(self, case):
        payload = base64.b64encode(pickle.dumps(case)).decode()
        try:
            self._send("CASE " + payload)
            res = self._readline(self.timeout)
        except WorkerDied:
            return self._death("crash")
        if res is None:
            return self._death("hang")
        return res

    def bulk(self, fn, seed, count):
        """Run cases 0..count-1 of the seeded run of ``fn``; yield (index, case repr, outcome)."""
        start = 0
        while start < count:
            current = None
            try:
                self._send("BULK " + json.dumps(dict(fn=fn, seed=seed, start=start, stop=count)))
                while True:
                    msg = self._readline(self.timeout)
                    if msg is None:
                        res = self._death("hang")
                        break
                    if msg.get("end"):
                        return
                    if "start" in msg:
                        current = (msg["start"], msg["case"])
                        continue
                    yield current[0], current[1], msg
                    start = msg["index"] + 1
            except WorkerDied:
                res = self._death("crash")
            if current is None:
                raise WorkerDied(res.get("stderr", ""))
            yield current[0], current[1], res
            start = current[0] + 1

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self._send("QUIT")
                self.proc.wait(timeout=10)
            except (WorkerDied, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# ---------------------------------------------------------------------------
# reproducing a failure by hand
# ---------------------------------------------------------------------------


def reproduce(case_src):
    """Run a case (its repr as printed by a failing test) in this process."""
    case = eval(case_src, globals())  # noqa: S307 - test helper, input is our own repr
    fns = public_functions()
    print(case.call_src())
    print(run_case(case, fns))


if __name__ == "__main__":
    sys.path.insert(0, TESTS_DIR)
    if len(sys.argv) != 2:
        sys.exit('usage: python tests/support/fuzz_args.py "Case(...)"')
    reproduce(sys.argv[1])
