"""Independent NumPy reference implementations for ferroconv's convolution ops.

Written from the definitions only (PyTorch semantics for the deep-learning ops,
the signal-processing definition for ``convolve``); it does not look at the
package.  Everything is computed in float64 and is deliberately slow and plain:

* ``conv_nd`` / ``conv_nd_backward`` / ``conv_transpose_nd`` /
  ``conv_transpose_nd_backward`` / ``convolve_nd`` loop over kernel taps and, for
  each tap, over a strided slice of an explicitly padded array (one slice holds
  the input cell every output position reads for that tap).
* the ``*_naive`` variants loop over every output cell and every tap with scalar
  arithmetic and an explicit index formula for the padding modes; they are only
  used (on tiny cases) to check the tap-loop versions in
  ``test_reference_selfcheck.py``.

Shapes follow the package: x ``(N, C, *S)``, conv weight ``(C_out, C_in/groups,
*k)``, transposed-conv weight ``(C_in, C_out/groups, *k)``.  Unbatched inputs are
the caller's business (add / drop the N axis around these functions).
"""

from __future__ import annotations

import numpy as np

# padding_mode -> np.pad mode (applied per side, per spatial axis)
NP_PAD_MODE = {
    "zeros": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
}
PADDING_MODES = tuple(NP_PAD_MODE)


def as_tuple(value, rank):
    """int -> (int,)*rank, sequence -> tuple (length checked)."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * rank
    value = tuple(int(v) for v in value)
    assert len(value) == rank, (value, rank)
    return value


# ---------------------------------------------------------------------------
# geometry
# ---------------------------------------------------------------------------


def same_padding(kernel, dilation=1):
    """'same' padding for stride 1: total d*(k-1), the odd extra cell at the end."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def resolve_padding(padding, kernel_size, dilation):
    """Any accepted ``padding`` form -> (pad_lo, pad_hi) tuples."""
    rank = len(kernel_size)
    dilation = as_tuple(dilation, rank)
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * rank, (0,) * rank
        if padding == "same":
            pairs = [same_padding(k, d) for k, d in zip(kernel_size, dilation)]
            return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
        raise ValueError(padding)
    if isinstance(padding, (int, np.integer)):
        return (int(padding),) * rank, (int(padding),) * rank
    padding = tuple(padding)
    assert len(padding) == rank
    if all(isinstance(p, (int, np.integer)) for p in padding):
        return tuple(int(p) for p in padding), tuple(int(p) for p in padding)
    return tuple(int(p[0]) for p in padding), tuple(int(p[1]) for p in padding)


def conv_out_size(size, kernel, stride=1, pad_lo=0, pad_hi=0, dilation=1):
    return (size + pad_lo + pad_hi - dilation * (kernel - 1) - 1) // stride + 1


def conv_transpose_out_size(size, kernel, stride=1, padding=0, output_padding=0, dilation=1):
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def receptive_field(layers):
    """Receptive field of stacked layers (kernel, stride[, dilation]).

    Computed by walking backwards from one output cell: the span of input cells
    it depends on grows by d*(k-1) input-steps of the current layer, each of
    which is prod(previous strides) cells of the original input.
    """
    rf = 1
    jump = 1
    for layer in layers:
        k, s = layer[0], layer[1]
        d = layer[2] if len(layer) > 2 else 1
        rf += (k - 1) * d * jump
        jump *= s
    return rf


# ---------------------------------------------------------------------------
# padding helpers
# ---------------------------------------------------------------------------


def pad_input(x, pad_lo, pad_hi, padding_mode):
    """Pad the spatial axes of x (N, C, *S) with np.pad (per side, per axis)."""
    widths = [(0, 0), (0, 0)] + [(int(lo), int(hi)) for lo, hi in zip(pad_lo, pad_hi)]
    return np.pad(x, widths, mode=NP_PAD_MODE[padding_mode])


def source_indices(size, lo, hi, padding_mode):
    """For each cell of a padded axis, the input cell it was copied from (-1: zero).

    Obtained by padding ``arange(size)`` with the very same np.pad mode as the
    forward pass, so it is consistent with ``pad_input`` by construction.
    """
    if padding_mode == "zeros":
        return np.concatenate([np.full(lo, -1), np.arange(size), np.full(hi, -1)]).astype(int)
    return np.pad(np.arange(size), (lo, hi), mode=NP_PAD_MODE[padding_mode])


