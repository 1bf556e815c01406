"""Shared fixtures: tiny random models, a local T5 encoder and word-level tokenizer, a tiny VAE."""

from __future__ import annotations

import pytest
import torch

from labcore.testing import enable as pytest_configure  # noqa: F401  (opt in to the gpu/slow markers and fixtures)
from starflow import StarFlow, StarFlowConfig

WORDS = "a an the red blue green cat dog bird on under grass table small big photo of".split()


def perturbed(model: StarFlow, scale: float = 0.1, seed: int = 0) -> StarFlow:
    """Random non-trivial weights (the zero-initialised heads would make every block affine-trivial)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return model.eval()


@pytest.fixture
def perturb():
    """The :func:`perturbed` helper, for test modules (conftest is not importable under importlib mode)."""
    return perturbed


@pytest.fixture
def tiny_config() -> StarFlowConfig:
    return StarFlowConfig(
        channel_size=4, img_size=4, channels=48, head_dim=24, layers_per_block=[1, 1, 2], txt_size=3, txt_dim=8
    )


@pytest.fixture
def tiny_model(tiny_config) -> StarFlow:
    torch.manual_seed(0)
    return perturbed(StarFlow(tiny_config))


@pytest.fixture(scope="session")
def t5_dir(tmp_path_factory):
    """A tiny random T5 encoder and a word-level tokenizer saved locally (no hub access)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    path = tmp_path_factory.mktemp("t5")
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    torch.manual_seed(0)
    cfg = T5Config(
        vocab_size=len(vocab),
        d_model=16,
        d_kv=8,
        d_ff=32,
        num_layers=1,
        num_heads=2,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    T5EncoderModel(cfg).save_pretrained(path)
    hf_tok.save_pretrained(path)
    return path
