"""Concrete scores in clean space over the 1-Hamming neighbourhood (paper §3).

For ``y = x_1^{i←v}`` the ratio ``p_{1|t}(y | x_t) / p_{1|t}(x_1 | x_t)`` equals the ratio of the
per-position conditionals ``p(v | x_1^{\\i}, x_t) / p(x_1^i | x_1^{\\i}, x_t)``, so a model's (or a
target's) concrete score is carried by its ``(B, L, V)`` table of log-conditionals.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def hamming_neighbours(x: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """All ``x^{i←v}``: ``(B, L) → (B, L, V, L)`` (entry ``[b, i, v]`` is ``x_b`` with position ``i`` set to ``v``)."""
    b, n = x.shape
    nb = x[:, None, None, :].expand(b, n, vocab_size, n).clone()
    pos = torch.arange(n, device=x.device)
    nb[:, pos, :, pos] = torch.arange(vocab_size, device=x.device)
    return nb


def log_conditionals_from_joint(
    log_joint: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    x1: torch.Tensor,
    xt: torch.Tensor,
    t: torch.Tensor,
    vocab_size: int,
    chunk: int = 65536,
) -> torch.Tensor:
    """``log p(v | x_1^{\\i}, x_t)`` from an (unnormalised) ``log_joint(x_1, x_t, t) → (N,)``: ``(B, L, V)``.

    Evaluates ``log_joint`` on all ``L·V`` neighbours (the normaliser cancels in the ratios).
    """
    b, n = x1.shape
    nb = hamming_neighbours(x1, vocab_size).reshape(-1, n)
    ctx, tt = xt.repeat_interleave(n * vocab_size, dim=0), t.repeat_interleave(n * vocab_size, dim=0)
    out = torch.cat(
        [log_joint(nb[i : i + chunk], ctx[i : i + chunk], tt[i : i + chunk]) for i in range(0, nb.shape[0], chunk)]
    )
    return out.view(b, n, vocab_size).log_softmax(-1)


def log_concrete_score(log_cond: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """``log [p(x_1^{i←v}|x_t) / p(x_1|x_t)]`` for every ``(i, v)``: ``(B, L, V)`` (zero at ``v = x_1^i``)."""
    return log_cond - log_cond.gather(-1, x1[..., None])
