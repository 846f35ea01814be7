"""ferroconv.torch: the custom operators against PyTorch's own torch.nn.functional
(forward and every gradient), gradcheck, torch.compile, convert/revert, thread-count
determinism, and the errors. Skipped when torch is not installed."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ferroconv as fc

torch = pytest.importorskip("torch")
fct = pytest.importorskip("ferroconv.torch")
F = torch.nn.functional

DTYPES = {"float32": (torch.float32, dict(rtol=2e-4, atol=2e-5)),
          "float64": (torch.float64, dict(rtol=1e-10, atol=1e-11))}


def layout(t, kind: str):
    """``t`` (same values) in another memory layout: as it is, channels-last-like
    (permuted storage), or a strided slice of a larger tensor."""
    if kind == "contiguous":
        return t
    if kind == "permuted":
        order = [0, *range(2, t.dim()), 1]
        back = [0, t.dim() - 1, *range(1, t.dim() - 1)]
        return t.permute(order).contiguous().permute(back)
    big = torch.zeros((t.shape[0], t.shape[1], *(2 * s for s in t.shape[2:])), dtype=t.dtype)
    view = big[(slice(None), slice(None), *(slice(None, None, 2) for _ in t.shape[2:]))]
    view.copy_(t)
    return view


def leaves(*tensors):
    return [t.detach().clone().requires_grad_(True) for t in tensors]


def assert_same_grads(ours, theirs, inputs_ours, inputs_theirs, tol, seed=0):
    """Forward values equal, and the gradients of a random projection of the output."""
    ours_t = ours if isinstance(ours, tuple) else (ours,)
    theirs_t = theirs if isinstance(theirs, tuple) else (theirs,)
    torch.testing.assert_close(ours_t[0], theirs_t[0], **tol)
    gen = torch.Generator().manual_seed(seed)
    probe = torch.randn(theirs_t[0].shape, generator=gen, dtype=theirs_t[0].dtype)
    g_ours = torch.autograd.grad((ours_t[0] * probe).sum(), inputs_ours, allow_unused=True)
    g_theirs = torch.autograd.grad((theirs_t[0] * probe).sum(), inputs_theirs, allow_unused=True)
    for a, b in zip(g_ours, g_theirs):
        torch.testing.assert_close(a, b, **tol)


# ------------------------------------------------------------- convolution


@st.composite
def conv_cases(draw):
    rank = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    stride = draw(st.lists(st.integers(1, 2), min_size=rank, max_size=rank))
    dilation = draw(st.lists(st.integers(1, 2), min_size=rank, max_size=rank))
    padding = draw(st.one_of(st.integers(0, 2), st.lists(st.integers(0, 2), min_size=rank, max_size=rank),
                             st.just("valid"), st.just("same")))
    if padding == "same":
        stride = [1] * rank
    return dict(rank=rank, groups=groups, cin=draw(st.integers(1, 3)) * groups,
                cout=draw(st.integers(1, 3)) * groups,
                kernel=draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank)),
                size=draw(st.lists(st.integers(5, 8), min_size=rank, max_size=rank)),
                stride=stride, dilation=dilation, padding=padding,
                padding_mode=draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"])),
                batch=draw(st.sampled_from([None, 1, 2])), bias=draw(st.booleans()),
                dtype=draw(st.sampled_from(sorted(DTYPES))),
                layout=draw(st.sampled_from(["contiguous", "permuted", "strided"])),
                seed=draw(st.integers(0, 2**16)))


@given(conv_cases())
def test_conv_forward_and_gradients_match_torch(case):
    dtype, tol = DTYPES[case["dtype"]]
    gen = torch.Generator().manual_seed(case["seed"])
    rank, groups = case["rank"], case["groups"]
    x = layout(torch.randn((2, case["cin"], *case["size"]), generator=gen, dtype=dtype), case["layout"])
    if case["batch"] is None:
        x = x[0]
    w = torch.randn((case["cout"], case["cin"] // groups, *case["kernel"]), generator=gen, dtype=dtype)
    b = torch.randn(case["cout"], generator=gen, dtype=dtype) if case["bias"] else None
    kwargs = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"], groups=groups)
    mine = leaves(x, w, *([b] if b is not None else []))
    ref = leaves(x, w, *([b] if b is not None else []))
    if case["padding_mode"] == "zeros":
        ours = getattr(fct, f"conv{rank}d")(mine[0], mine[1], mine[2] if b is not None else None, **kwargs)
        theirs = getattr(F, f"conv{rank}d")(ref[0], ref[1], ref[2] if b is not None else None, **kwargs)
    else:
        # other padding modes exist only on the modules: torch.nn's against ferroconv.torch's
        modules = []
        for cls, params in ((getattr(torch.nn, f"Conv{rank}d"), ref), (getattr(fct, f"Conv{rank}d"), mine)):
            module = cls(case["cin"], case["cout"], case["kernel"], bias=b is not None,
                         padding_mode=case["padding_mode"], dtype=dtype, **kwargs)
            del module.weight
            module.weight = params[1]
            if b is not None:
                del module.bias
                module.bias = params[2]
            modules.append(module)
        try:
            theirs = modules[0](ref[0])
        except RuntimeError as exc:  # e.g. reflect padding wider than the input: PyTorch refuses too
            with pytest.raises(ValueError):
                modules[1](mine[0])
            assert "pad" in str(exc).lower()
            return
        ours = modules[1](mine[0])
    assert ours.dtype == dtype
    assert_same_grads(ours, theirs, mine, ref, tol, case["seed"])


@st.composite
def transpose_cases(draw):
    rank = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 2))
    stride = draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank))
    dilation = draw(st.lists(st.integers(1, 2), min_size=rank, max_size=rank))
    kernel = draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank))
    padding = [draw(st.integers(0, (d * (k - 1)) // 2)) for k, d in zip(kernel, dilation)]
    output_padding = [draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation)]
    return dict(rank=rank, groups=groups, cin=draw(st.integers(1, 3)) * groups, cout=draw(st.integers(1, 3)),
                kernel=kernel, size=draw(st.lists(st.integers(2, 5), min_size=rank, max_size=rank)),
                stride=stride, dilation=dilation, padding=padding, output_padding=output_padding,
                dtype=draw(st.sampled_from(sorted(DTYPES))), seed=draw(st.integers(0, 2**16)))


@given(transpose_cases())
def test_conv_transpose_forward_and_gradients_match_torch(case):
    dtype, tol = DTYPES[case["dtype"]]
    gen = torch.Generator().manual_seed(case["seed"])
    rank = case["rank"]
    x = torch.randn((2, case["cin"], *case["size"]), generator=gen, dtype=dtype)
    w = torch.randn((case["cin"], case["cout"], *case["kernel"]), generator=gen, dtype=dtype)
    b = torch.randn(case["cout"] * case["groups"], generator=gen, dtype=dtype)
    kwargs = dict(stride=case["stride"], padding=case["padding"], output_padding=case["output_padding"],
                  groups=case["groups"], dilation=case["dilation"])
    mine, ref = leaves(x, w, b), leaves(x, w, b)
    ours = getattr(fct, f"conv_transpose{rank}d")(*mine, **kwargs)
    theirs = getattr(F, f"conv_transpose{rank}d")(*ref, **kwargs)
    assert_same_grads(ours, theirs, mine, ref, tol, case["seed"])


# ----------------------------------------------------------------- pooling


@st.composite
def pool_cases(draw):
    rank = draw(st.integers(1, 3))
    kernel = draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank))
    return dict(rank=rank, kernel=kernel,
                stride=draw(st.one_of(st.none(), st.lists(st.integers(1, 3), min_size=rank, max_size=rank))),
                padding=[draw(st.integers(0, k // 2)) for k in kernel],
                dilation=draw(st.lists(st.integers(1, 2), min_size=rank, max_size=rank)),
                ceil_mode=draw(st.booleans()), count_include_pad=draw(st.booleans()),
                size=draw(st.lists(st.integers(5, 9), min_size=rank, max_size=rank)),
                batch=draw(st.booleans()), dtype=draw(st.sampled_from(sorted(DTYPES))),
                layout=draw(st.sampled_from(["contiguous", "permuted", "strided"])),
                seed=draw(st.integers(0, 2**16)))


def pool_input(case):
    dtype, _ = DTYPES[case["dtype"]]
    gen = torch.Generator().manual_seed(case["seed"])
    x = layout(torch.randn((2, 3, *case["size"]), generator=gen, dtype=dtype), case["layout"])
    return x if case["batch"] else x[0]


@given(pool_cases())
def test_max_pool_values_indices_and_gradient_match_torch(case):
    rank, (_, tol) = case["rank"], DTYPES[case["dtype"]]
    x = pool_input(case)
    kwargs = dict(kernel_size=case["kernel"], stride=case["stride"], padding=case["padding"],
                  dilation=case["dilation"], ceil_mode=case["ceil_mode"], return_indices=True)
    (mine,), (ref,) = leaves(x), leaves(x)
    ours = getattr(fct, f"max_pool{rank}d")(mine, **kwargs)
    theirs = getattr(F, f"max_pool{rank}d")(ref, **kwargs)
    assert torch.equal(ours[1], theirs[1])
    assert_same_grads(ours, theirs, [mine], [ref], tol, case["seed"])
    # the indices work with either side's unpooling (where the input size is one
    # unpooling can produce)
    size = x.shape[x.dim() - rank:]
    stride = case["stride"] or case["kernel"]
    default = [(o - 1) * s - 2 * p + k for o, s, p, k in
               zip(ours[0].shape[x.dim() - rank:], stride, case["padding"], case["kernel"])]
    if any(abs(n - d) >= s for n, d, s in zip(size, default, stride)):
        return
    unpool_kwargs = dict(kernel_size=case["kernel"], stride=case["stride"], padding=case["padding"],
                         output_size=size)
    ours_up = getattr(fct, f"max_unpool{rank}d")(theirs[0].detach(), theirs[1], **unpool_kwargs)
    theirs_up = getattr(F, f"max_unpool{rank}d")(ours[0].detach(), ours[1], **unpool_kwargs)
    torch.testing.assert_close(ours_up, theirs_up, rtol=0, atol=0)


@given(pool_cases(), st.sampled_from([None, 2, 5]))
def test_avg_pool_and_gradient_match_torch(case, divisor):
    rank, (_, tol) = case["rank"], DTYPES[case["dtype"]]
    x = pool_input(case)
    kwargs = dict(kernel_size=case["kernel"], stride=case["stride"], padding=case["padding"],
                  ceil_mode=case["ceil_mode"], count_include_pad=case["count_include_pad"])
    if rank > 1:
        kwargs["divisor_override"] = divisor
    (mine,), (ref,) = leaves(x), leaves(x)
    ours = getattr(fct, f"avg_pool{rank}d")(mine, **kwargs)
    theirs = getattr(F, f"avg_pool{rank}d")(ref, **kwargs)
    assert_same_grads(ours, theirs, [mine], [ref], tol, case["seed"])


@given(pool_cases(), st.data())
def test_adaptive_pools_and_gradients_match_torch(case, data):
    rank, (_, tol) = case["rank"], DTYPES[case["dtype"]]
    x = pool_input(case)
    out = [data.draw(st.one_of(st.none(), st.integers(1, 6))) for _ in range(rank)]
    # None keeps the input's size (the modules' convention; torch's functions want ints)
    spatial = x.shape[x.dim() - rank:]
    resolved = [spatial[i] if v is None else v for i, v in enumerate(out)]
    (mine,), (ref,) = leaves(x), leaves(x)
    ours = getattr(fct, f"adaptive_avg_pool{rank}d")(mine, out)
    theirs = getattr(F, f"adaptive_avg_pool{rank}d")(ref, resolved)
    assert_same_grads(ours, theirs, [mine], [ref], tol, case["seed"])
    (mine,), (ref,) = leaves(x), leaves(x)
    ours = getattr(fct, f"adaptive_max_pool{rank}d")(mine, out, return_indices=True)
    theirs = getattr(F, f"adaptive_max_pool{rank}d")(ref, resolved, return_indices=True)
    assert torch.equal(ours[1], theirs[1])
    assert_same_grads(ours, theirs, [mine], [ref], tol, case["seed"])


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_max_unpool_gradient_matches_torch(rank):
    gen = torch.Generator().manual_seed(rank)
    x = torch.randn((2, 3, *([6] * rank)), generator=gen, dtype=torch.float64)
    values, indices = getattr(F, f"max_pool{rank}d")(x, 2, return_indices=True)
    (mine,), (ref,) = leaves(values), leaves(values)
    ours = getattr(fct, f"max_unpool{rank}d")(mine, indices, 2, output_size=x.shape[2:])
    theirs = getattr(F, f"max_unpool{rank}d")(ref, indices, 2, output_size=x.shape[2:])
    assert_same_grads(ours, theirs, [mine], [ref], DTYPES["float64"][1])


# ---------------------------------------------------------------- gradcheck


def _gradcheck_cases():
    gen = torch.Generator().manual_seed(7)

    def r(*shape):
        return torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)

    return {
        "conv1d": (lambda x, w, b: fct.conv1d(x, w, b, stride=2, padding=1, dilation=2), (r(2, 4, 9), r(6, 4, 3), r(6)),
                   {}),
        "conv2d_groups_same": (lambda x, w, b: fct.conv2d(x, w, b, padding="same", groups=2),
                               (r(2, 4, 6, 5), r(4, 2, 2, 3), r(4)), {}),
        "conv3d": (lambda x, w, b: fct.conv3d(x, w, b, stride=(1, 2, 1)), (r(1, 2, 4, 5, 4), r(3, 2, 2, 2, 2), r(3)),
                   {}),
        "conv_transpose2d": (lambda x, w, b: fct.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
                             (r(2, 3, 4, 4), r(3, 2, 3, 3), r(2)), {}),
        "max_pool2d": (lambda x: fct.max_pool2d(x, 3, 2, 1, ceil_mode=True), (r(2, 3, 7, 7),), {}),
        "avg_pool3d": (lambda x: fct.avg_pool3d(x, 2, 1, 1, count_include_pad=False), (r(1, 2, 4, 4, 4),), {}),
        "adaptive_avg_pool1d": (lambda x: fct.adaptive_avg_pool1d(x, 4), (r(2, 3, 9),), {}),
        "adaptive_max_pool2d": (lambda x: fct.adaptive_max_pool2d(x, (3, 2)), (r(2, 3, 7, 5),), {}),
    }


@pytest.mark.parametrize("name", sorted(_gradcheck_cases()))
def test_gradcheck_float64(name):
    fn, inputs, _ = _gradcheck_cases()[name]
    assert torch.autograd.gradcheck(fn, inputs)


def test_torch_func_grad_equals_autograd():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 6, 6, generator=gen, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, generator=gen, dtype=torch.float64)

    def loss(w):
        return (fct.max_pool2d(fct.conv2d(x, w, padding=1), 2) ** 2).sum()

    try:
        via_func = torch.func.grad(loss)(w)
    except RuntimeError as exc:
        # PyTorch's custom operators reach torch.func only in some versions.
        if "functorch transforms" not in str(exc):
            raise
        pytest.skip(f"torch {torch.__version__}: custom operators do not support torch.func.grad")
    leaf = w.clone().requires_grad_(True)
    loss(leaf).backward()
    torch.testing.assert_close(via_func, leaf.grad, rtol=0, atol=0)


# ------------------------------------------------------ compile and modules


def small_cnn(dtype=torch.float32, batch_norm=True, seed=0):
    torch.manual_seed(seed)
    norm = (lambda c: torch.nn.BatchNorm2d(c)) if batch_norm else (lambda c: torch.nn.Identity())
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), norm(8), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1, padding_mode="reflect"), norm(16), torch.nn.ReLU(),
        torch.nn.AvgPool2d(2, ceil_mode=True),
        torch.nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1), torch.nn.Tanh(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 5),
    ).to(dtype)


def test_torch_compile_fullgraph_equals_eager():
    model = small_cnn()
    report = fct.convert(model)
    assert len(report.replaced) == 6 and not report.left
    x = torch.randn(4, 3, 12, 12)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    eager_out = model(x)
    eager_grads = torch.autograd.grad(eager_out.square().sum(), list(model.parameters()))
    compiled_out = compiled(x)
    torch.testing.assert_close(compiled_out, eager_out, rtol=0, atol=0)
    compiled_grads = torch.autograd.grad(compiled_out.square().sum(), list(model.parameters()))
    for a, b in zip(compiled_grads, eager_grads):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_converted_model_loss_and_gradients_equal_native(dtype):
    native, converted = small_cnn(dtype), small_cnn(dtype)
    converted.load_state_dict(native.state_dict())
    fct.convert(converted)
    assert list(converted.state_dict()) == list(native.state_dict())
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(6, 3, 12, 12, generator=gen, dtype=dtype)
    target = torch.randint(0, 5, (6,), generator=gen)
    tol = DTYPES["float64" if dtype == torch.float64 else "float32"][1]
    losses = [F.cross_entropy(m(x), target) for m in (converted, native)]
    torch.testing.assert_close(losses[0], losses[1], **tol)
    for a, b in zip(torch.autograd.grad(losses[0], list(converted.parameters())),
                    torch.autograd.grad(losses[1], list(native.parameters()))):
        torch.testing.assert_close(a, b, **tol)


def test_convert_reports_what_it_left_and_revert_restores():
    class MyConv(torch.nn.Conv2d):
        pass

    model = torch.nn.Sequential(torch.nn.Conv1d(2, 3, 3), MyConv(3, 3, 1), torch.nn.LazyConv2d(4, 3),
                                torch.nn.Sequential(torch.nn.MaxPool3d(2), torch.nn.MaxUnpool2d(2)))
    report = fct.convert(model)
    assert report.replaced == ["0", "3.0", "3.1"]
    assert set(report.left) == {"1", "2"}
    assert "subclasses torch.nn.Conv2d" in report.left["1"]
    assert "lazy" in report.left["2"]
    assert type(model[0]) is fct.Conv1d and type(model[3][0]) is fct.MaxPool3d
    assert "left 1:" in str(report)
    back = fct.revert(model)
    assert back.replaced == ["0", "3.0", "3.1"]
    assert type(model[0]) is torch.nn.Conv1d and type(model[3][1]) is torch.nn.MaxUnpool2d


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_modules_match_torch_modules(rank):
    cases = [
        (f"Conv{rank}d", (4, 6, 3), dict(stride=2, padding=1, groups=2, padding_mode="circular")),
        (f"Conv{rank}d", (4, 6, 2), dict(padding="same", dilation=2)),
        (f"ConvTranspose{rank}d", (4, 6, 3), dict(stride=2, padding=1)),
        (f"MaxPool{rank}d", (3,), dict(stride=2, padding=1, ceil_mode=True)),
        (f"AvgPool{rank}d", (3,), dict(stride=2, padding=1, count_include_pad=False)),
        (f"AdaptiveAvgPool{rank}d", (3,), {}),
        (f"AdaptiveMaxPool{rank}d", (2,), {}),
    ]
    x = torch.randn((2, 4, *([9] * rank)), dtype=torch.float64)
    for name, args, kwargs in cases:
        theirs = getattr(torch.nn, name)(*args, **kwargs).double()
        ours = getattr(fct, name)(*args, **kwargs).double()
        ours.load_state_dict(theirs.state_dict())
        torch.testing.assert_close(ours(x), theirs(x), **DTYPES["float64"][1], msg=name)
    # ConvTranspose output_size and MaxUnpool round trip
    up = getattr(fct, f"ConvTranspose{rank}d")(4, 2, 3, stride=2).double()
    assert up(x, output_size=[20] * rank).shape[2:] == (20,) * rank
    values, indices = getattr(fct, f"MaxPool{rank}d")(2, return_indices=True)(x)
    restored = getattr(fct, f"MaxUnpool{rank}d")(2)(values, indices, output_size=x.shape)
    torch.testing.assert_close(restored, getattr(torch.nn, f"MaxUnpool{rank}d")(2)(values, indices, x.shape))


def train_bytes(threads, convert, steps=3):
    """A network of layers ``convert`` replaces plus element-wise ones, trained a
    few SGD steps with ``threads`` threads: its weights' bytes."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
        torch.nn.Conv2d(32, 10, 1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    if convert:
        fct.convert(model)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(16, 3, 32, 32, generator=gen)
    target = torch.randn(16, 10, generator=gen)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    before_fc, before_torch = fc.get_num_threads(), torch.get_num_threads()
    fc.set_num_threads(threads)
    torch.set_num_threads(threads)
    try:
        for _ in range(steps):
            opt.zero_grad()
            ((model(x) - target) ** 2).sum().backward()
            opt.step()
    finally:
        fc.set_num_threads(before_fc)
        torch.set_num_threads(before_torch)
    return b"".join(p.detach().numpy().tobytes() for p in model.parameters())


def test_converted_training_is_bit_identical_for_any_thread_count():
    one, two = train_bytes(1, True), train_bytes(2, True)
    assert one == two
    assert train_bytes(2, True) == two  # and run to run


# ------------------------------------------------------------ bfloat16 etc.


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_16bit_tensors_pass_through_the_bridge(dtype):
    pytest.importorskip("ml_dtypes")
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 8, 8, generator=gen).to(dtype)
    w = torch.randn(4, 3, 3, 3, generator=gen).to(dtype)
    ours = fct.conv2d(x, w, padding=1)
    assert ours.dtype == dtype
    # the same bits as ferroconv's NumPy API on the same values
    via_numpy = fc.conv2d(x, w, padding=1)
    assert via_numpy.dtype.name == str(dtype).removeprefix("torch.")
    assert np.array_equal(ours.view(torch.int16).numpy(), via_numpy.view(np.int16))
    pooled = fct.max_pool2d(ours, 2)
    assert pooled.dtype == dtype


