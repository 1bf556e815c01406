"""One test walks every package's argparse tree and checks the collection's CLI convention (labcore.cli)."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from labcore.cli import check_cli

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p.name for p in ROOT.glob("packages/*") if (p / "pyproject.toml").exists())
# the documented departures (CONTRIBUTING.md, "One interface"): the job's own name for `sample`, and
# commands that do not apply
SAMPLE = {"tinydet": "predict", "typescore": "score"}
WITHOUT = {"typescore": ("train",)}  # a metric: nothing to train
# departures still open on main (issue #17 item 5), listed exactly: a new one fails the test, and so does a
# fixed one left here (delete its line). Empty this table, do not grow it.
OPEN: dict[str, tuple[str, ...]] = {}


@pytest.mark.parametrize("package", PACKAGES)
def test_cli_follows_the_convention(package):
    parser = importlib.import_module(f"{package}.__main__").build_parser()
    problems = check_cli(parser, sample=SAMPLE.get(package, "sample"), without=WITHOUT.get(package, ()))
    new = sorted(set(problems) - set(OPEN.get(package, ())))
    fixed = sorted(set(OPEN.get(package, ())) - set(problems))
    assert not new, f"{package} departs from the CLI convention: " + "; ".join(new)
    assert not fixed, f"{package}: fixed, remove from OPEN: " + "; ".join(fixed)


def test_checker_catches_each_departure():
    import argparse

    from labcore.cli import add_device, add_resume, add_seed

    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers()
    t = sub.add_parser("train")
    for flag in ("--out", "--steps"):
        t.add_argument(flag, type=int)
    t.add_argument("--batch", type=int)
    t.add_argument("--no-resume", action="store_true")
    t.add_argument("--devices")
    add_seed(t)
    s = sub.add_parser("sample")
    s.add_argument("--model", choices=["mlp", "transformer"])
    s.add_argument("--seed")
    s.add_argument("--device", default="cpu")
    problems = check_cli(ap)
    for want in ("no 'evaluate' command", "no 'demo' command", "train: missing --device", "train: missing --batch-size",
                 "train: --batch is spelled --batch-size", "train: resume is --resume/--no-resume",
                 "train: --devices (a count) only beside --device", "sample: --model names a saved model",
                 "sample: --seed must be an int", "sample: --device must default to 'auto'"):
        assert any(p.startswith(want) for p in problems), (want, problems)
    from labcore.validate import positive_float_arg, positive_int_arg

    ok = argparse.ArgumentParser()
    sub = ok.add_subparsers()
    for name in ("train", "sample", "evaluate", "demo"):
        p = sub.add_parser(name)
        p.add_argument("--out")
        p.add_argument("--model")
        p.add_argument("--steps", type=positive_int_arg)  # an int-valued type counts as int
        p.add_argument("--batch-size", type=int)
        add_seed(p)
        add_device(p)
        add_resume(p)
    assert check_cli(ok) == []
    floaty = argparse.ArgumentParser()
    floaty.add_subparsers().add_parser("demo").add_argument("--steps", type=positive_float_arg)
    assert "demo: --steps must be an int" in check_cli(floaty, without=("train", "sample", "evaluate"))


def test_cli_helpers_import_no_torch():
    """labcore.cli and labcore.trainer_args are what a parser needs: importing them must not load torch."""
    code = "import sys, labcore.cli, labcore.trainer_args; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_resolve_device_auto_follows_cuda(monkeypatch):
    import torch

    from labcore.cli import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu" and resolve_device("cuda:1") == "cuda:1"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda" and resolve_device("cpu") == "cpu"
