"""Token reversal for right-to-left (R2L) language models.

Text is tokenized normally, the ids are reversed and BOS stays first, so an unchanged tokenizer and
causal-LM architecture learn ``p_R2L(x) = prod_t p(x_t | x_{>t})``. A trailing EOS, if present,
stays last. Reversal is done on token ids (never on characters), as in the official evaluation
wrapper, so an R2L model and its L2R twin share one vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch

Direction = Literal["l2r", "r2l"]


def check_direction(direction: str) -> Direction:
    if direction not in ("l2r", "r2l"):
        raise ValueError(f"direction must be 'l2r' or 'r2l', got {direction!r}")
    return direction  # type: ignore[return-value]


def require_bos(tokenizer: Any, bos_token_id: int | None = None) -> int:
    """The BOS id every sequence starts with; a clear error when the tokenizer has none."""
    bos = bos_token_id if bos_token_id is not None else getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        raise ValueError(
            "R2L scoring and training need a start token but this tokenizer has no BOS token. Add one "
            "(tokenizer.add_special_tokens({'bos_token': '<s>'}) and resize the model's embeddings) or pass "
            "bos_token_id=... explicitly (GPT-2 style tokenizers can reuse their EOS id)."
        )
    return int(bos)


def pad_id_of(tokenizer: Any, fallback: int) -> int:
    """The tokenizer's pad id, else ``fallback`` (padding is always masked out, so any id works)."""
    pad = getattr(tokenizer, "pad_token_id", None)
    return int(pad) if pad is not None else int(fallback)


def pad_right(seqs: Sequence[Sequence[int]], pad_id: int, length: int | None = None) -> torch.Tensor:
    """Right-padded ``(B, max(length, longest))`` long tensor of token lists."""
    ids = torch.nn.utils.rnn.pad_sequence(
        [torch.as_tensor(q, dtype=torch.long) for q in seqs], batch_first=True, padding_value=pad_id
    )
    if length is not None and length > ids.shape[1]:
        ids = torch.nn.functional.pad(ids, (0, length - ids.shape[1]), value=pad_id)
    return ids


def reverse_ids(ids: Sequence[int], bos_token_id: int | None = None, eos_token_id: int | None = None) -> list[int]:
    """Reverse the other tokens, keeping every BOS/EOS id where it is (a leading BOS stays first, a trailing
    EOS last, separators inside stay put). An involution for every input, also when BOS/EOS ids occur
    inside the sequence (keeping only the end markers fixed would turn ``[x, BOS]`` into ``[BOS, x]``, which
    then stays ``[BOS, x]``)."""
    ids = list(ids)
    fixed = {t for t in (bos_token_id, eos_token_id) if t is not None}
    slots = [i for i, t in enumerate(ids) if t not in fixed]
    out = list(ids)
    for i, j in zip(slots, reversed(slots)):
        out[i] = ids[j]
    return out


def reverse_padded(
    input_ids: torch.Tensor,
    lengths: torch.Tensor,
    bos_token_id: int | None = None,
    eos_token_id: int | None = None,
) -> torch.Tensor:
    """:func:`reverse_ids` on every row of a right-padded ``(B, T)`` batch with true ``lengths`` (vectorised)."""
    if input_ids.dim() != 2 or lengths.shape != input_ids.shape[:1]:
        raise ValueError(
            f"expected ids (B, T) and lengths (B,), got {tuple(input_ids.shape)} and {tuple(lengths.shape)}"
        )
    b, t = input_ids.shape
    pos = torch.arange(t, device=input_ids.device).expand(b, t)
    movable = pos < lengths.to(input_ids.device).view(b, 1)
    for special in (bos_token_id, eos_token_id):
        if special is not None:
            movable = movable & (input_ids != special)
    rank = movable.long().cumsum(1) - 1  # k for the k-th movable token of its row
    count = movable.sum(1, keepdim=True)
    slot_of_rank = torch.where(movable, pos, t + pos).argsort(1)  # positions of the movable tokens, in order
    source = slot_of_rank.gather(1, (count - 1 - rank).clamp(min=0))
    return input_ids.gather(1, torch.where(movable, source, pos))


