"""Euler simulation of the learned CTMC with importance weights along trajectories.

Each step ``t → t+dt`` moves every coordinate independently: ``P(x_i → τ) = R_t(x→swap(x,i,τ))·dt`` (capped so the
stay-probability is non-negative). The log-weight accumulates ``∫ ξ_t(x_t) dt`` (left Riemann sum), an unbiased
estimate of ``log Z_1 − log Z_0`` in expectation of ``exp``: ``E[w] = Z_1`` because ``Z_0 = 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dnfs.kolmogorov import GeometricPath, off_diagonal, stein_term
from labcore.validate import check_count


@dataclass
class SampleResult:
    samples: torch.Tensor  # (N, D) final states
    log_weights: torch.Tensor  # (N,) unnormalised log importance weights
    trajectory: torch.Tensor | None = None  # (T, N, D) states at every grid time
    log_weight_path: torch.Tensor | None = None  # (T, N)


def euler_step_probs(g: torch.Tensor, x: torch.Tensor, dt: float) -> torch.Tensor:
    """Per-coordinate transition probabilities ``δ_{x_i} + [G]_+ dt`` as ``(B, D, S)``."""
    jump = (torch.relu(off_diagonal(g, x)) * dt).clamp(max=1.0)
    total = jump.sum(-1, keepdim=True)
    jump = jump / total.clamp(min=1.0)  # keep a valid distribution when Σ rates·dt exceeds 1
    return jump.scatter(-1, x[..., None], (1.0 - jump.sum(-1, keepdim=True)).clamp(min=0.0))


def sample_categorical(
    probs: torch.Tensor, generator: torch.Generator | None = None, uniforms: torch.Tensor | None = None
) -> torch.Tensor:
    """One draw per row of the last axis by inverse-CDF (device-agnostic, supports a generator); ``uniforms``
    of shape ``(*probs.shape[:-1], 1)`` replaces the draw from ``generator``."""
    if uniforms is None:
        uniforms = torch.rand(*probs.shape[:-1], 1, device=probs.device, generator=generator, dtype=probs.dtype)
    cdf = probs.cumsum(-1)
    idx = (cdf < uniforms * cdf[..., -1:]).sum(-1)
    return idx.clamp(max=probs.shape[-1] - 1)


def default_times(num_steps: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The uniform grid ``linspace(0, 1, num_steps + 1)`` used by the authors (T = 64 points)."""
    check_count(num_steps, "num_steps")
    return torch.linspace(0.0, 1.0, num_steps + 1, device=device)


@torch.no_grad()
def simulate(
    model,
    path: GeometricPath,
    num_samples: int,
    times: torch.Tensor,
    *,
    with_weights: bool = True,
    keep_trajectory: bool = False,
    generator: torch.Generator | None = None,
    initial: torch.Tensor | None = None,
    part: tuple[int, int] = (0, 1),
) -> SampleResult:
    """Run the Euler sampler from ``η`` over the grid ``times`` (``times[0] = 0``, ``times[-1] = 1``).

    ``part=(i, n)`` simulates only the ``i``-th of ``n`` equal contiguous slices of the ``num_samples`` rows,
    drawing the random numbers of all rows, so every row gets the same ones as in the whole run (one process's
    share under DDP: the samples depend on the generator and the global row index only).
    """
    if times.ndim != 1 or len(times) < 2 or float(times[0]) != 0.0 or float(times[-1]) != 1.0:
        raise ValueError(
            f"times must be a grid from 0 to 1 with at least 2 points (e.g. default_times(63)), got "
            f"{len(times) if times.ndim == 1 else tuple(times.shape)} points"
        )
    if initial is None:
        check_count(num_samples, "num_samples")
    index, count = part
    if not 0 <= index < count:
        raise ValueError(f"part must be (index, count) with 0 <= index < count, got {part}")
    device = times.device
    x = path.sample_initial(num_samples, device, generator) if initial is None else initial.to(device)
    rows = x.shape[0]
    if rows % count:
        raise ValueError(f"{rows} samples do not split into {count} equal parts (part={part})")
    x = x.chunk(count)[index] if count > 1 else x
    log_w = torch.zeros(x.shape[0], device=device)
    traj, wpath = [x], [log_w]
    for t0, t1 in zip(times[:-1].tolist(), times[1:].tolist()):
        tt = torch.full((x.shape[0],), t0, device=device)
        g = model(x, tt)
        if with_weights:
            log_w = log_w + (t1 - t0) * (path.dt_log_unnormalised(x) + stein_term(g, path.log_ratio(x, tt), x))
        probs = euler_step_probs(g, x, t1 - t0)
        u = torch.rand(rows, *probs.shape[1:-1], 1, device=device, generator=generator, dtype=probs.dtype)
        x = sample_categorical(probs, uniforms=u.chunk(count)[index] if count > 1 else u)
        if keep_trajectory:
            traj.append(x)
            wpath.append(log_w)
    if keep_trajectory:
        return SampleResult(x, log_w, torch.stack(traj), torch.stack(wpath))
    return SampleResult(x, log_w)
