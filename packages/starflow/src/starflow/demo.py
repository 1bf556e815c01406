"""Quick-start demo: a tiny class-conditional STARFlow on sklearn digits (pixel space, patch 2).

Trains the ``digits`` preset (shallow 2-layer block + 4-layer deep block) for a short budget,
then samples a grid per class without and with closed-form guidance, and scores samples with a
logistic-regression digit classifier fitted on the real training images (label accuracy).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from labcore.extras import require
from labcore.figures import save_image_grid, save_line_plot
from labcore.logging import get_logger, progress
from labcore.rng import seed_everything
from starflow.conditioning import ClassEmbedder
from starflow.config import preset
from starflow.data import digits_dataset
from starflow.model import StarFlow
from starflow.training import train_loop

log = get_logger("starflow.demo")


def sample_classes(
    model: StarFlow, per_class: int, guidance: float, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` denoised samples of every class (rows = classes) and their labels."""
    emb = ClassEmbedder(model.config.num_classes)
    labels = torch.arange(model.config.num_classes).repeat_interleave(per_class)
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn((len(labels), *model.input_shape), generator=g)
    y = emb(labels)
    x = model.sample(noise, y, emb.null(), guidance=guidance)
    return model.denoise(x, y).clamp(-1, 1), labels


def main(
    out_dir: Path = Path("runs/starflow"),
    steps: int = 400,
    batch_size: int = 64,
    per_class: int = 8,
    guidance: float = 2.0,
) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(0)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    parts = [digits_dataset(split).tensors for split in ("train", "test")]  # all 1797, in sklearn's order
    x_all, y_all = (torch.cat(t) for t in zip(*parts))
    perm = torch.randperm(len(x_all))
    train, test = perm[:1500], perm[1500:]
    model = StarFlow(preset("digits"))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x_all[train], y_all[train]), batch_size=batch_size, shuffle=True, drop_last=True
    )
    t0 = time.perf_counter()
    losses = train_loop(model, loader, steps, lr=2e-3, progress=progress)
    train_s = time.perf_counter() - t0
    save_line_plot({"train loss (nats/dim)": losses}, out_dir / "starflow_loss.png", ylabel="loss")

    emb = ClassEmbedder(model.config.num_classes)
    with torch.no_grad():
        sigma = model.config.noise_std
        xt = x_all[test] + sigma * torch.randn_like(x_all[test])
        nll = -model.log_prob(xt, emb(y_all[test])).mean().item() / xt[0].numel()

    LogisticRegression = require("sklearn.linear_model", extra="demo", package="starflow-pt").LogisticRegression
    clf = LogisticRegression(max_iter=2000).fit(x_all[train].flatten(1).numpy(), y_all[train].numpy())
    t0 = time.perf_counter()
    result = {
        "train_steps": steps,
        "train_seconds": round(train_s, 1),
        "final_loss": round(sum(losses[-20:]) / 20, 4),
        "test_nll_nats_per_dim": round(nll, 4),
    }
    for w in (0.0, guidance):
        imgs, labels = sample_classes(model, per_class, w)
        tag = f"w{w:g}"
        save_image_grid(imgs, out_dir / f"starflow_samples_{tag}.png", nrow=per_class, scale=4)
        acc = (clf.predict(imgs.flatten(1).numpy()) == labels.numpy()).mean()
        result[f"label_accuracy_{tag}"] = round(float(acc), 3)
    result["sample_seconds"] = round(time.perf_counter() - t0, 1)
    result["real_test_label_accuracy"] = round(float(clf.score(x_all[test].flatten(1).numpy(), y_all[test].numpy())), 3)
    log.info("demo results: %s", result)
    return result


if __name__ == "__main__":
    main()