# --------------------------------------------------- inputs, refs, errors


def test_inputs_unchanged_and_references_released():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    copies = [x.detach().clone(), w.detach().clone()]
    counts = [sys.getrefcount(x), sys.getrefcount(w)]
    for _ in range(3):
        y = fct.max_pool2d(fct.conv2d(x, w, padding=1), 2)
        y.sum().backward()
        del y
    assert torch.equal(x.detach(), copies[0]) and torch.equal(w.detach(), copies[1])
    assert [sys.getrefcount(x), sys.getrefcount(w)] == counts


def test_bridge_errors_name_the_argument():
    x = torch.randn(1, 3, 8, 8)
    w = torch.randn(4, 3, 3, 3)
    with pytest.raises(TypeError, match="weight has dtype torch.int32"):
        fct.conv2d(x, w.to(torch.int32))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        fct.conv2d(x.numpy(), w)
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        fct.conv2d(x, w, stride=2, padding="same")
    with pytest.raises(TypeError, match="dtype float64 but x has dtype float32"):
        fct.conv2d(x, w.double())
    with pytest.raises(ValueError, match="stride"):
        fct.conv2d(x, w, stride=(1, 2, 3))
    # meta tensors propagate shapes, as PyTorch's own operators do
    meta = fct.conv2d(x.to("meta"), w.to("meta"), stride=2)
    assert meta.device.type == "meta" and meta.shape == (1, 4, 3, 3)


