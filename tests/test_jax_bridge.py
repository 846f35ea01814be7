"""ferroconv.jax against JAX's own operators (lax.conv_general_dilated,
lax.reduce_window), under jit, grad, value_and_grad and vmap, in float32 and
float64. Skipped when jax is not installed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ferroconv as fc

jax = pytest.importorskip("jax")
fcj = pytest.importorskip("ferroconv.jax")
jax.config.update("jax_enable_x64", True)  # float64 cases; float32 ones pass dtypes explicitly
jnp = jax.numpy
lax = jax.lax

# Every example compiles its own XLA programs (ours and lax's): a few seconds each,
# so fewer examples than the NumPy-reference properties draw.
FEW = settings(max_examples=12)
TOL = {"float32": dict(rtol=2e-4, atol=2e-5), "float64": dict(rtol=1e-10, atol=1e-11)}
SPATIAL = {1: "H", 2: "HW", 3: "DHW"}


def lax_conv(x, w, b, stride, padding, dilation, groups):
    rank = w.ndim - 2
    dims = ("NC" + SPATIAL[rank], "OI" + SPATIAL[rank], "NC" + SPATIAL[rank])
    y = lax.conv_general_dilated(x, w, stride, padding, rhs_dilation=dilation, dimension_numbers=dims,
                                 feature_group_count=groups, precision=lax.Precision.HIGHEST)
    return y if b is None else y + b.reshape((1, -1) + (1,) * rank)


def lax_conv_transpose(x, w, b, stride, padding, output_padding, dilation):
    """Transposed convolution as the gradient-shaped convolution: input dilated by
    the stride, kernel flipped with its channel axes swapped (groups=1)."""
    rank = w.ndim - 2
    flipped = jnp.flip(jnp.swapaxes(w, 0, 1), axis=tuple(range(2, 2 + rank)))
    pads = [(d * (k - 1) - p, d * (k - 1) - p + op)
            for k, p, op, d in zip(w.shape[2:], padding, output_padding, dilation)]
    dims = ("NC" + SPATIAL[rank], "OI" + SPATIAL[rank], "NC" + SPATIAL[rank])
    y = lax.conv_general_dilated(x, flipped, (1,) * rank, pads, lhs_dilation=stride, rhs_dilation=dilation,
                                 dimension_numbers=dims, precision=lax.Precision.HIGHEST)
    return y + b.reshape((1, -1) + (1,) * rank)


def close(a, b, dtype):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), **TOL[dtype])


@st.composite
def conv_cases(draw):
    rank = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 2))
    return dict(rank=rank, groups=groups, cin=draw(st.integers(1, 3)) * groups,
                cout=draw(st.integers(1, 3)) * groups,
                kernel=draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank)),
                size=draw(st.lists(st.integers(5, 8), min_size=rank, max_size=rank)),
                stride=draw(st.lists(st.integers(1, 2), min_size=rank, max_size=rank)),
                dilation=draw(st.lists(st.integers(1, 2), min_size=rank, max_size=rank)),
                padding=draw(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=rank,
                                      max_size=rank)),
                dtype=draw(st.sampled_from(sorted(TOL))), seed=draw(st.integers(0, 2**16)))


@FEW
@given(conv_cases())
def test_conv_jit_and_grad_match_lax(case):
    rng = np.random.default_rng(case["seed"])
    dtype, rank = case["dtype"], case["rank"]
    x = jnp.asarray(rng.standard_normal((2, case["cin"], *case["size"])), dtype=dtype)
    w = jnp.asarray(rng.standard_normal((case["cout"], case["cin"] // case["groups"], *case["kernel"])),
                    dtype=dtype)
    b = jnp.asarray(rng.standard_normal(case["cout"]), dtype=dtype)
    probe = None
    ours_fn = getattr(fcj, f"conv{rank}d")

    def ours(x, w, b):
        return ours_fn(x, w, b, stride=case["stride"], padding=case["padding"], dilation=case["dilation"],
                       groups=case["groups"])

    def theirs(x, w, b):
        return lax_conv(x, w, b, case["stride"], case["padding"], case["dilation"], case["groups"])

    y_ours, y_theirs = jax.jit(ours)(x, w, b), theirs(x, w, b)
    assert y_ours.dtype == x.dtype
    close(y_ours, y_theirs, dtype)
    probe = jnp.asarray(rng.standard_normal(y_theirs.shape), dtype=dtype)
    g_ours = jax.jit(jax.grad(lambda *a: (ours(*a) * probe).sum(), argnums=(0, 1, 2)))(x, w, b)
    g_theirs = jax.grad(lambda *a: (theirs(*a) * probe).sum(), argnums=(0, 1, 2))(x, w, b)
    for a, c in zip(g_ours, g_theirs):
        close(a, c, dtype)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_conv_transpose_matches_lax(rank):
    rng = np.random.default_rng(rank)
    x = jnp.asarray(rng.standard_normal((2, 3, *([4] * rank))))
    w = jnp.asarray(rng.standard_normal((3, 2, *([3] * rank))))
    b = jnp.asarray(rng.standard_normal(2))
    kw = dict(stride=2, padding=1, output_padding=1, dilation=1)
    ours = getattr(fcj, f"conv_transpose{rank}d")

    def theirs(x, w, b):
        return lax_conv_transpose(x, w, b, (2,) * rank, (1,) * rank, (1,) * rank, (1,) * rank)

    close(jax.jit(lambda *a: ours(*a, **kw))(x, w, b), theirs(x, w, b), "float64")
    g_ours = jax.grad(lambda *a: (ours(*a, **kw) ** 2).sum(), argnums=(0, 1, 2))(x, w, b)
    g_theirs = jax.grad(lambda *a: (theirs(*a) ** 2).sum(), argnums=(0, 1, 2))(x, w, b)
    for a, c in zip(g_ours, g_theirs):
        close(a, c, "float64")


def lax_max_pool(x, kernel, stride, padding, dilation):
    rank = len(kernel)
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, *kernel), (1, 1, *stride),
                             [(0, 0), (0, 0), *((p, p) for p in padding)], window_dilation=(1, 1, *dilation))[
        (slice(None),) * (2 + rank)]


def lax_avg_pool(x, kernel, stride, padding):
    total = lax.reduce_window(x, 0.0, lax.add, (1, 1, *kernel), (1, 1, *stride),
                              [(0, 0), (0, 0), *((p, p) for p in padding)])
    return total / np.prod(kernel)  # count_include_pad=True


@st.composite
def pool_cases(draw):
    rank = draw(st.integers(1, 3))
    kernel = draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank))
    return dict(rank=rank, kernel=kernel, stride=draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank)),
                padding=[draw(st.integers(0, k // 2)) for k in kernel],
                dilation=draw(st.lists(st.integers(1, 2), min_size=rank, max_size=rank)),
                size=draw(st.lists(st.integers(5, 8), min_size=rank, max_size=rank)),
                dtype=draw(st.sampled_from(sorted(TOL))), seed=draw(st.integers(0, 2**16)))


@FEW
@given(pool_cases())
def test_pools_jit_and_grad_match_reduce_window(case):
    rng = np.random.default_rng(case["seed"])
    rank, dtype = case["rank"], case["dtype"]
    x = jnp.asarray(rng.standard_normal((2, 3, *case["size"])), dtype=dtype)
    k, s, p, d = case["kernel"], case["stride"], case["padding"], case["dilation"]
    pairs = [
        (lambda x: getattr(fcj, f"max_pool{rank}d")(x, k, s, p, d), lambda x: lax_max_pool(x, k, s, p, d)),
        (lambda x: getattr(fcj, f"avg_pool{rank}d")(x, k, s, p), lambda x: lax_avg_pool(x, k, s, p)),
    ]
    for index, (ours, theirs) in enumerate(pairs):
        y = theirs(x)
        close(jax.jit(ours)(x), y, dtype)
        if index == 0 and max(d) > 1:
            continue  # JAX has no gradient of dilated max pooling to compare with (ferroconv does)
        probe = jnp.asarray(rng.standard_normal(y.shape), dtype=dtype)
        close(jax.jit(jax.grad(lambda x: (ours(x) * probe).sum()))(x),
              jax.grad(lambda x: (theirs(x) * probe).sum())(x), dtype)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_adaptive_pools_equal_ferroconv_and_their_gradients_are_adjoint(rank):
    rng = np.random.default_rng(rank)
    x = jnp.asarray(rng.standard_normal((2, 3, *([7] * rank))))
    out = (3,) * rank
    for name in ("adaptive_avg_pool", "adaptive_max_pool"):
        ours = getattr(fcj, f"{name}{rank}d")
        y = jax.jit(lambda x: ours(x, out))(x)
        reference = getattr(fc, f"{name}{rank}d")(np.asarray(x), out)
        np.testing.assert_array_equal(np.asarray(y), reference)
        # <f(x), g> linear in x for average; for max the gradient is the scatter of g at the argmax
        g = jnp.asarray(rng.standard_normal(y.shape))
        grad = jax.grad(lambda x: (ours(x, out) * g).sum())(x)
        if name == "adaptive_avg_pool":
            np.testing.assert_allclose(float((grad * x).sum()), float((y * g).sum()), rtol=1e-12)
        else:
            _, idx = getattr(fc, f"{name}{rank}d")(np.asarray(x), out, return_indices=True)
            expected = np.zeros(np.asarray(x).shape).reshape(2, 3, -1)
            np.add.at(expected, (np.arange(2)[:, None, None], np.arange(3)[None, :, None], idx.reshape(2, 3, -1)),
                      np.asarray(g).reshape(2, 3, -1))
            np.testing.assert_array_equal(np.asarray(grad).reshape(2, 3, -1), expected)


def test_vmap_and_value_and_grad():
    rng = np.random.default_rng(0)
    xs = jnp.asarray(rng.standard_normal((3, 2, 4, 6, 6)))  # a vmapped axis of 3 batches
    w = jnp.asarray(rng.standard_normal((5, 4, 3, 3)))

    def loss(w, x):
        return (fcj.max_pool2d(fcj.conv2d(x, w, padding=1), 2) ** 2).sum()

    mapped = jax.jit(jax.vmap(jax.value_and_grad(loss), in_axes=(None, 0)))(w, xs)
    for i in range(3):
        value, grad = jax.value_and_grad(loss)(w, xs[i])
        np.testing.assert_allclose(np.asarray(mapped[0][i]), np.asarray(value), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(mapped[1][i]), np.asarray(grad), rtol=1e-12)
    y = jax.vmap(lambda x: fcj.conv2d(x, w))(xs)
    np.testing.assert_allclose(np.asarray(y[1]), fc.conv2d(np.asarray(xs[1]), np.asarray(w)), rtol=1e-12)


def test_float32_stays_float32_and_errors_are_raised_at_trace_time():
    x = jnp.ones((1, 3, 6, 6), dtype=jnp.float32)
    w = jnp.ones((4, 3, 3, 3), dtype=jnp.float32)
    assert fcj.conv2d(x, w).dtype == jnp.float32
    assert jax.grad(lambda w: fcj.conv2d(x, w).sum())(w).dtype == jnp.float32
    with pytest.raises(ValueError, match="x has 3 channels"):
        jax.jit(lambda x: fcj.conv2d(x, jnp.ones((4, 2, 3, 3), dtype=jnp.float32)))(x)
    with pytest.raises(TypeError, match="must share a dtype"):
        fcj.conv2d(x, w.astype(jnp.float64))
    with pytest.raises(TypeError, match="floating dtype"):
        fcj.conv2d(x.astype(jnp.int32), w)
    with pytest.raises(ValueError, match="is larger than the padded input size"):
        fcj.conv2d(x, jnp.ones((4, 3, 9, 9), dtype=jnp.float32))


def test_functional_accepts_jax_arrays():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 6, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    np.testing.assert_array_equal(fc.conv2d(jnp.asarray(x), jnp.asarray(w)), fc.conv2d(x, w))
