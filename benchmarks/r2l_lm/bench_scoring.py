"""MCQ scoring throughput (questions/s): r2l_lm's scorer vs lm-eval's default HFLM scoring of the same model.

Same tiny random Llama, same 4-option multiplication MCQs (digit tokenizer), same batch size. Prints a
Markdown table. Usage: python benchmarks/r2l_lm/bench_scoring.py [--questions 512] [--hidden 256] [--device cpu]
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from r2l_lm.arithmetic import make_digit_tokenizer, make_mcqs, split_pairs
from r2l_lm.lm_eval_adapter import R2LHFLM
from r2l_lm.scoring import MCQScorer
from r2l_lm.training import tiny_llama


def timed(fn, repeats: int) -> tuple[float, object]:
    fn()  # warm-up
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(repeats):
        out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / repeats, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=512)
    ap.add_argument("--m", type=int, default=4)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=32_000, help="LM-head size (the digit tokenizer uses 16 ids)")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
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
        t_ours, s_ours = timed(partial(ours.score, qs, opts, normalize="none"), a.repeats)
        lm = HFLM(model, **kw) if direction == "l2r" else R2LHFLM(model, **kw)
        t_lm, s_lm = timed(partial(lm.loglikelihood, reqs, disable_tqdm=True), a.repeats)
        diff = (torch.cat(s_ours).float() - torch.tensor([s for s, _ in s_lm])).abs().max().item()
        name = "lm-eval HFLM (default)" if direction == "l2r" else "lm-eval R2LHFLM (ours, HFLM batching)"
        rows.append((direction, "r2l_lm MCQScorer", len(qs) / t_ours, diff))
        rows.append((direction, name, len(qs) / t_lm, diff))

    print(
        f"device={a.device} model=Llama h{a.hidden}x{a.layers} vocab={vocab} questions={len(qs)} x4 options "
        f"({a.m}x{a.n}-digit), batch={a.batch_size}, torch threads={torch.get_num_threads()}"
    )
    print("| direction | scorer | questions/s | max |score diff| |")
    print("|---|---|---|---|")
    for d, name, qps, diff in rows:
        print(f"| {d} | {name} | {qps:.1f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
