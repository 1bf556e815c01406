"""Baselines: Gibbs sweeps and annealed importance sampling (AIS) with Gibbs kernels along the same path.

AIS-Gibbs gives weighted samples and ``log Z`` like DNFS, so ESS and free energy compare directly (the LEAPS-style
baseline is :class:`~dnfs.train.DNFSTrainer` with ``control="learned"``).
"""

from __future__ import annotations

import torch

from dnfs.kolmogorov import GeometricPath
from dnfs.sampler import SampleResult, sample_categorical


@torch.no_grad()
def gibbs_sweep(
    path: GeometricPath, x: torch.Tensor, t: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One systematic-scan Gibbs sweep targeting ``p_t``: resample each site from its exact conditional."""
    x = x.clone()
    tt = torch.full((x.shape[0],), float(t), device=x.device)
    for i in range(path.dim):
        logits = path.log_ratio(x, tt)[:, i]  # log p_t(x_i = τ | x_-i) up to a constant
        x[:, i] = sample_categorical(torch.softmax(logits, -1), generator)
    return x


@torch.no_grad()
def ais_gibbs(
    path: GeometricPath,
    num_samples: int,
    times: torch.Tensor,
    sweeps_per_step: int = 1,
    generator: torch.Generator | None = None,
) -> SampleResult:
    """Annealed importance sampling from ``η`` to ``ρ`` with Gibbs transitions; ``E[w] = Z_1``."""
    x = path.sample_initial(num_samples, times.device, generator)
    log_w = torch.zeros(num_samples, device=times.device, dtype=torch.float64)
    for t0, t1 in zip(times[:-1].tolist(), times[1:].tolist()):
        log_w += (t1 - t0) * path.dt_log_unnormalised(x).double()
        for _ in range(sweeps_per_step):
            x = gibbs_sweep(path, x, t1, generator)
    return SampleResult(x, log_w)
