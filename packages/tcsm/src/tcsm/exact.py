"""Exact, brute-force quantities on tiny spaces (``V^L`` states): the ground truth of the tests and demos."""

from __future__ import annotations

import itertools

import torch

from tcsm.noise import MaskedProcess, UniformProcess


class ExactJoint:
    """An explicit distribution ``p_1`` over all ``V^L`` sequences and its exact diffusion posteriors."""

    def __init__(self, probs: torch.Tensor, vocab_size: int, length: int):
        if probs.shape != (vocab_size**length,):
            raise ValueError(f"probs must have {vocab_size**length} entries (V^L), got {tuple(probs.shape)}")
        self.vocab_size, self.length = vocab_size, length
        self.log_probs = (probs / probs.sum()).double().log()
        self.states = torch.tensor(list(itertools.product(range(vocab_size), repeat=length)))
        self.powers = vocab_size ** torch.arange(length - 1, -1, -1)

    def index(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.powers).sum(-1)

    def log_p1(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_probs[self.index(x)]

    def log_posterior(self, xt: torch.Tensor, t: torch.Tensor, process: MaskedProcess | UniformProcess) -> torch.Tensor:
        """``log p_{1|t}(x_1 | x_t)`` over every state: ``(B, V^L)``."""
        ll = process.log_likelihood_table(xt, t).double()  # (B, L, V)
        pos = torch.arange(self.length)
        lik = ll[:, pos, self.states].sum(-1)  # (B, N): Σ_i log q(x_t^i | s^i)
        return (self.log_probs + lik).log_softmax(-1)

    def marginal_logits(self, xt: torch.Tensor, t: torch.Tensor, process) -> torch.Tensor:
        """The optimal factorised denoiser ``log p_{1|t}(x_1^i = v | x_t)``: ``(B, L, V)``."""
        if len(t) > 1 and bool((t == t[0]).all()):  # one time for the batch: solve each distinct x_t once
            uniq, inverse = torch.unique(xt, dim=0, return_inverse=True)
            return self._marginal_logits(uniq, t[:1].expand(len(uniq)), process)[inverse]
        return self._marginal_logits(xt, t, process)

    def _marginal_logits(self, xt: torch.Tensor, t: torch.Tensor, process) -> torch.Tensor:
        post = self.log_posterior(xt, t, process)
        onehot = torch.nn.functional.one_hot(self.states, self.vocab_size).bool()  # (N, L, V)
        masked = torch.where(onehot[None], post[:, :, None, None], -torch.inf)
        return torch.logsumexp(masked, 1).float()

    def conditionals(self, x1: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, process) -> torch.Tensor:
        """``log p_{1|t}(v | x_1^{\\i}, x_t)`` by brute force over the posterior table: ``(B, L, V)``."""
        post = self.log_posterior(xt, t, process)
        b, n, v = x1.shape[0], self.length, self.vocab_size
        nb = x1[:, None, None, :].expand(b, n, v, n).clone()
        pos = torch.arange(n)
        nb[:, pos, :, pos] = torch.arange(v)
        vals = post.gather(1, self.index(nb).reshape(b, -1)).view(b, n, v)
        return vals.log_softmax(-1).float()
