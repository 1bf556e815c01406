"""Lazy package namespaces (PEP 562): ``import <package>`` imports none of its submodules, so
``python -m <package> --help`` loads no torch; each public name is imported on first use.

In a package's ``__init__.py``::

    __getattr__, __dir__, __all__ = lazy_exports(__name__, {
        ".model": ("TarFlow", "FlowOutput"),
        ".presets": ("PRESETS", "create"),
    })

``from tarflow import TarFlow``, ``tarflow.TarFlow``, ``dir(tarflow)`` and ``from tarflow import *`` behave as
with eager imports.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable, Mapping
from types import ModuleType


class _KeepExports(ModuleType):
    """A package one of whose exports has its submodule's name (``energy_diffusion.distill``, the function in
    ``energy_diffusion/distill.py``): importing that submodule binds the export, not the module, on the package
    (as an eager ``from .distill import distill`` would have left it)."""

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, ModuleType) and name in self.__dict__.get("_shadowed_exports", ()):
            value = getattr(value, name)
        super().__setattr__(name, value)


def lazy_exports(package: str, exports: Mapping[str, Iterable[str]]):
    """``(__getattr__, __dir__, __all__)`` for the package ``package``: ``exports`` maps a submodule (absolute
    or relative to ``package``) to the names it provides."""
    where: dict[str, str] = {}
    for module, names in exports.items():
        module = importlib.util.resolve_name(module, package)
        for name in names:
            if name in where:
                raise ValueError(f"{package}: {name!r} is exported by both {where[name]} and {module}; keep one")
            where[name] = module
    namespace = sys.modules[package]
    shadowed = {name for name, module in where.items() if module == f"{package}.{name}"}
    if shadowed:
        namespace._shadowed_exports = frozenset(shadowed)
        namespace.__class__ = _KeepExports

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        setattr(namespace, name, value)  # next time a plain attribute: __getattr__ is not called again
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(namespace)) | set(where))

    return __getattr__, __dir__, sorted(where)
