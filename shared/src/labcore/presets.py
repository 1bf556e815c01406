"""One preset convention for every package: ``PRESETS`` (name → config factory) and ``create(name)``.

Each package builds one :class:`Presets` and exports it with its ``create`` at top level::

    PRESETS = Presets("tarflow", TarFlow, {"afhq-256": partial(TarFlowConfig, ...), ...})
    create = PRESETS.create

    config = PRESETS["afhq-256"](noise_std=0.1)   # a fresh config, fields overridden
    model = create("afhq-256", num_blocks=4)      # the model built from it

An unknown name raises :class:`UnknownPresetError` (a ``KeyError``) listing close matches and every name.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any


class UnknownPresetError(KeyError):
    """A preset name that the package does not have; the message lists close matches and all names."""

    def __init__(self, package: str, name: object, names: list[str]):
        close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
        self.message = f"{package} has no preset {name!r}; {hint}presets: {', '.join(names)}"
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would repr() the message, quoting it
        return self.message


class Presets(Mapping[str, Callable[..., Any]]):
    """Named configurations of one package: ``presets[name](**overrides)`` is a fresh config and
    ``presets.create(name, **overrides)`` the model ``build(config)``.

    Factories take the config's fields as keyword overrides (``functools.partial(Config, ...)`` does).
    ``build`` is the model class (any ``config → model`` callable), or a mapping ``{config type: model class}``
    for a package whose presets build several classes.
    """

    def __init__(
        self,
        package: str,
        build: Callable[[Any], Any] | Mapping[type, Callable[[Any], Any]],
        factories: Mapping[str, Callable[..., Any]],
    ):
        if not factories:
            raise ValueError(f"{package}: a Presets registry needs at least one preset")
        self.package, self._build, self._factories = package, build, dict(factories)

    def build(self, config: Any) -> Any:
        """The randomly initialised model of ``config``."""
        if not isinstance(self._build, Mapping):
            return self._build(config)
        if type(config) not in self._build:
            known = ", ".join(t.__name__ for t in self._build)
            raise TypeError(f"{self.package} builds models from {known}, not {type(config).__name__}")
        return self._build[type(config)](config)

    def __getitem__(self, name: str) -> Callable[..., Any]:
        try:
            return partial(_call_fresh, self._factories[name])
        except (KeyError, TypeError):
            raise UnknownPresetError(self.package, name, self.names()) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)

    def __len__(self) -> int:
        return len(self._factories)

    def names(self) -> list[str]:
        """Every preset name, sorted."""
        return sorted(self._factories)

    def create(self, name: str, **overrides: Any) -> Any:
        """The model of preset ``name``, its config fields replaced by ``overrides`` (randomly initialised)."""
        return self.build(self[name](**overrides))

    def __repr__(self) -> str:
        return f"Presets({self.package!r}: {', '.join(self.names())})"

    def cli_config(self, name: str, **overrides: Any) -> Any:
        """``self[name](**overrides)`` for a CLI's ``--preset`` (which lists no choices, so that ``--help`` imports
        no model code): an unknown name exits with the error's message."""
        try:
            factory = self[name]
        except UnknownPresetError as err:
            raise SystemExit(str(err)) from None
        return factory(**overrides)


def _call_fresh(factory: Callable[..., Any], **overrides: Any) -> Any:
    """``factory(**overrides)`` on deep copies of the arguments a ``partial`` binds: no two configs share a list."""
    if isinstance(factory, partial):
        return factory.func(*copy.deepcopy(factory.args), **{**copy.deepcopy(factory.keywords), **overrides})
    return factory(**overrides)
