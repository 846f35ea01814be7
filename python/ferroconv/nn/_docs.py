"""Docstrings of the layers of several ranks: the 2-D and 3-D classes show the
parameters of the 1-D one (the arguments are the same), so ``help(nn.Conv2d)``
documents its own parameters."""

from __future__ import annotations

import inspect
import re
from typing import Callable, TypeVar

C = TypeVar("C", bound=type)

SECTIONS = ("Parameters", "Attributes")


def _section(doc: str, name: str) -> str:
    """The numpydoc section ``name`` of a cleaned docstring (heading included), or ''."""
    match = re.search(rf"^{name}\n-+\n.*?(?=^\w[\w ]*\n-+\n|\Z)", doc, flags=re.M | re.S)
    return match.group(0).rstrip() if match else ""


def parameters_from(source: type) -> Callable[[C], C]:
    """Class decorator: the class's docstring gains the Parameters and Attributes
    sections of ``source`` (the same arguments at another rank), before its own
    Examples, in place of a "(parameters as :class:`source`)" reference."""

    def decorate(cls: C) -> C:
        doc = inspect.cleandoc(cls.__doc__ or "")
        doc = re.sub(rf"\s*\(parameters as :class:`{source.__name__}`\)", "", doc)
        borrowed = "\n\n".join(s for s in (_section(inspect.cleandoc(source.__doc__ or ""), n) for n in SECTIONS)
                               if s)
        head, examples, tail = doc.partition("Examples\n--------")
        cls.__doc__ = head.rstrip() + "\n\n" + borrowed + ("\n\n" + examples + tail if examples else "") + "\n"
        return cls

    return decorate
