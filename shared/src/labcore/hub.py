"""One save/load contract for every model class: ``config.json`` + ``model.safetensors`` + ``README.md``.

Two routes share this module's checks:

* :class:`HubMixin` for plain ``nn.Module`` models, on ``huggingface_hub``'s ``PyTorchModelHubMixin``
  (``__init__`` takes a dataclass ``config`` or JSON-able keyword arguments);
* :class:`PreTrainedMixin` for ``transformers.PreTrainedModel`` classes (``class M(PreTrainedMixin, PreTrainedModel)``).

Saving writes a tag ``"labcore": {"package": ..., "class": ...}`` into ``config.json`` and a model card.
Loading, before any real weight is allocated: resolves the path (a path that looks local but does not exist
is a :class:`FileNotFoundError`, never a "Repo id must be ..." error), reads ``config.json`` (missing, empty or
invalid → :class:`~labcore.checkpoint.CheckpointError`), refuses a foreign tag (naming both), reads the
safetensors header (missing, empty, truncated or corrupt → ``CheckpointError``), builds the model on the
``meta`` device to count its parameters (more than ``hub_max_parameters`` → ``CheckpointError``) and compares
every name and shape with the file (missing/unexpected keys, shape mismatches → ``CheckpointError`` naming them).
Only then is the model built and loaded strictly; non-finite weights are refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import os
import re
import struct
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from huggingface_hub import PyTorchModelHubMixin

from labcore.checkpoint import (
    CheckpointError,
    atomic_write,
    atomic_write_text,
    describe_mismatch,
    load_state_dict_checked,
)

CONFIG_FILE, WEIGHTS_FILE, INDEX_FILE, CARD_FILE = (
    "config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "README.md",
)
TAG_KEY = "labcore"
LEGACY_CLASS_KEY = "class"  # the class name older saves (dnfs) kept in config.json
DEFAULT_MAX_PARAMETERS = 2_000_000_000
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


# ---- paths and files ---------------------------------------------------------------------------


def looks_local(path: str | os.PathLike) -> bool:
    """Whether ``path`` is meant as a local path rather than a Hub repo id (``name`` or ``org/name``)."""
    if isinstance(path, os.PathLike):
        return True
    s = str(path)
    return os.path.exists(s) or s.startswith((".", "/", "~")) or "\\" in s or not _REPO_ID.match(s)


def resolve_directory(path: str | os.PathLike, **hub_kwargs: Any) -> Path:
    """The local directory of a saved model: ``path`` itself, or a Hub snapshot when ``path`` is a repo id."""
    if looks_local(path):
        directory = Path(path).expanduser()
        if not directory.exists():
            parent = next((p for p in directory.parents if p.exists()), None)
            hint = f"; {parent} exists and holds {sorted(q.name for q in parent.iterdir())[:10]}" if parent else ""
            raise FileNotFoundError(f"no saved model at {directory}: the path does not exist{hint}")
        if not directory.is_dir():
            raise NotADirectoryError(f"{directory} is a file; pass the directory written by save_pretrained")
        return directory
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(str(path), **hub_kwargs))
    except Exception as e:  # offline, unknown repo, network: say what was tried
        raise FileNotFoundError(
            f"{path!r} is not a local directory and could not be fetched from the Hugging Face Hub ({e})"
        ) from e


def read_config(directory: Path) -> dict[str, Any]:
    """``config.json`` as a dict; ``FileNotFoundError`` when it is missing, ``CheckpointError`` when it is empty or
    not a JSON object."""
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory} holds no {CONFIG_FILE}; is it a directory written by save_pretrained?")
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise CheckpointError(f"{path} is empty; re-save the model")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON ({e}); re-save the model") from e
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path} must hold a JSON object, got {type(raw).__name__}")
    return raw


def safetensors_header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``{name: (dtype, shape)}`` from a safetensors file's header, reading only the header.

    Raises ``CheckpointError`` for a missing, empty, truncated or corrupt file.
    """
    if not path.is_file():
        raise CheckpointError(f"weights file {path} is missing; re-save the model")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"weights file {path} is empty (0 bytes); re-save the model")
    with open(path, "rb") as f:
        head = f.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if not 0 < n <= size - 8:
            raise CheckpointError(f"weights file {path} is truncated or corrupt (bad header length); re-save the model")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CheckpointError(f"weights file {path} has a corrupt header ({e}); re-save the model") from e
    if not isinstance(header, dict):
        raise CheckpointError(f"weights file {path} has a corrupt header")
    header.pop("__metadata__", None)
    try:
        end = max((int(v["data_offsets"][1]) for v in header.values()), default=0)
        out = {k: (str(v["dtype"]), tuple(int(d) for d in v["shape"])) for k, v in header.items()}
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise CheckpointError(f"weights file {path} has a corrupt header ({e!r})") from e
    if size - 8 - n < end:
        raise CheckpointError(
            f"weights file {path} is truncated: its header describes {end} bytes of tensors, the file holds "
            f"{size - 8 - n}; re-save or re-download it"
        )
    return out


