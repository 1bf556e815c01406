"""The dispatch mechanism behind :mod:`labcore.kernels`."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


def fast_kernels_enabled() -> bool:
    return os.environ.get("LABCORE_DISABLE_FAST_KERNELS", "") in ("", "0")


def _tensors(args: tuple, kwargs: dict) -> list[torch.Tensor]:
    return [a for a in (*args, *kwargs.values()) if torch.is_tensor(a)]


@dataclass
class Kernel:
    """A named operation with a reference implementation and optional fast paths."""

    name: str
    reference: Callable[..., Any]
    fast: list[tuple[str, Callable[..., Any], Callable[..., bool]]] = field(default_factory=list)

    def register(self, device_type: str, fn: Callable[..., Any],
                 available: Callable[..., bool] = lambda *a, **k: True) -> Callable[..., Any]:
        """Add a fast path for tensors on ``device_type`` used when ``available(*args)`` holds."""
        self.fast.append((device_type, fn, available))
        return fn

    def select(self, *args, **kwargs) -> Callable[..., Any]:
        """The implementation a call with these arguments would run."""
        if fast_kernels_enabled():
            tensors = _tensors(args, kwargs)
            devices = {t.device.type for t in tensors}
            for device_type, fn, available in self.fast:
                if devices == {device_type} and available(*args, **kwargs):
                    return fn
        return self.reference

    def __call__(self, *args, **kwargs):
        return self.select(*args, **kwargs)(*args, **kwargs)


def kernel(fn: Callable[..., Any]) -> Kernel:
    """Decorator turning a pure-PyTorch reference function into a dispatchable :class:`Kernel`."""
    k = Kernel(fn.__name__, fn)
    k.__doc__ = fn.__doc__
    return k
