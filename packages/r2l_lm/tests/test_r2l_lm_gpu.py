"""CUDA checks (marker ``gpu``: skipped without CUDA): bf16-mixed twin training and bf16 scoring."""

import pytest
import torch

from r2l_lm import MCQScorer, model_direction
from r2l_lm.arithmetic import equation, make_mcqs, split_pairs
from r2l_lm.training import tiny_llama, train_causal_lm


@pytest.mark.gpu
def test_bf16_training_and_scoring_on_cuda(digit_tokenizer, tmp_path):
    tok = digit_tokenizer
    train, test = split_pairs(1, 1, 10, seed=0)
    texts = [equation(int(a), int(b), 1, 1, "reverse") for a, b in train]
    torch.manual_seed(0)
    model = tiny_llama(len(tok), hidden=32, layers=1, heads=2, max_len=16, bos_token_id=tok.bos_token_id)
    losses = train_causal_lm(
        model,
        tok,
        texts,
        "r2l",
        tmp_path,
        max_steps=30,
        batch_size=32,
        lr=3e-3,
        accelerator="gpu",
        devices=1,
        precision="bf16-mixed",
    )
    assert model_direction(model) == "r2l" and losses[-1] < losses[0]
    model = model.cuda().eval()
    items = make_mcqs(test, 1, 1, "r2l", "reverse")
    qs, opts = [it.question for it in items], [it.options for it in items]
    fp32 = torch.cat(MCQScorer(model, tok, "r2l").score(qs, opts))
    bf16 = torch.cat(MCQScorer(model.to(torch.bfloat16), tok, "r2l").score(qs, opts))
    assert fp32.isfinite().all() and (bf16 - fp32).abs().max() < 0.02 * fp32.abs().max() + 0.05