def weights_header(directory: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Header of ``model.safetensors``, or of all shards listed in ``model.safetensors.index.json``."""
    index = directory / INDEX_FILE
    if not (directory / WEIGHTS_FILE).exists() and index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            raise CheckpointError(f"{index} is corrupt ({e!r}); re-download the checkpoint") from e
        out: dict[str, tuple[str, tuple[int, ...]]] = {}
        for shard in shards:
            out.update(safetensors_header(directory / shard))
        return out
    return safetensors_header(directory / WEIGHTS_FILE)


def read_state_file(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """The contents of a weights file (``.safetensors``, or a ``torch.save`` file read with ``weights_only=True``,
    e.g. an official ``.pth``): ``FileNotFoundError`` when it is missing, ``CheckpointError`` when it is empty,
    truncated or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    if path.suffix == ".safetensors":
        from labcore.checkpoint import _load_tensors

        safetensors_header(path)
        return _load_tensors(path, map_location)
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint file {path} is empty (0 bytes); re-download it")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, garbage, or objects outside the safe unpickler's allow-list
        raise CheckpointError(f"could not read {path} as a PyTorch checkpoint ({type(e).__name__}: {e})") from e


# ---- tags, sizes, keys -------------------------------------------------------------------------


def model_tag(cls: type) -> dict[str, str]:
    """``{"package", "class"}`` written into ``config.json`` by :func:`save_pretrained` (the model's own class, not
    the ``FSDP<class>`` subclass FSDP2's ``fully_shard`` swaps in during an ``fsdp`` run)."""
    cls = next(c for c in cls.__mro__ if not any(b.__name__ == "FSDPModule" for b in c.__mro__))
    return {"package": cls.__module__.split(".")[0], "class": cls.__name__}


def check_tag(raw: Mapping[str, Any], cls: type, where: Path) -> None:
    """Refuse a ``config.json`` tagged for another package or class, naming both."""
    tag = raw.get(TAG_KEY)
    if tag is None:
        return
    want = model_tag(cls)
    if not isinstance(tag, dict) or {k: tag.get(k) for k in want} != want:
        got = f"{tag.get('package')}.{tag.get('class')}" if isinstance(tag, dict) else repr(tag)
        raise CheckpointError(
            f"{where / CONFIG_FILE} was saved by {got}, not {want['package']}.{want['class']}; "
            f"load it with {got}.from_pretrained"
        )


@contextlib.contextmanager
def _meta_device() -> Iterator[None]:
    with torch.device("meta"):
        yield


def meta_state_shapes(build, where: Path) -> dict[str, tuple[int, ...]] | None:
    """Names and shapes of ``build()``'s state dict, built on the meta device (no memory, no init cost);
    ``None`` when the model cannot be built there. A config the model refuses is a ``CheckpointError``."""
    try:
        with _meta_device():
            model = build()
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where / CONFIG_FILE} describes a model that cannot be built: {e}") from e
    except (NotImplementedError, RuntimeError):
        return None
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def count(shapes: Mapping[str, tuple[int, ...]]) -> int:
    n = 0
    for s in shapes.values():
        m = 1
        for d in s:
            m *= d
        n += m
    return n


