"""One way to get a logger and a progress bar for every CLI; quiet when not on a TTY (rich on a TTY with
the ``labcore[rich]`` extra, plain lines without it)."""

from __future__ import annotations

import importlib.util
import logging as _logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_CONFIGURED = False


def _configure_root() -> None:
    global _CONFIGURED
    if _CONFIGURED:
        return
    root = _logging.getLogger("labcore.root")
    if sys.stderr.isatty() and importlib.util.find_spec("rich") is not None:  # extra labcore[rich]
        from rich.logging import RichHandler

        handler: _logging.Handler = RichHandler(show_path=False, rich_tracebacks=True)
        handler.setFormatter(_logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = _logging.StreamHandler(sys.stderr)
        handler.setFormatter(_logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(_logging.INFO)
    root.propagate = False
    _CONFIGURED = True


def get_logger(name: str) -> _logging.Logger:
    """A logger named ``name`` that prints through the shared handler (rich on a TTY)."""
    _configure_root()
    logger = _logging.getLogger(f"labcore.root.{name}")
    return logger


def progress(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "",
             disable: bool | None = None, **kwargs) -> Iterator[T]:
    """A tqdm progress bar, shown on a TTY only unless ``disable`` says otherwise."""
    from tqdm.auto import tqdm  # here: importing tqdm.auto costs asyncio, and --help needs no bar

    if disable is None:
        disable = not sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, disable=disable, dynamic_ncols=True, **kwargs)
