"""The one command-line interface of the collection (CONTRIBUTING.md, "One interface"), and its checker.

Every package's ``python -m <package>`` has the commands ``train``, ``sample`` (or the equivalent its
job calls for: ``predict`` for a detector, ``score`` for a metric), ``evaluate`` and ``demo``, and spells
the same job with the same flag: ``--out``, ``--model``, ``--seed``, ``--device``, ``--batch-size``,
``--steps``, ``--resume/--no-resume`` (default: resume). :func:`check_cli` walks an argparse tree and
lists every departure; a package's ``__main__.build_parser()`` is what it walks.
No heavy import here: ``--help`` stays fast.
"""

from __future__ import annotations

import argparse

REQUIRED = {
    "train": ("--out", "--seed", "--device", "--steps", "--batch-size", "--resume"),
    "sample": ("--model", "--seed", "--device"),
    "evaluate": ("--model", "--device"),
    "demo": ("--out",),
}
# other spellings of a job that has one name here
RENAMED = {
    "--accelerator": "--device",
    "--gpu": "--device",
    "--gpus": "--device",
    "--batch": "--batch-size",
    "--bs": "--batch-size",
    "--reference-checkpoint": "--official-checkpoint",
    "--output": "--out",
    "--output-dir": "--out",
    "--out-dir": "--out",
    "--outdir": "--out",
    "--checkpoint-dir": "--out",
}
INT_FLAGS = ("--seed", "--steps", "--batch-size")


def add_seed(parser: argparse.ArgumentParser, default: int = 0) -> None:
    parser.add_argument("--seed", type=int, default=default, help=f"random seed (default {default})")


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (CUDA when available, else CPU), cpu, cuda or cuda:N")


def add_compile(parser: argparse.ArgumentParser) -> None:
    """``--compile``: torch.compile the sampler's model (:func:`labcore.compiling.maybe_compile`)."""
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (inductor; CPU needs g++)")


def resolve_device(name: str) -> str:
    """``--device`` as a torch device string: ``auto`` is ``cuda`` when available, else ``cpu``."""
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def add_resume(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                        help="continue from the last checkpoint in --out (default); --no-resume starts over")


def _parses_int(kind) -> bool:
    """``kind`` is ``int`` or an int-valued argparse type (labcore.validate's ``positive_int_arg`` etc.)."""
    try:
        return kind is int or type(kind("1")) is int
    except (TypeError, ValueError, argparse.ArgumentTypeError):
        return False


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def check_cli(parser: argparse.ArgumentParser, *, sample: str = "sample", without: tuple[str, ...] = ()) -> list[str]:
    """Departures of ``parser`` from the convention (empty when it conforms).

    ``sample`` names the package's sampling command when its job calls it otherwise (``predict``, ``score``);
    ``without`` lists commands the package documents as not applying (a metric has nothing to ``train``).
    """
    problems = []
    commands = _subcommands(parser)
    for command in ("train", sample, "evaluate", "demo"):
        if command not in commands and command not in without:
            problems.append(f"no {command!r} command")
    for name, sub in commands.items():
        flags = {opt: action for action in sub._actions for opt in action.option_strings}
        wanted = REQUIRED.get("sample" if name == sample else name, ())
        if name == sample and sample != "sample":
            wanted = ()  # a detector's predict or a metric's score: no generic model/seed contract
        for flag in wanted:
            if flag not in flags:
                problems.append(f"{name}: missing {flag}")
        for flag, action in flags.items():
            if flag in RENAMED:
                problems.append(f"{name}: {flag} is spelled {RENAMED[flag]}")
            if flag in INT_FLAGS and not _parses_int(action.type):
                problems.append(f"{name}: {flag} must be an int")
        if "--devices" in flags and "--device" not in flags:
            problems.append(f"{name}: --devices (a count) only beside --device (which accelerator)")
        if "--model" in flags and flags["--model"].choices:
            problems.append(f"{name}: --model names a saved model directory, not a choice of architecture")
        if "--device" in flags and flags["--device"].default != "auto":
            problems.append(f"{name}: --device must default to 'auto'")
        if "--no-resume" in flags or "--resume" in flags:
            action = flags.get("--resume")
            if not isinstance(action, argparse.BooleanOptionalAction) or action.default is not True:
                problems.append(f"{name}: resume is --resume/--no-resume (BooleanOptionalAction) defaulting to True")
    return problems