def check_size(cls: type, shapes: Mapping[str, tuple[int, ...]], where: Path, limit: int | None = None) -> None:
    limit = int(getattr(cls, "hub_max_parameters", DEFAULT_MAX_PARAMETERS) if limit is None else limit)
    n = count(shapes)
    if n > limit:
        raise CheckpointError(
            f"{where / CONFIG_FILE} describes a {cls.__name__} of {n:,} parameters, more than "
            f"hub_max_parameters={limit:,}; is it the config of another model?"
        )


def check_against_weights(
    cls: type,
    expected: Mapping[str, tuple[int, ...]],
    header: Mapping[str, tuple[str, tuple[int, ...]]],
    where: Path,
    ignore: tuple[str, ...] = (),
) -> None:
    """``CheckpointError`` naming the missing/unexpected keys and shape mismatches between model and file."""
    got = {k: s for k, (_, s) in header.items() if not any(re.search(p, k) for p in ignore)}
    want = {k: s for k, s in expected.items() if not any(re.search(p, k) for p in ignore)}
    missing, unexpected, shapes = describe_mismatch(want, got)
    if missing or unexpected or shapes:
        parts = [f"{where} does not match {cls.__name__} built from its {CONFIG_FILE}:"]
        for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
            if items:
                more = f" … (+{len(items) - 8} more)" if len(items) > 8 else ""
                parts.append(f"{label} ({len(items)}): {', '.join(items[:8])}{more}")
        parts.append(
            f"the config describes {count(want):,} parameters, the weights hold {count(got):,}; "
            "was config.json edited, or do the files come from different models?"
        )
        raise CheckpointError("\n  ".join(parts))


def check_finite(model: torch.nn.Module, where: Path) -> None:
    bad = [k for k, p in model.named_parameters() if p.is_floating_point() and not bool(torch.isfinite(p).all())]
    if bad:
        raise CheckpointError(f"{where} holds NaN/inf weights in {', '.join(bad[:8])}; the checkpoint is corrupt")


# ---- model card ---------------------------------------------------------------------------------


def model_card(model: torch.nn.Module, config: Mapping[str, Any], paper_url: str | None, repo_url: str | None) -> str:
    """A model card: what the model is, where it comes from, how to load it, its size and its config."""
    tag = model_tag(type(model))
    doc = inspect.getdoc(type(model)) or ""
    summary = doc.split("\n\n")[0].replace("\n", " ")
    n = sum(p.numel() for p in model.parameters())
    rows = "\n".join(f"| `{k}` | `{json.dumps(v)}` |" for k, v in sorted(config.items()) if k != TAG_KEY)
    links = "".join(f"- {label}: {url}\n" for label, url in (("Paper", paper_url), ("Code", repo_url)) if url)
    return (
        f"---\nlibrary_name: {tag['package']}\ntags:\n- {tag['package']}\n- labcore\n- pytorch\n---\n\n"
        f"# {tag['class']} ({tag['package']})\n\n{summary}\n\n{links}- Parameters: {n:,}\n\n"
        f"## Load\n\n```python\nfrom {tag['package']} import {tag['class']}\n\n"
        f'model = {tag["class"]}.from_pretrained("path/to/this/folder")\n```\n\n'
        f"Loading is strict: missing or unexpected weights, shape mismatches, a config of another model "
        f"and truncated files are errors.\n\n## Config\n\n| field | value |\n|---|---|\n{rows}\n"
    )


def _save_weights(module: torch.nn.Module, directory: Path) -> None:
    from safetensors.torch import save

    from labcore.checkpoint import _to_saveable

    data = save(_to_saveable(module.state_dict()), metadata={"format": "pt"})
    atomic_write(directory / WEIGHTS_FILE, lambda f: f.write(data))