def test_functional_accepts_cpu_tensors_zero_copy():
    x = torch.randn(2, 3, 8, 8).permute(0, 1, 3, 2)  # non-contiguous
    w = torch.randn(4, 3, 3, 3, dtype=torch.float32)
    out = fc.conv2d(x, w, padding=1)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, fc.conv2d(x.numpy(), w.numpy(), padding=1))
    from ferroconv._args import as_array

    view = as_array(x, "x")
    assert np.shares_memory(view, x.numpy())
    values, indices = fc.max_pool2d(x, 2, return_indices=True)
    back = fc.max_pool2d_backward(torch.from_numpy(values), torch.from_numpy(indices), tuple(x.shape))
    assert back.shape == tuple(x.shape)


def test_functional_refuses_grad_meta_and_foreign_device_tensors():
    w = torch.randn(4, 3, 3, 3)
    with pytest.raises(TypeError, match=r"x is a tensor that requires grad.*ferroconv.torch.*x.detach\(\)"):
        fc.conv2d(torch.randn(1, 3, 5, 5, requires_grad=True), w)
    with pytest.raises(ValueError, match="weight is a meta tensor"):
        fc.conv2d(torch.randn(1, 3, 5, 5), w.to("meta"))

    class OnGpu:
        """An array-like that says it lives on a CUDA device (kDLCUDA = 2)."""

        device = "cuda:0"

        def __dlpack_device__(self):
            return (2, 0)

        def __dlpack__(self, **kwargs):
            raise AssertionError("must not be read")

    with pytest.raises(ValueError, match=r"x lives on cuda:0.*CPU.*x.cpu\(\)"):
        fc.conv2d(OnGpu(), w)
    with pytest.raises(TypeError, match="x must be an array of float32, float64, float16 or bfloat16, got None"):
        fc.conv2d(None, w)
