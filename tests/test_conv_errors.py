"""Bad input raises ValueError / TypeError naming the offending argument, one test
per error class, on forward and backward (and transposed) ops of every rank.
A Rust panic (pyo3's PanicException is not a ValueError) fails these tests."""

import numpy as np
import pytest

import ferroconv as fc
from ferroconv import nn

RANKS = [1, 2, 3]


def conv(rank):
    return getattr(fc, f"conv{rank}d")


def conv_bw(rank):
    return getattr(fc, f"conv{rank}d_backward")


def tconv(rank):
    return getattr(fc, f"conv_transpose{rank}d")


def tconv_bw(rank):
    return getattr(fc, f"conv_transpose{rank}d_backward")


def arr(*shape, dtype=np.float64):
    return np.ones(shape, dtype=dtype)


def sp(rank, n):
    return (n,) * rank


def valid_args(rank, size=6, k=3):
    """x (2, 4, *S), weight (6, 4, *k), grad_out of the valid conv's output."""
    x = arr(2, 4, *sp(rank, size))
    w = arr(6, 4, *sp(rank, k))
    g = arr(2, 6, *sp(rank, size - k + 1))
    return x, w, g


def word(name):
    """Regex for the argument name as a whole word ('padding' not 'padding_mode')."""
    return rf"\b{name}\b"


@pytest.mark.parametrize("rank", RANKS)
def test_x_with_wrong_ndim_raises_naming_x(rank):
    _, w, _ = valid_args(rank)
    for bad_ndim in (rank, rank + 3):  # unbatched is rank+1, batched rank+2
        x = arr(*([4] * bad_ndim)) if bad_ndim else np.float64(1.0)
        with pytest.raises(ValueError, match=word("x")):
            conv(rank)(x, w)
        with pytest.raises(ValueError, match=word("x")):
            conv_bw(rank)(arr(2, 6, *sp(rank, 2)), x, w)
    with pytest.raises(ValueError, match=word("x")):
        tconv(rank)(arr(*([4] * (rank + 3))), arr(4, 2, *sp(rank, 3)))


@pytest.mark.parametrize("rank", RANKS)
def test_channels_not_divisible_by_groups_raises_naming_groups(rank):
    x = arr(2, 4, *sp(rank, 6))
    with pytest.raises(ValueError, match="groups"):
        conv(rank)(x, arr(6, 1, *sp(rank, 3)), groups=3)  # C_in 4 % 3
    with pytest.raises(ValueError, match="groups"):
        conv(rank)(x, arr(5, 2, *sp(rank, 3)), groups=2)  # C_out 5 % 2
    with pytest.raises(ValueError, match="groups"):
        conv(rank)(x, arr(6, 4, *sp(rank, 3)), groups=0)
    with pytest.raises(ValueError, match="groups"):
        conv_bw(rank)(arr(2, 6, *sp(rank, 4)), x, arr(6, 1, *sp(rank, 3)), groups=3)
    with pytest.raises(ValueError, match="groups"):
        tconv(rank)(x, arr(4, 2, *sp(rank, 3)), groups=3)


@pytest.mark.parametrize("rank", RANKS)
def test_weight_in_channels_mismatch_raises_naming_weight(rank):
    x, _, g = valid_args(rank)
    w_bad = arr(6, 3, *sp(rank, 3))
    with pytest.raises(ValueError, match=word("weight")):
        conv(rank)(x, w_bad)
    with pytest.raises(ValueError, match=word("weight")):
        conv(rank)(x, arr(6, 1, *sp(rank, 3)), groups=2)  # needs 2 per group
    with pytest.raises(ValueError, match=word("weight")):
        conv_bw(rank)(g, x, w_bad)
    with pytest.raises(ValueError, match=word("weight")):
        conv(rank)(x, arr(6, 4, *sp(rank + 1, 3)))  # weight of the wrong ndim
    with pytest.raises(ValueError, match=word("weight")):
        tconv(rank)(x, arr(3, 2, *sp(rank, 3)))  # transposed weight (C_in, ...)