def load_tagged(path: str | os.PathLike, classes: Sequence[type], **kwargs: Any) -> Any:
    """Load a directory saved by one of ``classes`` (``HubMixin`` models), chosen by the tag in its ``config.json``;
    an untagged (older) directory goes to the class whose config fields fit it most tightly."""
    directory = resolve_directory(path)
    raw = read_config(directory)
    tag = raw.get(TAG_KEY)
    for c in classes:
        if tag == model_tag(c) or (tag is None and raw.get(LEGACY_CLASS_KEY) == c.__name__):
            return c.from_pretrained(directory, **kwargs)
    names = ", ".join(f"{model_tag(c)['package']}.{c.__name__}" for c in classes)
    if tag is not None:
        got = f"{tag.get('package')}.{tag.get('class')}" if isinstance(tag, dict) else repr(tag)
        raise CheckpointError(f"{directory / CONFIG_FILE} was saved by {got}, not by one of {names}")
    fits = [c for c in classes if set(raw) <= c.config_fields()]
    if not fits:
        raise CheckpointError(f"{directory / CONFIG_FILE} fits none of {names}: is it another model's directory?")
    return min(fits, key=lambda c: len(c.config_fields())).from_pretrained(directory, **kwargs)


@contextlib.contextmanager
def exit_on_load_error() -> Iterator[None]:
    """For command lines: a model that cannot be loaded ends the command with the error's message (exit status 1)
    instead of a traceback."""
    try:
        yield
    except (CheckpointError, FileNotFoundError, NotADirectoryError) as e:
        raise SystemExit(f"error: {e}") from e


# ---- route 1: plain nn.Module on huggingface_hub --------------------------------------------------


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


class HubMixin(PyTorchModelHubMixin):
    """``save_pretrained``/``from_pretrained`` for an ``nn.Module`` whose ``__init__`` takes one dataclass
    ``config`` (JSON lists come back as tuples in fields annotated ``tuple``) or JSON-able keyword
    arguments. Extra ``__init__`` arguments that are not saved (e.g. a graph) are passed to ``from_pretrained``.
    Facts about training that loaders need but ``__init__`` does not take (e.g. a noise range) go in
    ``model.hub_info``, restricted to the keys named in ``hub_info_fields``.
    """

    hub_max_parameters: ClassVar[int] = DEFAULT_MAX_PARAMETERS
    hub_info_fields: ClassVar[tuple[str, ...]] = ()  # config.json keys kept in ``model.hub_info``, not __init__'s

    def _save_pretrained(self, save_directory: Path) -> None:
        info = {k: v for k, v in getattr(self, "hub_info", {}).items() if k in self.hub_info_fields}
        config = {**_jsonable(self._hub_mixin_config or {}), **_jsonable(info), TAG_KEY: model_tag(type(self))}
        _save_weights(self, save_directory)
        atomic_write_text(save_directory / CONFIG_FILE, json.dumps(config, indent=2, sort_keys=True))
        info = self._hub_mixin_info
        atomic_write_text(save_directory / CARD_FILE, model_card(self, config, info.paper_url, info.repo_url))

    @classmethod
    def _config_dataclass(cls) -> type | None:
        annotation = inspect.get_annotations(cls.__init__, eval_str=True).get("config")
        return annotation if dataclasses.is_dataclass(annotation) else None

    @classmethod
    def config_fields(cls) -> set[str]:
        """The names ``config.json`` may hold: the config dataclass's fields, or ``__init__``'s arguments."""
        annotation = cls._config_dataclass()
        if annotation is not None:
            return {f.name for f in dataclasses.fields(annotation)}
        return set(inspect.signature(cls.__init__).parameters) - {"self", "args", "kwargs"}

    @classmethod
    def _init_kwargs(cls, raw: dict[str, Any], where: Path) -> dict[str, Any]:
        if raw.get(LEGACY_CLASS_KEY) == cls.__name__:
            raw = {k: v for k, v in raw.items() if k != LEGACY_CLASS_KEY}
        annotation = cls._config_dataclass()
        if annotation is not None:
            fields = {f.name: f for f in dataclasses.fields(annotation)}
            unknown = sorted(set(raw) - set(fields))
            if unknown:
                raise CheckpointError(
                    f"{where / CONFIG_FILE} has fields {unknown} that {annotation.__name__} does not know; "
                    f"it is not the config of a {cls.__name__}"
                )
            values = {k: _tuples(v) if "tuple" in str(fields[k].type) else v for k, v in raw.items()}
            try:
                return {"config": annotation(**values)}
            except (TypeError, ValueError) as e:
                raise CheckpointError(f"{where / CONFIG_FILE} is not a valid {annotation.__name__}: {e}") from e
        unknown = sorted(set(raw) - cls.config_fields())
        if unknown:
            raise CheckpointError(
                f"{where / CONFIG_FILE} has fields {unknown} that {cls.__name__}.__init__ does not take; "
                f"it is not the config of a {cls.__name__}"
            )
        return dict(raw)

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *,
        map_location: str | torch.device = "cpu",
        strict: bool = True,
        force_download: bool = False,
        token: str | bool | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool = False,
        revision: str | None = None,
        **model_kwargs: Any,
    ):
        """Load a directory written by ``save_pretrained`` (or a Hub repo id) with every check of this module.

        ``strict=False`` allows missing/unexpected keys (shape mismatches are always errors).
        """
        directory = resolve_directory(
            pretrained_model_name_or_path,
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            token=token,
            local_files_only=local_files_only,
            allow_patterns=[CONFIG_FILE, WEIGHTS_FILE, CARD_FILE],
        )
        raw = read_config(directory)
        check_tag(raw, cls, directory)
        raw.pop(TAG_KEY, None)
        info = {k: raw.pop(k) for k in cls.hub_info_fields if k in raw}
        kwargs = {**cls._init_kwargs(raw, directory), **model_kwargs}
        header = weights_header(directory)
        shapes = meta_state_shapes(lambda: cls(**kwargs), directory)
        if shapes is not None:
            check_size(cls, shapes, directory)
            if strict:
                check_against_weights(cls, shapes, header, directory / WEIGHTS_FILE)
        model = cls(**kwargs)
        load_state_dict_checked(model, read_state_file(directory / WEIGHTS_FILE, map_location), strict=strict)
        check_finite(model, directory / WEIGHTS_FILE)
        model.hub_info = info
        return model.to(map_location).eval()


