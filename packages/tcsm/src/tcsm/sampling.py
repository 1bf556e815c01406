"""Ancestral sampling of the reverse process ``t = 0 → 1`` with a factorised denoiser."""

from __future__ import annotations

import torch

from tcsm.noise import MaskedProcess, UniformProcess


@torch.no_grad()
def sample(
    denoiser,
    process: MaskedProcess | UniformProcess,
    num: int,
    length: int,
    steps: int = 64,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Draw ``num`` sequences of ``length`` tokens in ``steps`` ancestral steps (exact posterior per step)."""
    if steps < 1 or num < 1 or length < 1:
        raise ValueError(f"num, length and steps must be positive, got {num}, {length}, {steps}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if isinstance(process, MaskedProcess):
        x = torch.full((num, length), process.mask_id, device=device)
    else:
        x = torch.randint(0, process.vocab_size, (num, length), device=device, generator=generator)
    ts = torch.linspace(0.0, 1.0, steps + 1, device=device)
    for k in range(steps):
        t, s = ts[k].expand(num), ts[k + 1].expand(num)
        logp = process.denoiser_log_probs(denoiser(x, t) / temperature, x)
        x = process.reverse_step(x, logp, t, s, generator)
    return x