def tokenize(tokenizer: Any, text: str) -> list[int]:
    """Ids of ``text`` without special tokens."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Split the joint tokenization of ``context + continuation`` into its two parts.

    This is lm-evaluation-harness's rule (trailing spaces of the context move to the continuation; the
    context part is the context's own tokenization, the continuation part the rest of the joint one),
    so BPE merges across the boundary are handled the same way in both directions and in the harness.
    """
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation, context = context[-n_spaces:] + continuation, context[:-n_spaces]
    whole = tokenize(tokenizer, context + continuation)
    ctx = tokenize(tokenizer, context)
    return ctx, whole[len(ctx) :]


def to_model_order(ids: Sequence[int], direction: Direction, bos_token_id: int) -> list[int]:
    """``[BOS] + ids`` (L2R) or ``[BOS] + reversed(ids)`` (R2L): what the model reads."""
    ids = list(ids)
    return [bos_token_id, *(ids[::-1] if check_direction(direction) == "r2l" else ids)]


def decode(tokenizer: Any, ids: Sequence[int], direction: Direction = "r2l", skip_special_tokens: bool = True) -> str:
    """Natural-order text of ids written in ``direction`` reading order."""
    ids = list(ids)
    if check_direction(direction) == "r2l":
        ids = ids[::-1]
    return tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)


class ReversedTextDataset(torch.utils.data.Dataset):
    """Any indexable dataset of texts (or of dicts with ``text_key``) as model-order token ids.

    Long texts are truncated in natural order (the first ``max_length - 1`` tokens are kept), then
    reversed for R2L, so L2R and R2L twins see exactly the same tokens.
    """

    def __init__(
        self,
        data: Any,
        tokenizer: Any,
        direction: Direction = "r2l",
        text_key: str = "text",
        max_length: int | None = None,
        bos_token_id: int | None = None,
    ):
        if max_length is not None and max_length < 2:
            raise ValueError("max_length must leave room for BOS and one token")
        self.data, self.tokenizer, self.text_key = data, tokenizer, text_key
        self.direction, self.max_length = check_direction(direction), max_length
        self.bos = require_bos(tokenizer, bos_token_id)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        item = self.data[i]
        text = item[self.text_key] if isinstance(item, dict) else item
        ids = tokenize(self.tokenizer, text)
        if not ids:
            raise ValueError(f"text #{i} tokenizes to zero tokens; drop empty texts before training")
        if self.max_length is not None:
            ids = ids[: self.max_length - 1]
        return {"input_ids": to_model_order(ids, self.direction, self.bos)}


class R2LDataCollator:
    """Right-pad model-order ``input_ids`` into a batch with causal-LM ``labels`` (-100 on padding).

    With ``reverse=True`` the features are natural-order ids (``[BOS] + ids`` as many tokenizers give
    them) and are reversed here, BOS kept first, so an existing L2R pipeline trains the R2L twin.
    """

    def __init__(
        self,
        tokenizer: Any,
        reverse: bool = False,
        pad_to_multiple_of: int | None = None,
        bos_token_id: int | None = None,
    ):
        self.tokenizer, self.reverse, self.multiple = tokenizer, reverse, pad_to_multiple_of
        self.bos = require_bos(tokenizer, bos_token_id) if reverse else getattr(tokenizer, "bos_token_id", None)
        self.eos = getattr(tokenizer, "eos_token_id", None)
        self.pad_id = pad_id_of(tokenizer, self.eos if self.eos is not None else 0)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("cannot collate an empty batch")
        seqs = [list(f["input_ids"]) for f in features]
        if any(len(s) == 0 for s in seqs):
            raise ValueError("a feature has no input_ids; drop empty texts before collating")
        lengths = torch.tensor([len(s) for s in seqs])
        t = int(lengths.max())
        if self.multiple:
            t = -(-t // self.multiple) * self.multiple
        ids = pad_right(seqs, self.pad_id, t)
        if self.reverse:
            ids = reverse_padded(ids, lengths, self.bos, self.eos)
        mask = torch.arange(t).expand(len(seqs), t) < lengths[:, None]
        return {"input_ids": ids, "attention_mask": mask.long(), "labels": ids.masked_fill(~mask, -100)}