def source_index_formula(j, size, lo, padding_mode):
    """Scalar version of ``source_indices`` from the textbook formulas (naive refs)."""
    i = j - lo
    if 0 <= i < size:
        return i
    if padding_mode == "zeros":
        return -1
    if padding_mode == "reflect":  # mirror without repeating the edge (pad < size)
        return -i if i < 0 else 2 * (size - 1) - i
    if padding_mode == "replicate":
        return 0 if i < 0 else size - 1
    if padding_mode == "circular":  # pad <= size
        return i % size
    raise ValueError(padding_mode)


def fold_padded_gradient(grad_padded, spatial, pad_lo, pad_hi, padding_mode):
    """Adjoint of ``pad_input``: add every padded cell's gradient onto its source."""
    g = np.asarray(grad_padded, dtype=np.float64)
    for axis_i, size in enumerate(spatial):
        axis = 2 + axis_i
        src = source_indices(size, pad_lo[axis_i], pad_hi[axis_i], padding_mode)
        assert len(src) == g.shape[axis]
        shape = list(g.shape)
        shape[axis] = size
        acc = np.zeros(shape)
        lead = (slice(None),) * axis
        for j, s in enumerate(src):
            if s >= 0:
                acc[lead + (s,)] += g[lead + (j,)]
        g = acc
    return g


def _tap_slices(tap, dilation, stride, count):
    """Slices (one per spatial axis) of the cells that tap ``tap`` touches for
    output positions 0..count-1: start k*d, step s, ``count`` elements."""
    return tuple(
        slice(k * d, k * d + s * (n - 1) + 1, s)
        for k, d, s, n in zip(tap, dilation, stride, count)
    )


def _flat_dot(a, b):
    """sum over n and every spatial cell of a[n, i, ...] * b[n, j, ...] -> (i, j)."""
    a = a.reshape(a.shape[0], a.shape[1], -1)
    b = b.reshape(b.shape[0], b.shape[1], -1)
    return np.einsum("nip,njp->ij", a, b)


# ---------------------------------------------------------------------------
# convolution (cross-correlation), PyTorch semantics
# ---------------------------------------------------------------------------


def _conv_setup(x, w, stride, pad_lo, pad_hi, dilation, groups):
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    rank = x.ndim - 2
    assert rank in (1, 2, 3) and w.ndim == rank + 2, (x.shape, w.shape)
    stride, pad_lo, pad_hi, dilation = (as_tuple(v, rank) for v in (stride, pad_lo, pad_hi, dilation))
    n, c_in = x.shape[:2]
    c_out, cig = w.shape[:2]
    assert c_in == cig * groups and c_out % groups == 0, (x.shape, w.shape, groups)
    ksize = w.shape[2:]
    out_sp = tuple(
        conv_out_size(s, k, st, lo, hi, d)
        for s, k, st, lo, hi, d in zip(x.shape[2:], ksize, stride, pad_lo, pad_hi, dilation)
    )
    assert all(o >= 1 for o in out_sp), out_sp
    return x, w, rank, stride, pad_lo, pad_hi, dilation, cig, c_out // groups, ksize, out_sp


def conv_nd(x, w, b=None, stride=1, pad_lo=0, pad_hi=0, dilation=1, groups=1, padding_mode="zeros"):
    """y[n, co, o] = b[co] + sum_{ci, k} xpad[n, g*cig + ci, o*s + k*d] * w[co, ci, k]."""
    x, w, rank, stride, pad_lo, pad_hi, dilation, cig, cog, ksize, out_sp = _conv_setup(
        x, w, stride, pad_lo, pad_hi, dilation, groups
    )
    xp = pad_input(x, pad_lo, pad_hi, padding_mode)
    out = np.zeros((x.shape[0], w.shape[0]) + out_sp)
    for g in range(groups):
        cin_g = slice(g * cig, (g + 1) * cig)
        cout_g = slice(g * cog, (g + 1) * cog)
        for tap in np.ndindex(*ksize):
            window = xp[(slice(None), cin_g) + _tap_slices(tap, dilation, stride, out_sp)]
            w_tap = w[(cout_g, slice(None)) + tap]  # (cog, cig)
            out[:, cout_g] += np.einsum("nc...,oc->no...", window, w_tap)
    if b is not None:
        out += np.asarray(b, dtype=np.float64).reshape((1, -1) + (1,) * rank)
    return out


