"""Scoring class-conditional samples of sklearn's 8×8 digits: a classifier fitted on the real images.

The flow packages' demos (TarFlow, STARFlow) report the *label accuracy* of their samples: the share
of samples drawn for class ``k`` that a logistic regression fitted on real training digits labels ``k``
(real held-out digits score about 0.92-0.96). Needs scikit-learn (``labcore[digits]``).
"""

from __future__ import annotations

import torch

from labcore.extras import require


class DigitClassifier:
    """Multinomial logistic regression on flattened ``(N, 1, 8, 8)`` images in the caller's value range."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, max_iter: int = 2000):
        LogisticRegression = require("sklearn.linear_model", extra="digits", package="labcore").LogisticRegression
        if images.ndim != 4 or len(images) != len(labels):
            raise ValueError(f"expected images (N, C, H, W) and N labels, got {tuple(images.shape)} and {len(labels)}")
        self.shape = tuple(images.shape[1:])
        self.model = LogisticRegression(max_iter=max_iter).fit(images.flatten(1).double().numpy(), labels.numpy())

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        if tuple(images.shape[1:]) != self.shape:
            want = ", ".join(map(str, self.shape))
            raise ValueError(f"expected images of shape (N, {want}), got {tuple(images.shape)}")
        if not torch.isfinite(images).all():
            raise ValueError("images contain NaN or inf; clamp or re-draw the samples before scoring them")
        return torch.from_numpy(self.model.predict(images.detach().flatten(1).double().cpu().numpy()))

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """Share of ``images`` labelled as ``labels``."""
        return float((self.predict(images) == labels.cpu()).double().mean())
