"""max_unpool{1,2,3}d_backward: a gather of grad_out at the indices, the adjoint of
the unpooling's scatter, against a plain NumPy reference and PyTorch's autograd."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ferroconv as fc

UNPOOL = {1: fc.max_unpool1d, 2: fc.max_unpool2d, 3: fc.max_unpool3d}
BACKWARD = {1: fc.max_unpool1d_backward, 2: fc.max_unpool2d_backward, 3: fc.max_unpool3d_backward}
POOL = {1: fc.max_pool1d, 2: fc.max_pool2d, 3: fc.max_pool3d}


def reference(grad_out, indices):
    """grad_x[n, c, o] = grad_out[n, c, indices[n, c, o]] with loops over planes."""
    n, c = indices.shape[:2]
    flat_out = grad_out.reshape(n, c, -1)
    flat_idx = indices.reshape(n, c, -1)
    result = np.empty(flat_idx.shape, grad_out.dtype)
    for i in range(n):
        for j in range(c):
            for o in range(flat_idx.shape[2]):
                result[i, j, o] = flat_out[i, j, flat_idx[i, j, o]]
    return result.reshape(indices.shape)


@st.composite
def cases(draw):
    rank = draw(st.integers(1, 3))
    kernel = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 3))
    size = [draw(st.integers(kernel, 7)) for _ in range(rank)]
    return dict(rank=rank, kernel=kernel, stride=stride, size=size, batched=draw(st.booleans()),
                dtype=draw(st.sampled_from([np.float32, np.float64])), seed=draw(st.integers(0, 2**16)),
                layout=draw(st.sampled_from(["c", "reversed", "fortran"])))


def arrange(a, layout):
    if layout == "reversed":
        return np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    if layout == "fortran":
        return np.asfortranarray(a)
    return a


@given(cases())
def test_gather_matches_reference_and_is_the_adjoint_of_unpooling(case):
    rng = np.random.default_rng(case["seed"])
    rank = case["rank"]
    x = rng.standard_normal((2, 3, *case["size"])).astype(case["dtype"])
    values, indices = POOL[rank](x, case["kernel"], case["stride"], return_indices=True)
    if not case["batched"]:
        values, indices = values[0], indices[0]
    out_size = x.shape[2:]
    unpooled = UNPOOL[rank](values, indices, case["kernel"], case["stride"], output_size=out_size)
    g = arrange(rng.standard_normal(unpooled.shape).astype(case["dtype"]), case["layout"])
    grad = BACKWARD[rank](g, arrange(indices, case["layout"]))
    assert grad.shape == values.shape and grad.dtype == values.dtype
    batched = (lambda a: a) if case["batched"] else (lambda a: a[None])
    np.testing.assert_array_equal(batched(grad), reference(batched(g), batched(indices)))
    # adjointness where the indices do not repeat (overlapping windows may pick one cell twice)
    flat = batched(indices).reshape(batched(indices).shape[0], 3, -1)
    if all(len(set(row)) == len(row) for plane in flat for row in plane):
        lhs = float(np.sum(unpooled.astype(np.float64) * g))
        rhs = float(np.sum(values.astype(np.float64) * grad))
        assert lhs == pytest.approx(rhs, rel=1e-6, abs=1e-9)


def test_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 8, 8))
    values, indices = fc.max_pool2d(x, 2, return_indices=True)
    t_values = torch.tensor(values, requires_grad=True)
    out = torch.nn.functional.max_unpool2d(t_values, torch.from_numpy(indices), 2, output_size=(8, 8))
    g = rng.standard_normal(out.shape)
    (expected,) = torch.autograd.grad(out, t_values, torch.from_numpy(g))
    np.testing.assert_array_equal(fc.max_unpool2d_backward(g, indices), expected.numpy())


def test_bit_identical_for_any_thread_count(restore_threads):
    rng = np.random.default_rng(4)
    g = rng.standard_normal((8, 64, 32, 32)).astype(np.float32)
    indices = rng.integers(0, 32 * 32, size=(8, 64, 16, 16))
    results = []
    for threads in (1, 2, 3):
        fc.set_num_threads(threads)
        results.append(fc.max_unpool2d_backward(g, indices))
    assert all(np.array_equal(results[0], r) for r in results[1:])


def test_errors_name_the_problem():
    g = np.zeros((1, 2, 4, 4))
    with pytest.raises(ValueError, match=r"max_unpool2d_backward: indices holds 16 .* 16 elements"):
        fc.max_unpool2d_backward(g, np.full((1, 2, 2, 2), 16))
    with pytest.raises(ValueError, match="indices holds -1"):
        fc.max_unpool2d_backward(g, np.full((1, 2, 2, 2), -1))
    with pytest.raises(ValueError, match="grad_out has 1 images of 2 channels but indices has 1 of 3"):
        fc.max_unpool2d_backward(g, np.zeros((1, 3, 2, 2), np.int64))
    with pytest.raises(TypeError, match="indices must have dtype int64"):
        fc.max_unpool2d_backward(g, np.zeros((1, 2, 2, 2), np.int32))
    with pytest.raises(ValueError, match="indices must have as many axes as grad_out"):
        fc.max_unpool2d_backward(g, np.zeros((2, 2, 2), np.int64))


def test_16_bit_is_exact():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(5)
    g = rng.standard_normal((1, 2, 6, 6)).astype(ml_dtypes.bfloat16)
    indices = rng.integers(0, 36, size=(1, 2, 3, 3))
    grad = fc.max_unpool2d_backward(g, indices)
    assert grad.dtype == g.dtype
    np.testing.assert_array_equal(grad.astype(np.float32), reference(g.astype(np.float32), indices))
