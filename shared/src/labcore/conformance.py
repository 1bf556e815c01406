"""Bad-input conformance suite: each package registers its public entry points, the suite throws the standard
bad inputs at them (in the spirit of timm's per-model tests) and asserts a clear error.

A clear error is an exception of an expected type whose message names the argument (or file, or flag), raised
from the package's own code — never a number, a hang or a traceback from deep inside torch. Hangs are caught by
a step guard (a cap on ``nn.Module`` forward calls), not by timing.

In ``packages/<pkg>/tests/test_<pkg>_conformance.py``::

    from labcore.conformance import CallSpec, CliSpec, ModelSpec, NONFINITE, COUNTS, conformance_tests

    globals().update(conformance_tests(
        models=[ModelSpec(lambda: TarFlow(TINY), reshape={"channels": 48}, oversize={"channels": 2**20})],
        calls=[CallSpec("forward", lambda x: model().forward(x), lambda: {"x": torch.zeros(2, 3, 8, 8)},
                        {"x": NONFINITE})],
        clis=[CliSpec("tarflow", main, [(["sample", "--model", "{missing}"], "{missing}")])],
    ))

Model cases (:data:`MODEL_CASES`): a round trip (tag and model card written), and missing/mistyped paths, empty
directories, missing/empty/corrupt ``config.json``, missing/empty/truncated/corrupt ``model.safetensors``,
foreign tags and configs, a config edited to other shapes or to an absurd size (refused before any real
weight is allocated), missing/unexpected keys and NaN weights. ``xfail`` maps a case id to the reason it still
fails (``strict=True``: the test turns red once it passes, so the mark is removed with the fix).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
import math
import os
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from labcore.checkpoint import CheckpointError
from labcore.hub import CONFIG_FILE, TAG_KEY, WEIGHTS_FILE

MAX_FORWARD_CALLS = 20_000
LOAD_ERRORS = (CheckpointError, FileNotFoundError, NotADirectoryError, ValueError)


class StepGuardExceeded(RuntimeError):
    """More ``nn.Module`` forward calls than a bad input may cost: the entry point did not refuse it."""


@contextlib.contextmanager
def step_guard(max_calls: int = MAX_FORWARD_CALLS) -> Iterator[None]:
    """Raise :class:`StepGuardExceeded` once ``max_calls`` module forwards have run inside the block."""
    calls = [0]

    def hook(module, args):
        calls[0] += 1
        if calls[0] > max_calls:
            raise StepGuardExceeded(f"more than {max_calls} forward calls: the bad input was not refused up front")

    handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()


# ---- standard bad values ------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """A bad value made from the good one (``make(good)``), labelled for the test id."""

    label: str
    make: Callable[[Any], Any]

    def __call__(self, good: Any) -> Any:
        return self.make(good)


def _fill(value: float) -> Callable[[Any], Any]:
    def make(good):
        if torch.is_tensor(good):
            bad = good.clone().float() if not good.is_floating_point() else good.clone()
            bad.view(-1)[0] = value
            return bad
        return value

    return make


NAN = Bad("nan", _fill(math.nan))
INF = Bad("inf", _fill(math.inf))
NONFINITE = (NAN, INF)
COUNTS = (0, -1)  # zero and negative sizes, counts, steps
EXTRA_DIM = Bad("extra_dim", lambda t: t.unsqueeze(0))
MISSING_DIM = Bad("missing_dim", lambda t: t[0])
AS_INT = Bad("int_dtype", lambda t: t.round().long())
AS_FLOAT = Bad("float_dtype", lambda t: t.float())
EMPTY_BATCH = Bad("empty_batch", lambda t: t[:0])
ZERO = Bad("zero", lambda v: v * 0)
NEGATIVE = Bad("negative", lambda v: -abs(v) - 1)


def out_of_vocab(vocab_size: int) -> Bad:
    """Token ids shifted past a vocabulary of ``vocab_size``: every id is out of range."""
    return Bad("out_of_vocab", lambda ids: ids + vocab_size)


def _label(value: Any) -> str:
    if isinstance(value, Bad):
        return value.label
    text = repr(value)
    return text if len(text) <= 20 else text[:17] + "..."


# ---- specs ----------------------------------------------------------------------------------------


@dataclass
class ModelSpec:
    """A model class under the :mod:`labcore.hub` contract.

    ``build`` makes a tiny instance; ``reshape`` is a ``config.json`` edit that changes weight shapes (in the
    nested ``config`` for a dataclass config the edit applies to the top level, which is where it is saved);
    ``oversize`` one that describes more than ``hub_max_parameters``. ``load`` defaults to
    ``type(model).from_pretrained``.
    """

    build: Callable[[], torch.nn.Module]
    reshape: Mapping[str, Any]
    oversize: Mapping[str, Any]
    load: Callable[[Any], torch.nn.Module] | None = None
    name: str | None = None
    xfail: Mapping[str, str] = field(default_factory=dict)


@dataclass
class CallSpec:
    """A public function or method: ``fn(**args())`` must work; each value in ``bad[arg]`` (a constant or a
    :class:`Bad` made from the good value) must raise one of ``errors`` with a message naming ``names[arg]``
    (a name or a tuple of accepted names; default: the argument's name)."""

    name: str
    fn: Callable[..., Any]
    args: Callable[[], dict[str, Any]]
    bad: Mapping[str, Sequence[Any]]
    errors: tuple[type[BaseException], ...] = (ValueError, TypeError)
    names: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    xfail: Mapping[str, str] = field(default_factory=dict)


@dataclass
class CliSpec:
    """A command line ``main(argv)``: each case ``(argv, text)`` must exit non-zero with ``text`` in its message
    and no traceback. In ``argv`` and ``text``, ``{missing}`` is a path that does not exist, ``{empty_file}`` an
    empty file, ``{empty_dir}`` an empty directory, ``{corrupt}`` a directory with garbage ``config.json`` and
    ``model.safetensors``."""

    name: str
    main: Callable[[list[str]], Any]
    cases: Sequence[tuple[Sequence[str], str]]
    xfail: Mapping[str, str] = field(default_factory=dict)


# ---- checks ---------------------------------------------------------------------------------------


def assert_clear_error(excinfo: pytest.ExceptionInfo, *names: str) -> None:
    """The message names one of ``names`` and the exception was raised outside torch's internals."""
    message = str(excinfo.value)
    assert any(n.lower() in message.lower() for n in names), f"error does not name {names}: {message!r}"
    torch_dir = os.path.dirname(torch.__file__)
    frames = traceback.extract_tb(excinfo.tb)
    assert frames and not frames[-1].filename.startswith(torch_dir), (
        f"error raised inside torch ({frames[-1].filename}:{frames[-1].lineno}), not by an input check: {message!r}"
    )


_SAVED: dict[int, tuple[torch.nn.Module, dict[str, bytes]]] = {}


def _saved(spec: ModelSpec, root: Path) -> tuple[torch.nn.Module, Path]:
    """A fresh copy of the spec's saved directory (the model is built and saved once per spec)."""
    if id(spec) not in _SAVED:
        model = spec.build()
        model.save_pretrained(root / "template")
        _SAVED[id(spec)] = model, {p.name: p.read_bytes() for p in (root / "template").iterdir() if p.is_file()}
    model, files = _SAVED[id(spec)]
    (root / "saved").mkdir()
    for name, data in files.items():
        (root / "saved" / name).write_bytes(data)
    return model, root / "saved"


def _loader(spec: ModelSpec, model: torch.nn.Module) -> Callable[[Any], torch.nn.Module]:
    return spec.load or type(model).from_pretrained


def _edit_config(directory: Path, edit: Mapping[str, Any]) -> None:
    raw = json.loads((directory / CONFIG_FILE).read_text())
    target = raw["config"] if isinstance(raw.get("config"), dict) else raw
    target.update(copy.deepcopy(dict(edit)))
    (directory / CONFIG_FILE).write_text(json.dumps(raw))


def _edit_weights(directory: Path, edit: Callable[[dict[str, torch.Tensor]], None]) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(directory / WEIGHTS_FILE))
    edit(tensors)
    save_file(tensors, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})  # transformers<4.47 needs it


