"""Quick-start demo: teachers → distilled energies → composition and low temperature by SMC (2-D, CPU)."""

from __future__ import annotations

from pathlib import Path

from energy_diffusion.experiment import at_sigma_min, compare, learn, toy_pair
from energy_diffusion.plots import scatter_panels
from energy_diffusion.smc import FeynmanKac
from labcore.figures import save_line_plot
from labcore.rng import seed_everything


def main(out_dir: Path, teacher_steps: int = 1500, distill_steps: int = 1000, n: int = 2000, steps: int = 100) -> dict:
    seed_everything(0)
    out_dir = Path(out_dir)
    a, b = toy_pair()
    learned = learn([a, b], teacher_steps, distill_steps)
    product, _ = at_sigma_min(a).product(at_sigma_min(b))
    cold, _ = at_sigma_min(a).power(2)
    comp = compare(FeynmanKac(learned.energies), product, n=n, steps=steps)
    temp = compare(FeynmanKac(learned.energies[:1], betas=[2.0]), cold, n=n, steps=steps)
    scatter_panels(
        {"A (data)": a.sample(n), "B (data)": b.sample(n), **{f"A·B: {k}": v["samples"] for k, v in comp.items()}},
        out_dir / "composition.png",
        ncols=3,
    )
    scatter_panels({f"A^2: {k}": v["samples"] for k, v in temp.items()}, out_dir / "low_temperature.png", ncols=4)
    save_line_plot(
        {"teacher A": learned.losses[0][0], "energy A": learned.losses[0][1]},
        out_dir / "training_losses.png",
        ylabel="EDM-weighted loss",
        logy=True,
    )
    metrics: dict[str, float] = {
        "distillation error A (eps-MSE)": learned.parity[0],
        "distillation error B (eps-MSE)": learned.parity[1],
    }
    for task, res in (("A·B", comp), ("A^2", temp)):
        for name, r in res.items():
            if name != "exact":
                metrics[f"{task} MMD² {name}"] = r["mmd"]
    return metrics
