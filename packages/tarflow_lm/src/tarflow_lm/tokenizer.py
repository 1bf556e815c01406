"""Offline GPT-2 tokenizer: a transformers fast tokenizer rebuilt from the BPE ranks in openai-whisper."""

from __future__ import annotations

import base64
import functools
from importlib.resources import files
from pathlib import Path

EOT = "<|endoftext|>"


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable-character table."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {b: chr(b) for b in keep}, 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _recover_merge(token: bytes, ranks: dict[bytes, int]) -> tuple[bytes, bytes]:
    """The pair GPT-2 merged last to form ``token``: byte-level BPE using only lower-ranked merges."""
    parts, limit = [bytes([b]) for b in token], ranks[token]
    while len(parts) > 2:
        best = min(range(len(parts) - 1), key=lambda i: ranks.get(parts[i] + parts[i + 1], limit))
        if ranks.get(parts[best] + parts[best + 1], limit) >= limit:
            break
        parts[best : best + 2] = [parts[best] + parts[best + 1]]
    if len(parts) != 2:
        raise ValueError(f"BPE ranks are inconsistent: cannot split token {token!r} into one merge")
    return parts[0], parts[1]


def gpt2_ranks_path() -> Path:
    try:
        return Path(str(files("whisper") / "assets" / "gpt2.tiktoken"))
    except ModuleNotFoundError as err:
        raise ImportError("the offline GPT-2 tokenizer needs openai-whisper: pip install 'tarflow-lm[gpt2]'") from err


@functools.lru_cache(maxsize=1)
def gpt2_tokenizer(ranks_path: str | None = None):
    """``GPT2TokenizerFast`` (vocab 50257 incl. ``<|endoftext|>``) built without any network access."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2TokenizerFast

    path = Path(ranks_path) if ranks_path else gpt2_ranks_path()
    ranks: dict[bytes, int] = {}
    for line in path.read_text().splitlines():
        if line:
            tok, rank = line.split()
            ranks[base64.b64decode(tok)] = int(rank)
    to_uni = _byte_to_unicode()
    as_str = lambda b: "".join(to_uni[x] for x in b)  # noqa: E731
    vocab = {as_str(tok): rank for tok, rank in ranks.items()}
    vocab[EOT] = len(vocab)
    merges = [
        tuple(as_str(p) for p in _recover_merge(tok, ranks))
        for tok, _ in sorted(ranks.items(), key=lambda kv: kv[1])
        if len(tok) > 1
    ]
    bpe = Tokenizer(models.BPE(vocab, merges))  # built here: transformers<5 takes no vocab/merges in memory
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    return GPT2TokenizerFast(tokenizer_object=bpe, unk_token=EOT, bos_token=EOT, eos_token=EOT)
