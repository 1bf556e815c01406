"""Shared utilities for the paper-implementation packages.

Modules: :mod:`labcore.checkpoint`, :mod:`labcore.kernels`, :mod:`labcore.logging`,
:mod:`labcore.metrics`, :mod:`labcore.rng`, :mod:`labcore.figures`, :mod:`labcore.report`,
and the pytest plugin :mod:`labcore.testing`.
"""

__version__ = "0.2.0"