def conv_nd_backward(grad_out, x, w, stride=1, pad_lo=0, pad_hi=0, dilation=1, groups=1,
                     padding_mode="zeros"):
    """(grad_x, grad_w, grad_b) of conv_nd for the upstream gradient grad_out."""
    x, w, rank, stride, pad_lo, pad_hi, dilation, cig, cog, ksize, out_sp = _conv_setup(
        x, w, stride, pad_lo, pad_hi, dilation, groups
    )
    go = np.asarray(grad_out, dtype=np.float64)
    assert go.shape == (x.shape[0], w.shape[0]) + out_sp, (go.shape, out_sp)
    xp = pad_input(x, pad_lo, pad_hi, padding_mode)
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w)
    for g in range(groups):
        cin_g = slice(g * cig, (g + 1) * cig)
        cout_g = slice(g * cog, (g + 1) * cog)
        go_g = go[:, cout_g]
        for tap in np.ndindex(*ksize):
            sl = (slice(None), cin_g) + _tap_slices(tap, dilation, stride, out_sp)
            w_tap = w[(cout_g, slice(None)) + tap]
            # scatter-add grad_out * w onto the padded input cells the tap read
            gxp[sl] += np.einsum("no...,oc->nc...", go_g, w_tap)
            # correlation of the padded input with grad_out
            gw[(cout_g, slice(None)) + tap] = _flat_dot(go_g, xp[sl])
    gx = fold_padded_gradient(gxp, x.shape[2:], pad_lo, pad_hi, padding_mode)
    gb = go.sum(axis=(0,) + tuple(range(2, 2 + rank)))
    return gx, gw, gb


def conv_nd_naive(x, w, b=None, stride=1, pad_lo=0, pad_hi=0, dilation=1, groups=1,
                  padding_mode="zeros"):
    """Scalar loops over (n, co, output cell, ci, tap); padding by formula."""
    x, w, rank, stride, pad_lo, pad_hi, dilation, cig, cog, ksize, out_sp = _conv_setup(
        x, w, stride, pad_lo, pad_hi, dilation, groups
    )
    spatial = x.shape[2:]
    out = np.zeros((x.shape[0], w.shape[0]) + out_sp)
    for n in range(x.shape[0]):
        for co in range(w.shape[0]):
            g = co // cog
            for o in np.ndindex(*out_sp):
                acc = 0.0 if b is None else float(b[co])
                for ci in range(cig):
                    for tap in np.ndindex(*ksize):
                        src = []
                        for a in range(rank):
                            j = o[a] * stride[a] + tap[a] * dilation[a]
                            src.append(source_index_formula(j, spatial[a], pad_lo[a], padding_mode))
                        if min(src) < 0:
                            continue
                        acc += x[(n, g * cig + ci) + tuple(src)] * w[(co, ci) + tap]
                out[(n, co) + o] = acc
    return out


def conv_nd_backward_naive(grad_out, x, w, stride=1, pad_lo=0, pad_hi=0, dilation=1, groups=1,
                           padding_mode="zeros"):
    """Scalar-loop backward: for every (output cell, tap) that read x[src], add the
    product's partial derivatives to grad_x[src] and grad_w[tap]."""
    x, w, rank, stride, pad_lo, pad_hi, dilation, cig, cog, ksize, out_sp = _conv_setup(
        x, w, stride, pad_lo, pad_hi, dilation, groups
    )
    go = np.asarray(grad_out, dtype=np.float64)
    spatial = x.shape[2:]
    gx = np.zeros_like(x)
    gw = np.zeros_like(w)
    gb = np.zeros(w.shape[0])
    for n in range(x.shape[0]):
        for co in range(w.shape[0]):
            g = co // cog
            for o in np.ndindex(*out_sp):
                gval = go[(n, co) + o]
                gb[co] += gval
                for ci in range(cig):
                    for tap in np.ndindex(*ksize):
                        src = []
                        for a in range(rank):
                            j = o[a] * stride[a] + tap[a] * dilation[a]
                            src.append(source_index_formula(j, spatial[a], pad_lo[a], padding_mode))
                        if min(src) < 0:
                            continue
                        xi = (n, g * cig + ci) + tuple(src)
                        gx[xi] += gval * w[(co, ci) + tap]
                        gw[(co, ci) + tap] += gval * x[xi]
    return gx, gw, gb


# ---------------------------------------------------------------------------
# transposed convolution (PyTorch ConvTranspose semantics)
# ---------------------------------------------------------------------------


