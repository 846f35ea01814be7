"""ferroconv.dask pooling with per-side and "same" padding, dilated average
pooling and Lp pooling equals the single in-memory call, for random chunkings
(chunks smaller than the halo included)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

da = pytest.importorskip("dask.array")
pytest.importorskip("distributed")

import ferroconv as fc  # noqa: E402
import ferroconv.dask as fcd  # noqa: E402
from dask_support import chunkings, compute  # noqa: E402
from test_pool_sided_lp import make_input, sided_cases, window_args  # noqa: E402


@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_padded_and_lp_pooling_on_the_cluster_equal_the_single_call(dask_client, data):
    case = data.draw(sided_cases(), label="case")
    p = data.draw(st.sampled_from([1.0, 2.0, 3.0, math.inf]), label="p")
    x = make_input(case, positive=True).astype(case["dtype"])
    chunks = data.draw(chunkings(x.shape), label="chunks")
    lazy_x = da.from_array(x, chunks=chunks)
    args = window_args(case)
    rank, kernel = case["rank"], case["kernel"]
    tol = dict(rtol=1e-5, atol=1e-6) if case["dtype"] == np.float32 else dict(rtol=1e-12, atol=1e-12)
    got = compute(dask_client, getattr(fcd, f"max_pool{rank}d")(lazy_x, kernel, **args))
    np.testing.assert_array_equal(got, getattr(fc, f"max_pool{rank}d")(x, kernel, **args))
    for include in (True, False):
        got = compute(dask_client, getattr(fcd, f"avg_pool{rank}d")(lazy_x, kernel, count_include_pad=include,
                                                                     **args))
        np.testing.assert_allclose(got, getattr(fc, f"avg_pool{rank}d")(x, kernel, count_include_pad=include,
                                                                        **args), **tol)
    lp_args = (kernel, args["stride"], args["ceil_mode"], args["padding"], args["dilation"])
    got = compute(dask_client, getattr(fcd, f"lp_pool{rank}d")(lazy_x, p, *lp_args))
    np.testing.assert_allclose(got, getattr(fc, f"lp_pool{rank}d")(x, p, *lp_args), **tol)