# ---- route 2: transformers PreTrainedModel ----------------------------------------------------------


class PreTrainedMixin:
    """The same contract for a ``transformers.PreTrainedModel`` subclass: ``class M(PreTrainedMixin, PreTrainedModel)``.

    Local directories get every pre-build check (tag, ``model_type``, files, size, names and shapes);
    Hub repo ids are checked after loading (strict keys, finite weights).
    """

    hub_max_parameters: ClassVar[int] = DEFAULT_MAX_PARAMETERS
    paper_url: ClassVar[str | None] = None
    repo_url: ClassVar[str | None] = None

    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any):
        """transformers' ``save_pretrained`` plus the tag and card; weights sharded by an ``fsdp`` run are
        gathered first (every process must call it, see :func:`labcore.checkpoint.full_tensors`)."""
        from labcore.checkpoint import full_tensors

        setattr(self.config, TAG_KEY, model_tag(type(self)))
        state = self.state_dict()
        if "state_dict" not in kwargs and any(hasattr(v, "full_tensor") for v in state.values()):
            kwargs["state_dict"] = full_tensors(state)
        out = super().save_pretrained(save_directory, *args, **kwargs)
        config = read_config(Path(save_directory))
        card = model_card(self, config, self.paper_url, self.repo_url)
        atomic_write_text(Path(save_directory) / CARD_FILE, card)
        return out

    @classmethod
    def _precheck(cls, directory: Path, kwargs: dict[str, Any]) -> None:
        raw = read_config(directory)
        check_tag(raw, cls, directory)
        want = getattr(cls.config_class, "model_type", "")
        if kwargs.get("config") is None and TAG_KEY not in raw and raw.get("model_type") != want:
            raise CheckpointError(
                f"{directory / CONFIG_FILE} has model_type {raw.get('model_type')!r}, not {want!r}: it is not "
                f"a {cls.__name__} checkpoint (a config without it would build a default-sized model)"
            )
        check_pretrained_files(cls, cls.config_class, directory, raw, kwargs, cls.hub_max_parameters)

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any, strict: bool = True, **kwargs
    ):
        """``PreTrainedModel.from_pretrained`` under the contract; ``strict=False`` allows missing/unexpected
        keys (transformers then initialises the missing ones)."""
        return _load_pretrained(cls, super().from_pretrained, pretrained_model_name_or_path, args, strict, kwargs)