@contextlib.contextmanager
def _no_real_build(cls: type, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Record the device of every ``cls`` built inside the block (``meta`` builds cost nothing)."""
    devices: list[str] = []
    init = cls.__init__

    @functools.wraps(init)
    def recording(self, *args, **kwargs):
        devices.append(torch.empty(()).device.type)
        init(self, *args, **kwargs)

    monkeypatch.setattr(cls, "__init__", recording)
    yield devices


def _expect_load_error(spec, model, path, *names, monkeypatch=None, built_nothing=False):
    with contextlib.ExitStack() as stack:
        devices = stack.enter_context(_no_real_build(type(model), monkeypatch)) if built_nothing else []
        with pytest.raises(LOAD_ERRORS) as excinfo, step_guard():
            _loader(spec, model)(path)
    assert "Repo id must" not in str(excinfo.value), str(excinfo.value)
    assert_clear_error(excinfo, *names)
    assert all(d == "meta" for d in devices), f"built a real model ({devices}) before refusing the checkpoint"
    return str(excinfo.value)


def _roundtrip(spec, root, mp):
    model, path = _saved(spec, root)
    raw = json.loads((path / CONFIG_FILE).read_text())
    assert raw.get(TAG_KEY, {}).get("class") == type(model).__name__, raw.get(TAG_KEY)
    card = (path / "README.md").read_text()
    assert type(model).__name__ in card and "Parameters" in card and "from_pretrained" in card
    loaded = _loader(spec, model)(path)
    want, got = model.state_dict(), loaded.state_dict()
    assert sorted(want) == sorted(got)
    for k in want:
        torch.testing.assert_close(got[k].cpu(), want[k].cpu(), rtol=0, atol=0, msg=k)


def _missing_dir(spec, root, mp):
    model, _ = _saved(spec, root)
    _expect_load_error(spec, model, root / "nowhere", "nowhere")


def _path_typo(spec, root, mp):
    model, _ = _saved(spec, root)
    _expect_load_error(spec, model, str(root / "saved" / "modle"), "modle")
    _expect_load_error(spec, model, "./no/such/folder", "no/such/folder")


def _empty_dir(spec, root, mp):
    model, _ = _saved(spec, root)
    (root / "empty").mkdir()
    _expect_load_error(spec, model, root / "empty", CONFIG_FILE)


def _config_case(content: str | None):
    def case(spec, root, mp):
        model, path = _saved(spec, root)
        if content is None:
            (path / CONFIG_FILE).unlink()
        else:
            (path / CONFIG_FILE).write_text(content)
        _expect_load_error(spec, model, path, CONFIG_FILE)

    return case


def _weights_case(kind: str):
    def case(spec, root, mp):
        model, path = _saved(spec, root)
        weights = path / WEIGHTS_FILE
        data = weights.read_bytes()
        if kind == "missing":
            weights.unlink()
        elif kind == "empty":
            weights.write_bytes(b"")
        elif kind == "truncated":
            weights.write_bytes(data[: len(data) - max(1, (len(data) - 8) // 3)])
        else:
            weights.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all" + data[24:])
        _expect_load_error(spec, model, path, WEIGHTS_FILE, monkeypatch=mp, built_nothing=True)

    return case


def _foreign_tag(spec, root, mp):
    model, path = _saved(spec, root)
    raw = json.loads((path / CONFIG_FILE).read_text())
    raw[TAG_KEY] = {"package": "otherpkg", "class": "OtherModel"}
    (path / CONFIG_FILE).write_text(json.dumps(raw))
    message = _expect_load_error(spec, model, path, "otherpkg.OtherModel", monkeypatch=mp, built_nothing=True)
    assert type(model).__name__ in message, f"the error does not name {type(model).__name__}: {message!r}"


def _foreign_config(spec, root, mp):
    model, path = _saved(spec, root)
    (path / CONFIG_FILE).write_text(json.dumps({"model_type": "other", "foreign_width": 7, "foreign_depth": 2}))
    _expect_load_error(spec, model, path, CONFIG_FILE, monkeypatch=mp, built_nothing=True)


def _reshaped(spec, root, mp):
    model, path = _saved(spec, root)
    _edit_config(path, spec.reshape)
    _expect_load_error(spec, model, path, "shape", "missing", "unexpected", monkeypatch=mp, built_nothing=True)


def _oversize(spec, root, mp):
    model, path = _saved(spec, root)
    _edit_config(path, spec.oversize)
    _expect_load_error(spec, model, path, "hub_max_parameters", monkeypatch=mp, built_nothing=True)


def _file_keys(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / WEIGHTS_FILE))


def _missing_key(spec, root, mp):
    model, path = _saved(spec, root)
    key = sorted(_file_keys(path))[0]
    _edit_weights(path, lambda t: t.pop(key))
    _expect_load_error(spec, model, path, key, monkeypatch=mp, built_nothing=True)


def _unexpected_key(spec, root, mp):
    model, path = _saved(spec, root)
    _edit_weights(path, lambda t: t.__setitem__("bogus_extra.weight", torch.zeros(3)))
    _expect_load_error(spec, model, path, "bogus_extra.weight", monkeypatch=mp, built_nothing=True)


def _nan_weights(spec, root, mp):
    model, path = _saved(spec, root)
    params = [n for n, p in model.named_parameters() if p.is_floating_point()]
    stored = _file_keys(path)  # a stored parameter (names may lack a wrapper's prefix), the largest
    key = max(
        (k for k in stored if any(n == k or n.endswith("." + k) for n in params)), key=lambda k: stored[k].numel()
    )

    def poison(tensors):
        tensors[key] = tensors[key].clone()
        tensors[key].view(-1)[0] = math.nan

    _edit_weights(path, poison)
    _expect_load_error(spec, model, path, key, "NaN")


MODEL_CASES: dict[str, Callable[[ModelSpec, Path, pytest.MonkeyPatch], None]] = {
    "roundtrip": _roundtrip,
    "missing_dir": _missing_dir,
    "path_typo": _path_typo,
    "empty_dir": _empty_dir,
    "no_config": _config_case(None),
    "empty_config": _config_case(""),
    "corrupt_config": _config_case("{'not': json"),
    "no_weights": _weights_case("missing"),
    "empty_weights": _weights_case("empty"),
    "truncated_weights": _weights_case("truncated"),
    "corrupt_weights": _weights_case("corrupt"),
    "foreign_tag": _foreign_tag,
    "foreign_config": _foreign_config,
    "reshaped_config": _reshaped,
    "oversized_config": _oversize,
    "missing_key": _missing_key,
    "unexpected_key": _unexpected_key,
    "nan_weights": _nan_weights,
}


def _cli_paths(root: Path) -> dict[str, str]:
    (root / "empty_file").write_bytes(b"")
    (root / "empty_dir").mkdir(exist_ok=True)
    corrupt = root / "corrupt"
    corrupt.mkdir(exist_ok=True)
    (corrupt / CONFIG_FILE).write_text("{garbage")
    (corrupt / WEIGHTS_FILE).write_bytes(b"\x00garbage")
    return {
        "missing": str(root / "missing"),
        "empty_file": str(root / "empty_file"),
        "empty_dir": str(root / "empty_dir"),
        "corrupt": str(corrupt),
    }


def run_cli_case(spec: CliSpec, argv: Sequence[str], text: str, root: Path, capfd) -> None:
    """``spec.main(argv)`` exits non-zero, its message (stderr or the exit's text) contains ``text``."""
    paths = _cli_paths(root)
    argv = [a.format(**paths) for a in argv]
    text = text.format(**paths)
    records: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: records.append(record.getMessage())  # loggers bound to an earlier stderr
    loggers = [logging.getLogger(), logging.getLogger("labcore.root")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        with pytest.raises(SystemExit) as excinfo, step_guard():
            spec.main(argv)
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    code = excinfo.value.code
    assert code not in (0, None), f"{spec.name} {argv} exited 0"
    err = "\n".join([capfd.readouterr().err, *records, code if isinstance(code, str) else ""])
    assert "Traceback" not in err, err
    assert text.lower() in err.lower(), f"{spec.name} {argv}: message does not name {text!r}: {err!r}"


# ---- test factory ---------------------------------------------------------------------------------


def _param(values: tuple, test_id: str, xfail: Mapping[str, str], case: str):
    reason = xfail.get(case)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(*values, id=test_id, marks=marks)


def conformance_tests(
    models: Sequence[ModelSpec] = (), calls: Sequence[CallSpec] = (), clis: Sequence[CliSpec] = ()
) -> dict[str, Callable]:
    """Parametrised pytest functions (``test_conformance_model``/``_call``/``_cli``) for the given specs;
    put them into the test module with ``globals().update(...)``."""
    tests: dict[str, Callable] = {}
    if models:
        params = []
        for spec in models:
            name = spec.name or getattr(spec.build, "__name__", "model")
            params += [_param((spec, case), f"{name}-{case}", spec.xfail, case) for case in MODEL_CASES]

        @pytest.mark.parametrize(("spec", "case"), params)
        def test_conformance_model(spec, case, tmp_path, monkeypatch):
            MODEL_CASES[case](spec, tmp_path, monkeypatch)

        tests["test_conformance_model"] = test_conformance_model
    if calls:
        params = []
        for spec in calls:
            for arg, values in spec.bad.items():
                for value in values:
                    case = f"{arg}-{_label(value)}"
                    params.append(_param((spec, arg, value), f"{spec.name}-{case}", spec.xfail, case))

        @pytest.mark.parametrize(("spec", "arg", "value"), params)
        def test_conformance_call(spec, arg, value):
            kwargs = spec.args()
            kwargs[arg] = value(kwargs[arg]) if isinstance(value, Bad) else value
            with pytest.raises(spec.errors) as excinfo, step_guard():
                spec.fn(**kwargs)
            names = spec.names.get(arg, arg)
            assert_clear_error(excinfo, *((names,) if isinstance(names, str) else names))

        tests["test_conformance_call"] = test_conformance_call
    if clis:
        params = []
        for spec in clis:
            for argv, text in spec.cases:
                case = " ".join(argv)
                params.append(_param((spec, tuple(argv), text), f"{spec.name} {case}", spec.xfail, case))

        @pytest.mark.parametrize(("spec", "argv", "text"), params)
        def test_conformance_cli(spec, argv, text, tmp_path, capfd):
            run_cli_case(spec, argv, text, tmp_path, capfd)

        tests["test_conformance_cli"] = test_conformance_cli
    return tests
