"""Catch SIGINT/SIGTERM as a flag, so a training loop can finish its step, save, and exit ``128 + signal``.

Used by :class:`labcore.lightning.SignalCheckpoint` (Lightning trainers) and by loops outside Lightning.
"""

from __future__ import annotations

import signal
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalFlag:
    """While installed, SIGINT/SIGTERM set :attr:`received` (the signal number) instead of stopping the process.

    ``with SignalFlag() as flag: ...`` or :meth:`install`/:meth:`restore`. Outside the main thread (where
    handlers cannot be set) it stays inactive and :attr:`active` is False.
    """

    def __init__(self) -> None:
        self.received: int = 0
        self._previous: dict[int, Any] = {}

    @property
    def active(self) -> bool:
        return bool(self._previous)

    def _handler(self, signum, frame) -> None:
        self.received = signum

    def install(self) -> SignalFlag:
        try:
            self._previous = {s: signal.signal(s, self._handler) for s in SIGNALS}
        except ValueError:  # not the main thread: leave the handlers alone
            self._previous = {}
        return self

    def restore(self) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous = {}

    def exit_code(self) -> int:
        """The conventional status of a process stopped by the received signal."""
        return 128 + self.received

    def __enter__(self) -> SignalFlag:
        return self.install()

    def __exit__(self, *exc) -> None:
        self.restore()
