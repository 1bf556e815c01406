"""An lm-evaluation-harness model (``lm_eval>=0.4``) that scores every ``multiple_choice`` task in R2L.

The harness asks for ``log p(continuation | context)`` (context = question prompt, continuation = one
option). :class:`R2LHFLM` answers with the R2L paradigm's score instead, computed by HFLM's own batched
``_loglikelihood_tokens`` on re-ordered token requests (what the official ``_EvalWrapperReversed`` does):

* ``r2l-3`` (default): ``log p_R2L(context | continuation)``: the model reads ``[BOS] + rev(cont)`` and
  scores ``rev(context)``;
* ``r2l-2``: adds the prior ``log p_R2L(continuation)``;  ``r2l-1``: divides the conditional by the
  number of context tokens first, then adds the prior.

The harness's ``acc`` then is the R2L accuracy (``acc_norm`` divides our score by the option's length
in characters, which is not a paper paradigm). Context and continuation are tokenized jointly and split
with lm-eval's rule, as in :class:`r2l_lm.scoring.MCQScorer`, so the two give identical scores.

Use it from Python (``lm_eval.simple_evaluate(model=R2LHFLM(...), tasks=[...])``), by its registry name
``r2l-hf`` after ``import r2l_lm.lm_eval_adapter``, or with ``python -m r2l_lm evaluate --tasks ...``.
"""

from __future__ import annotations

from typing import Any

import torch

from labcore.extras import require
from r2l_lm.reversal import encode_pair, require_bos, reverse_ids, tokenize
from r2l_lm.scoring import combine_paradigm

register_model = require("lm_eval.api.registry", extra="lm-eval", package="r2l-lm").register_model
HFLM = require("lm_eval.models.huggingface", extra="lm-eval", package="r2l-lm").HFLM

R2L_PARADIGMS = ("r2l-1", "r2l-2", "r2l-3")


@register_model("r2l-hf")
class R2LHFLM(HFLM):
    """``HFLM`` for a right-to-left checkpoint: ``loglikelihood`` returns the R2L paradigm score.

    Empty contexts (rare in ``multiple_choice`` tasks) are scored as ``log p_R2L(continuation)``.
    ``loglikelihood_rolling`` (perplexity tasks) scores the reversed token sequence, BOS first.
    ``generate_until`` is not supported: an R2L model writes text backwards, use
    :meth:`r2l_lm.R2LModel.generate`.
    """

    def __init__(self, pretrained: Any, paradigm: str = "r2l-3", bos_token_id: int | None = None, **kwargs):
        if paradigm not in R2L_PARADIGMS:
            raise ValueError(f"paradigm must be one of {R2L_PARADIGMS}, got {paradigm!r}")
        kwargs.setdefault("logits_cache", True)
        super().__init__(pretrained=pretrained, **kwargs)
        self.paradigm = paradigm
        self.bos = require_bos(self.tokenizer, bos_token_id)
        self._reverse_encoding = False

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        cond_reqs, prior_reqs, n_ctx = [], [], []
        for context, continuation in (req.args for req in requests):
            if context:
                ctx, cont = encode_pair(self.tokenizer, context, continuation)
            else:
                ctx, cont = [], tokenize(self.tokenizer, continuation)
            if not cont:
                raise ValueError(
                    f"option {continuation!r} tokenizes to zero tokens; R2L scoring needs a non-empty option"
                )
            key = (context, continuation)
            if ctx:  # log p_R2L(context | continuation)
                cond_reqs.append((key, [self.bos, *cont[::-1]], ctx[::-1]))
            else:  # nothing to condition: log p_R2L(continuation)
                cond_reqs.append((key, [self.bos], cont[::-1]))
            prior_reqs.append((("", continuation), [self.bos], cont[::-1]))
            n_ctx.append(max(len(ctx), 1))
        with_prior = self.paradigm != "r2l-3"
        out = self._loglikelihood_tokens(cond_reqs + (prior_reqs if with_prior else []), disable_tqdm=disable_tqdm)
        n = len(cond_reqs)
        cond = torch.tensor([lp for lp, _ in out[:n]], dtype=torch.float64)
        prior = torch.tensor([lp for lp, _ in out[n:]], dtype=torch.float64) if with_prior else None
        scores = combine_paradigm(self.paradigm, cond, torch.tensor(n_ctx, dtype=torch.float64), prior)
        return [(float(s), bool(g)) for s, (_, g) in zip(scores, out[:n])]

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        self._reverse_encoding = True  # HFLM tokenizes each document through tok_encode
        try:
            return super().loglikelihood_rolling(requests, disable_tqdm=disable_tqdm)
        finally:
            self._reverse_encoding = False

    def tok_encode(self, string: str, *args, **kwargs) -> list[int]:
        ids = super().tok_encode(string, *args, **kwargs)
        return reverse_ids(ids, self.bos) if self._reverse_encoding else ids

    def generate_until(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError(
            "R2L models generate right to left; generate_until tasks are not supported. "
            "Use r2l_lm.R2LModel.generate(suffix) to write text backwards from an answer."
        )
