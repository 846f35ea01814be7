"""``convolve`` (true, flipped-kernel convolution) and the geometry helpers:
conv_output_shape, conv_transpose_output_shape, same_padding, receptive_field,
including the lecture examples."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ferroconv as fc
import reference as ref
from checks import assert_unchanged, check_result, maxabs, snapshot
from strategies import ODD_LAYOUTS, conv_cases, convolve_cases, make_values, transpose_cases

# ---------------------------------------------------------------------------
# convolve
# ---------------------------------------------------------------------------


def expected_convolve(case):
    if case.multichannel:
        return ref.convolve_multichannel(case.x, case.kernel, case.mode)
    return ref.convolve_nd(case.x, case.kernel, case.mode)


def check_convolve(case):
    before = snapshot(case.x, case.kernel)
    out = fc.convolve(case.x, case.kernel, case.mode, multichannel=case.multichannel)
    expected = expected_convolve(case)
    check_result(out, case.dtype, expected.shape, (case.x, case.kernel))
    k_spatial = case.kernel.shape[-(case.x.ndim - (1 if case.multichannel else 0)):]
    ref.assert_matches(out, expected, case.dtype, int(np.prod(k_spatial)),
                       maxabs(case.x) * maxabs(case.kernel), repr(case))
    assert_unchanged(before, (case.x, case.kernel))


@given(convolve_cases())
def test_convolve_matches_reference(case):
    check_convolve(case)


@given(convolve_cases(layouts=ODD_LAYOUTS))
def test_convolve_unaligned_or_packed_field_arrays(case):
    check_convolve(case)


def test_convolve_known_values():
    x = np.array([1.0, 2.0, 3.0])
    k = np.array([0.0, 1.0, 0.5])
    np.testing.assert_array_equal(fc.convolve(x, k), [0, 1, 2.5, 4, 1.5])
    np.testing.assert_array_equal(fc.convolve(x, k, "same"), [1, 2.5, 4])
    np.testing.assert_array_equal(fc.convolve(x, k, "valid"), [2.5])
    # even kernel: "same" starts at (K-1)//2 of the full output (scipy's convention)
    np.testing.assert_array_equal(fc.convolve(np.array([1.0, 2, 3, 4]), np.array([1.0, 1]), "same"),
                                  [1, 3, 5, 7])
    # 2D: a kernel with a single 1 at (1, 2) shifts the signal by (1, 2) in "full"
    img = np.arange(12.0).reshape(3, 4)
    k2 = np.zeros((2, 3))
    k2[1, 2] = 1.0
    full = fc.convolve(img, k2, "full")
    assert full.shape == (4, 6)
    np.testing.assert_array_equal(full[1:, 2:], img)
    assert np.count_nonzero(full[:1]) == 0 and np.count_nonzero(full[:, :2]) == 0


@given(convolve_cases(dtypes=(np.float64,), multichannel=False))
def test_convolve_equals_cross_correlation_with_flipped_kernel(case):
    """convolve(x, k) == conv{n}d(x, flip(k)) with padding chosen per mode:
    full (K-1, K-1), same (K//2, (K-1)//2), valid 0."""
    x, k = np.asarray(case.x), np.asarray(case.kernel)
    nd = x.ndim
    pads = {
        "full": tuple((kk - 1, kk - 1) for kk in k.shape),
        "same": tuple((kk // 2, (kk - 1) // 2) for kk in k.shape),
        "valid": tuple((0, 0) for _ in k.shape),
    }[case.mode]
    flipped = k[(slice(None, None, -1),) * nd]
    corr = getattr(fc, f"conv{nd}d")(x[None, None], flipped[None, None], padding=pads)[0, 0]
    out = fc.convolve(x, k, case.mode)
    np.testing.assert_allclose(out, corr, rtol=1e-10, atol=1e-10 * (1 + maxabs(corr)))


@given(convolve_cases(dtypes=(np.float64,), modes=("full",), multichannel=False))
def test_full_convolution_is_commutative(case):
    a = fc.convolve(case.x, case.kernel, "full")
    b = fc.convolve(case.kernel, case.x, "full")
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * (1 + maxabs(a)))


@given(convolve_cases(dtypes=(np.float64,), modes=("same",)), st.data())
def test_convolve_with_centered_delta_is_identity_in_same_mode(case, data):
    nd = case.x.ndim - (1 if case.multichannel else 0)
    size = tuple(data.draw(st.sampled_from([1, 3, 5]), label="odd kernel") for _ in range(nd))
    delta = np.zeros(size)
    delta[tuple(s // 2 for s in size)] = 1.0
    out = fc.convolve(case.x, delta, "same", multichannel=case.multichannel)
    np.testing.assert_allclose(out, case.x, rtol=1e-12, atol=1e-12 * (1 + maxabs(case.x)))


@given(convolve_cases(dtypes=(np.float64,), multichannel=True))
def test_multichannel_convolve_is_per_channel_convolve(case):
    out = fc.convolve(case.x, case.kernel, case.mode, multichannel=True)
    per_channel = case.kernel.ndim == case.x.ndim
    for c in range(case.x.shape[0]):
        kc = case.kernel[c] if per_channel else case.kernel
        np.testing.assert_allclose(out[c], fc.convolve(case.x[c], kc, case.mode),
                                   rtol=1e-12, atol=1e-12 * (1 + maxabs(out)))


def test_convolve_valid_with_kernel_larger_than_signal_raises():
    with pytest.raises(ValueError, match="kernel|valid"):
        fc.convolve(np.ones(3), np.ones(4), "valid")
    with pytest.raises(ValueError, match="kernel|valid"):
        fc.convolve(np.ones((5, 3)), np.ones((2, 4)), "valid")


# ---------------------------------------------------------------------------
# geometry helpers
# ---------------------------------------------------------------------------


def test_lecture_example_32x32x3_input_six_5x5_filters_gives_28x28x6():
    assert tuple(fc.conv_output_shape((32, 32), (5, 5))) == (28, 28)
    x = make_values(0, (1, 3, 32, 32), np.float32)
    w = make_values(1, (6, 3, 5, 5), np.float32)
    b = make_values(2, (6,), np.float32)
    y = fc.conv2d(x, w, b)
    assert y.shape == (1, 6, 28, 28)
    y_unbatched = fc.conv2d(x[0], w, b)
    assert y_unbatched.shape == (6, 28, 28)
    ref.assert_matches(y, ref.conv_nd(x, w, b), np.float32, 75, maxabs(x) * maxabs(w) + maxabs(b))


def test_lecture_examples_output_size_formula():
    # (W - K + 2P) / S + 1
    assert tuple(fc.conv_output_shape((7, 7), (3, 3), stride=1, padding=0)) == (5, 5)
    assert tuple(fc.conv_output_shape((7, 7), (3, 3), stride=2, padding=0)) == (3, 3)
    assert tuple(fc.conv_output_shape((32, 32), (5, 5), stride=1, padding=2)) == (32, 32)
    assert tuple(fc.conv_output_shape((227, 227), (11, 11), stride=4, padding=0)) == (55, 55)
    assert tuple(fc.conv_output_shape((224, 224), (7, 7), stride=2, padding=3)) == (112, 112)
    assert tuple(fc.conv_output_shape(10, 3)) == (8,)


def test_same_padding_values():
    assert tuple(fc.same_padding(5)) == (2, 2)
    assert tuple(fc.same_padding(3)) == (1, 1)
    assert tuple(fc.same_padding(1)) == (0, 0)
    assert tuple(fc.same_padding(4)) == (1, 2)  # odd total: extra cell at the end
    assert tuple(fc.same_padding(2)) == (0, 1)
    assert tuple(fc.same_padding(3, dilation=2)) == (2, 2)
    assert tuple(fc.same_padding(4, dilation=3)) == (4, 5)
    for k in range(1, 12):
        for d in range(1, 5):
            assert tuple(fc.same_padding(k, d)) == ref.same_padding(k, d)


def test_output_size_formula_over_a_grid():
    for W in range(1, 14):
        for K in range(1, 6):
            for P in range(0, 4):
                for S in range(1, 5):
                    if W - K + 2 * P < 0:
                        continue
                    expected = (W - K + 2 * P) // S + 1
                    assert tuple(fc.conv_output_shape(W, K, S, P)) == (expected,), (W, K, P, S)
                    assert tuple(fc.conv_output_shape((W, W + 1), (K, K), (S, 1), (P, P))) == (
                        expected, (W + 1 - K + 2 * P) + 1)
                    for D in (1, 2, 3):
                        if W + 2 * P - D * (K - 1) - 1 < 0:
                            continue
                        assert tuple(fc.conv_output_shape(W, K, S, P, D)) == (
                            (W + 2 * P - D * (K - 1) - 1) // S + 1,)


@given(conv_cases())
def test_conv_output_shape_matches_actual_conv_output(case):
    spatial = case.x.shape[-case.rank:]
    shape = fc.conv_output_shape(spatial, case.weight.shape[2:], case.stride, case.padding,
                                 case.dilation, case.padding_mode)
    assert tuple(shape) == case.out_spatial
    y = getattr(fc, f"conv{case.rank}d")(case.x, case.weight, case.bias, **case.kwargs())
    assert y.shape[-case.rank:] == case.out_spatial


def test_conv_transpose_output_shape_over_a_grid():
    for L in range(1, 8):
        for K in range(1, 5):
            for S in range(1, 4):
                for D in range(1, 3):
                    for P in range(0, 3):
                        for OP in range(0, max(S, D)):
                            expected = (L - 1) * S - 2 * P + D * (K - 1) + OP + 1
                            if expected < 1:
                                continue
                            got = fc.conv_transpose_output_shape(L, K, S, P, OP, D)
                            assert tuple(got) == (expected,), (L, K, S, P, OP, D)


@given(transpose_cases())
def test_conv_transpose_output_shape_inverts_conv_output_shape(case):
    """For output_padding < stride the transposed conv maps the conv's output size
    back to its input size."""
    spatial = case.out_spatial
    back = fc.conv_output_shape(spatial, case.weight.shape[2:], case.stride, case.padding,
                                case.dilation)
    if all(op < s for op, s in zip(case.output_padding_t, case.stride_t)):
        assert tuple(back) == case.x.shape[-case.rank:]


@pytest.mark.parametrize("K", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("L", [1, 2, 3, 4, 10])
def test_receptive_field_of_stacked_stride1_convs(K, L):
    assert fc.receptive_field([(K, 1)] * L) == 1 + L * (K - 1)
    assert fc.receptive_field([(K, 1, 1)] * L) == 1 + L * (K - 1)


def test_receptive_field_grows_with_dilation_and_stride():
    assert fc.receptive_field([(3, 1, 2)]) == 5
    assert fc.receptive_field([(3, 1, 1), (3, 1, 2), (3, 1, 4), (3, 1, 8)]) == 31  # WaveNet-style
    assert fc.receptive_field([(2, 2)] * 4) == 16  # non-overlapping 2x2 stride-2 pyramid
    assert fc.receptive_field([(3, 2), (3, 2), (3, 2)]) == 1 + 2 + 4 + 8
    # a later layer's kernel is multiplied by the strides before it, not after
    assert fc.receptive_field([(3, 2), (3, 1)]) == 7
    assert fc.receptive_field([(3, 1), (3, 2)]) == 5
    # two stacked 3x3 see what one 5x5 sees; three see 7x7 (VGG argument)
    assert fc.receptive_field([(3, 1)] * 2) == fc.receptive_field([(5, 1)]) == 5
    assert fc.receptive_field([(3, 1)] * 3) == fc.receptive_field([(7, 1)]) == 7
    # AlexNet-ish conv1 + pool1
    assert fc.receptive_field([(11, 4), (3, 2)]) == 11 + 2 * 4


@given(st.lists(st.tuples(st.integers(1, 7), st.integers(1, 4), st.integers(1, 4)),
                min_size=1, max_size=6))
def test_receptive_field_matches_reference(layers):
    assert fc.receptive_field(layers) == ref.receptive_field(layers)
    two = [(k, s) for k, s, _ in layers]
    assert fc.receptive_field(two) == ref.receptive_field(two)
