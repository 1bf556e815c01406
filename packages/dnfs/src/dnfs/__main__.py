"""CLI: ``python -m dnfs train|sample|evaluate|exact|demo``.

The target is described by flags (``--target ising|potts --side --sigma --bias --states``) and stored next to
the trained model (``target.json``), so ``sample``/``evaluate`` only need ``--model``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from dnfs.io import lattice_rate_model, load_rate_model, save_rate_model
from dnfs.kolmogorov import GeometricPath
from dnfs.metrics import effective_sample_size, ising_thermodynamics, log_partition, magnetisation
from dnfs.sampler import default_times, simulate
from dnfs.targets import LatticeIsing, LatticePotts
from dnfs.train import DNFSTrainer, TrainConfig
from labcore.validate import positive_int_arg

TARGET_FILE = "target.json"


def build_target(spec: dict):
    if spec["target"] == "ising":
        return LatticeIsing(spec["side"], sigma=spec["sigma"], bias=spec["bias"])
    if spec["target"] == "potts":
        return LatticePotts(spec["side"], spec["states"], sigma=spec["sigma"])
    raise ValueError(f"unknown target {spec['target']!r}")


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _load(model_dir: str, device: torch.device):
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
    from labcore.checkpoint import atomic_write_text, latest_checkpoint
    from labcore.logging import get_logger
    from labcore.rng import seed_everything

    log = get_logger("dnfs")
    seed_everything(a.seed)
    device = _device(a.device)
    spec = {"target": a.target, "side": a.side, "sigma": a.sigma, "bias": a.bias, "states": a.states}
    target = build_target(spec).to(device)
    model = lattice_rate_model(
        a.model, target.dim, target.num_states, a.hidden, a.head_dim, a.blocks, a.layers_per_block
    ).to(device)
    config = TrainConfig(
        num_times=a.num_times,
        num_trajectories=a.trajectories,
        batch_size=a.batch_size,
        steps_per_epoch=a.steps_per_epoch,
        lr=a.lr,
        control=a.control,
        eval_samples=a.eval_samples,
    )
    trainer = DNFSTrainer(model, GeometricPath(target), config)
    out = Path(a.out)
    ckpt = out / "checkpoints"
    if a.resume and latest_checkpoint(ckpt) is not None:
        trainer.load_checkpoint(ckpt)
        log.info("resumed from epoch %d", trainer.epoch)

    def report(epoch: int, info: dict) -> None:
        log.info("epoch %d  " + "  ".join(f"{k} {v:.4f}" for k, v in info.items()), epoch)

    trainer.fit(
        max(a.epochs - trainer.epoch, 0),
        eval_every=a.eval_every,
        callback=report,
        checkpoint_dir=ckpt,
        checkpoint_every=a.checkpoint_every,
    )
    save_rate_model(model, out / "model")
    atomic_write_text(out / TARGET_FILE, json.dumps(spec, indent=1))
    log.info("saved %s", out)


def _weighted_run(a):
    device = _device(a.device)
    model, path, spec = _load(a.model, device)
    gen = torch.Generator(device=device).manual_seed(a.seed)
    res = simulate(model, path, a.num, default_times(a.steps, device), generator=gen)
    return res, path, spec


def cmd_sample(a) -> None:
    res, _, _ = _weighted_run(a)
    torch.save({"samples": res.samples.cpu(), "log_weights": res.log_weights.cpu()}, a.out)
    print(json.dumps({"saved": a.out, "num": a.num, "ess": effective_sample_size(res.log_weights)}))


def cmd_evaluate(a) -> None:
    from dnfs.exact import exact_log_z, ferdinand_fisher, transfer_matrix_ising

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
    t = sub.add_parser("train", help="train a DNFS sampler on a lattice target")
    _target_flags(t)
    t.add_argument("--model", choices=["transformer", "mlp"], default="transformer")
    t.add_argument("--hidden", type=int, default=64)
    t.add_argument("--head-dim", type=int, default=16)
    t.add_argument("--blocks", type=int, default=3)
    t.add_argument("--layers-per-block", type=int, default=1)
    t.add_argument("--epochs", type=positive_int_arg, default=100)
    t.add_argument("--steps-per-epoch", type=positive_int_arg, default=100)
    t.add_argument("--num-times", type=positive_int_arg, default=64)
    t.add_argument("--trajectories", type=positive_int_arg, default=256)
    t.add_argument("--batch-size", type=positive_int_arg, default=128)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--control", choices=["stein", "learned"], default="stein")
    t.add_argument("--eval-every", type=int, default=1)
    t.add_argument("--eval-samples", type=int, default=2048)
    t.add_argument("--checkpoint-every", type=int, default=5)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--out", required=True)
    for name, help_ in (
        ("sample", "draw weighted samples into a .pt file"),
        ("evaluate", "ESS, log Z, F/U/S per site"),
    ):
        s = sub.add_parser(name, help=help_)
        s.add_argument("--model", required=True, help="directory written by `train`")
        s.add_argument("--num", type=positive_int_arg, default=2048)
        s.add_argument("--steps", type=positive_int_arg, default=63)
        if name == "sample":
            s.add_argument("--out", required=True)
    e = sub.add_parser("exact", help="exact Ising log Z, U/D, F/D, S/D (transfer matrix, Ferdinand-Fisher)")
    _target_flags(e)
    d = sub.add_parser("demo", help="the 5x5 Ising quick start")
    d.add_argument("--out", default="runs/dnfs_demo")
    for p in sub.choices.values():
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--device", default="auto")
    return ap


def main(argv: list[str] | None = None) -> None:
    a = build_parser().parse_args(argv)
    {"train": cmd_train, "sample": cmd_sample, "evaluate": cmd_evaluate, "exact": cmd_exact, "demo": cmd_demo}[a.cmd](a)


if __name__ == "__main__":
    main()
