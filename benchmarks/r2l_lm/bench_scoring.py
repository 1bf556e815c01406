"""MCQ scoring throughput (questions/s): r2l_lm's scorer vs lm-eval's default HFLM scoring of the same model.

Same tiny random Llama, same 4-option multiplication MCQs (digit tokenizer), same batch size. Prints a
Markdown table. Usage: python benchmarks/r2l_lm/bench_scoring.py [--questions 512] [--hidden 256] [--device cpu]
"""

from __future__ import annotations

import argparse
from functools import partial

import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from labcore.seeds import Spread, timed_rounds
from r2l_lm.arithmetic import make_digit_tokenizer, make_mcqs, split_pairs
from r2l_lm.lm_eval_adapter import R2LHFLM
from r2l_lm.scoring import MCQScorer
from r2l_lm.training import tiny_llama


def fmt(values: list[float], digits: int) -> str:
    return Spread(tuple(values)).format("median", digits)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=512)
    ap.add_argument("--m", type=int, default=4)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=32_000, help="LM-head size (the digit tokenizer uses 16 ids)")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()

    tok = make_digit_tokenizer()
    torch.manual_seed(0)
    vocab = max(a.vocab, len(tok))
    model = tiny_llama(vocab, a.hidden, a.layers, 4, 64, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
    model = model.to(a.device).eval()
    items = make_mcqs(split_pairs(a.m, a.n, a.questions)[1], a.m, a.n, "l2r", "forward")
    qs, opts = [it.question for it in items], [it.options for it in items]
    reqs = [Instance("loglikelihood", {}, (q, " " + o), idx=i) for i, (q, os_) in enumerate(zip(qs, opts)) for o in os_]
    kw = dict(tokenizer=tok, batch_size=a.batch_size, device=a.device)

    rows = []
    for direction in ("l2r", "r2l"):
        ours = MCQScorer(model, tok, direction, batch_size=a.batch_size)
        lm = HFLM(model, **kw) if direction == "l2r" else R2LHFLM(model, **kw)
        (t_ours, t_lm), (s_ours, s_lm) = timed_rounds(
            [partial(ours.score, qs, opts, normalize="none"), partial(lm.loglikelihood, reqs, disable_tqdm=True)],
            a.repeats,
        )
        diff = (torch.cat(s_ours).float() - torch.tensor([s for s, _ in s_lm])).abs().max().item()
        name = "lm-eval HFLM (default)" if direction == "l2r" else "lm-eval R2LHFLM (ours, HFLM batching)"
        speedup = fmt([lm_t / o_t for o_t, lm_t in zip(t_ours, t_lm)], 2)
        rows.append((direction, "r2l_lm MCQScorer", fmt([len(qs) / t for t in t_ours], 1), speedup, diff))
        rows.append((direction, name, fmt([len(qs) / t for t in t_lm], 1), "", diff))

    print(
        f"device={a.device} model=Llama h{a.hidden}x{a.layers} vocab={vocab} questions={len(qs)} x4 options "
        f"({a.m}x{a.n}-digit), batch={a.batch_size}, torch threads={torch.get_num_threads()}; median [min, max] over "
        f"{a.repeats} rounds, both scorers back to back in each round"
    )
    print("| direction | scorer | questions/s | speed-up over lm-eval (per round) | max |score diff| |")
    print("|---|---|---|---|---|")
    for d, name, qps, speedup, diff in rows:
        print(f"| {d} | {name} | {qps} | {speedup} | {diff:.1e} |")


if __name__ == "__main__":
    main()
