"""The instruction-set path of the kernels: ``set_simd`` and ``get_simd``."""

from __future__ import annotations

from . import _ferroconv as _native

SIMD_PATHS = ("avx512", "avx2", "portable")
"""Every path, most capable first."""


def set_simd(name: str) -> None:
    """Cap the instruction set the kernels use, in every thread, from the next call.

    The default is the most capable path the CPU supports; the
    ``FERROCONV_SIMD`` environment variable sets the cap when ferroconv is
    imported (an unknown or unsupported value makes the import fail with
    ``ImportError``). Every path computes the same results up to float rounding;
    within one path results are bit-identical for any thread count. Meant for
    testing and measuring each path on one machine.

    Parameters
    ----------
    name : str
        ``"avx512"`` (AVX-512F), ``"avx2"`` (AVX2 and FMA) or ``"portable"``
        (plain Rust, vectorised by the compiler for the baseline target).

    Raises
    ------
    TypeError
        If ``name`` is not a string.
    ValueError
        If ``name`` is not one of the paths, or names a path this CPU does not
        support (the message lists the ones it does).

    Examples
    --------
    >>> import ferroconv as fc
    >>> previous = fc.get_simd()
    >>> fc.set_simd("portable")
    >>> fc.get_simd()
    'portable'
    >>> fc.set_simd(previous)
    """
    if not isinstance(name, str):
        raise TypeError(f"set_simd: name must be a str, got {type(name).__name__}")
    _native.set_simd(name)


def get_simd() -> str:
    """The instruction-set path the kernels take: the CPU's best, capped by
    :func:`set_simd` or ``FERROCONV_SIMD``.

    Returns
    -------
    str
        ``"avx512"``, ``"avx2"`` or ``"portable"``.

    Examples
    --------
    >>> import ferroconv as fc
    >>> fc.get_simd() in ("avx512", "avx2", "portable")
    True
    """
    return str(_native.get_simd())
