"""``R2LModel``: a Hugging Face causal LM trained on reversed tokens, used through natural-order text."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from labcore.checkpoint import atomic_write_text
from labcore.hub import TAG_KEY, load_pretrained, model_card, model_tag, read_config
from r2l_lm.reversal import Direction, check_direction, encode_pair, pad_id_of, require_bos, tokenize
from r2l_lm.scoring import MCQScorer, continuation_logprobs

DIRECTION_KEY = "r2l_lm_direction"  # stored in config.json so a checkpoint says which way it reads


def model_direction(model: PreTrainedModel, default: Direction = "l2r") -> Direction:
    """The reading direction recorded in a model's config (``l2r`` for ordinary checkpoints)."""
    return check_direction(getattr(model.config, DIRECTION_KEY, None) or default)


class R2LModel(torch.nn.Module):
    """Wrap an ``AutoModelForCausalLM`` whose training sequences were ``[BOS] + reversed(ids)``.

    Text goes in and comes out in natural order; the wrapped model only ever sees reversed tokens.
    ``generate(suffix)`` writes backwards: it returns the text that precedes ``suffix``.
    """

    def __init__(self, model: PreTrainedModel, tokenizer: Any, bos_token_id: int | None = None):
        super().__init__()
        recorded = getattr(model.config, DIRECTION_KEY, None)
        if recorded not in (None, "r2l"):
            raise ValueError(f"this checkpoint was trained {recorded!r}; R2LModel wraps right-to-left models only")
        self.model, self.tokenizer = model, tokenizer
        self.bos = require_bos(tokenizer, bos_token_id)
        setattr(model.config, DIRECTION_KEY, "r2l")

    paper_url = "https://arxiv.org/abs/2502.18435"
    hub_max_parameters = 20_000_000_000

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, bos_token_id: int | None = None, **kwargs) -> R2LModel:
        """Load model and tokenizer saved by :meth:`save_pretrained` (or any R2L HF checkpoint), under labcore's
        save/load contract (strict keys, clear file errors, names and shapes checked before building)."""
        model = load_pretrained(AutoModelForCausalLM, path, tag=cls, max_parameters=cls.hub_max_parameters, **kwargs)
        return cls(model, AutoTokenizer.from_pretrained(path), bos_token_id)

    def save_pretrained(self, path: str | os.PathLike, **kwargs) -> Path:
        """Model (``config.json`` tagged ``r2l_lm.R2LModel``, safetensors), tokenizer and a model card."""
        setattr(self.model.config, TAG_KEY, model_tag(type(self)))
        self.model.save_pretrained(path, **kwargs)
        self.tokenizer.save_pretrained(path)
        card = model_card(self, read_config(Path(path)), self.paper_url, None)
        atomic_write_text(Path(path) / "README.md", card)
        return Path(path)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def forward(self, *args, **kwargs):
        """Pass-through on already reversed ids (what trainers call)."""
        return self.model(*args, **kwargs)

    def log_prob(self, text: str, given_suffix: str | None = None) -> float:
        """``log p_R2L(text | suffix)`` where ``suffix`` follows ``text`` in natural order (or ``log p_R2L(text)``)."""
        if given_suffix:
            ctx, cont = encode_pair(self.tokenizer, text, given_suffix)
            prefix, scored = [self.bos, *cont[::-1]], ctx[::-1]
        else:
            prefix, scored = [self.bos], tokenize(self.tokenizer, text)[::-1]
        return float(continuation_logprobs(self.model, [prefix], [scored], pad_id=self.bos).logprob[0])

    @torch.inference_mode()
    def generate(
        self, suffix: str | Sequence[str] = "", max_new_tokens: int = 32, **generate_kwargs
    ) -> str | list[str]:
        """Natural-order text generated *before* ``suffix`` (e.g. a question from its answer).

        A list of suffixes is generated as one left-padded batch and gives a list of texts. Extra keyword
        arguments go to ``model.generate`` (``do_sample``, ``top_p``, ...).
        """
        suffixes = [suffix] if isinstance(suffix, str) else list(suffix)
        if not suffixes:
            raise ValueError("pass a suffix or a non-empty list of suffixes")
        prompts = [[self.bos, *tokenize(self.tokenizer, s)[::-1]] for s in suffixes]
        pad = pad_id_of(self.tokenizer, self.bos)
        width = max(map(len, prompts))
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        generate_kwargs.setdefault("pad_token_id", pad)
        out = self.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, **generate_kwargs)
        texts = [self.tokenizer.decode(row.tolist()[::-1], skip_special_tokens=True) for row in out[:, width:]]
        return texts[0] if isinstance(suffix, str) else texts

    def mcq_scorer(self, batch_size: int = 64, delimiter: str = " ") -> MCQScorer:
        return MCQScorer(self.model, self.tokenizer, "r2l", batch_size, self.bos, delimiter)
