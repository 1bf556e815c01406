"""CLI: ``python -m dnfs train|sample|evaluate|exact|demo``.

The target is described by flags (``--target ising|potts --side --sigma --bias --states``) and stored next to
the trained model (``target.json``), so ``sample``/``evaluate`` only need ``--model`` (the directory ``train``
wrote). ``train`` runs on Lightning with the shared trainer flags (``--devices --strategy ddp ...``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from labcore.cli import add_compile, add_device, add_seed, resolve_device
from labcore.compiling import maybe_compile
from labcore.trainer_args import add_trainer_args
from labcore.validate import positive_int_arg

TARGET_FILE = "target.json"


def build_target(spec: dict):
    from dnfs.targets import LatticeIsing, LatticePotts

    if spec["target"] == "ising":
        return LatticeIsing(spec["side"], sigma=spec["sigma"], bias=spec["bias"])
    if spec["target"] == "potts":
        return LatticePotts(spec["side"], spec["states"], sigma=spec["sigma"])
    raise ValueError(f"unknown target {spec['target']!r}")


def _load(model_dir: str, device):
    from dnfs.io import load_rate_model
    from dnfs.kolmogorov import GeometricPath

    d = Path(model_dir)
    if not (d / TARGET_FILE).exists():
        raise SystemExit(f"{d} holds no trained DNFS sampler ({TARGET_FILE} missing); run `python -m dnfs train`")
    spec = json.loads((d / TARGET_FILE).read_text())
    target = build_target(spec).to(device)
    from labcore.hub import exit_on_load_error

    with exit_on_load_error():
        model = load_rate_model(d / "model")
    return model.to(device).eval(), GeometricPath(target), spec


def cmd_train(a) -> None:
    from dnfs.io import lattice_rate_model, save_rate_model
    from dnfs.kolmogorov import GeometricPath
    from dnfs.train import DNFSTrainer, TrainConfig
    from labcore.checkpoint import atomic_write_text
    from labcore.logging import get_logger
    from labcore.rng import seed_everything
    from labcore.trainer_args import trainer_options

    log = get_logger("dnfs")
    seed_everything(a.seed)
    spec = {"target": a.target, "side": a.side, "sigma": a.sigma, "bias": a.bias, "states": a.states}
    target = build_target(spec)
    model = lattice_rate_model(
        a.arch, target.dim, target.num_states, a.hidden, a.head_dim, a.blocks, a.layers_per_block
    )
    config = TrainConfig(
        num_times=a.num_times,
        num_trajectories=a.trajectories,
        batch_size=a.batch_size,
        steps_per_epoch=a.steps_per_epoch,
        lr=a.lr,
        control=a.control,
        eval_samples=a.eval_samples,
    )
    trainer = DNFSTrainer(maybe_compile(model, a.compile), GeometricPath(target), config, seed=a.seed)

    def report(epoch: int, info: dict) -> None:
        if trainer.global_rank == 0:
            log.info("epoch %d  " + "  ".join(f"{k} {v:.4f}" for k, v in info.items()), epoch)

    trainer.fit(a.steps, out_dir=a.out, resume=a.resume, eval_every=a.eval_every, callback=report, **trainer_options(a))
    out = Path(a.out)
    save_rate_model(model, out / "model")  # every process: after --strategy fsdp it gathers the shards (collective)
    if trainer.global_rank == 0:
        atomic_write_text(out / TARGET_FILE, json.dumps(spec, indent=1))
        log.info("saved %s", out)


def _weighted_run(a):
    import torch

    from dnfs.sampler import default_times, simulate

    device = torch.device(resolve_device(a.device))
    model, path, spec = _load(a.model, device)
    maybe_compile(model, a.compile)
    gen = torch.Generator(device=device).manual_seed(a.seed)
    res = simulate(model, path, a.num, default_times(a.steps, device), generator=gen)
    return res, path, spec


def cmd_sample(a) -> None:
    import torch

    from dnfs.metrics import effective_sample_size

    res, _, _ = _weighted_run(a)
    torch.save({"samples": res.samples.cpu(), "log_weights": res.log_weights.cpu()}, a.out)
    print(json.dumps({"saved": a.out, "num": a.num, "ess": effective_sample_size(res.log_weights)}))


def cmd_evaluate(a) -> None:
    from dnfs.exact import exact_log_z, ferdinand_fisher, transfer_matrix_ising
    from dnfs.metrics import effective_sample_size, ising_thermodynamics, log_partition, magnetisation

    res, path, spec = _weighted_run(a)
    out = {"ess": effective_sample_size(res.log_weights), **log_partition(res.log_weights)}
    if path.num_states**path.dim <= 2**20:
        out["exact_log_z"] = exact_log_z(path.target)  # enumeration
    if spec["target"] == "ising":
        target = path.target
        log_rho = target.log_prob(res.samples)
        field = (2.0 * res.samples.to(target.bias.dtype) - 1.0) @ target.bias  # h·Σ s, left out of U like the exact U
        out.update(ising_thermodynamics(res.log_weights, log_rho, target.beta, target.dim, field_log_rho=field))
        out["magnetisation"] = magnetisation(res.samples, res.log_weights)
        if spec["side"] <= TRANSFER_MAX_SIDE:
            out["exact"] = transfer_matrix_ising(spec["sigma"], spec["bias"], spec["side"])
        if spec["bias"] == 0:
            out["exact_ferdinand_fisher"] = ferdinand_fisher(target.beta, spec["side"])
    print(json.dumps(out, indent=1))


TRANSFER_MAX_SIDE = 12  # the row transfer matrix has 2^side states


def cmd_exact(a) -> None:
    from dnfs.exact import ferdinand_fisher, transfer_matrix_ising

    if a.target != "ising":
        raise SystemExit(
            f"exact: closed forms exist for --target ising only, not {a.target!r}; for a small Potts lattice "
            "`evaluate` reports exact_log_z by enumeration (up to 2^20 configurations)"
        )
    if a.side > TRANSFER_MAX_SIDE and a.bias != 0:
        raise SystemExit(
            f"exact: --side {a.side} with --bias {a.bias} has no exact method here: the transfer matrix handles "
            f"--side <= {TRANSFER_MAX_SIDE} (2^side row states) and Ferdinand-Fisher needs --bias 0"
        )
    out = {"transfer_matrix": transfer_matrix_ising(a.sigma, a.bias, a.side)} if a.side <= TRANSFER_MAX_SIDE else {}
    if a.bias == 0:
        out["ferdinand_fisher"] = ferdinand_fisher(2 * a.sigma, a.side)
    print(json.dumps(out, indent=1))


def cmd_demo(a) -> None:
    from dnfs.demo import main as demo

    print(json.dumps(demo(Path(a.out)), indent=1))


def _target_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", choices=["ising", "potts"], default="ising")
    p.add_argument("--side", type=positive_int_arg, default=5)
    p.add_argument("--sigma", type=float, default=0.1)
    p.add_argument("--bias", type=float, default=0.2)
    p.add_argument("--states", type=int, default=3, help="Potts states")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="dnfs", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train a DNFS sampler on a lattice target (Lightning)")
    _target_flags(t)
    t.add_argument("--arch", choices=["transformer", "mlp"], default="transformer", help="rate network")
    t.add_argument("--hidden", type=int, default=64)
    t.add_argument("--head-dim", type=int, default=16)
    t.add_argument("--blocks", type=int, default=3)
    t.add_argument("--layers-per-block", type=int, default=1)
    t.add_argument("--steps", type=positive_int_arg, default=10000, help="optimiser steps in all (default 100 epochs)")
    t.add_argument("--steps-per-epoch", type=positive_int_arg, default=100, help="steps between trajectory refreshes")
    t.add_argument("--num-times", type=positive_int_arg, default=64)
    t.add_argument("--trajectories", type=positive_int_arg, default=256, help="simulated per epoch (all processes)")
    t.add_argument("--batch-size", type=positive_int_arg, default=128, help="global batch (all processes)")
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--control", choices=["stein", "learned"], default="stein")
    t.add_argument("--eval-every", type=int, default=1, help="epochs between ESS / log Z probes (0: never)")
    t.add_argument("--eval-samples", type=int, default=2048)
    t.add_argument("--out", required=True, help="run directory: checkpoints/last.ckpt, model/, target.json")
    add_seed(t)
    add_trainer_args(t, checkpoint_every=500)
    for name, help_ in (
        ("sample", "draw weighted samples into a .pt file"),
        ("evaluate", "ESS, log Z, F/U/S per site"),
    ):
        s = sub.add_parser(name, help=help_)
        s.add_argument("--model", required=True, help="directory written by `train`")
        s.add_argument("--num", type=positive_int_arg, default=2048)
        s.add_argument("--steps", type=positive_int_arg, default=63)
        add_compile(s)
        if name == "sample":
            s.add_argument("--out", required=True)
    e = sub.add_parser("exact", help="exact Ising log Z, U/D, F/D, S/D (transfer matrix, Ferdinand-Fisher)")
    _target_flags(e)
    d = sub.add_parser("demo", help="the 5x5 Ising quick start")
    d.add_argument("--out", default="runs/dnfs_demo")
    for p in (sub.choices[name] for name in ("sample", "evaluate", "exact", "demo")):
        add_seed(p)
        add_device(p)
    return ap


def main(argv: list[str] | None = None) -> None:
    a = build_parser().parse_args(argv)
    {"train": cmd_train, "sample": cmd_sample, "evaluate": cmd_evaluate, "exact": cmd_exact, "demo": cmd_demo}[a.cmd](a)


if __name__ == "__main__":
    main()
