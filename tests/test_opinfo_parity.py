"""Optional: every PyTorch OpInfo sample of the convolution and pooling functions of
``torch.nn.functional`` (issue 20's coverage proof), expressed with ferroconv's
functional API and compared with PyTorch: forward values, indices where returned,
and the gradient of ``sum(out * g)`` with respect to every differentiable input
(PyTorch's autograd against ferroconv's ``*_backward`` functions).

The samples are PyTorch's own (``op.sample_inputs`` of
``torch.testing._internal.common_methods_invocations.op_db``; that module needs
the ``expecttest`` package, listed in the test extra). Lp pooling has no OpInfo in
``op_db``: its samples come from the ``ModuleInfo`` of ``nn.LPPool1d/2d/3d``
(``common_modules.module_db``) instead. Each sample is mapped onto ferroconv by
an adapter with PyTorch's signature (``ADAPTERS``); a sample that ferroconv cannot
express fails, unless it is on ``ALLOWED`` with its reason, where ferroconv must
then refuse it with a clear ValueError/TypeError. ``python
tests/test_opinfo_parity.py`` prints the counts per OpInfo.

The NumPy references of the other test files are the primary oracle; this file
proves that PyTorch's own test inputs are all expressible and agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import pytest

import ferroconv as fc

torch = pytest.importorskip("torch")
# (PyTorch's own performance note on one conv1d sample)
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")

# ---------------------------------------------------------------- the OpInfos

# Every OpInfo of op_db that is about convolution or pooling, as (name,
# variant_test_name). The installed PyTorch must have exactly these (a missing
# one, or a new one that no adapter maps yet, fails test_the_opinfo_list_is_the_expected_one).
EXPECTED_OPINFOS = [
    *[(f"nn.functional.conv{r}d", "") for r in (1, 2, 3)],
    *[(f"nn.functional.conv_transpose{r}d", "") for r in (1, 2, 3)],
    *[(f"nn.functional.max_pool{r}d", "") for r in (1, 2, 3)],
    ("max_pool2d_with_indices_backward", ""),
    *[(f"nn.functional.avg_pool{r}d", "") for r in (1, 2, 3)],
    *[(f"nn.functional.fractional_max_pool{r}d", "") for r in (2, 3)],
    *[(f"nn.functional.adaptive_avg_pool{r}d", "") for r in (1, 2, 3)],
    *[(f"nn.functional.adaptive_max_pool{r}d", "") for r in (1, 2, 3)],
    *[(f"nn.functional.max_unpool{r}d", v) for r in (1, 2, 3) for v in ("", "grad")],
]
# No OpInfo exists for nn.functional.lp_pool{1,2,3}d: its samples are those of the
# modules' ModuleInfos.
EXPECTED_MODULES = [f"nn.LPPool{r}d" for r in (1, 2, 3)]
RELEVANT = ("conv", "pool")  # substrings that make an OpInfo relevant here

FLOAT32_SAMPLES = 6  # float32: this many samples per OpInfo (evenly spread), float64: all


@dataclass
class Ours:
    """ferroconv's answer to one sample: values, indices (or None) and a function
    from ``g`` to the gradients with respect to the differentiable inputs, in the
    order ``[input, *tensor args]``."""

    values: np.ndarray
    indices: Optional[np.ndarray]
    backward: Callable[[np.ndarray], list[np.ndarray]]


# ------------------------------------------------------------------ adapters
#
# Each has the signature of the torch.nn.functional function it stands for (NumPy
# arrays in place of tensors) and calls ferroconv's functional API only.


def _conv(rank: int) -> Callable[..., Ours]:
    forward, backward = getattr(fc, f"conv{rank}d"), getattr(fc, f"conv{rank}d_backward")

    def conv(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        y = forward(input, weight, bias, stride, padding, dilation, groups)

        def grads(g):
            gx, gw, gb = backward(g, input, weight, stride, padding, dilation, groups,
                                  needs=(True, True, bias is not None))
            return [gx, gw] + ([gb] if bias is not None else [])
        return Ours(y, None, grads)
    return conv


def _conv_transpose(rank: int) -> Callable[..., Ours]:
    forward = getattr(fc, f"conv_transpose{rank}d")
    backward = getattr(fc, f"conv_transpose{rank}d_backward")

    def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
        y = forward(input, weight, bias, stride, padding, output_padding, groups, dilation)

        def grads(g):
            gx, gw, gb = backward(g, input, weight, stride, padding, output_padding, groups, dilation,
                                  needs=(True, True, bias is not None))
            return [gx, gw] + ([gb] if bias is not None else [])
        return Ours(y, None, grads)
    return conv_transpose


def _max_pool(rank: int) -> Callable[..., Ours]:
    forward, backward = getattr(fc, f"max_pool{rank}d"), getattr(fc, f"max_pool{rank}d_backward")

    def max_pool(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        y, idx = forward(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)
        return Ours(y, idx if return_indices else None, lambda g: [backward(g, idx, input.shape)])
    return max_pool


def max_pool2d_with_indices_backward(input, kernel_size=(), stride=(), padding=(0,), dilation=(1,),
                                     ceil_mode=False, **ignored):
    """The OpInfo's own op: max pooling's input gradient for ``grad_out = 1``."""
    y, idx = fc.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)
    grad = fc.max_pool2d_backward(np.ones_like(y), idx, input.shape)
    # grad depends on the input only through the argmax indices, which are
    # locally constant: its derivative with respect to the input is 0 (as
    # PyTorch's autograd says; the comparison checks that)
    return Ours(grad, None, lambda g: [np.zeros_like(input)])


def _avg_pool(rank: int) -> Callable[..., Ours]:
    forward, backward = getattr(fc, f"avg_pool{rank}d"), getattr(fc, f"avg_pool{rank}d_backward")

    def avg_pool(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        args = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
        y = forward(input, *args)
        return Ours(y, None, lambda g: [backward(g, input.shape, *args)])

    if rank == 1:  # torch's avg_pool1d has no divisor_override
        def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
            return avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad)
        return avg_pool1d
    return avg_pool


def _lp_pool(rank: int) -> Callable[..., Ours]:
    forward, backward = getattr(fc, f"lp_pool{rank}d"), getattr(fc, f"lp_pool{rank}d_backward")

    def lp_pool(input, norm_type, kernel_size, stride=None, ceil_mode=False):
        y = forward(input, norm_type, kernel_size, stride, ceil_mode)
        return Ours(y, None, lambda g: [backward(g, input, norm_type, kernel_size, stride, ceil_mode)])
    return lp_pool


def _fractional(rank: int) -> Callable[..., Ours]:
    forward = getattr(fc, f"fractional_max_pool{rank}d")
    backward = getattr(fc, f"fractional_max_pool{rank}d_backward")

    def fractional_max_pool(input, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                            _random_samples=None):
        y, idx = forward(input, kernel_size, output_size, output_ratio, return_indices=True,
                         random_samples=_random_samples)
        return Ours(y, idx if return_indices else None, lambda g: [backward(g, idx, input.shape)])
    return fractional_max_pool


def _adaptive_avg(rank: int) -> Callable[..., Ours]:
    forward = getattr(fc, f"adaptive_avg_pool{rank}d")
    backward = getattr(fc, f"adaptive_avg_pool{rank}d_backward")

    def adaptive_avg_pool(input, output_size):
        return Ours(forward(input, output_size), None, lambda g: [backward(g, input.shape)])
    return adaptive_avg_pool


def _adaptive_max(rank: int) -> Callable[..., Ours]:
    forward = getattr(fc, f"adaptive_max_pool{rank}d")
    backward = getattr(fc, f"adaptive_max_pool{rank}d_backward")

    def adaptive_max_pool(input, output_size, return_indices=False):
        y, idx = forward(input, output_size, return_indices=True)
        return Ours(y, idx if return_indices else None, lambda g: [backward(g, idx, input.shape)])
    return adaptive_max_pool


def _max_unpool(rank: int) -> Callable[..., Ours]:
    forward, backward = getattr(fc, f"max_unpool{rank}d"), getattr(fc, f"max_unpool{rank}d_backward")

    def max_unpool(input, indices, kernel_size, stride=None, padding=0, output_size=None):
        y = forward(input, indices, kernel_size, stride, padding, output_size)
        return Ours(y, None, lambda g: [backward(g, indices)])
    return max_unpool


ADAPTERS: dict[str, Callable[..., Ours]] = {
    "max_pool2d_with_indices_backward": max_pool2d_with_indices_backward,
    **{f"nn.LPPool{r}d": _lp_pool(r) for r in (1, 2, 3)},
}
for _r in (1, 2, 3):
    ADAPTERS[f"nn.functional.conv{_r}d"] = _conv(_r)
    ADAPTERS[f"nn.functional.conv_transpose{_r}d"] = _conv_transpose(_r)
    ADAPTERS[f"nn.functional.max_pool{_r}d"] = _max_pool(_r)
    ADAPTERS[f"nn.functional.avg_pool{_r}d"] = _avg_pool(_r)
    ADAPTERS[f"nn.functional.adaptive_avg_pool{_r}d"] = _adaptive_avg(_r)
    ADAPTERS[f"nn.functional.adaptive_max_pool{_r}d"] = _adaptive_max(_r)
    ADAPTERS[f"nn.functional.max_unpool{_r}d"] = _max_unpool(_r)
for _r in (2, 3):
    ADAPTERS[f"nn.functional.fractional_max_pool{_r}d"] = _fractional(_r)


# ---------------------------------------------------------------- allow-list

@dataclass
class Allowed:
    """Samples ferroconv deliberately does not express: the op name, a predicate
    on the sample's (input, args, kwargs) in PyTorch's terms, the exception
    ferroconv must raise for them, a regex its message must match, and why."""

    op: str
    applies: Callable[[Any, tuple, dict], bool]
    error: type
    message: str
    reason: str


def _samples_outside_unit_interval(x: Any, args: tuple, kwargs: dict) -> bool:
    u = kwargs.get("_random_samples")
    return u is not None and not bool(np.all((u >= 0) & (u < 1)))


ALLOWED: list[Allowed] = [
    # PyTorch's private _random_samples argument is not range-checked, and one
    # fractional_max_pool2d sample fills it with make_tensor's default range
    # [-9, 9]. The samples are the pseudo-random offsets u in [0, 1) of Graham's
    # fractional pooling (PyTorch draws them with torch.rand); ferroconv's
    # random_samples= checks that range and refuses the rest.
    Allowed("nn.functional.fractional_max_pool2d", _samples_outside_unit_interval, ValueError,
            r"fractional_max_pool2d: random_samples must lie in \[0, 1\)",
            "fractional_max_pool2d: _random_samples outside [0, 1) (PyTorch does not check them)"),
]


# ------------------------------------------------------------------ machinery


@dataclass
class Sample:
    """One of PyTorch's samples: the op's name, the torch call, and the same
    call with NumPy arrays."""

    name: str
    call: Callable[..., Any]
    input: Any
    args: tuple
    kwargs: dict
    np_input: np.ndarray = field(init=False)
    np_args: tuple = field(init=False)
    np_kwargs: dict = field(init=False)

    def __post_init__(self) -> None:
        self.np_input = _numpy(self.input)
        self.np_args = tuple(_numpy(a) for a in self.args)
        self.np_kwargs = {k: _numpy(v) for k, v in self.kwargs.items()}

    def differentiable(self) -> list[Any]:
        return [t for t in (self.input, *self.args, *self.kwargs.values())
                if isinstance(t, torch.Tensor) and t.requires_grad]

    def describe(self) -> str:
        def short(v: Any) -> str:
            if isinstance(v, torch.Tensor):
                return f"tensor{tuple(v.shape)}:{str(v.dtype).replace('torch.', '')}"
            return repr(v)
        args = ", ".join([short(self.input), *map(short, self.args),
                          *(f"{k}={short(v)}" for k, v in self.kwargs.items())])
        return f"{self.name}({args})"


def _numpy(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return v.detach().numpy().copy()
    if isinstance(v, torch.Size):
        return tuple(v)
    return v


_CACHE: dict[str, Any] = {}


def _databases() -> tuple[Any, Any]:
    """op_db and module_db, imported once (the import takes seconds)."""
    if "op_db" not in _CACHE:
        cmi = pytest.importorskip("torch.testing._internal.common_methods_invocations",
                                  reason="PyTorch's OpInfo database needs the expecttest package")
        modules = pytest.importorskip("torch.testing._internal.common_modules")
        _CACHE["op_db"], _CACHE["module_db"] = cmi.op_db, modules.module_db
    return _CACHE["op_db"], _CACHE["module_db"]


def _spread(items: list, count: Optional[int]) -> list:
    """``count`` items evenly spread over ``items`` (all of them for None)."""
    if count is None or len(items) <= count:
        return items
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


def samples(key: str, dtype: Any) -> list[Sample]:
    """PyTorch's samples of an OpInfo (``name`` or ``name.variant``) or LPPool
    module, generated deterministically (seeded, with the global RNG restored)."""
    op_db, module_db = _databases()
    count = FLOAT32_SAMPLES if dtype == torch.float32 else None
    with torch.random.fork_rng():
        torch.manual_seed(20)
        if key.startswith("nn.LPPool"):
            info = next(m for m in module_db if m.name == key)
            found = []
            for m in info.module_inputs_func(info, device="cpu", dtype=dtype, requires_grad=True, training=True):
                ctor, fwd = m.constructor_input, m.forward_input
                (x,) = fwd.args
                found.append(Sample(key, getattr(torch.nn.functional, f"lp_pool{key[-2:]}"), x,
                                    tuple(ctor.args), dict(ctor.kwargs)))
            return _spread(found, count)
        name, variant = (key.removesuffix(".grad"), "grad") if key.endswith(".grad") else (key, "")
        info = next(o for o in op_db if o.name == name and o.variant_test_name == variant)
        chosen = _spread(list(info.sample_inputs("cpu", dtype, requires_grad=True)), count)
        out = []
        for s in chosen:
            kwargs = dict(s.kwargs)
            if name.startswith("nn.functional.fractional_max_pool") and kwargs.get("_random_samples") is None:
                # PyTorch would draw the window offsets itself: draw them here and
                # give both libraries the same ones
                rank = int(name[-2])
                batch = s.input.shape[0] if s.input.dim() == rank + 2 else 1
                kwargs["_random_samples"] = torch.rand(batch, s.input.shape[-rank - 1], rank, dtype=dtype)
            out.append(Sample(name, info.op, s.input, tuple(s.args), kwargs))
        return out


def _tolerance(dtype: Any) -> float:
    return 1e-10 if dtype == torch.float64 else 2e-5


def _close(ours: np.ndarray, theirs: Any, tol: float, what: str) -> None:
    expected = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    assert ours.shape == expected.shape, f"{what}: shape {ours.shape}, PyTorch's {expected.shape}"
    assert ours.dtype == expected.dtype, f"{what}: dtype {ours.dtype}, PyTorch's {expected.dtype}"
    finite = np.abs(expected[np.isfinite(expected)])
    scale = max(1.0, float(finite.max())) if finite.size else 1.0
    np.testing.assert_allclose(ours, expected, rtol=tol, atol=tol * scale, equal_nan=True, err_msg=what)


def check(sample: Sample, dtype: Any) -> Optional[str]:
    """Run one sample in both libraries and compare values, indices and gradients."""
    adapter = ADAPTERS[sample.name]
    out = sample.call(sample.input, *sample.args, **sample.kwargs)
    values, indices = (out[0], out[1]) if isinstance(out, tuple) else (out, None)
    ours = adapter(sample.np_input, *sample.np_args, **sample.np_kwargs)
    tol = _tolerance(dtype)
    _close(ours.values, values, tol, "values")
    if indices is not None:
        assert ours.indices is not None, "PyTorch returned indices, the adapter did not"
        np.testing.assert_array_equal(ours.indices, indices.numpy(), err_msg="indices")
    inputs = sample.differentiable()
    if not inputs:
        return None
    g = np.random.default_rng(values.numel()).standard_normal(tuple(values.shape)).astype(ours.values.dtype)
    if values.requires_grad:
        theirs = torch.autograd.grad((values * torch.from_numpy(g)).sum(), inputs, allow_unused=True)
    else:
        theirs = (None,) * len(inputs)
    grads = ours.backward(g)
    assert len(grads) == len(inputs), f"{len(grads)} gradients for {len(inputs)} differentiable inputs"
    note = None
    for i, (mine, t, x) in enumerate(zip(grads, theirs, inputs)):
        expected = (torch.zeros_like(x) if t is None else t).detach().numpy()
        if sample.name.startswith("nn.LPPool"):
            # PyTorch's lp_pool computes x ** p on every cell before pooling, also
            # on cells no window reads; for a negative x and a fractional p that
            # is NaN, and pow's backward turns the zero gradient there into
            # 0 * NaN = NaN. The output does not depend on those cells: ferroconv
            # gives 0, which is what is checked there.
            unread = _unread_cells(tuple(x.shape), int(sample.name[-2]), sample.args, tuple(values.shape))
            artifact = unread & np.isnan(expected)
            if artifact.any():
                expected = np.where(artifact, 0.0, expected).astype(expected.dtype)
                note = "lp_pool: PyTorch's NaN gradient on cells no window reads (ours 0)"
        _close(mine, expected, tol * 10, f"gradient of differentiable input {i}")
    return note


def _unread_cells(shape: tuple, rank: int, lp_args: tuple, out_shape: tuple) -> np.ndarray:
    """Cells of an input of ``shape`` that no window of ``LPPool{rank}d(*lp_args)``
    reads (its output has ``out_shape``)."""
    kernel = np.broadcast_to(lp_args[1], (rank,))
    stride = kernel if len(lp_args) < 3 or lp_args[2] is None else np.broadcast_to(lp_args[2], (rank,))
    read = np.ones((), bool)
    for axis in range(rank):
        n_in, n_out = shape[len(shape) - rank + axis], out_shape[len(out_shape) - rank + axis]
        cells = np.zeros(n_in, bool)
        for o in range(n_out):
            cells[o * stride[axis]:o * stride[axis] + kernel[axis]] = True
        read = np.logical_and.outer(read, cells)
    return ~np.broadcast_to(read, shape)


@dataclass
class Outcome:
    run: int = 0
    agreed: int = 0
    allowed: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def run_all(key: str, dtype: Any) -> Outcome:
    """Every chosen sample of ``key``: agreed, allow-listed (and then refused by
    ferroconv as the allow-list says) or failed (with the sample and why)."""
    outcome = Outcome()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # these tiny problems run 4x faster on one thread
    try:
        for sample in samples(key, dtype):
            _run_one(sample, dtype, outcome)
    finally:
        torch.set_num_threads(threads)
    return outcome


def _run_one(sample: Sample, dtype: Any, outcome: Outcome) -> None:
    """One sample into ``outcome``."""
    outcome.run += 1
    allowed = next((a for a in ALLOWED if a.op == sample.name
                    and a.applies(sample.np_input, sample.np_args, sample.np_kwargs)), None)
    try:
        if allowed is not None:
            with pytest.raises(allowed.error, match=allowed.message):
                ADAPTERS[sample.name](sample.np_input, *sample.np_args, **sample.np_kwargs)
            outcome.allowed[allowed.reason] = outcome.allowed.get(allowed.reason, 0) + 1
        else:
            note = check(sample, dtype)
            outcome.agreed += 1
            if note:
                outcome.notes[note] = outcome.notes.get(note, 0) + 1
    except (AssertionError, ValueError, TypeError, pytest.fail.Exception) as error:
        outcome.failures.append(f"{sample.describe()}: {type(error).__name__}: {error}")


KEYS = [n + (".grad" if v else "") for n, v in EXPECTED_OPINFOS] + EXPECTED_MODULES


# -------------------------------------------------------------------- tests


def test_the_opinfo_list_is_the_expected_one():
    op_db, module_db = _databases()
    found = {(o.name, o.variant_test_name) for o in op_db if any(w in o.name for w in RELEVANT)}
    missing = sorted(set(EXPECTED_OPINFOS) - found)
    new = sorted(found - set(EXPECTED_OPINFOS))
    assert not missing, f"OpInfos expected but missing from this PyTorch ({torch.__version__}): {missing}"
    assert not new, f"OpInfos of this PyTorch ({torch.__version__}) that no adapter maps yet: {new}"
    modules = {m.name for m in module_db}
    assert set(EXPECTED_MODULES) <= modules, f"ModuleInfos missing: {set(EXPECTED_MODULES) - modules}"
    # Lp pooling is taken from the ModuleInfos because op_db has none: if it gains
    # one, map it here instead
    assert not any("lp_pool" in o.name for o in op_db)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("key", KEYS)
def test_every_opinfo_sample_is_expressible_and_agrees(key, dtype):
    outcome = run_all(key, getattr(torch, dtype))
    assert outcome.run > 0, f"no samples for {key}"
    assert not outcome.failures, (f"{len(outcome.failures)} of {outcome.run} samples of {key} ({dtype}) "
                                  "fail:\n" + "\n".join(outcome.failures[:20]))


def test_every_allow_list_entry_is_used():
    """An entry that no sample reaches is stale: it must go."""
    used = set()
    for key in KEYS:
        for dtype in (torch.float64, torch.float32):
            used |= set(run_all(key, dtype).allowed) if any(a.op == key.removesuffix(".grad")
                                                             for a in ALLOWED) else set()
    assert used == {a.reason for a in ALLOWED}


if __name__ == "__main__":  # the counts per OpInfo, for the record
    total = Outcome()
    for key in KEYS:
        for dtype in (torch.float64, torch.float32):
            o = run_all(key, dtype)
            print(f"{key:45s} {str(dtype)[6:]:8s} run {o.run:5d} agreed {o.agreed:5d} "
                  f"allowed {sum(o.allowed.values()):4d} failed {len(o.failures):4d}")
            for f in o.failures[:3]:
                print("    FAIL", f[:400])
            total.run += o.run
            total.agreed += o.agreed
            total.failures += o.failures
            for reason, n in o.allowed.items():
                total.allowed[reason] = total.allowed.get(reason, 0) + n
            for note, n in o.notes.items():
                total.notes[note] = total.notes.get(note, 0) + n
    print(f"total: run {total.run}, agreed {total.agreed}, failed {len(total.failures)}")
    for reason, n in total.allowed.items():
        print(f"  allowed {n}: {reason}")
    for note, n in total.notes.items():
        print(f"  agreed with a documented difference {n}: {note}")