def _transpose_setup(x, w, stride, padding, output_padding, groups, dilation):
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    rank = x.ndim - 2
    assert rank in (1, 2, 3) and w.ndim == rank + 2, (x.shape, w.shape)
    stride, padding, output_padding, dilation = (
        as_tuple(v, rank) for v in (stride, padding, output_padding, dilation)
    )
    c_in = x.shape[1]
    assert w.shape[0] == c_in and c_in % groups == 0, (x.shape, w.shape, groups)
    cig = c_in // groups
    cog = w.shape[1]
    ksize = w.shape[2:]
    in_sp = x.shape[2:]
    out_sp = tuple(
        conv_transpose_out_size(L, k, s, p, op, d)
        for L, k, s, p, op, d in zip(in_sp, ksize, stride, padding, output_padding, dilation)
    )
    assert all(o >= 1 for o in out_sp), out_sp
    # buffer coordinate = output coordinate + padding; the scatter writes at
    # i*s + k*d >= 0, the output is buffer[p : p + out]
    buf_sp = tuple(
        max((L - 1) * s + d * (k - 1) + 1, p + o)
        for L, s, d, k, p, o in zip(in_sp, stride, dilation, ksize, padding, out_sp)
    )
    crop = tuple(slice(p, p + o) for p, o in zip(padding, out_sp))
    return x, w, rank, stride, dilation, cig, cog, ksize, in_sp, out_sp, buf_sp, crop


