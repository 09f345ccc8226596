"""Exports of a package root that are imported on first use (PEP 562 module ``__getattr__``).

A module root lists its whole public surface, but a command that needs only part of it (the models,
the PHI scrubber, the accounts service) should not import Litestar, the answer engine or the model
clients to get it: Python imports a package's root before any of its submodules.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``name`` from ``where[name]`` on first use."""
    namespace = importlib.import_module(package).__dict__

    def load(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # later lookups find it without calling back here
        return value

    return load
