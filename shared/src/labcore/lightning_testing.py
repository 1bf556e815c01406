"""Test helpers for trainers built with :func:`labcore.lightning.make_trainer` (multi-process and signals).

:func:`check_ddp_matches_single` runs a trainer under 2 CPU processes (gloo, Lightning's ``ddp_spawn``: a fork
would fail once the test process has run a compiled backward, "Unable to handle autograd's threading in combination
with fork-based multiprocessing", so the train function's arguments must pickle)
and in one process accumulating the same 2 micro-batches, i.e. on the same global batch, and compares
the loss curves and final weights stored in the two ``last.ckpt``; then resumes the DDP checkpoint in
one process. :func:`check_fsdp_matches_single` does the same with ``strategy="fsdp"`` (FSDP2): Lightning launches
its ranks by re-running the command, so the train function must be a module-level function of a file (run by
``python -m labcore.lightning_testing FILE NAME ...``). :func:`interrupt_cli` sends a signal to a real CLI run once
it has logged a given step.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch

from labcore.checkpoint import atomic_write_text
from labcore.lightning import fsdp2_on_cpu

TrainFn = Callable[[Path, int, dict[str, Any]], Path]
CPU_DDP = {"accelerator": "cpu", "devices": 2, "strategy": "ddp_spawn"}
CPU_FSDP = {"accelerator": "cpu", "devices": 2, "strategy": "fsdp"}
CPU_ACCUMULATE = {"accelerator": "cpu", "devices": 1, "accumulate_grad_batches": 2}
needs_fsdp2_on_cpu = pytest.mark.skipif(
    not fsdp2_on_cpu(), reason=f"FSDP2 over CPU processes needs torch >= 2.9 (torch {torch.__version__})"
)


def _state(ckpt: Path) -> dict[str, Any]:
    return torch.load(ckpt, map_location="cpu", weights_only=False)


# BatchNorm statistics legitimately differ: each DDP process sees one micro-batch (rank 0's are kept),
# one accumulating process updates them once per micro-batch. Parameters and every other buffer must agree.
BATCHNORM_STATS = ("running_mean", "running_var", "num_batches_tracked")


def max_weight_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest absolute difference between two state dicts with the same keys (BatchNorm statistics aside)."""
    if set(a) != set(b):
        raise AssertionError(f"state dicts differ in keys: {sorted(set(a) ^ set(b))[:8]}")
    keys = [k for k in a if a[k].numel() and not k.endswith(BATCHNORM_STATS)]
    return max(((a[k].double() - b[k].double()).abs().max().item() for k in keys), default=0.0)


def _losses(state: dict[str, Any]) -> list[float]:
    return next(v["losses"] for k, v in state["callbacks"].items() if k.startswith("LossHistory"))


def check_ddp_matches_single(train: TrainFn, tmp_path: Path, *, steps: int = 3, atol: float = 1e-5) -> dict:
    """``train(out_dir, steps, trainer_options) -> last.ckpt`` must give the same run under 2 processes as
    in one process on the same global batch, and a DDP checkpoint must resume in one process.

    Both runs stop after ``steps - 1`` steps (``stop_after``), then resume in one process for the last one.
    Returns ``{"weights": max |Δw|, "losses": max |Δloss|, "resumed": max |Δw| after the last step}``.
    """
    return _check_matches_single(lambda out, n, opts: train(out, n, {**CPU_DDP, **opts}), train, tmp_path, steps, atol)


def check_fsdp_matches_single(train: TrainFn, tmp_path: Path, *, steps: int = 3, atol: float = 1e-5) -> dict:
    """As :func:`check_ddp_matches_single` with 2 CPU processes under ``strategy="fsdp"`` (FSDP2, gloo); the
    last step checks both directions: the FSDP checkpoint resumes in one plain process, and the plain one's
    checkpoint resumes under FSDP; the two results must agree. ``train`` must be a module-level function
    (each run starts ``python -m labcore.lightning_testing FILE NAME``).
    """
    if not fsdp2_on_cpu():
        raise RuntimeError(f"FSDP2 on CPU needs torch >= 2.9; torch is {torch.__version__}")
    fsdp = partial(_run_in_subprocess, train)
    return _check_matches_single(fsdp, train, tmp_path, steps, atol, reference=fsdp)


