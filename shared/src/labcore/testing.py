"""pytest plugin shared by every package; opt-in, never registered by installing labcore.

A test directory enables it in its ``conftest.py`` with
``from labcore.testing import enable as pytest_configure``.

Markers: ``gpu`` (needs CUDA; skipped without it) and ``slow`` (left out of the CPU suite).
With ``LABCORE_GPU_TESTS=1`` only ``gpu`` tests run, so a GPU runner does not repeat the CPU suite.
Fixtures: ``seeded`` (seeds every generator with 0), ``stop_at_device`` (``--device`` reaches the model),
``compile_backend`` (the torch.compile backends a compile test runs with). :func:`compiled_vs_eager` runs a
call before and after :func:`labcore.compiling.maybe_compile`.
"""

from __future__ import annotations

import os
import sys

import pytest
import torch

from labcore.compiling import maybe_compile
from labcore.rng import seed_everything

MARKERS = {
    "gpu": "needs a CUDA device; skipped without one",
    "slow": "too slow for the CPU suite; run with -m slow",
}


def gpu_tests_only() -> bool:
    return os.environ.get("LABCORE_GPU_TESTS", "") not in ("", "0")


def enable(config: pytest.Config) -> None:
    """Register this plugin once (use as a conftest's ``pytest_configure``)."""
    plugin = sys.modules[__name__]
    if not config.pluginmanager.is_registered(plugin):
        config.pluginmanager.register(plugin, __name__)


def pytest_configure(config: pytest.Config) -> None:
    for name, doc in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if gpu_tests_only():
        selected = [it for it in items if it.get_closest_marker("gpu")]
        deselected = [it for it in items if not it.get_closest_marker("gpu")]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = selected
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for it in items:
            if it.get_closest_marker("gpu"):
                it.add_marker(skip)


@pytest.fixture
def seeded() -> int:
    """Seed Python, NumPy and torch with 0 for the test."""
    return seed_everything(0)


class MovedTo(Exception):
    """A module was moved onto this (non-CPU) device while ``stop_at_device`` was active."""


@pytest.fixture
def stop_at_device(monkeypatch) -> type[MovedTo]:
    """For the test, moving any ``nn.Module`` onto a non-CPU device raises :class:`MovedTo` naming the device: a CLI
    test runs ``... --device meta`` and checks the model is sent there, without running the rest of the command."""
    original = torch.nn.Module.to

    def to(self, *args, **kwargs):
        device = torch._C._nn._parse_to(*args, **kwargs)[0]
        if device is not None and device.type != "cpu":
            raise MovedTo(str(device))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", to)
    return MovedTo


@pytest.fixture(params=["aot_eager", pytest.param("inductor", marks=pytest.mark.slow)])
def compile_backend(request) -> str:
    """``aot_eager`` (TorchDynamo's graph capture and AOTAutograd, no code generation) in the CPU suite;
    ``inductor`` (the default backend: generated C++ on CPU, seconds to minutes to compile) under ``-m slow``."""
    torch._dynamo.reset()
    return request.param


def compiled_vs_eager(run, model: torch.nn.Module, backend: str, *, modules=None, seed: int = 0):
    """``(run(model) eager, run(model) after maybe_compile(model, True, ...))``, torch seeded with ``seed``
    before each call; fails unless the compiled call captured at least one graph (compilation applied)."""
    torch.manual_seed(seed)
    eager = run(model)
    maybe_compile(model, True, modules=modules, backend=backend)
    torch._dynamo.utils.counters.clear()
    torch.manual_seed(seed)
    compiled = run(model)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0, "the compiled call ran no compiled graph"
    return eager, compiled
