"""Discrete EBM training with DNFS negatives: learn Ising couplings from data.

Each round: a few coordinate-descent epochs adapt the sampler to the current EBM (the target of the path is the
EBM itself; all rounds run in one ``DNFSTrainer.fit``), then weighted negatives ``(x_k, w̄_k)`` from the sampler
give the contrastive-divergence gradient ``∇θ[−mean log ρ_θ(data) + Σ_k w̄_k log ρ_θ(x_k)]``, an estimate of the
negative log-likelihood gradient.
"""

from __future__ import annotations

import torch

from dnfs.metrics import normalised_weights
from dnfs.sampler import simulate
from dnfs.targets import LatticeIsing


def symmetric_coupling_(ebm: LatticeIsing) -> None:
    """Keep the learned coupling symmetric and on the lattice edges."""
    with torch.no_grad():
        ebm.coupling.copy_(0.5 * (ebm.coupling + ebm.coupling.T) * ebm.adjacency)


def contrastive_loss(ebm: LatticeIsing, data: torch.Tensor, negatives: torch.Tensor, log_weights: torch.Tensor):
    """``−mean log ρ(data) + Σ w̄ log ρ(negatives)`` (weights detached)."""
    w = normalised_weights(log_weights).to(data.device).float().detach()
    return -ebm.log_prob(data).mean() + (w * ebm.log_prob(negatives)).sum()


def train_ising_ebm(
    ebm: LatticeIsing,
    trainer,
    data: torch.Tensor,
    rounds: int,
    sampler_epochs: int = 1,
    num_negatives: int = 256,
    lr: float = 0.05,
    batch_size: int = 256,
    generator: torch.Generator | None = None,
    callback=None,
    **trainer_options,
) -> list[float]:
    """Alternate sampler adaptation (``sampler_epochs`` epochs of ``trainer``) and EBM updates for ``rounds``
    rounds; ``trainer.path.target`` must be ``ebm``. ``trainer_options`` go to ``trainer.fit``."""
    if trainer.path.target is not ebm:
        raise ValueError("the trainer's path must target the EBM being learned")
    if rounds < 1 or sampler_epochs < 1:
        raise ValueError(f"rounds and sampler_epochs must be >= 1, got {rounds} and {sampler_epochs}")
    opt = torch.optim.Adam([p for p in ebm.parameters() if p.requires_grad], lr=lr)
    losses = []

    def update(epoch: int, info: dict) -> None:
        if epoch % sampler_epochs:
            return
        res = simulate(trainer.model, trainer.path, num_negatives, trainer.times, generator=generator)
        idx = torch.randint(0, data.shape[0], (batch_size,), generator=generator, device=data.device)
        opt.zero_grad(set_to_none=True)
        with torch.enable_grad():
            loss = contrastive_loss(ebm, data[idx], res.samples, res.log_weights)
            loss.backward()
        opt.step()
        symmetric_coupling_(ebm)
        losses.append(loss.item())
        if callback is not None:
            callback(len(losses) - 1, loss.item())

    trainer.fit(rounds * sampler_epochs * trainer.config.steps_per_epoch, callback=update, **trainer_options)
    return losses