def _run_in_subprocess(train: TrainFn, out: Path, steps: int, opts: dict[str, Any]) -> Path:
    if "<locals>" in train.__qualname__ or train.__module__ == "__main__":
        raise ValueError(f"train must be a module-level function of a file to run under fsdp; got {train.__qualname__}")
    result = out.parent / f"{out.name}.ckpt-path"  # not stdout: both ranks write there
    args = [
        inspect.getfile(train),
        train.__qualname__,
        str(out),
        str(steps),
        json.dumps({**CPU_FSDP, **opts}),
        str(result),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", __name__, *args]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:  # a guard against hung collectives (both ranks are in the new session), not a measurement
        stdout, stderr = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        raise AssertionError(f"the fsdp run hung for 600 s:\n{stderr[-6000:]}") from None
    if proc.returncode:
        raise AssertionError(f"the fsdp run failed (status {proc.returncode}):\n{stdout[-3000:]}{stderr[-6000:]}")
    return Path(result.read_text())


def _check_matches_single(parallel, train: TrainFn, tmp_path: Path, steps: int, atol: float, reference=None) -> dict:
    """``parallel(out, steps, options)``: a 2-process run of ``train``; ``reference``: how the single run's
    checkpoint resumes for the last step (default: in one process)."""
    first = {"stop_after": steps - 1}
    single = _state(train(tmp_path / "single", steps, {**CPU_ACCUMULATE, **first}))
    multi = _state(parallel(tmp_path / "multi", steps, first))
    for name, s in (("single", single), ("2 processes", multi)):
        assert s["global_step"] == steps - 1, f"{name} run stopped at step {s['global_step']}, expected {steps - 1}"
    la, lb = _losses(single), _losses(multi)
    assert len(la) == len(lb) == steps - 1, (la, lb)
    out = {
        "weights": max_weight_diff(single["state_dict"], multi["state_dict"]),
        "losses": max(abs(x - y) for x, y in zip(la, lb)),
    }
    resumed = _state(train(tmp_path / "multi", steps, dict(CPU_ACCUMULATE)))
    reference = reference or (lambda out, n, opts: train(out, n, {**CPU_ACCUMULATE, **opts}))
    ref = _state(reference(tmp_path / "single", steps, {}))
    assert resumed["global_step"] == ref["global_step"] == steps and len(_losses(resumed)) == steps
    out["resumed"] = max_weight_diff(resumed["state_dict"], ref["state_dict"])
    assert max(out.values()) <= atol, f"2 processes differ from one process on the same global batch: {out}"
    assert max_weight_diff(single["state_dict"], ref["state_dict"]) > 0, "the last step changed nothing"
    return out


def assert_saved_equals_checkpoint(
    saved: dict[str, torch.Tensor], ckpt: Path, prefix: str = "model.", *, only: bool = True
) -> dict[str, torch.Tensor]:
    """The weights a run saved (``saved``: the reloaded model's state dict) equal, exactly, those under ``prefix``
    in its ``last.ckpt`` (after an ``fsdp`` run: gathered, not a shard); with ``only`` the checkpoint holds
    nothing else. Returns the checkpoint's state dict."""
    state = _state(ckpt)["state_dict"]
    held = {k.removeprefix(prefix) for k in state if k.startswith(prefix)}
    assert saved.keys() == held, f"saved and checkpoint keys differ: {sorted(saved.keys() ^ held)[:8]}"
    assert not only or len(held) == len(state), f"last.ckpt holds more than {prefix}*: {sorted(state)[:8]}"
    for k, v in saved.items():
        torch.testing.assert_close(v, state[prefix + k], rtol=0, atol=0, msg=lambda m, k=k: f"{k}: {m}")
    return state


def interrupt_cli(
    args: list[str],
    marker: Callable[[], bool],
    *,
    sig: int = signal.SIGTERM,
    env: dict[str, str] | None = None,
    timeout: float = 300.0,
) -> subprocess.CompletedProcess:
    """Run ``python -m <args>``; when ``marker()`` turns true (e.g. a step's checkpoint or log line exists),
    send ``sig`` and return the finished process (its ``returncode`` and combined ``stdout``)."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env
    )
    deadline = time.monotonic() + timeout  # a guard against hangs, not a measurement
    try:
        while not marker():
            if proc.poll() is not None:
                raise AssertionError(f"run ended (status {proc.returncode}) before the marker:\n{proc.stdout.read()}")
            if time.monotonic() > deadline:
                raise AssertionError("the run never reached the marker")
            time.sleep(0.05)
        proc.send_signal(sig)
        stdout, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout)


def check_interrupt_and_resume(
    args: list[str], last_ckpt: Path, *, sig: int = signal.SIGTERM, env: dict[str, str] | None = None
) -> int:
    """Run the CLI ``python -m <args>``; once ``last_ckpt`` exists (its first periodic checkpoint) send
    ``sig``. The run must exit with ``128 + sig`` and leave ``last_ckpt`` at the step it stopped at, with
    one loss per step (nothing lost); then the same command resumes and finishes (exit 0).

    Returns the interrupted step. Counts steps, not seconds: pick a step budget the run cannot finish
    between its first checkpoint and the signal.
    """
    last_ckpt = Path(last_ckpt)
    done = interrupt_cli(args, last_ckpt.exists, sig=sig, env=env)
    assert done.returncode == 128 + sig, f"exit status {done.returncode}, expected {128 + sig}:\n{done.stdout}"
    state = _state(last_ckpt)
    step = state["global_step"]
    assert f"saved {last_ckpt} at step {step}" in done.stdout, done.stdout[-3000:]
    assert len(_losses(state)) == step, "the checkpoint's loss history does not match its step"
    env_all = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **(env or {})}
    again = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=env_all)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"resuming from {last_ckpt}" in again.stdout + again.stderr
    return step


def _main(file: str, name: str, out: str, steps: str, options: str, result: str) -> None:
    spec = importlib.util.spec_from_file_location(Path(file).stem, file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ckpt = getattr(module, name)(Path(out), int(steps), json.loads(options))
    atomic_write_text(result, str(ckpt))  # every rank writes the same path


if __name__ == "__main__":
    _main(*sys.argv[1:])
