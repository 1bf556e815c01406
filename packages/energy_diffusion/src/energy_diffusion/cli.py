"""CLI: ``energy-diffusion train|sample|demo`` (also ``python -m energy_diffusion``).

``train`` fits an EDM teacher on samples of a built-in 2-D target (or an ``(N, d)`` tensor file)
and distils it into an energy; ``sample`` composes saved energies (product, powers β) with
Feynman–Kac SMC or the score-sum baselines and writes the samples plus a scatter plot.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from energy_diffusion.distill import distill
from energy_diffusion.edm import TOY_EDM, EDMConfig, MLPDenoiser, train_denoiser
from energy_diffusion.energy import MLPEnergy
from energy_diffusion.experiment import toy_pair
from energy_diffusion.smc import FeynmanKac, reverse_diffusion, smc_sample, smc_summary
from energy_diffusion.targets import grid, ring
from labcore.hub import exit_on_load_error
from labcore.logging import get_logger
from labcore.rng import seed_everything
from labcore.trainer_args import add_trainer_args, maybe_compile, trainer_options

log = get_logger("energy_diffusion")

TARGETS = {"ring": ring, "grid": grid, "toy-a": lambda: toy_pair()[0], "toy-b": lambda: toy_pair()[1]}


def load_data(target: str, n: int, seed: int) -> torch.Tensor:
    """Samples of a built-in target, or the ``(N, d)`` float tensor saved in a ``.pt``/``.npy`` file."""
    if target in TARGETS:
        return TARGETS[target]().sample(n, torch.Generator().manual_seed(seed))
    path = Path(target)
    if not path.exists():
        raise SystemExit(f"--target must be one of {sorted(TARGETS)} or an existing .pt/.npy file, got {target!r}")
    if path.suffix == ".npy":
        import numpy as np

        data = torch.from_numpy(np.load(path))
    else:
        data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, torch.Tensor) or data.ndim != 2 or not data.is_floating_point():
        raise SystemExit(f"{path} must hold one float tensor of shape (N, d)")
    if not torch.isfinite(data).all():
        raise SystemExit(f"{path} contains NaN or inf values")
    return data.float()


def save_energy(energy: MLPEnergy, out: Path, meta: dict) -> None:
    """``energy.save_pretrained(out)`` with the training facts of ``meta`` (``sigma_max``, ``target``) in its config."""
    energy.hub_info = {k: meta[k] for k in MLPEnergy.hub_info_fields}
    energy.save_pretrained(out)


def load_energy(path: str | os.PathLike) -> MLPEnergy:
    """``MLPEnergy.from_pretrained(path)``, ending the command with the reason when it cannot be loaded."""
    if not (Path(path) / "config.json").exists():
        raise SystemExit(f"{path} holds no saved energy (config.json); make one with `energy-diffusion train`")
    with exit_on_load_error():
        return MLPEnergy.from_pretrained(path)


def cmd_train(a) -> None:
    seed_everything(a.seed)
    data = load_data(a.target, a.n_data, a.seed)
    cfg = EDMConfig(sigma_min=TOY_EDM.sigma_min, sigma_max=a.sigma_max, sigma_data=a.sigma_data)
    out = Path(a.out)
    teacher = MLPDenoiser(data.shape[1], hidden=a.hidden, depth=a.depth, sigma_data=cfg.sigma_data)
    maybe_compile(teacher, a.compile)  # the energy is not compiled: its loss needs double backward
    opts = {"resume": a.resume, **trainer_options(a)}
    train_denoiser(
        teacher,
        data,
        cfg,
        steps=a.teacher_steps,
        batch_size=a.batch_size,
        lr=a.lr,
        seed=a.seed,
        checkpoint_dir=out / "teacher_ckpt",
        **opts,
    )
    energy = MLPEnergy(data.shape[1], hidden=a.hidden, depth=a.depth, sigma_data=cfg.sigma_data)
    distill(
        energy,
        teacher,
        data,
        cfg,
        steps=a.distill_steps,
        batch_size=a.batch_size,
        lr=a.lr,
        seed=a.seed,
        checkpoint_dir=out / "energy_ckpt",
        **opts,
    )
    meta = {
        "dim": data.shape[1],
        "hidden": a.hidden,
        "depth": a.depth,
        "sigma_data": cfg.sigma_data,
        "sigma_max": cfg.sigma_max,
        "target": a.target,
    }
    save_energy(energy, out / "energy", meta)
    log.info("saved distilled energy to %s", out / "energy")


def cmd_sample(a) -> None:
    energies = [load_energy(p) for p in a.energies]
    dims = {e.dim for e in energies}
    if len(dims) != 1:
        raise SystemExit(f"energies have different dimensions {sorted(dims)}; they cannot be composed")
    betas = a.betas or [1.0] * len(energies)
    if len(betas) != len(energies):
        raise SystemExit(f"--betas needs one value per energy ({len(energies)}), got {len(betas)}")
    metas = [json.loads((Path(p) / "config.json").read_text()) for p in a.energies]
    schedules = {(m["sigma_max"], m["sigma_data"]) for m in metas}
    if len(schedules) != 1:
        raise SystemExit(
            f"energies were trained with different (sigma_max, sigma_data) {sorted(schedules)}; the product is only "
            "defined on one noise schedule: retrain them with the same --sigma-max and --sigma-data"
        )
    meta = metas[0]
    cfg = EDMConfig(sigma_min=TOY_EDM.sigma_min, sigma_max=meta["sigma_max"], sigma_data=meta["sigma_data"])
    fk, shape, gen = FeynmanKac(energies, betas=betas), (dims.pop(),), torch.Generator().manual_seed(a.seed)
    if a.method == "smc":
        res = smc_sample(
            fk,
            a.num,
            shape,
            steps=a.steps,
            cfg=cfg,
            mala_steps=a.mala_steps,
            weight_min_sigma=a.weight_min_sigma,
            generator=gen,
        )
        x = res.resampled(gen)
        log.info(smc_summary(res, a.weight_min_sigma))
    else:
        x = reverse_diffusion(fk, a.num, shape, steps=a.steps, cfg=cfg, mala_steps=a.mala_steps, generator=gen)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(x, out)
    log.info("saved %d samples to %s", len(x), out)
    if shape[0] == 2:
        from energy_diffusion.plots import scatter_panels

        png = scatter_panels({f"{a.method}, β={betas}": x}, out.with_suffix(".png"), ncols=1)
        log.info("plot: %s", png)


def cmd_demo(a) -> None:
    from energy_diffusion.demo import main as demo

    print(json.dumps(demo(Path(a.out)), indent=2))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="energy-diffusion", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train a teacher denoiser, then distil it into an energy")
    t.add_argument("--target", default="ring", help=f"one of {sorted(TARGETS)} or a .pt/.npy (N, d) tensor")
    t.add_argument("--out", required=True)
    t.add_argument("--n-data", type=int, default=20000)
    t.add_argument("--teacher-steps", type=int, default=2000)
    t.add_argument("--distill-steps", type=int, default=2000)
    t.add_argument("--hidden", type=int, default=128)
    t.add_argument("--depth", type=int, default=3)
    t.add_argument("--batch-size", type=int, default=512)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--sigma-max", type=float, default=TOY_EDM.sigma_max)
    t.add_argument("--sigma-data", type=float, default=TOY_EDM.sigma_data, help="EDM σ_data (data scale)")
    t.add_argument("--seed", type=int, default=0)
    add_trainer_args(t, checkpoint_every=500)
    t.set_defaults(fn=cmd_train)
    s = sub.add_parser("sample", help="sample the product Π p_i^β_i of saved energies")
    s.add_argument("energies", nargs="+", help="directories written by `train` (…/energy)")
    s.add_argument("--betas", type=float, nargs="*", help="one exponent per energy (default 1)")
    s.add_argument("--method", choices=["smc", "reverse"], default="smc")
    s.add_argument("--num", type=int, default=2000)
    s.add_argument("--steps", type=int, default=100)
    s.add_argument("--mala-steps", type=int, default=0)
    s.add_argument(
        "--weight-min-sigma",
        type=float,
        default=0.2,
        help="SMC: no reweighting below this noise level (0 = exact Feynman-Kac model)",
    )
    s.add_argument("--out", default="samples.pt")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(fn=cmd_sample)
    d = sub.add_parser("demo", help="the quick-start demo (composition + low temperature, ~1 min CPU)")
    d.add_argument("--out", default="runs/energy_diffusion")
    d.set_defaults(fn=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
