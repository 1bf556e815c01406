"""Character data: text8's 27-symbol alphabet over the offline ``labcore.corpora.text8_like`` corpus."""

from __future__ import annotations

import torch

from labcore.corpora import TEXT8_ALPHABET, text8_like


class CharVocab:
    """``' ' → 0, 'a' → 1, …, 'z' → 26``."""

    def __init__(self, alphabet: str = TEXT8_ALPHABET):
        self.alphabet = alphabet
        self.index = {c: i for i, c in enumerate(alphabet)}

    def __len__(self) -> int:
        return len(self.alphabet)

    def encode(self, text: str) -> torch.Tensor:
        bad = sorted({c for c in text if c not in self.index})
        if bad:
            raise ValueError(
                f"characters {bad[:10]} are outside the alphabet {self.alphabet!r}; "
                "lower-case the text and map other characters to spaces"
            )
        return torch.tensor([self.index[c] for c in text], dtype=torch.long)

    def decode(self, ids: torch.Tensor) -> str | list[str]:
        if ids.ndim == 2:
            return [self.decode(row) for row in ids]
        if int(ids.min()) < 0 or int(ids.max()) >= len(self):
            raise ValueError(f"ids must lie in 0..{len(self) - 1} (decode clean tokens, not masks)")
        return "".join(self.alphabet[i] for i in ids.tolist())


class CharCorpus:
    """Train/validation split of the encoded corpus and random fixed-length crops."""

    def __init__(self, max_chars: int = 400_000, valid_fraction: float = 0.1, vocab: CharVocab | None = None):
        self.vocab = vocab or CharVocab()
        ids = self.vocab.encode(text8_like(max_chars))
        cut = int(len(ids) * (1 - valid_fraction))
        self.train, self.valid = ids[:cut], ids[cut:]

    def batch(
        self, batch_size: int, length: int, split: str = "train", generator: torch.Generator | None = None
    ) -> torch.Tensor:
        data = self.train if split == "train" else self.valid
        if len(data) <= length:
            raise ValueError(f"the {split} split has {len(data)} characters, too few for length {length}")
        starts = torch.randint(0, len(data) - length, (batch_size,), generator=generator)
        return data[starts[:, None] + torch.arange(length)]

    def eval_batches(self, length: int, max_sequences: int = 256) -> torch.Tensor:
        """Non-overlapping validation crops (deterministic)."""
        n = min(max_sequences, len(self.valid) // length)
        return self.valid[: n * length].view(n, length)
