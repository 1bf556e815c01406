"""``torch.compile`` as an option of every trainer and sampler: one helper, :func:`maybe_compile`.

Trainers take ``--compile`` from :func:`labcore.trainer_args.add_trainer_args`, samplers from
:func:`labcore.cli.add_compile`; both call :func:`maybe_compile` on the module whose ``forward`` the loop
calls. Compilation is in place (as ``nn.Module.compile``, see :func:`_framed`): parameters, state-dict keys
and ``save_pretrained`` are unchanged, so a compiled model saves and loads like an eager one. torch is imported
inside the functions, so parsers built with this module stay light.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

CXX = ("g++", "c++", "clang++")  # what inductor looks for when $CXX is unset


def maybe_compile(
    model: torch.nn.Module,
    enabled: bool,
    *,
    modules: Iterable[torch.nn.Module] | None = None,
    backend: str = "inductor",
    unsupported: str | None = None,
) -> torch.nn.Module:
    """``torch.compile`` ``model`` (or, given ``modules``, each of those submodules instead) in place when
    ``enabled``; returns ``model``.

    ``modules``: the submodules a sampler calls in its loop when it does not go through ``model.forward``
    (a KV-cached decoder calls its layers). ``unsupported``: why compilation cannot apply to this call;
    ``enabled`` then raises a ``ValueError`` saying so. Also refuses a platform without TorchDynamo and
    the CPU ``inductor`` backend without a C++ compiler, naming what to do.
    """
    if not isinstance(enabled, bool):
        raise TypeError(f"compile must be True or False, got {enabled!r}")
    if not enabled:
        return model
    if unsupported:
        raise ValueError(f"compile=True does not apply here: {unsupported}; run without --compile")
    import torch

    if not torch._dynamo.is_dynamo_supported():
        raise RuntimeError("compile=True: torch.compile does not support this Python/platform; run without --compile")
    targets = list(modules) if modules is not None else [model]
    if not targets or not all(isinstance(m, torch.nn.Module) for m in targets):
        raise TypeError(f"modules must be a non-empty iterable of nn.Module, got {modules!r}")
    on_cpu = any(p.device.type == "cpu" for m in targets for p in m.parameters())
    if backend == "inductor" and on_cpu and not (os.environ.get("CXX") or any(map(shutil.which, CXX))):
        raise RuntimeError(
            "compile=True on CPU needs a C++ compiler for torch.compile's inductor backend "
            f"(none of {', '.join(CXX)} found and $CXX unset): install g++, or run without --compile"
        )
    # torch 2.4's TorchDynamo rebuilds a ModelOutput result with ``torch._dynamo.disable(cls)(...)``, reading
    # ``torch`` from the globals of _framed's frame, i.e. this module's (else NameError on an HF model)
    globals()["torch"] = torch
    for m in targets:
        m._compiled_call_impl = torch.compile(_framed(m._call_impl), backend=backend)
    return model


def _framed(call):
    """``call`` inside a frame of this file. ``nn.Module.compile`` compiles ``_call_impl`` itself; TorchDynamo
    skips top-level frames of ``torch.nn`` code and torch 2.4 to 2.6 do not wrap them (2.14 does), so a module whose
    ``forward`` is torch's own (``nn.Sequential``, ``nn.Linear``) captured no graph and ran eagerly."""

    def call_module(*args, **kwargs):
        return call(*args, **kwargs)

    return call_module
