"""Hand-picked edge cases (sizes up to overflow, zero-size axes, broadcast arrays
of absurd logical size, huge ``groups`` / ``output_size``, missing arrays, odd
layouts of index arrays), each run in the fuzz worker subprocess with a short
timeout: a call returns (its result spot-checked) or raises ValueError /
TypeError / MemoryError with a message; never a panic, another exception type, a
crash or a hang. Several of these were first found by the fuzz tests and are kept
here so every CI run exercises them deterministically."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

import fuzz_args as fa
from fuzz_args import Arr, Call, Case, Like, Relayout, ShapeOf
from test_robustness_fuzz import report

# every case here takes milliseconds when it works
TIMEOUT = float(os.environ.get("FERROCONV_FUZZ_TIMEOUT") or
                (2 if settings.get_current_profile_name() == "ci" else 10))

X1 = Arr((2, 3, 9), "float32")
W1 = Arr((4, 3, 3), "float32", seed=1)
G1 = Arr((2, 4, 7), "float32", seed=2)
X2 = Arr((2, 3, 6, 5), "float64")
W2 = Arr((4, 3, 3, 3), "float64", seed=1)
TW1 = Arr((3, 4, 3), "float32", seed=1)
POOL1 = Call("max_pool1d", {"x": X1, "kernel_size": 2, "return_indices": True})

CASES = {
    # ------------------------------------------------ sizes up to overflow
    "conv1d padding 2**62": Case("conv1d", {"x": X1, "weight": W1, "padding": 2**62}, "mutated"),
    "conv1d padding 2**63": Case("conv1d", {"x": X1, "weight": W1, "padding": 2**63}, "mutated"),
    "conv1d per-side padding 2**62": Case("conv1d", {"x": X1, "weight": W1, "padding": ((2**62, 2**62),)},
                                          "mutated"),
    "conv1d stride 2**62": Case("conv1d", {"x": X1, "weight": W1, "stride": 2**62}, "mutated"),
    "conv1d dilation 2**62 with padding 2**62": Case("conv1d", {"x": X1, "weight": W1, "dilation": 2**62,
                                                                "padding": 2**62}, "mutated"),
    "conv2d dilation 2**31": Case("conv2d", {"x": X2, "weight": W2, "dilation": (1, 2**31)}, "mutated"),
    "conv2d groups 2**62": Case("conv2d", {"x": X2, "weight": W2, "groups": 2**62}, "mutated"),
    "conv2d groups 2**64": Case("conv2d", {"x": X2, "weight": W2, "groups": 2**64}, "mutated"),
    "conv2d_backward groups 2**64": Case("conv2d_backward", {"grad_out": Arr((2, 4, 4, 3), "float64"), "x": X2,
                                                             "weight": W2, "groups": 2**64}, "mutated"),
    "conv2d_backward stride 2**40, 16 channels (sub-pixel input gradient)": Case("conv2d_backward", {
        "grad_out": Arr((1, 4, 1, 1), "float32"), "x": Arr((1, 16, 5, 5), "float32"),
        "weight": Arr((4, 16, 3, 3), "float32", seed=1), "stride": 2**40, "padding": 1}, "valid",
        {"must_succeed": True, "st": (2**40, 2**40), "lo": (1, 1), "hi": (1, 1), "dil": (1, 1), "groups": 1,
         "mode": "zeros"}),
    "conv_transpose1d groups 2**64": Case("conv_transpose1d", {"x": X1, "weight": TW1, "groups": 2**64},
                                          "mutated"),
    "conv_transpose1d stride 2**62": Case("conv_transpose1d", {"x": X1, "weight": TW1, "stride": 2**62},
                                          "mutated"),
    "conv_transpose1d stride 2**40 (absurd output)": Case("conv_transpose1d", {"x": X1, "weight": TW1,
                                                                               "stride": 2**40}, "mutated"),
    "conv_transpose1d dilation 2**62": Case("conv_transpose1d", {"x": X1, "weight": TW1, "dilation": 2**62},
                                            "mutated"),
    "conv_output_shape 2**62": Case("conv_output_shape", {"input_shape": 2**62, "kernel_size": 1,
                                                          "padding": 2**62}, "mutated"),
    "conv_transpose_output_shape 2**62": Case("conv_transpose_output_shape", {
        "input_shape": (2**62,), "kernel_size": 2**62, "stride": 2**62}, "mutated"),
    "same_padding 2**62": Case("same_padding", {"kernel_size": 2**62, "dilation": 2**62}, "mutated"),
    "receptive_field 2**62": Case("receptive_field", {"layers": [(2**62, 2**62, 2**62)] * 3}, "mutated"),
    "set_num_threads 2**64": Case("set_num_threads", {"threads": 2**64}, "mutated"),
    "max_pool1d kernel 2**62": Case("max_pool1d", {"x": X1, "kernel_size": 2**62, "padding": 2**61},
                                    "mutated"),
    "avg_pool1d stride 2**63": Case("avg_pool1d", {"x": X1, "kernel_size": 2, "stride": 2**63}, "mutated"),
    "adaptive_avg_pool1d output 2**40": Case("adaptive_avg_pool1d", {"x": X1, "output_size": 2**40},
                                             "mutated"),
    "max_unpool1d output_size 2**62": Case("max_unpool1d", {
        "x": Call("max_pool1d", POOL1.args, 0), "indices": Call("max_pool1d", POOL1.args, 1),
        "kernel_size": 2, "output_size": 2**62}, "mutated"),
    "pool_output_shape input 2**40": Case("pool_output_shape", {"input_shape": 2**40, "kernel_size": 2},
                                          "mutated"),
    "pool_output_shape 2**62": Case("pool_output_shape", {"input_shape": 2**62, "kernel_size": 2**62,
                                                          "padding": 2**61, "ceil_mode": True}, "mutated"),
    # ------------------------------------------------ zero-size axes
    "conv1d empty batch, huge length": Case("conv1d", {"x": Arr((0, 3, 2**40), "float32"), "weight": W1},
                                            "mutated"),
    "conv2d no channels, groups 2**62": Case("conv2d", {"x": Arr((1, 0, 4, 4), "float32"),
                                                        "weight": Arr((0, 0, 1, 1), "float32"),
                                                        "groups": 2**62}, "mutated"),
    "conv2d_backward no channels, groups 2**62": Case("conv2d_backward", {
        "grad_out": Arr((1, 0, 4, 4), "float32"), "x": Arr((1, 0, 4, 4), "float32"),
        "weight": Arr((0, 0, 1, 1), "float32"), "groups": 2**62}, "mutated"),
    "conv_transpose2d no channels, groups 2**62": Case("conv_transpose2d", {
        "x": Arr((1, 0, 4, 4), "float32"), "weight": Arr((0, 0, 1, 1), "float32"), "groups": 2**62}, "mutated"),
    "conv2d huge batch, no channels": Case("conv2d", {"x": Arr((2**50, 0, 4, 4), "float32", "zeros", "broadcast"),
                                                      "weight": Arr((0, 0, 1, 1), "float32")}, "mutated"),
    "conv1d zero kernel": Case("conv1d", {"x": X1, "weight": Arr((4, 3, 0), "float32")}, "mutated"),
    "max_pool1d empty batch, huge length": Case("max_pool1d", {"x": Arr((0, 1, 2**40), "float32"),
                                                               "kernel_size": 3}, "mutated"),
    "adaptive_avg_pool1d empty batch, output 2**61": Case("adaptive_avg_pool1d", {
        "x": Arr((0, 1, 7), "float32"), "output_size": 2**61}, "mutated"),
    "adaptive_max_pool1d empty batch, output 2**62": Case("adaptive_max_pool1d", {
        "x": Arr((0, 1, 7), "float32"), "output_size": 2**62, "return_indices": True}, "mutated"),
    "adaptive_max_pool2d unbatched, no channels, output 2**31": Case("adaptive_max_pool2d", {
        "x": Arr((0, 4, 5), "float64"), "output_size": 2**31, "return_indices": True}, "mutated"),
    "adaptive_avg_pool2d no channels, output 2**30": Case("adaptive_avg_pool2d", {
        "x": Arr((1, 0, 4, 5), "float64"), "output_size": 2**30}, "mutated"),
    "avg_pool1d_backward empty batch, input length 2**61": Case("avg_pool1d_backward", {
        "grad_out": Arr((0, 1, 1), "float64"), "input_shape": (0, 1, 2**61), "kernel_size": 2**61}, "mutated"),
    "adaptive_avg_pool2d_backward empty grad, input_shape (2**62-1, 1)": Case("adaptive_avg_pool2d_backward", {
        "grad_out": Arr((0, 2, 3, 4), "float32"), "input_shape": (2**62 - 1, 1)}, "mutated"),
    "global_max_pool empty spatial": Case("global_max_pool", {"x": Arr((2, 3, 0), "float64")}, "mutated"),
    "convolve empty kernel": Case("convolve", {"x": Arr((5,), "float64"), "kernel": Arr((0,), "float64")},
                                  "mutated"),
    # ------------------------------------------------ absurd logical sizes (broadcast, no memory)
    "conv1d broadcast x of 2**45 elements": Case("conv1d", {"x": Arr((1, 3, 2**45), "float32", "ones",
                                                                     "broadcast"), "weight": W1}, "mutated"),
    "conv2d broadcast weight 2**40 wide": Case("conv2d", {"x": X2, "weight": Arr((4, 3, 3, 2**40), "float64",
                                                                                 "ones", "broadcast")},
                                               "mutated"),
    "global_avg_pool broadcast x of 2**40 elements": Case("global_avg_pool", {
        "x": Arr((1, 1, 2**40), "float32", "ones", "broadcast")}, "mutated"),
    "avg_pool1d broadcast x of 2**40 elements": Case("avg_pool1d", {
        "x": Arr((1, 1, 2**40), "float64", "zeros", "broadcast"), "kernel_size": 2}, "mutated"),
    # ------------------------------------------------ wrong kinds of arguments
    "conv1d_backward grad_out None": Case("conv1d_backward", {"grad_out": None, "x": X1, "weight": W1},
                                          "mutated"),
    "conv_transpose1d_backward grad_out None": Case("conv_transpose1d_backward", {
        "grad_out": None, "x": X1, "weight": TW1}, "mutated"),
    "conv1d x None": Case("conv1d", {"x": None, "weight": W1}, "mutated"),
    "conv1d x dict": Case("conv1d", {"x": {}, "weight": W1}, "mutated"),
    "conv1d x 7-d": Case("conv1d", {"x": Arr((1,) * 7, "float32"), "weight": W1}, "mutated"),
    "conv1d x 0-d": Case("conv1d", {"x": Arr((), "float32"), "weight": W1}, "mutated"),
    "conv1d x complex": Case("conv1d", {"x": Arr((2, 3, 9), "complex64"), "weight": W1}, "mutated"),
    "conv1d x object": Case("conv1d", {"x": Arr((2, 3, 9), "object"), "weight": W1}, "mutated"),
    "conv1d stride float": Case("conv1d", {"x": X1, "weight": W1, "stride": 1.0}, "mutated"),
    "conv1d stride tuple too long": Case("conv1d", {"x": X1, "weight": W1, "stride": (1, 1)}, "mutated"),
    "conv1d groups tuple": Case("conv1d", {"x": X1, "weight": W1, "groups": (1,)}, "mutated"),
    "conv1d needs int": Case("conv1d_backward", {"grad_out": G1, "x": X1, "weight": W1, "needs": 1}, "mutated"),
    "conv1d padding NaN": Case("conv1d", {"x": X1, "weight": W1, "padding": float("nan")}, "mutated"),
    "max_pool1d kernel_size None": Case("max_pool1d", {"x": X1, "kernel_size": None}, "mutated"),
    "max_pool1d_backward indices float": Case("max_pool1d_backward", {
        "grad_out": Like(Call("max_pool1d", POOL1.args, 0)), "indices": Arr((2, 3, 4), "float64"),
        "input_shape": ShapeOf(X1)}, "mutated"),
    # ------------------------------------------------ semantics
    "conv_transpose1d per-side padding pairs": Case("conv_transpose1d", {"x": X1, "weight": TW1,
                                                                         "padding": ((0, 5),)}, "mutated"),
    "max_pool1d_backward indices as a packed record field": Case("max_pool1d_backward", {
        "grad_out": Like(Call("max_pool1d", POOL1.args, 0)),
        "indices": Relayout(Call("max_pool1d", POOL1.args, 1), "packed_field"), "input_shape": ShapeOf(X1)},
        "valid", {"must_succeed": True}),
    "max_unpool1d indices as a packed record field": Case("max_unpool1d", {
        "x": Call("max_pool1d", POOL1.args, 0),
        "indices": Relayout(Call("max_pool1d", POOL1.args, 1), "packed_field"), "kernel_size": 2},
        "valid", {"must_succeed": True}),
}


@pytest.fixture(scope="module")
def worker():
    w = fa.Worker(timeout=TIMEOUT)
    w.start()
    yield w
    w.close()


def _functions(spec):
    """Names of the public functions a case calls (itself and its Call nodes)."""
    if isinstance(spec, Case):
        return {spec.fn} | _functions(spec.args)
    if isinstance(spec, Call):
        return {spec.fn} | _functions(spec.args)
    if isinstance(spec, (Like, Relayout, ShapeOf)):
        return _functions(spec.node)
    if isinstance(spec, dict):
        return set().union(*map(_functions, spec.values())) if spec else set()
    if isinstance(spec, (tuple, list)):
        return set().union(*map(_functions, spec)) if spec else set()
    return set()


@pytest.mark.parametrize("label", list(CASES))
def test_edge_case(worker, label):
    case = CASES[label]
    missing = _functions(case) - set(fa.public_functions())
    if missing:
        pytest.skip(f"not exported by ferroconv.functional: {sorted(missing)}")
    res = worker.run(case)
    if res["outcome"] == "skipped":
        pytest.fail(f"the case could not be built: {res.get('message')}")
    if res["outcome"] == "bad":
        pytest.fail(report(repr(case), case.call_src(), res), pytrace=False)
