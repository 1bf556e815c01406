"""Character data in text8's 27-symbol alphabet (offline, from labcore.corpora) and batching."""

from __future__ import annotations

import torch

from labcore.corpora import TEXT8_ALPHABET, text8_like

CHAR_TO_ID = {c: i for i, c in enumerate(TEXT8_ALPHABET)}


def encode_chars(text: str) -> torch.Tensor:
    bad = sorted(set(text) - CHAR_TO_ID.keys())
    if bad:
        raise ValueError(
            f"characters {bad[:10]} are outside text8's alphabet (a-z and space); normalise the text first"
        )
    return torch.tensor([CHAR_TO_ID[c] for c in text], dtype=torch.long)


def decode_chars(ids: torch.Tensor) -> str:
    return "".join(TEXT8_ALPHABET[int(i)] for i in ids)


def text8_like_splits(max_chars: int = 300_000, valid_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Train/validation id streams from standard-library docstrings (a text8 stand-in; see README)."""
    ids = encode_chars(text8_like(max_chars))
    cut = int(len(ids) * (1 - valid_fraction))
    return ids[:cut], ids[cut:]


def random_windows(stream: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator | None = None):
    if len(stream) <= seq_len:
        raise ValueError(f"stream of {len(stream)} ids is too short for windows of {seq_len}")
    starts = torch.randint(0, len(stream) - seq_len, (batch_size,), generator=generator)
    return stream[starts[:, None] + torch.arange(seq_len)]


def contiguous_windows(stream: torch.Tensor, seq_len: int, max_windows: int | None = None) -> torch.Tensor:
    n = len(stream) // seq_len
    n = min(n, max_windows) if max_windows else n
    return stream[: n * seq_len].view(n, seq_len)
