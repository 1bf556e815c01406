"""Bits/dim as ``evaluate_bpd.py`` and FID through torchmetrics as ``evaluate_fid.py``."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from labcore.extras import require
from labcore.logging import progress
from tarflow.data import dequantize_uniform
from tarflow.model import TarFlow


@torch.no_grad()
def evaluate_bpd(
    model: TarFlow, dataset: Dataset, batch_size: int = 256, seed: int = 0, conditional: bool = False
) -> float:
    """Mean bits/dim over ``dataset`` (8-bit images in [-1, 1]), one uniform dequantisation draw each.

    The reference evaluates with ``y=None`` (mean class embedding); ``conditional`` uses the labels.
    """
    device = model.var.device
    gen = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    for x, y in progress(DataLoader(dataset, batch_size=batch_size), desc="bits/dim"):
        x = dequantize_uniform(x, gen).to(device)
        bpd = model.bits_per_dim(x, y.to(device) if conditional else None)
        total += bpd.sum().item()
        count += len(x)
    return total / count


def fid_metric(feature: int | nn.Module = 2048, weights_path: str | None = None):
    """torchmetrics' ``FrechetInceptionDistance`` on [0, 1] images (``normalize=True``, as the reference).

    ``feature`` is an Inception layer size (needs torch-fidelity and its weights, downloaded once
    or given by ``weights_path``) or any module mapping images to features.
    """
    fid = require("torchmetrics.image.fid", extra="fid", package="tarflow")
    try:
        return fid.FrechetInceptionDistance(
            feature=feature, normalize=True, reset_real_features=False, feature_extractor_weights_path=weights_path
        )
    except (ModuleNotFoundError, OSError, RuntimeError) as e:
        raise RuntimeError(
            f"could not build the Inception feature extractor for FID ({e}). Install torch-fidelity "
            f"(pip install 'tarflow[fid]') and make its weights available: run once online, or pass "
            f"weights_path= to a local copy of pt_inception-2015-12-05."
        ) from e


@torch.no_grad()
def compute_fid(
    model: TarFlow,
    real: Dataset,
    num_samples: int,
    metric=None,
    batch_size: int = 256,
    guidance: float = 0.0,
    attn_temp: float = 1.0,
    annealed_guidance: bool = True,
    generator: torch.Generator | None = None,
) -> float:
    """FID of ``num_samples`` model samples (random classes) against the images of ``real``."""
    metric = metric if metric is not None else fid_metric()
    device = model.var.device
    metric = metric.to(device)
    for x, _ in DataLoader(real, batch_size=batch_size):
        metric.update(_to_rgb01(x.to(device)), real=True)
    done = 0
    while done < num_samples:
        n = min(batch_size, num_samples - done)
        y = None
        if model.config.num_classes:
            y = torch.randint(model.config.num_classes, (n,), generator=generator).to(device)
        samples = model.sample(
            n, y, guidance=guidance, attn_temp=attn_temp, annealed_guidance=annealed_guidance, generator=generator
        )
        metric.update(_to_rgb01(samples), real=False)
        done += n
    return float(metric.compute())


def _to_rgb01(x: torch.Tensor) -> torch.Tensor:
    x = 0.5 * (x.float().clamp(-1, 1) + 1)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
