"""The autoregressive baseline: exact likelihood, causal, trains and evaluates through the flow's own API."""

import math

import pytest
import torch

from tarflow_lm.baseline import ARBaselineLM
from tarflow_lm.data import random_windows
from tarflow_lm.training import evaluate, train


def _model():
    torch.manual_seed(0)
    return ARBaselineLM(vocab_size=5, hidden_size=16, depth=1, num_heads=2, max_seq_len=8)


def test_uniform_head_gives_log_vocab_bits_per_token():
    m = _model()
    torch.nn.init.zeros_(m.head.weight), torch.nn.init.zeros_(m.head.bias)
    ids = torch.randint(0, 5, (3, 8))
    assert evaluate(m, ids)["elbo_bpc"] == pytest.approx(math.log2(5), abs=1e-6)


def test_likelihood_is_normalised_and_causal():
    m = _model().eval()
    seqs = torch.cartesian_prod(*[torch.arange(5)] * 3)  # every sequence of length 3
    assert torch.logsumexp(m(seqs).elbo, 0).item() == pytest.approx(0.0, abs=1e-5)
    a, b = seqs[:1].clone(), seqs[:1].clone()
    b[0, 2] = (b[0, 2] + 1) % 5  # changing the last token leaves earlier predictions alone
    assert torch.allclose(m.logits(a)[:, :3], m.logits(b)[:, :3])


def test_trains_with_the_flow_trainer_and_rejects_bad_ids():
    stream = torch.arange(400) % 5  # a deterministic cycle: learnable to ~0 bits
    m = _model()
    losses = train(m, stream, steps=60, batch_size=8, seq_len=8, lr=1e-2, show_progress=False)
    assert losses[-1] < 0.5 * losses[0]
    assert m.generate(2, 8, generator=torch.Generator().manual_seed(0)).shape == (2, 8)
    with pytest.raises(ValueError, match="token ids"):
        m(random_windows(stream, 2, 8) + 5)
