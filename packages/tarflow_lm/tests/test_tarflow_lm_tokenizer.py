"""The offline GPT-2 fast tokenizer agrees with tiktoken's BPE on the same ranks, and feeds the model."""

import pytest
import torch

pytest.importorskip("whisper")
tiktoken = pytest.importorskip("tiktoken")

from tiktoken.load import load_tiktoken_bpe  # noqa: E402

from tarflow_lm import PRESETS, TarFlowLMModel  # noqa: E402
from tarflow_lm.tokenizer import gpt2_ranks_path, gpt2_tokenizer  # noqa: E402

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def test_gpt2_tokenizer_matches_tiktoken_and_model_vocab():
    tok = gpt2_tokenizer()
    ref = tiktoken.Encoding(
        "gpt2-ref",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=load_tiktoken_bpe(str(gpt2_ranks_path())),
        special_tokens={"<|endoftext|>": 50256},
    )
    text = "TarFlowLM models language in continuous space —  naïve café, 12345 tokens!\n\tdone"
    ids = tok(text)["input_ids"]
    assert ids == ref.encode(text) and tok.decode(ids) == text
    assert len(tok) == 50257 and tok.eos_token_id == 50256
    model = TarFlowLMModel(
        PRESETS["tiny"](vocab_size=len(tok), latent_dim=4, max_seq_len=8, hidden_size=16, num_heads=2, num_mixtures=2)
    )
    assert torch.isfinite(model(torch.tensor([ids[:8]])).elbo).all()
