"""Deprecation shims for the module paths of the flat package (before the layout by stage)."""

from __future__ import annotations

import importlib
import warnings


def moved(old: str, new: str):
    """A module ``__getattr__`` for ``old`` that finds each name in ``new`` and warns once per use
    (``DeprecationWarning``, naming the new path)."""

    def __getattr__(name: str):
        module = importlib.import_module(new)
        if not hasattr(module, name):
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        warnings.warn(f"{old}.{name} moved to {new}.{name}", DeprecationWarning, stacklevel=2)
        return getattr(module, name)

    return __getattr__
