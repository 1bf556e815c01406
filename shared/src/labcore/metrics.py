"""Evaluation metrics shared across packages, each a closed-form convention from the literature."""

from __future__ import annotations

import math

import numpy as np
import torch

LN2 = math.log(2.0)


def bits_per_dim(nll_nats: torch.Tensor | float, num_dims: int, bin_width: float | None = None) -> torch.Tensor:
    """Bits per dimension from a per-example negative log-likelihood in nats.

    ``nll_nats`` is ``-log p(x)`` summed over the ``num_dims`` dimensions of one example. For a
    density over dequantised data, pass the quantisation ``bin_width`` in the model's space
    (2/256 for 8-bit pixels mapped to [-1, 1]): the discrete probability of the bin is
    ``p(x)·bin_width^D``, so ``bpd = (nll/D − log bin_width) / ln 2``.
    """
    if num_dims <= 0:
        raise ValueError(f"num_dims must be positive, got {num_dims}")
    nll = torch.as_tensor(nll_nats, dtype=torch.float64)
    per_dim = nll / num_dims
    if bin_width is not None:
        if not bin_width > 0:
            raise ValueError(f"bin_width must be positive, got {bin_width}")
        per_dim = per_dim - math.log(bin_width)
    return per_dim / LN2


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k estimator (Chen et al., 2021): ``1 − C(n−c, k) / C(n, k)``.

    ``n`` samples were drawn for a problem and ``c`` of them are correct.
    """
    if not (0 <= c <= n and 1 <= k):
        raise ValueError(f"need 0 <= c <= n and k >= 1, got n={n}, c={c}, k={k}")
    if k > n:
        raise ValueError(f"k={k} exceeds the number of samples n={n}")
    if n - c < k:
        return 1.0
    # Product form avoids overflowing binomials.
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


def mean_pass_at_k(num_samples: list[int] | np.ndarray, num_correct: list[int] | np.ndarray, k: int) -> float:
    """pass@k averaged over problems."""
    scores = [pass_at_k(int(n), int(c), k) for n, c in zip(num_samples, num_correct, strict=True)]
    if not scores:
        raise ValueError("no problems to score")
    return float(np.mean(scores))
