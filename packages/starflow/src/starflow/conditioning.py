"""Conditions for the deep block: T5 text hidden states or one-hot class labels (§3.3).

Both produce ``(B, L, txt_dim)`` sequences; the null condition for guidance is the empty
caption (text) or the extra label ``num_classes`` (classes), as in the reference, and captions
or labels are dropped with probability ``drop_label`` (0.1) during training.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F


def drop_captions(captions: Sequence[str], p: float, rng: random.Random | None = None) -> list[str]:
    """Replace each caption by ``""`` with probability ``p`` (caption dropout for guidance)."""
    rng = rng or random
    return ["" if rng.random() < p else c for c in captions]


def drop_labels(
    labels: torch.Tensor, num_classes: int, p: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Replace each label by the null label ``num_classes`` with probability ``p``."""
    drop = torch.rand(labels.shape, generator=generator, device=labels.device) < p
    return torch.where(drop, torch.full_like(labels, num_classes), labels)


class ClassEmbedder:
    """One-hot labels ``(B, 1, num_classes + 1)``; index ``num_classes`` is the null label."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes

    def __call__(self, labels: torch.Tensor) -> torch.Tensor:
        labels = torch.as_tensor(labels)
        if labels.numel() and (labels.min() < 0 or labels.max() > self.num_classes):
            raise ValueError(
                f"labels must lie in [0, {self.num_classes}] ({self.num_classes} = null), got "
                f"[{int(labels.min())}, {int(labels.max())}]"
            )
        return F.one_hot(labels.long(), self.num_classes + 1).float()[:, None]

    def null(self, batch: int = 1) -> torch.Tensor:
        return self(torch.full((batch,), self.num_classes))


class TextEncoder:
    """A transformers encoder (T5EncoderModel) and tokenizer → padded, masked hidden states.

    ``max_length`` is the model's ``txt_size``; longer captions are truncated with a warning.
    """

    def __init__(self, encoder, tokenizer, max_length: int):
        self.encoder, self.tokenizer, self.max_length = encoder.eval(), tokenizer, max_length

    @classmethod
    def from_pretrained(cls, path: str, max_length: int, **kwargs) -> TextEncoder:
        """Load ``T5EncoderModel`` and its tokenizer from a local directory or hub name."""
        from transformers import AutoTokenizer, T5EncoderModel

        return cls(T5EncoderModel.from_pretrained(path, **kwargs), AutoTokenizer.from_pretrained(path), max_length)

    @property
    def hidden_size(self) -> int:
        return self.encoder.config.d_model

    @torch.no_grad()
    def __call__(self, captions: Sequence[str]) -> torch.Tensor:
        if isinstance(captions, str):
            captions = [captions]
        lengths = [len(ids) for ids in self.tokenizer(list(captions))["input_ids"]]
        too_long = [i for i, n in enumerate(lengths) if n > self.max_length]
        if too_long:
            warnings.warn(
                f"captions {too_long} have more than {self.max_length} tokens and are truncated", stacklevel=2
            )
        tok = self.tokenizer(
            list(captions), padding="max_length", truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        device = next(self.encoder.parameters()).device
        tok = {k: v.to(device) for k, v in tok.items() if k in ("input_ids", "attention_mask")}
        hidden = self.encoder(**tok).last_hidden_state
        return hidden * tok["attention_mask"][..., None].to(hidden.dtype)  # padding zeroed, as in the reference

    def null(self, batch: int = 1) -> torch.Tensor:
        return self([""] * batch)
