"""Optional dependencies: import one, or fail with the ``pip install`` line that brings it.

Every package keeps its core dependencies to what ``import <package>`` and its model classes
need; demos, OCR backends, RL, evaluation harnesses and plots are extras. Code that needs an
extra calls :func:`require` at the point of use, so a missing extra is named in the error::

    trl = require("trl", extra="rl", package="diffucoder")
"""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """An optional dependency is missing; the message says which extra installs it."""


def require(module: str, *, extra: str, package: str) -> ModuleType:
    """Import ``module``; if it is missing, raise :class:`MissingExtraError` naming
    ``pip install '<package>[<extra>]'`` (``package`` is the distribution name)."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        missing = getattr(err, "name", None) or module
        raise MissingExtraError(
            f"{module!r} is needed here but {missing!r} is not installed: it comes with the "
            f"{extra!r} extra: pip install '{package}[{extra}]'") from err
