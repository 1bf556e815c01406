"""Tokenizers: load the official one from a checkpoint directory, or train a tiny byte-level BPE offline.

Dream/DiffuCoder add ``<|mask|>`` (the absorbing state) and ``<|dlm_pad|>`` (SFT padding that the model
learns to emit after the answer) to Qwen2's vocabulary, whose chat template uses ``<|im_start|>`` /
``<|im_end|>``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

MASK, DLM_PAD, IM_START, IM_END, EOS = "<|mask|>", "<|dlm_pad|>", "<|im_start|>", "<|im_end|>", "<|endoftext|>"
SPECIAL_TOKENS = (EOS, IM_START, IM_END, MASK, DLM_PAD)


def train_tiny_tokenizer(texts: Iterable[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on ``texts`` with Dream's special tokens (ids 0–4)."""
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must be at least {256 + len(SPECIAL_TOKENS)} (bytes + special tokens)")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS,
        bos_token=EOS,
        pad_token=DLM_PAD,
        mask_token=MASK,
        additional_special_tokens=[IM_START, IM_END],
    )


def load_tokenizer(path: str | Path, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """Load a tokenizer from a checkpoint directory and check that it has Dream's ``<|mask|>`` token.

    Official Dream/DiffuCoder directories ship ``tokenization_dream.py``; pass ``trust_remote_code=True`` to use
    it (otherwise transformers falls back to the directory's fast ``tokenizer.json`` if there is one).
    """
    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    mask_id = mask_token_id(tok)
    if tok.mask_token is None:
        tok.mask_token = tok.convert_ids_to_tokens(mask_id)
    return tok


def mask_token_id(tok: PreTrainedTokenizerBase) -> int:
    """Id of ``<|mask|>``; a clear error if the tokenizer lacks it (not a Dream/DiffuCoder tokenizer)."""
    if tok.mask_token_id is not None:
        return int(tok.mask_token_id)
    vocab = tok.get_vocab()
    if MASK not in vocab:
        raise ValueError(
            f"tokenizer has no {MASK} token: a Dream/DiffuCoder tokenizer is required "
            "(load it from the checkpoint directory or build one with train_tiny_tokenizer)"
        )
    return int(vocab[MASK])


def dream_config_kwargs(tok: PreTrainedTokenizerBase) -> dict[str, int]:
    """Special-token ids and vocabulary size for a :class:`~diffucoder.DreamConfig` matching ``tok``."""
    return {
        "vocab_size": len(tok),
        "mask_token_id": mask_token_id(tok),
        "pad_token_id": int(tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id),
        "bos_token_id": int(tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id),
        "eos_token_id": int(tok.eos_token_id),
    }


def chat_prompt(query: str, system: str = "You are a helpful assistant.") -> str:
    """The Qwen-style prompt DiffuCoder-Instruct expects (as in the official inference demo)."""
    return f"{IM_START}system\n{system}{IM_END}\n{IM_START}user\n{query.strip()}\n{IM_END}\n{IM_START}assistant\n"
