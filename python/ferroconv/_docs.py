"""Docstring templates shared by the per-rank public functions."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

LAYOUT = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}
KERNEL = {1: "(kL,)", 2: "(kH, kW)", 3: "(kD, kH, kW)"}
TUPLE = {1: "int or tuple of 1 int", 2: "int or tuple of 2 ints", 3: "int or tuple of 3 ints"}


def fill_doc(template: str, rank: int, example: str = "") -> Callable[[F], F]:
    """Decorator: the function's docstring is ``template`` filled in for ``rank``
    (fields ``rank``, ``layout``, ``kernel``, ``tuple`` and ``example``)."""

    def attach(func: F) -> F:
        func.__doc__ = template.format(
            rank=rank, layout=LAYOUT[rank], kernel=KERNEL[rank], tuple=TUPLE[rank], example=example
        )
        return func

    return attach
