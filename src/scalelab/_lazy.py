"""Package faces whose public names load on first use (PEP 562): importing the package (to
reach a torch-free part of it, or for ``scalelab --help``) does not load what the names need."""

from __future__ import annotations

import sys
from importlib import import_module


def lazy_exports(package: str, exports: dict[str, str]):
    """``(__getattr__, __dir__)`` for ``package``, whose name ``n`` is defined in its
    submodule ``exports[n]`` (``"_set"``, or ``"..data._x"`` relative to the package's
    parent); a resolved name is cached."""

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module if module.startswith(".") else f".{module}", package), name)
        vars(sys.modules[package])[name] = value   # later lookups no longer reach __getattr__
        return value

    def __dir__():
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
