"""Learning-rate multipliers (for ``torch.optim.lr_scheduler.LambdaLR`` or a hand-set ``lr``)."""

from __future__ import annotations

import math
from collections.abc import Callable


def warmup_cosine(warmup: int, total: int, floor: float = 0.0, warmup_from: float = 0.0) -> Callable[[int], float]:
    """Multiplier of the base LR at optimiser step ``step`` (0-based).

    Linear warm-up from ``warmup_from`` to 1 over ``warmup`` steps (reaching 1 at step ``warmup − 1``), then a
    cosine decay from 1 to ``floor`` at step ``total``, constant after.
    """

    def factor(step: int) -> float:
        if step < warmup:
            return warmup_from + (step + 1) / warmup * (1 - warmup_from)
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))

    return factor