def conv_transpose_nd(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """out[n, g*cog+co, i*s + k*d - p] += x[n, g*cig+ci, i] * w[g*cig+ci, co, k]."""
    x, w, rank, stride, dilation, cig, cog, ksize, in_sp, out_sp, buf_sp, crop = _transpose_setup(
        x, w, stride, padding, output_padding, groups, dilation
    )
    buf = np.zeros((x.shape[0], cog * groups) + buf_sp)
    for g in range(groups):
        cin_g = slice(g * cig, (g + 1) * cig)
        cout_g = slice(g * cog, (g + 1) * cog)
        for tap in np.ndindex(*ksize):
            sl = (slice(None), cout_g) + _tap_slices(tap, dilation, stride, in_sp)
            buf[sl] += np.einsum("nc...,co->no...", x[:, cin_g], w[(cin_g, slice(None)) + tap])
    out = buf[(slice(None), slice(None)) + crop].copy()
    if b is not None:
        out += np.asarray(b, dtype=np.float64).reshape((1, -1) + (1,) * rank)
    return out


def conv_transpose_nd_backward(grad_out, x, w, stride=1, padding=0, output_padding=0, groups=1,
                               dilation=1):
    """(grad_x, grad_w, grad_b) of conv_transpose_nd: gather grad_out at the cells
    each (input cell, tap) pair scattered to."""
    x, w, rank, stride, dilation, cig, cog, ksize, in_sp, out_sp, buf_sp, crop = _transpose_setup(
        x, w, stride, padding, output_padding, groups, dilation
    )
    go = np.asarray(grad_out, dtype=np.float64)
    assert go.shape == (x.shape[0], cog * groups) + out_sp, (go.shape, out_sp)
    gbuf = np.zeros((x.shape[0], cog * groups) + buf_sp)
    gbuf[(slice(None), slice(None)) + crop] = go  # cells cropped away get no gradient
    gx = np.zeros_like(x)
    gw = np.zeros_like(w)
    for g in range(groups):
        cin_g = slice(g * cig, (g + 1) * cig)
        cout_g = slice(g * cog, (g + 1) * cog)
        for tap in np.ndindex(*ksize):
            sl = (slice(None), cout_g) + _tap_slices(tap, dilation, stride, in_sp)
            gathered = gbuf[sl]  # (N, cog, *in_sp)
            gx[:, cin_g] += np.einsum("no...,co->nc...", gathered, w[(cin_g, slice(None)) + tap])
            gw[(cin_g, slice(None)) + tap] = _flat_dot(x[:, cin_g], gathered)
    gb = go.sum(axis=(0,) + tuple(range(2, 2 + rank)))
    return gx, gw, gb


def conv_transpose_nd_naive(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                            dilation=1):
    """Scalar-loop scatter with an explicit bounds check."""
    x, w, rank, stride, dilation, cig, cog, ksize, in_sp, out_sp, buf_sp, crop = _transpose_setup(
        x, w, stride, padding, output_padding, groups, dilation
    )
    padding = as_tuple(padding, rank)
    out = np.zeros((x.shape[0], cog * groups) + out_sp)
    for n in range(x.shape[0]):
        for cin in range(x.shape[1]):
            g = cin // cig
            for i in np.ndindex(*in_sp):
                for co in range(cog):
                    for tap in np.ndindex(*ksize):
                        pos = tuple(i[a] * stride[a] + tap[a] * dilation[a] - padding[a] for a in range(rank))
                        if all(0 <= pos[a] < out_sp[a] for a in range(rank)):
                            out[(n, g * cog + co) + pos] += x[(n, cin) + i] * w[(cin, co) + tap]
    if b is not None:
        for co in range(out.shape[1]):
            out[:, co] += b[co]
    return out


def conv_transpose_nd_backward_naive(grad_out, x, w, stride=1, padding=0, output_padding=0,
                                     groups=1, dilation=1):
    x, w, rank, stride, dilation, cig, cog, ksize, in_sp, out_sp, buf_sp, crop = _transpose_setup(
        x, w, stride, padding, output_padding, groups, dilation
    )
    padding = as_tuple(padding, rank)
    go = np.asarray(grad_out, dtype=np.float64)
    gx = np.zeros_like(x)
    gw = np.zeros_like(w)
    for n in range(x.shape[0]):
        for cin in range(x.shape[1]):
            g = cin // cig
            for i in np.ndindex(*in_sp):
                for co in range(cog):
                    for tap in np.ndindex(*ksize):
                        pos = tuple(i[a] * stride[a] + tap[a] * dilation[a] - padding[a] for a in range(rank))
                        if all(0 <= pos[a] < out_sp[a] for a in range(rank)):
                            gval = go[(n, g * cog + co) + pos]
                            gx[(n, cin) + i] += gval * w[(cin, co) + tap]
                            gw[(cin, co) + tap] += gval * x[(n, cin) + i]
    gb = go.sum(axis=(0,) + tuple(range(2, 2 + rank)))
    return gx, gw, gb


# ---------------------------------------------------------------------------
# true convolution (signal processing): full[i] = sum_k x[i - k] * kernel[k]
# ---------------------------------------------------------------------------


def convolve_nd(x, kernel, mode="full"):
    """scipy.signal.convolve(x, kernel, mode) conventions:
    full: size S + K - 1; same: full[(K-1)//2 : (K-1)//2 + S]; valid: full[K-1 : S]."""
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    assert x.ndim == kernel.ndim
    S, K = x.shape, kernel.shape
    full = np.zeros(tuple(s + k - 1 for s, k in zip(S, K)))
    for tap in np.ndindex(*K):
        # x[i] contributes to full[i + tap] with weight kernel[tap]
        full[tuple(slice(t, t + s) for t, s in zip(tap, S))] += kernel[tap] * x
    if mode == "full":
        return full
    if mode == "same":
        return full[tuple(slice((k - 1) // 2, (k - 1) // 2 + s) for s, k in zip(S, K))].copy()
    if mode == "valid":
        assert all(k <= s for s, k in zip(S, K)), (S, K)
        return full[tuple(slice(k - 1, s) for s, k in zip(S, K))].copy()
    raise ValueError(mode)


def convolve_nd_naive(x, kernel, mode="full"):
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    S, K = x.shape, kernel.shape
    full_sp = tuple(s + k - 1 for s, k in zip(S, K))
    full = np.zeros(full_sp)
    for i in np.ndindex(*full_sp):
        acc = 0.0
        for k in np.ndindex(*K):
            j = tuple(a - b for a, b in zip(i, k))
            if all(0 <= j[a] < S[a] for a in range(len(S))):
                acc += x[j] * kernel[k]
        full[i] = acc
    if mode == "full":
        return full
    if mode == "same":
        start = [(k - 1) // 2 for k in K]
        return full[tuple(slice(a, a + s) for a, s in zip(start, S))]
    return full[tuple(slice(k - 1, s) for s, k in zip(S, K))]


def convolve_multichannel(x, kernel, mode="full"):
    """x (C, *S); kernel (*K) shared by every channel, or (C, *K) per channel."""
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    per_channel = kernel.ndim == x.ndim
    return np.stack(
        [convolve_nd(x[c], kernel[c] if per_channel else kernel, mode) for c in range(x.shape[0])]
    )


# ---------------------------------------------------------------------------
# tolerances
# ---------------------------------------------------------------------------


def assert_matches(got, ref, dtype, reduction_len, term_max, what=""):
    """Compare a package result with a float64 reference.

    float64: rtol 1e-10 (atol 1e-10 * term_max for cancellation near zero);
    float32: atol 1e-5 * sqrt(reduction_len) * term_max, where term_max bounds
    |every product summed| and reduction_len is the number of summed terms.
    """
    got = np.asarray(got)
    ref = np.asarray(ref)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != reference {ref.shape}"
    term_max = float(term_max) if term_max > 0 else 1.0
    if np.dtype(dtype) == np.float64:
        rtol, atol = 1e-10, 1e-10 * term_max
    else:
        rtol, atol = 1e-6, 1e-5 * np.sqrt(max(reduction_len, 1)) * term_max
    np.testing.assert_allclose(got.astype(np.float64), ref, rtol=rtol, atol=atol, err_msg=what)
