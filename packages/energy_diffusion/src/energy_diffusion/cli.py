"""CLI: ``energy-diffusion train|sample|evaluate|demo`` (also ``python -m energy_diffusion``).

``train`` fits an EDM teacher on samples of a built-in 2-D target (or an ``(N, d)`` tensor file)
and distils it into an energy; ``sample`` composes saved energies (product, powers β) with
Feynman–Kac SMC or the score-sum baselines and writes the samples plus a scatter plot; ``evaluate`` draws
the same samples and scores them by MMD² against exact samples of the composed built-in target (the README's
results metric), with the noise floor of a second exact draw beside it.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from labcore.cli import add_compile, add_device, add_seed, resolve_device
from labcore.compiling import maybe_compile
from labcore.logging import get_logger
from labcore.trainer_args import add_trainer_args, trainer_options

if TYPE_CHECKING:  # torch and the models load inside the commands: --help stays fast
    import torch

    from energy_diffusion.energy import MLPEnergy
    from energy_diffusion.smc import FeynmanKac
    from energy_diffusion.targets import GaussianMixture

log = get_logger("energy_diffusion")

TARGETS = ("ring", "grid", "toy-a", "toy-b")


def built_in_target(name: str) -> GaussianMixture:
    """The exact mixture of a built-in target (one of ``TARGETS``)."""
    from energy_diffusion.experiment import toy_pair
    from energy_diffusion.targets import grid, ring

    return {"ring": ring, "grid": grid, "toy-a": lambda: toy_pair()[0], "toy-b": lambda: toy_pair()[1]}[name]()


def load_data(target: str, n: int, seed: int) -> torch.Tensor:
    """Samples of a built-in target, or the ``(N, d)`` float tensor saved in a ``.pt``/``.npy`` file."""
    import torch

    if target in TARGETS:
        return built_in_target(target).sample(n, torch.Generator().manual_seed(seed))
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
    from energy_diffusion.energy import MLPEnergy

    energy.hub_info = {k: meta[k] for k in MLPEnergy.hub_info_fields}
    energy.save_pretrained(out)


def load_energy(path: str | os.PathLike) -> MLPEnergy:
    """``MLPEnergy.from_pretrained(path)``, ending the command with the reason when it cannot be loaded."""
    from energy_diffusion.energy import MLPEnergy
    from labcore.hub import exit_on_load_error

    if not (Path(path) / "config.json").exists():
        raise SystemExit(f"{path} holds no saved energy (config.json); make one with `energy-diffusion train`")
    with exit_on_load_error():
        return MLPEnergy.from_pretrained(path)


def _whole(model: torch.nn.Module, fresh: torch.nn.Module) -> torch.nn.Module:
    """``model``, or after a ``--strategy fsdp`` fit (its weights are shards) ``fresh`` holding the gathered weights,
    so the frozen teacher is whole on every process (a collective: every process runs the command)."""
    from labcore.checkpoint import full_tensors

    state = model.state_dict()
    if not any(hasattr(v, "full_tensor") for v in state.values()):
        return model
    fresh.load_state_dict(full_tensors(state))
    return fresh


def cmd_train(a) -> None:
    from energy_diffusion.distill import distill
    from energy_diffusion.edm import TOY_EDM, EDMConfig, MLPDenoiser, train_denoiser
    from energy_diffusion.energy import MLPEnergy
    from labcore.rng import seed_everything

    seed_everything(a.seed)
    data = load_data(a.target, a.n_data, a.seed)
    sigma_max = TOY_EDM.sigma_max if a.sigma_max is None else a.sigma_max
    sigma_data = TOY_EDM.sigma_data if a.sigma_data is None else a.sigma_data
    cfg = EDMConfig(sigma_min=TOY_EDM.sigma_min, sigma_max=sigma_max, sigma_data=sigma_data)
    out = Path(a.out)
    teacher = MLPDenoiser(data.shape[1], hidden=a.hidden, depth=a.depth, sigma_data=cfg.sigma_data)
    maybe_compile(teacher, a.compile)  # the energy is not compiled: its loss needs double backward
    opts = {"resume": a.resume, **trainer_options(a)}
    train_denoiser(
        teacher,
        data,
        cfg,
        steps=a.steps if a.teacher_steps is None else a.teacher_steps,
        batch_size=a.batch_size,
        lr=a.lr,
        seed=a.seed,
        checkpoint_dir=out / "teacher_ckpt",
        **opts,
    )
    energy = MLPEnergy(data.shape[1], hidden=a.hidden, depth=a.depth, sigma_data=cfg.sigma_data)
    distill(
        energy,
        _whole(teacher, MLPDenoiser(data.shape[1], hidden=a.hidden, depth=a.depth, sigma_data=cfg.sigma_data)),
        data,
        cfg,
        steps=a.steps if a.distill_steps is None else a.distill_steps,
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


def compose(a) -> tuple[FeynmanKac, list[float], list[dict]]:
    """The product of ``a.model``'s energies (on ``a.device``) raised to ``a.betas``, the betas and the energies'
    configs; ends the command when they cannot be composed."""
    from energy_diffusion.smc import FeynmanKac

    device = resolve_device(a.device)
    energies = [load_energy(p).to(device) for p in a.model]
    for e in energies:
        maybe_compile(e, a.compile, modules=e.sampling_modules())
    dims = {e.dim for e in energies}
    if len(dims) != 1:
        raise SystemExit(f"energies have different dimensions {sorted(dims)}; they cannot be composed")
    betas = a.betas or [1.0] * len(energies)
    if len(betas) != len(energies):
        raise SystemExit(f"--betas needs one value per energy ({len(energies)}), got {len(betas)}")
    metas = [json.loads((Path(p) / "config.json").read_text()) for p in a.model]
    schedules = {(m["sigma_max"], m["sigma_data"]) for m in metas}
    if len(schedules) != 1:
        raise SystemExit(
            f"energies were trained with different (sigma_max, sigma_data) {sorted(schedules)}; the product is only "
            "defined on one noise schedule: retrain them with the same --sigma-max and --sigma-data"
        )
    return FeynmanKac(energies, betas=betas), betas, metas


def draw(a, fk: FeynmanKac, meta: dict) -> torch.Tensor:
    """``a.num`` samples of ``fk`` by ``a.method`` on the noise schedule of the energies' config ``meta``, on the
    CPU."""
    import torch

    from energy_diffusion.edm import TOY_EDM, EDMConfig
    from energy_diffusion.smc import reverse_diffusion, smc_sample, smc_summary

    cfg = EDMConfig(sigma_min=TOY_EDM.sigma_min, sigma_max=meta["sigma_max"], sigma_data=meta["sigma_data"])
    device = next(fk.models[0].parameters()).device
    shape, gen = (fk.models[0].dim,), torch.Generator(device).manual_seed(a.seed)
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
            device=device,
        )
        x = res.resampled(gen)
        log.info(smc_summary(res, a.weight_min_sigma))
    else:
        x = reverse_diffusion(
            fk, a.num, shape, steps=a.steps, cfg=cfg, mala_steps=a.mala_steps, generator=gen, device=device
        )
    return x.detach().cpu()


def cmd_sample(a) -> None:
    import torch

    fk, betas, metas = compose(a)
    x = draw(a, fk, metas[0])
    shape = x.shape[1:]
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(x, out)
    log.info("saved %d samples to %s", len(x), out)
    if shape[0] == 2:
        from energy_diffusion.plots import scatter_panels

        png = scatter_panels({f"{a.method}, β={betas}": x}, out.with_suffix(".png"), ncols=1)
        log.info("plot: %s", png)


def exact_composition(targets: list[str], betas: list[float]) -> GaussianMixture:
    """The normalised product of the built-in ``targets`` raised to integer ``betas``, in closed form."""
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise SystemExit(
            f"evaluate compares against a built-in target ({', '.join(TARGETS)}); these energies were "
            f"trained on {unknown}: score their samples against your data yourself (energy_diffusion."
            "metrics.mmd_rbf)"
        )
    if any(b != int(b) or b < 1 for b in betas):
        raise SystemExit(f"evaluate needs integer --betas >= 1 (exact powers of a mixture), got {betas}")
    exact = None
    for target, beta in zip(targets, betas):
        powered = built_in_target(target).power(int(beta))[0]
        exact = powered if exact is None else exact.product(powered)[0]
    return exact


def cmd_evaluate(a) -> None:
    import torch

    from energy_diffusion.metrics import mmd_rbf, sliced_wasserstein

    if a.num < 2:
        raise SystemExit(f"--num must be at least 2 for MMD², got {a.num}")
    fk, betas, metas = compose(a)
    exact = exact_composition([m["target"] for m in metas], betas)  # checked before the sampling
    x = draw(a, fk, metas[0])
    gen = torch.Generator().manual_seed(a.seed)
    reference, fresh = exact.sample(a.num, gen), exact.sample(a.num, gen)
    result = {
        "targets": [m["target"] for m in metas],
        "betas": betas,
        "method": a.method,
        "samples": a.num,
        "mmd2": mmd_rbf(x, reference),
        "noise_floor_mmd2": mmd_rbf(fresh, reference),
        "sliced_wasserstein": sliced_wasserstein(x, reference, seed=a.seed),
    }
    print(json.dumps(result, indent=2))


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
    t.add_argument("--steps", type=int, default=2000, help="optimiser steps of each stage (teacher, distillation)")
    t.add_argument("--teacher-steps", type=int, help="teacher steps (default: --steps)")
    t.add_argument("--distill-steps", type=int, help="distillation steps (default: --steps)")
    t.add_argument("--hidden", type=int, default=128)
    t.add_argument("--depth", type=int, default=3)
    t.add_argument("--batch-size", type=int, default=512)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--sigma-max", type=float, help="EDM σ_max (default: the toy schedule's, edm.TOY_EDM)")
    t.add_argument("--sigma-data", type=float, help="EDM σ_data, the data scale (default: edm.TOY_EDM's)")
    add_seed(t)
    add_trainer_args(t, checkpoint_every=500)
    t.set_defaults(fn=cmd_train)
    s = sub.add_parser("sample", help="sample the product Π p_i^β_i of saved energies")
    e = sub.add_parser("evaluate", help="MMD² of those samples to exact samples of the composed built-in target")
    for q in (s, e):
        q.add_argument("--model", nargs="+", required=True, help="directories written by `train` (…/energy)")
        q.add_argument("--betas", type=float, nargs="*", help="one exponent per energy (default 1)")
        q.add_argument("--method", choices=["smc", "reverse"], default="smc")
        q.add_argument("--num", type=int, default=2000)
        q.add_argument("--steps", type=int, default=100, help="reverse-diffusion noise levels")
        q.add_argument("--mala-steps", type=int, default=0)
        q.add_argument(
            "--weight-min-sigma",
            type=float,
            default=0.2,
            help="SMC: no reweighting below this noise level (0 = exact Feynman-Kac model)",
        )
        add_seed(q)
        add_device(q)
        add_compile(q)
    s.add_argument("--out", default="samples.pt")
    s.set_defaults(fn=cmd_sample)
    e.set_defaults(fn=cmd_evaluate)
    d = sub.add_parser("demo", help="the quick-start demo (composition + low temperature, ~1 min CPU)")
    d.add_argument("--out", default="runs/energy_diffusion")
    d.set_defaults(fn=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
