"""The discrete autoregressive baseline the paper compares against (§5: AR Transformer on the same data).

A next-token causal Transformer (the package's :class:`~tarflow_lm.transformer.CausalTransformer`)
with TarFlowLM's training interface: ``model(input_ids)`` returns a :class:`TarFlowLMOutput` whose
``loss`` is the NLL in nats per token and whose ``elbo`` is the *exact* log-likelihood per sequence,
so :func:`tarflow_lm.training.train` (with ``seq_len``) and :func:`~tarflow_lm.training.evaluate` (``num_samples=1``)
train and score it with exactly the flow's budget and data.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tarflow_lm.modeling import TarFlowLMOutput
from tarflow_lm.transformer import CausalTransformer


class ARBaselineLM(nn.Module):
    """``p(x) = Π_t p(x_t | x_<t)`` over ``vocab_size`` symbols; position 0 is predicted from a BOS token."""

    def __init__(self, vocab_size: int, hidden_size: int, depth: int, num_heads: int, max_seq_len: int):
        super().__init__()
        self.vocab_size, self.max_seq_len = vocab_size, max_seq_len
        self.embed = nn.Embedding(vocab_size + 1, hidden_size)  # last id = BOS
        self.net = CausalTransformer(hidden_size, hidden_size, depth, num_heads, max_seq_len)
        self.head = nn.Linear(hidden_size, vocab_size)

    def logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``(B, T, V)`` next-token logits; row ``t`` predicts ``input_ids[:, t]`` from ``input_ids[:, :t]``."""
        bos = torch.full_like(input_ids[:, :1], self.vocab_size)
        return self.head(self.net(self.embed(torch.cat([bos, input_ids[:, :-1]], 1))))

    def forward(self, input_ids: torch.Tensor, **_) -> TarFlowLMOutput:
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (batch, seq_len), got shape {tuple(input_ids.shape)}")
        if input_ids.min() < 0 or input_ids.max() >= self.vocab_size:
            lo, hi = int(input_ids.min()), int(input_ids.max())
            raise ValueError(f"token ids must lie in [0, {self.vocab_size}), got [{lo}, {hi}]")
        nll = F.cross_entropy(self.logits(input_ids).transpose(1, 2), input_ids, reduction="none").sum(1)
        return TarFlowLMOutput(loss=nll.mean() / input_ids.shape[1], elbo=-nll)

    @torch.no_grad()
    def generate(
        self, batch_size: int = 1, seq_len: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Ancestral sampling, one token per step (full re-encode each step; fine at demo lengths)."""
        seq_len = seq_len or self.max_seq_len
        ids = torch.empty(batch_size, 0, dtype=torch.long, device=next(self.parameters()).device)
        for _ in range(seq_len):
            probs = self.logits(torch.cat([ids, ids.new_zeros(batch_size, 1)], 1))[:, -1].softmax(-1)
            ids = torch.cat([ids, torch.multinomial(probs, 1, generator=generator)], 1)
        return ids