@pytest.mark.parametrize("rank", RANKS)
def test_kernel_larger_than_padded_input_raises_naming_kernel(rank):
    x = arr(2, 4, *sp(rank, 4))
    with pytest.raises(ValueError, match="kernel"):
        conv(rank)(x, arr(6, 4, *sp(rank, 5)))
    with pytest.raises(ValueError, match="kernel"):
        conv(rank)(x, arr(6, 4, *sp(rank, 3)), dilation=3)  # extent 7 > 4
    with pytest.raises(ValueError, match="kernel"):
        conv(rank)(x, arr(6, 4, *sp(rank, 7)), padding=1)  # 7 > 4 + 2
    with pytest.raises(ValueError, match="kernel"):
        conv_bw(rank)(arr(2, 6, *sp(rank, 1)), x, arr(6, 4, *sp(rank, 5)))


@pytest.mark.parametrize("rank", RANKS)
@pytest.mark.parametrize("bad", [0, -1])
def test_non_positive_stride_raises_naming_stride(rank, bad):
    x, w, g = valid_args(rank)
    with pytest.raises(ValueError, match="stride"):
        conv(rank)(x, w, stride=bad)
    with pytest.raises(ValueError, match="stride"):
        conv(rank)(x, w, stride=(1,) * (rank - 1) + (bad,))
    with pytest.raises(ValueError, match="stride"):
        conv_bw(rank)(g, x, w, stride=bad)
    with pytest.raises(ValueError, match="stride"):
        tconv(rank)(x, arr(4, 2, *sp(rank, 3)), stride=bad)


@pytest.mark.parametrize("rank", RANKS)
def test_stride_tuple_of_wrong_length_raises_naming_stride(rank):
    x, w, _ = valid_args(rank)
    with pytest.raises(ValueError, match="stride"):
        conv(rank)(x, w, stride=(1,) * (rank + 1))


@pytest.mark.parametrize("rank", RANKS)
@pytest.mark.parametrize("bad", [0, -2])
def test_non_positive_dilation_raises_naming_dilation(rank, bad):
    x, w, g = valid_args(rank)
    with pytest.raises(ValueError, match="dilation"):
        conv(rank)(x, w, dilation=bad)
    with pytest.raises(ValueError, match="dilation"):
        conv(rank)(x, w, dilation=(bad,) + (1,) * (rank - 1))
    with pytest.raises(ValueError, match="dilation"):
        conv_bw(rank)(g, x, w, dilation=bad)
    with pytest.raises(ValueError, match="dilation"):
        tconv(rank)(x, arr(4, 2, *sp(rank, 3)), dilation=bad)


