"""Two-sample discrepancies for judging samples against an exact target."""

from __future__ import annotations

import torch


def mmd_rbf(x: torch.Tensor, y: torch.Tensor, bandwidths: tuple[float, ...] = (0.1, 0.3, 1.0)) -> float:
    """Unbiased squared MMD with a sum of RBF kernels exp(−‖a−b‖²/(2h²))."""
    x, y = x.flatten(1).double(), y.flatten(1).double()
    n, m = len(x), len(y)

    def k(a, b):
        d2 = torch.cdist(a, b).pow(2)
        return sum(torch.exp(-d2 / (2 * h**2)) for h in bandwidths)

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    xx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    yy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(xx + yy - 2 * kxy.mean())


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, n_projections: int = 256, seed: int = 0) -> float:
    """Sliced 2-Wasserstein distance (equal sample counts): mean over random directions, then sqrt."""
    x, y = x.flatten(1).double(), y.flatten(1).double()
    if len(x) != len(y):
        raise ValueError(f"sliced_wasserstein needs equal sample counts, got {len(x)} and {len(y)}")
    gen = torch.Generator().manual_seed(seed)
    dirs = torch.randn(x.shape[1], n_projections, generator=gen, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=0, keepdim=True)
    px, py = (x @ dirs).sort(0).values, (y @ dirs).sort(0).values
    return float((px - py).pow(2).mean().sqrt())
