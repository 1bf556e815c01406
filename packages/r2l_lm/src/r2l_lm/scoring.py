"""Multiple-choice scoring in both directions (the paper's "reverse thinking").

For a question ``q`` and options ``a_i``:

* L2R:              ``s_i = (1/N_i) log p_L2R(a_i | q)``                 (``N_i`` answer tokens)
* R2L paradigm 1:   ``s_i = (1/M_i) log p_R2L(q | a_i) + log p_R2L(a_i)``  (``M_i`` question tokens)
* R2L paradigm 2:   ``s_i = log p_R2L(q | a_i) + log p_R2L(a_i)``
* R2L paradigm 3:   ``s_i = log p_R2L(q | a_i)``  (uniform prior over options; the one the paper reports)

An R2L model reads ``[BOS] + reversed(a) + reversed(q)``, so ``log p_R2L(q | a)`` is the summed
log-probability of the reversed question tokens after the reversed answer, exactly what the official
evaluation wrapper computes. ``q`` and ``a`` are tokenized jointly and split with lm-eval's rule
(:func:`r2l_lm.reversal.encode_pair`), so our scores and the harness adapter's agree token for token.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import torch

from r2l_lm.reversal import Direction, check_direction, encode_pair, pad_id_of, pad_right, require_bos, tokenize

PARADIGMS: tuple[str, ...] = ("l2r", "r2l-1", "r2l-2", "r2l-3")
NORMALIZATIONS: tuple[str, ...] = ("tokens", "chars", "none")


@dataclass
class ContinuationScores:
    """Per request: summed log-prob of the continuation (float64), its token count, and whether greedy
    decoding reproduces it exactly."""

    logprob: torch.Tensor
    num_tokens: torch.Tensor
    is_greedy: torch.Tensor


def _accepts_logits_to_keep(model: torch.nn.Module) -> bool:
    """Whether ``model.forward`` names a ``logits_to_keep`` parameter (transformers >= 4.50). Decided by the
    signature, not by trying: a ``**kwargs`` forward (Llama on transformers 4.46-4.48) swallows the keyword."""
    try:
        return "logits_to_keep" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # no introspectable signature
        return False


def _logits_at(model: torch.nn.Module, ids: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """Float logits of positions ``[lo, hi)``. Right padding only follows real tokens, so the causal mask
    alone keeps it out of every real position: no attention mask (SDPA stays on its causal path), and the
    LM head runs on the needed positions only where the model supports ``logits_to_keep``."""
    if _accepts_logits_to_keep(model):
        logits = model(input_ids=ids, logits_to_keep=torch.arange(lo, hi, device=ids.device)).logits
    else:
        logits = model(input_ids=ids).logits
    if logits.shape[1] == ids.shape[1]:  # every position (hi - lo < length, so this is unambiguous)
        logits = logits[:, lo:hi]
    elif logits.shape[1] != hi - lo:
        raise ValueError(
            f"the model returned logits for {logits.shape[1]} positions of a length-{ids.shape[1]} input; "
            f"the scorer needs all {ids.shape[1]} (or the {hi - lo} asked for with logits_to_keep)"
        )
    return logits.float()


@torch.inference_mode()
def continuation_logprobs(
    model: torch.nn.Module,
    prefixes: Sequence[Sequence[int]],
    continuations: Sequence[Sequence[int]],
    batch_size: int = 64,
    pad_id: int = 0,
) -> ContinuationScores:
    """``log p(continuation | prefix)`` for many requests: right-padded batches, one forward pass each.

    Requests are sorted longest first so padding stays small; results come back in input order.
    """
    if len(prefixes) != len(continuations):
        raise ValueError(f"{len(prefixes)} prefixes but {len(continuations)} continuations")
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    for p, c in zip(prefixes, continuations):
        if len(p) == 0:
            raise ValueError("every prefix needs at least one token (the BOS token)")
        if len(c) == 0:
            raise ValueError("a question or option tokenizes to zero tokens; empty texts cannot be scored")
    n = len(prefixes)
    device = next(model.parameters()).device
    out_lp = torch.zeros(n, dtype=torch.float64)
    out_n = torch.zeros(n, dtype=torch.long)
    out_g = torch.zeros(n, dtype=torch.bool)
    order = sorted(range(n), key=lambda i: -(len(prefixes[i]) + len(continuations[i])))
    for s in range(0, n, batch_size):
        idx = order[s : s + batch_size]
        seqs = [[*prefixes[i], *continuations[i]] for i in idx]
        plen = torch.tensor([len(prefixes[i]) for i in idx])
        tlen = torch.tensor([len(q) for q in seqs])
        t = int(tlen.max())
        ids = pad_right(seqs, pad_id)
        # logits at position k predict token k + 1; continuation tokens sit at [plen, tlen), so only the
        # positions [min(plen) - 1, max(tlen) - 1) of this length-sorted batch need the LM head
        lo, hi = int(plen.min()) - 1, t - 1
        logits = _logits_at(model, ids.to(device), lo, hi)
        target = ids[:, lo + 1 : hi + 1].to(device)
        tok_lp = logits.gather(-1, target.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)
        greedy = (logits.argmax(-1) == target).cpu()
        nxt = torch.arange(lo + 1, hi + 1).expand(len(idx), hi - lo)
        cont = (nxt >= plen[:, None]) & (nxt < tlen[:, None])
        idx_t = torch.tensor(idx)
        out_lp[idx_t] = (tok_lp.cpu().double() * cont).sum(1)
        out_n[idx_t] = cont.sum(1)
        out_g[idx_t] = (greedy | ~cont).all(1)
    return ContinuationScores(out_lp, out_n, out_g)


def pair_requests(
    pairs: Sequence[tuple[list[int], list[int]]], direction: Direction, bos: int
) -> tuple[list[list[int]], list[list[int]]]:
    """Prefixes and continuations that give ``log p_L2R(cont | ctx)`` or ``log p_R2L(ctx | cont)``."""
    if check_direction(direction) == "l2r":
        return [[bos, *c] for c, _ in pairs], [list(a) for _, a in pairs]
    return [[bos, *a[::-1]] for _, a in pairs], [c[::-1] for c, _ in pairs]


def combine_paradigm(
    paradigm: str, cond: torch.Tensor, cond_tokens: torch.Tensor, prior: torch.Tensor | None = None
) -> torch.Tensor:
    """The score of each option from ``cond = log p(scored part | given part)`` (see module docstring).

    For ``l2r`` the caller passes the normaliser (token or character count, or ones) as ``cond_tokens``.
    """
    if paradigm in ("l2r", "r2l-3"):
        return cond / cond_tokens if paradigm == "l2r" else cond
    if prior is None:
        raise ValueError(f"paradigm {paradigm!r} needs the answer prior log p_R2L(a)")
    if paradigm == "r2l-1":
        return cond / cond_tokens + prior
    if paradigm == "r2l-2":
        return cond + prior
    raise ValueError(f"paradigm must be one of {PARADIGMS}, got {paradigm!r}")


def _check_questions(questions: Sequence[str], gold: Sequence[int]) -> None:
    if len(gold) != len(questions):
        raise ValueError(f"{len(questions)} questions but {len(gold)} gold labels")
    if not questions:
        raise ValueError("no questions to score: an accuracy over 0 questions is undefined (empty MCQ file?)")


class MCQScorer:
    """Score multiple-choice questions with an L2R or an R2L causal LM.

    ``direction`` says how the model was trained; ``paradigm`` picks the score (``l2r`` for L2R models,
    ``r2l-1|2|3`` for R2L models, default ``r2l-3``). Option ``i`` is appended to its question with
    ``delimiter`` (lm-eval's ``target_delimiter``, a space by default).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        direction: Direction,
        batch_size: int = 64,
        bos_token_id: int | None = None,
        delimiter: str = " ",
    ):
        self.model, self.tokenizer, self.delimiter = model, tokenizer, delimiter
        self.direction = check_direction(direction)
        self.batch_size = batch_size
        self.bos = require_bos(tokenizer, bos_token_id)
        self.pad_id = pad_id_of(tokenizer, self.bos)

    def default_paradigm(self) -> str:
        return "l2r" if self.direction == "l2r" else "r2l-3"

    def _pair(self, question: str, option: str) -> tuple[list[int], list[int]]:
        if not option.strip():
            raise ValueError(f"empty option {option!r} for question {question[:60]!r}; every option needs text")
        if not question.strip():
            raise ValueError("empty question: log p(q|a) would be 0 for every option")
        ctx, cont = encode_pair(self.tokenizer, question, self.delimiter + option)
        if not ctx or not cont:
            raise ValueError(f"question {question[:60]!r} / option {option!r} tokenizes to an empty part")
        return ctx, cont

    def _logprobs(self, prefixes: list[list[int]], conts: list[list[int]]) -> ContinuationScores:
        return continuation_logprobs(self.model, prefixes, conts, self.batch_size, self.pad_id)

    def score(
        self,
        questions: Sequence[str],
        options: Sequence[Sequence[str]],
        paradigm: str | None = None,
        normalize: str = "tokens",
    ) -> list[torch.Tensor]:
        """One float64 score tensor per question (higher is better), all questions in one batched pass.

        ``normalize`` applies to ``l2r`` only: by answer ``tokens`` (the paper), by answer ``chars``
        (lm-eval's ``acc_norm``) or ``none`` (lm-eval's ``acc``).
        """
        flat, _ = self._score_flat(questions, options, paradigm, normalize)
        return list(flat.split([len(o) for o in options]))

    def _score_flat(
        self, questions: Sequence[str], options: Sequence[Sequence[str]], paradigm: str | None, normalize: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores of all options, flattened, and the conditional ``log p(scored part | given part)`` of each."""
        paradigm = paradigm or self.default_paradigm()
        if paradigm not in PARADIGMS:
            raise ValueError(f"paradigm must be one of {PARADIGMS}, got {paradigm!r}")
        if (paradigm == "l2r") != (self.direction == "l2r"):
            raise ValueError(f"paradigm {paradigm!r} does not apply to a {self.direction.upper()} model")
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
        if len(questions) != len(options):
            raise ValueError(f"{len(questions)} questions but {len(options)} option lists")
        if any(len(o) == 0 for o in options):
            raise ValueError("a question has no options; pass at least one option per question")
        pairs = [self._pair(q, a) for q, opts in zip(questions, options) for a in opts]
        prefixes, conts = pair_requests(pairs, self.direction, self.bos)
        n = len(pairs)
        if paradigm in ("r2l-1", "r2l-2"):  # log p_R2L(a): the reversed answer right after BOS
            prefixes += [[self.bos]] * n
            conts += [a[::-1] for _, a in pairs]
        res = self._logprobs(prefixes, conts)
        cond, count = res.logprob[:n], res.num_tokens[:n].double()
        if paradigm == "l2r" and normalize != "tokens":
            lengths = [len(self.delimiter + a) for opts in options for a in opts]
            count = torch.tensor(lengths, dtype=torch.float64) if normalize == "chars" else torch.ones(n).double()
        flat = combine_paradigm(paradigm, cond, count, res.logprob[n:] if len(res.logprob) > n else None)
        return flat, cond

    def predict(self, questions: Sequence[str], options: Sequence[Sequence[str]], **kwargs) -> list[int]:
        return [int(s.argmax()) for s in self.score(questions, options, **kwargs)]

    def accuracy(
        self, questions: Sequence[str], options: Sequence[Sequence[str]], gold: Sequence[int], **kwargs
    ) -> float:
        _check_questions(questions, gold)
        pred = self.predict(questions, options, **kwargs)
        return sum(int(p == g) for p, g in zip(pred, gold)) / len(gold)

    def evaluate(
        self,
        questions: Sequence[str],
        options: Sequence[Sequence[str]],
        gold: Sequence[int],
        paradigm: str | None = None,
        normalize: str = "tokens",
    ) -> dict[str, float]:
        """``accuracy`` and mean ``gold_nll`` (nats, as :meth:`gold_nll`) from one scoring pass: the gold
        option's conditional log-probability is among those :meth:`score` computes anyway."""
        _check_questions(questions, gold)
        sizes = [len(o) for o in options]
        if any(not 0 <= g < k for g, k in zip(gold, sizes)):
            raise ValueError("every gold label must index one of its question's options")
        flat, cond = self._score_flat(questions, options, paradigm, normalize)
        pred = [int(s.argmax()) for s in flat.split(sizes)]
        gold_cond = cond[[start + g for start, g in zip(accumulate([0, *sizes[:-1]]), gold)]]
        return {
            "accuracy": sum(int(p == g) for p, g in zip(pred, gold)) / len(gold),
            "gold_nll": float(-gold_cond.mean()),
        }

    def gold_nll(self, questions: Sequence[str], answers: Sequence[str], per_token: bool = False) -> torch.Tensor:
        """Per question, ``-log p_L2R(a*|q)`` or ``-log p_R2L(q|a*)`` in nats (summed over tokens, or
        averaged with ``per_token``): the directional conditional entropy estimate."""
        if len(questions) != len(answers):
            raise ValueError(f"{len(questions)} questions but {len(answers)} answers")
        pairs = [self._pair(q, a) for q, a in zip(questions, answers)]
        res = self._logprobs(*pair_requests(pairs, self.direction, self.bos))
        return -res.logprob / res.num_tokens if per_token else -res.logprob

    def text_logprob(self, texts: Sequence[str]) -> torch.Tensor:
        """``log p(text)`` of whole texts in this model's direction (``[BOS]`` + ids in reading order)."""
        ids = [tokenize(self.tokenizer, t) for t in texts]
        conts = [i[::-1] if self.direction == "r2l" else i for i in ids]
        return self._logprobs([[self.bos]] * len(ids), conts).logprob


def conditional_entropy_proxy(
    l2r: MCQScorer, r2l: MCQScorer, questions: Sequence[str], answers: Sequence[str], per_token: bool = False
) -> dict[str, float | str]:
    """Directional conditional entropies ``H(A|Q)`` (L2R model) and ``H(Q|A)`` (R2L model), estimated by
    the mean gold negative log-likelihood; the direction with the lower one is predicted to win."""
    if l2r.direction != "l2r" or r2l.direction != "r2l":
        raise ValueError("pass an L2R scorer first and an R2L scorer second")
    h_l2r = float(l2r.gold_nll(questions, answers, per_token).mean())
    h_r2l = float(r2l.gold_nll(questions, answers, per_token).mean())
    return {"H(A|Q) l2r": h_l2r, "H(Q|A) r2l": h_r2l, "predicted winner": "l2r" if h_l2r <= h_r2l else "r2l"}