@pytest.mark.parametrize("rank", RANKS)
def test_same_padding_with_a_stride_is_onnx_same_upper(rank):
    """PyTorch refuses padding='same' with a stride; the functional ops give it
    ONNX's meaning (ceil(L / stride) outputs, the odd padding cell at the end, as
    explicit pairs would); the nn layers keep PyTorch's refusal."""
    x, w, _ = valid_args(rank)
    stride = (1,) * (rank - 1) + (2,)
    out = conv(rank)(x, w, stride=stride, padding="same")
    spatial, kernel = x.shape[2:], w.shape[2:]
    assert out.shape[2:] == tuple(-(-n // s) for n, s in zip(spatial, stride))
    pairs = []
    for n, k, s in zip(spatial, kernel, stride):
        total = max((-(-n // s) - 1) * s + k - n, 0)
        pairs.append((total // 2, total - total // 2))
    np.testing.assert_array_equal(out, conv(rank)(x, w, stride=stride, padding=tuple(pairs)))
    layer = getattr(nn, f"Conv{rank}d")
    with pytest.raises(ValueError, match="same|stride"):
        layer(w.shape[1], w.shape[0], w.shape[2:], stride=2, padding="same")


@pytest.mark.parametrize("rank", RANKS)
def test_mismatched_dtypes_raise_type_error(rank):
    x, w, g = valid_args(rank)
    x32 = x.astype(np.float32)
    with pytest.raises(TypeError, match="(?i)dtype|float"):
        conv(rank)(x32, w)
    with pytest.raises(TypeError, match="(?i)dtype|float"):
        conv(rank)(x, w.astype(np.float32))
    with pytest.raises(TypeError, match="(?i)dtype|float"):
        conv(rank)(x, w, arr(6, dtype=np.float32))  # bias dtype
    with pytest.raises(TypeError, match="(?i)dtype|float"):
        conv_bw(rank)(g.astype(np.float32), x, w)  # grad_out dtype
    with pytest.raises(TypeError, match="(?i)dtype|float"):
        tconv(rank)(x32, arr(4, 2, *sp(rank, 3)))


@pytest.mark.parametrize("rank", RANKS)
@pytest.mark.parametrize("int_dtype", [np.int64, np.int32, np.bool_])
def test_integer_dtype_raises_type_error(rank, int_dtype):
    x, w, g = valid_args(rank)
    with pytest.raises(TypeError, match="(?i)dtype|float"):
        conv(rank)(x.astype(int_dtype), w.astype(int_dtype))
    with pytest.raises(TypeError, match="(?i)dtype|float"):
        conv(rank)(x.astype(int_dtype), w)
    with pytest.raises(TypeError, match="(?i)dtype|float"):
        conv_bw(rank)(g.astype(int_dtype), x.astype(int_dtype), w.astype(int_dtype))
    with pytest.raises(TypeError, match="(?i)dtype|float"):
        tconv(rank)(x.astype(int_dtype), arr(4, 2, *sp(rank, 3)).astype(int_dtype))


def test_other_float_dtypes_raise_type_error():
    x, w, _ = valid_args(2)
    for dt in (np.longdouble, np.complex128):
        with pytest.raises(TypeError):
            fc.conv2d(x.astype(dt), w.astype(dt))


@pytest.mark.parametrize("rank", RANKS)
def test_bias_of_wrong_length_raises_naming_bias(rank):
    x, w, _ = valid_args(rank)
    with pytest.raises(ValueError, match=word("bias")):
        conv(rank)(x, w, arr(5))
    with pytest.raises(ValueError, match=word("bias")):
        conv(rank)(x, w, arr(6, 1))  # 2-D bias
    with pytest.raises(ValueError, match=word("bias")):
        tconv(rank)(x, arr(4, 2, *sp(rank, 3)), arr(4))  # C_out is 2


@pytest.mark.parametrize("rank", RANKS)
def test_output_padding_too_large_raises_naming_output_padding(rank):
    x = arr(2, 4, *sp(rank, 5))
    w = arr(4, 2, *sp(rank, 3))
    with pytest.raises(ValueError, match="output_padding"):
        tconv(rank)(x, w, stride=2, output_padding=2)  # must be < max(stride, dilation) = 2
    with pytest.raises(ValueError, match="output_padding"):
        tconv(rank)(x, w, stride=1, output_padding=1)
    with pytest.raises(ValueError, match="output_padding"):
        tconv(rank)(x, w, stride=2, dilation=3, output_padding=3)
    with pytest.raises(ValueError, match="output_padding"):
        tconv(rank)(x, w, stride=2, output_padding=(0,) * (rank - 1) + (2,))
    g = arr(2, 2, *sp(rank, 13))  # the shape output_padding=2 would give
    with pytest.raises(ValueError, match="output_padding"):
        tconv_bw(rank)(g, x, w, stride=2, output_padding=2)
    # the largest allowed value works
    assert tconv(rank)(x, w, stride=2, dilation=3, output_padding=2).shape[2:] == sp(rank, 4 * 2 + 6 + 2 + 1)


@pytest.mark.parametrize("rank", RANKS)
def test_unknown_padding_mode_raises_naming_padding_mode(rank):
    x, w, g = valid_args(rank)
    for bad in ("mirror", "zero", "", "REFLECT"):
        with pytest.raises(ValueError, match="padding_mode"):
            conv(rank)(x, w, padding=1, padding_mode=bad)
    with pytest.raises(ValueError, match="padding_mode"):
        conv_bw(rank)(arr(2, 6, *sp(rank, 6)), x, w, padding=1, padding_mode="mirror")


@pytest.mark.parametrize("rank", RANKS)
def test_unknown_or_negative_padding_raises_naming_padding(rank):
    x, w, _ = valid_args(rank)
    wrong_len = (1,) * (3 if rank == 1 else rank + 1)  # neither rank ints nor 2*rank
    for bad in ("full", "SAME", -1, wrong_len, ((1, 1),) * (rank + 1), ((1, -1),) * rank):
        with pytest.raises(ValueError, match=word("padding")):
            conv(rank)(x, w, padding=bad)


@pytest.mark.parametrize("rank", RANKS)
def test_grad_out_of_wrong_shape_raises_naming_grad_out(rank):
    x, w, g = valid_args(rank)
    bad_shapes = [
        (2, 6) + sp(rank, 5),  # spatial off by one
        (2, 5) + sp(rank, 4),  # channels
        (3, 6) + sp(rank, 4),  # batch
        (6,) + sp(rank, 4),    # unbatched grad_out for a batched x
    ]
    for shape in bad_shapes:
        with pytest.raises(ValueError, match="grad_out"):
            conv_bw(rank)(arr(*shape), x, w)
    tw = arr(4, 2, *sp(rank, 3))
    with pytest.raises(ValueError, match="grad_out"):
        tconv_bw(rank)(arr(2, 2, *sp(rank, 7)), x, tw)  # correct spatial size is 8


@pytest.mark.parametrize("rank", RANKS)
def test_padding_beyond_padding_mode_limit_raises_naming_padding(rank):
    x = arr(2, 4, *sp(rank, 3))
    w = arr(6, 4, *sp(rank, 3))
    with pytest.raises(ValueError, match=word("padding")):
        conv(rank)(x, w, padding=3, padding_mode="reflect")  # reflect needs pad < 3
    with pytest.raises(ValueError, match=word("padding")):
        conv(rank)(x, w, padding=((0, 3),) + ((0, 0),) * (rank - 1), padding_mode="reflect")
    for mode in ("replicate", "circular"):  # need pad <= 3
        with pytest.raises(ValueError, match=word("padding")):
            conv(rank)(x, w, padding=4, padding_mode=mode)
    with pytest.raises(ValueError, match=word("padding")):
        conv_bw(rank)(arr(2, 6, *sp(rank, 7)), x, w, padding=3, padding_mode="reflect")
    # the limits themselves are fine
    assert conv(rank)(x, w, padding=2, padding_mode="reflect").shape[2:] == sp(rank, 5)
    assert conv(rank)(x, w, padding=3, padding_mode="circular").shape[2:] == sp(rank, 7)
    assert conv(rank)(x, w, padding=3, padding_mode="replicate").shape[2:] == sp(rank, 7)


def test_non_array_inputs_raise():
    x, w, _ = valid_args(2)
    with pytest.raises((TypeError, ValueError)):
        fc.conv2d("not an array", w)
    with pytest.raises((TypeError, ValueError)):
        fc.conv2d(x, None)
    with pytest.raises(TypeError):
        fc.conv2d(x, w, stride=1.5)


def test_convolve_bad_arguments_raise():
    with pytest.raises(ValueError, match="mode"):
        fc.convolve(np.ones(5), np.ones(3), "circular")
    with pytest.raises(ValueError, match="kernel|ndim|dimension"):
        fc.convolve(np.ones(5), np.ones((3, 3)))  # ndim mismatch without multichannel
    with pytest.raises(ValueError, match="kernel|channel"):
        fc.convolve(np.ones((3, 5)), np.ones((2, 3)), multichannel=True)  # 2 kernels, 3 channels
    with pytest.raises(TypeError):
        fc.convolve(np.ones(5, dtype=np.float32), np.ones(3))