def check_pretrained_files(
    model_cls: type,
    config_cls: Any,
    directory: Path,
    raw: Mapping[str, Any],
    kwargs: Mapping[str, Any],
    max_parameters: int | None = None,
) -> None:
    """Pre-build checks of a transformers checkpoint folder: the config is valid, the model it describes is not
    absurdly large (counted on the meta device), and every name and shape agrees with the safetensors files."""
    given = kwargs.get("config")  # a config passed on purpose replaces config.json
    overrides = {k: v for k, v in kwargs.items() if k in raw}
    try:
        config = given if given is not None else config_cls.from_pretrained(directory, **overrides)
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{directory / CONFIG_FILE} is not a valid {config_cls.__name__}: {e}") from e
    mapping = getattr(model_cls, "_model_mapping", None)  # an Auto class: the class this config builds
    if mapping is not None:
        try:
            model_cls = mapping[type(config)]
        except KeyError as e:
            raise CheckpointError(f"{directory / CONFIG_FILE}: {type(config).__name__} has no such model") from e
    safetensors_files = (directory / WEIGHTS_FILE).exists() or (directory / INDEX_FILE).exists()
    header = weights_header(directory) if safetensors_files or not any(directory.glob("*.bin")) else None
    shapes = meta_state_shapes(lambda: model_cls(config), directory)
    if shapes is None:
        return
    if max_parameters is not None:
        check_size(model_cls, shapes, directory, max_parameters)
    if header is None:
        return
    ignore = tuple(getattr(model_cls, "_keys_to_ignore_on_load_unexpected", None) or ())
    ignore += tuple(getattr(model_cls, "_keys_to_ignore_on_load_missing", None) or ())
    if getattr(config, "tie_word_embeddings", False):
        ignore += tuple(f"^{re.escape(k)}$" for k in getattr(model_cls, "_tied_weights_keys", None) or ())
    check_against_weights(model_cls, shapes, header, directory, ignore)


def _load_pretrained(cls, load, path, args, strict: bool, kwargs: dict[str, Any], tag=None, max_parameters=None):
    want_info = kwargs.pop("output_loading_info", False)
    directory = Path(str(path))
    if looks_local(path):
        directory = path = resolve_directory(path)
        if strict:
            precheck = getattr(cls, "_precheck", None)
            if precheck is not None:
                precheck(directory, kwargs)
            else:
                from transformers import AutoConfig

                raw = read_config(directory)
                if tag is not None:
                    check_tag(raw, tag, directory)
                config_cls = getattr(cls, "config_class", None) or AutoConfig
                check_pretrained_files(cls, config_cls, directory, raw, kwargs, max_parameters)
    model, info = load(path, *args, output_loading_info=True, **kwargs)
    bad = {k: sorted(map(str, info.get(k) or ())) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    bad = {k: v for k, v in bad.items() if v}
    if strict and bad:
        detail = "; ".join(
            f"{k.replace('_', ' ')}: {', '.join(v[:8])}{' …' if len(v) > 8 else ''}" for k, v in bad.items()
        )
        raise CheckpointError(
            f"{directory} does not match {type(model).__name__} ({detail}); pass strict=False to load it anyway"
        )
    check_finite(model, directory)
    return (model, info) if want_info else model


def load_pretrained(
    cls: Any,
    path: str | os.PathLike,
    *args: Any,
    strict: bool = True,
    tag: type | None = None,
    max_parameters: int | None = None,
    **kwargs: Any,
):
    """``cls.from_pretrained(path, ...)`` of any transformers class (``AutoModelForCausalLM``, a model class without
    :class:`PreTrainedMixin`) under the same checks: clear errors for path typos and bad files, names and shapes
    before building (and ``max_parameters``, if given), strict keys and finite weights after. ``tag``: the class
    whose :func:`model_tag` the folder must carry, if it carries one (a wrapper such as ``R2LModel``)."""
    return _load_pretrained(cls, cls.from_pretrained, path, args, strict, kwargs, tag, max_parameters)
