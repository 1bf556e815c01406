"""CLI: ``python -m r2l_lm train|score|sample|evaluate|simulate|entropy|convert|demo`` (also ``r2l-lm ...``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from labcore.cli import add_compile, add_device, add_seed, resolve_device
from labcore.compiling import maybe_compile
from labcore.extras import require
from labcore.logging import get_logger
from labcore.trainer_args import add_trainer_args, trainer_options

log = get_logger("r2l_lm")


def _load(path: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (Path(path) / "config.json").exists():
        raise SystemExit(f"{path} holds no saved model (config.json missing); train one with `python -m r2l_lm train`")
    from labcore.hub import exit_on_load_error, load_pretrained

    with exit_on_load_error():
        model = load_pretrained(AutoModelForCausalLM, path)
    return model.eval(), AutoTokenizer.from_pretrained(path)


def _direction(model, flag: str | None) -> str:
    from r2l_lm.model import model_direction

    return flag or model_direction(model)


def cmd_train(a) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from r2l_lm.arithmetic import equation, make_digit_tokenizer, split_pairs
    from r2l_lm.training import tiny_llama, train_causal_lm

    if a.arithmetic:
        m, n, fmt = int(a.arithmetic[0]), int(a.arithmetic[1]), a.arithmetic[2]
        tok = make_digit_tokenizer()
        train, _ = split_pairs(m, n, a.num_test, a.seed)
        texts = [equation(int(x), int(y), m, n, fmt) for x, y in train]
    else:
        if not a.texts:
            raise SystemExit("pass --texts FILE (one training text per line) or --arithmetic M N forward|reverse")
        texts = [line for line in Path(a.texts).read_text().splitlines() if line.strip()]
        if not (a.init or a.tokenizer):
            raise SystemExit("--texts needs --init MODEL_DIR or --tokenizer TOKENIZER_DIR")
        tok = AutoTokenizer.from_pretrained(a.init or a.tokenizer)
    if a.init:
        model = AutoModelForCausalLM.from_pretrained(a.init)
    else:
        model = tiny_llama(
            len(tok),
            a.hidden,
            a.layers,
            a.heads,
            a.max_len,
            tok.bos_token_id,
            tok.eos_token_id,
            tok.pad_token_id if tok.pad_token_id is not None else 0,
        )
    maybe_compile(model, a.compile)
    losses = train_causal_lm(
        model,
        tok,
        texts,
        a.direction,
        a.out,
        max_steps=a.steps,
        batch_size=a.batch_size,
        lr=a.lr,
        seed=a.seed,
        max_length=a.max_len,
        progress=True,
        resume=a.resume,
        **trainer_options(a),
    )
    log.info("saved %s (final loss %.4f)", Path(a.out) / "model", losses[-1] if losses else float("nan"))


def _read_mcq(path: str) -> tuple[list[str], list[list[str]], list[int]]:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    if not rows:
        raise SystemExit(f"{path}: no questions (the file is empty); give one JSON object per line")
    try:
        return [r["question"] for r in rows], [r["choices"] for r in rows], [int(r["gold"]) for r in rows]
    except KeyError as e:
        raise SystemExit(f"{path}: every line needs 'question', 'choices' and 'gold' (missing {e})") from e


def cmd_score(a) -> None:
    from r2l_lm.scoring import MCQScorer

    qs, opts, gold = _read_mcq(a.mcq)  # before the model: a bad file fails fast
    model, tok = _load(a.model)
    maybe_compile(model, a.compile)
    scorer = MCQScorer(model, tok, _direction(model, a.direction), batch_size=a.batch_size, delimiter=a.delimiter)
    res = scorer.evaluate(qs, opts, gold, paradigm=a.paradigm)
    print(json.dumps({"accuracy": res["accuracy"], "gold_nll_nats": res["gold_nll"], "questions": len(qs)}))


def cmd_sample(a) -> None:
    from labcore.rng import seed_everything
    from r2l_lm.model import R2LModel

    model, tok = _load(a.model)
    r2l = R2LModel(maybe_compile(model.to(resolve_device(a.device)), a.compile), tok)
    seed_everything(a.seed)
    sampling = {"do_sample": True, "top_p": a.top_p} if a.do_sample else {"do_sample": False}
    for text in r2l.generate([a.suffix] * a.num, max_new_tokens=a.max_new_tokens, **sampling):  # one batch
        print(text + a.suffix)


def cmd_evaluate(a) -> None:
    lm_eval = require("lm_eval", extra="lm-eval", package="r2l-lm")
    HFLM = require("lm_eval.models.huggingface", extra="lm-eval", package="r2l-lm").HFLM

    from r2l_lm.lm_eval_adapter import R2LHFLM

    model, tok = _load(a.model)
    kw = dict(tokenizer=tok, batch_size=a.batch_size, device=resolve_device(a.device))
    lm = R2LHFLM(model, paradigm=a.paradigm, **kw) if _direction(model, a.direction) == "r2l" else HFLM(model, **kw)
    out = lm_eval.simple_evaluate(model=lm, tasks=a.tasks.split(","), limit=a.limit, num_fewshot=a.num_fewshot)
    print(json.dumps(out["results"], indent=2, default=str))


def cmd_simulate(a) -> None:
    from r2l_lm.simulation import SimulationConfig, run_simulation, write_results

    cfg = SimulationConfig(
        m=a.m,
        n=a.n,
        num_test=a.num_test,
        hidden=a.hidden,
        layers=a.layers,
        heads=a.heads,
        steps=a.steps,
        batch_size=a.batch_size,
        lr=a.lr,
        seed=a.seed,
        **{k: v for k, v in trainer_options(a).items() if k in ("strategy", "accelerator", "devices", "precision")},
    )
    results = run_simulation(cfg, a.out, tuple(a.formats.split(",")))
    print(write_results(results, a.out, cfg))


def cmd_entropy(a) -> None:
    from r2l_lm.arithmetic import VARIANTS, theoretical_conditional_entropy

    for fmt, variants in VARIANTS.items():
        for v in variants:
            print(f"{fmt}/{v}: {theoretical_conditional_entropy(a.m, a.n, v):.4f} nats")


def cmd_convert(a) -> None:
    from transformers import AutoTokenizer

    from r2l_lm.official import load_official_checkpoint

    model = load_official_checkpoint(a.checkpoint, a.direction)
    model.save_pretrained(a.out)
    if a.tokenizer:
        AutoTokenizer.from_pretrained(a.tokenizer).save_pretrained(a.out)
    log.info("saved %s (%s); load it with R2LModel.from_pretrained or AutoModelForCausalLM", a.out, a.direction)


def cmd_demo(a) -> None:
    from r2l_lm.demo import main as demo

    print(json.dumps(demo(Path(a.out)), indent=2))


def _add_train_args(p: argparse.ArgumentParser, steps: int) -> None:
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--steps", type=int, default=steps)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    add_trainer_args(p, checkpoint_every=max(1, steps // 4))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="r2l_lm", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("train", help="train an L2R or R2L causal LM (resumes from OUT/checkpoints/last.ckpt)")
    p.add_argument("--direction", choices=["l2r", "r2l"], required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--texts", help="text file, one training example per line")
    p.add_argument("--arithmetic", nargs=3, metavar=("M", "N", "FORMAT"), help="m x n-digit multiplication data")
    p.add_argument("--num-test", type=int, default=1000, help="pairs held out from --arithmetic training data")
    p.add_argument("--init", help="HF model directory to start from (else a tiny Llama)")
    p.add_argument("--tokenizer", help="HF tokenizer directory (with --texts and no --init)")
    p.add_argument("--max-len", type=int, default=128)
    _add_train_args(p, 1000)
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("score", help="MCQ accuracy of a model on a JSONL file {question, choices, gold}")
    p.add_argument("--model", required=True)
    p.add_argument("--mcq", required=True)
    p.add_argument("--direction", choices=["l2r", "r2l"], help="default: as recorded in the model's config")
    p.add_argument("--paradigm", choices=["l2r", "r2l-1", "r2l-2", "r2l-3"])
    p.add_argument("--delimiter", default=" ")
    p.add_argument("--batch-size", type=int, default=64)
    add_compile(p)
    p.set_defaults(fn=cmd_score)

    p = sub.add_parser("sample", help="R2L: write the text that precedes SUFFIX (greedy unless --do-sample)")
    p.add_argument("--model", required=True)
    p.add_argument("--suffix", required=True)
    p.add_argument("--num", type=int, default=1)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--do-sample", action="store_true", help="sample (nucleus, --top-p) instead of greedy decoding")
    p.add_argument("--top-p", type=float, default=1.0)
    add_seed(p)
    add_device(p)
    add_compile(p)
    p.set_defaults(fn=cmd_sample)

    p = sub.add_parser("evaluate", help="lm-evaluation-harness tasks; R2L models score with the R2L adapter")
    p.add_argument("--model", required=True)
    p.add_argument("--tasks", required=True, help="comma-separated lm-eval task names")
    p.add_argument("--direction", choices=["l2r", "r2l"])
    p.add_argument("--paradigm", default="r2l-3", choices=["r2l-1", "r2l-2", "r2l-3"])
    p.add_argument("--limit", type=float)
    p.add_argument("--num-fewshot", type=int)
    p.add_argument("--batch-size", type=int, default=16)
    add_device(p)
    p.set_defaults(fn=cmd_evaluate)

    p = sub.add_parser("simulate", help="the arithmetic simulation: 4 models, all variants, a table")
    p.add_argument("--m", type=int, default=2)
    p.add_argument("--n", type=int, default=2)
    p.add_argument("--num-test", type=int, default=1000)
    p.add_argument("--formats", default="forward,reverse")
    p.add_argument("--out", default="r2l_simulation")
    _add_train_args(p, 2000)
    p.set_defaults(fn=cmd_simulate)

    p = sub.add_parser("entropy", help="theoretical conditional entropies of every variant (exact enumeration)")
    p.add_argument("--m", type=int, default=2)
    p.add_argument("--n", type=int, default=2)
    p.set_defaults(fn=cmd_entropy)

    p = sub.add_parser("convert", help="an official simulation checkpoint.pt (torchtune/Meta) -> HF Llama dir")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--direction", choices=["l2r", "r2l"], required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tokenizer", help="HF Llama-3 tokenizer directory to save alongside")
    p.set_defaults(fn=cmd_convert)

    p = sub.add_parser("demo", help="the quick-start demo (a few minutes at most on a CPU)")
    p.add_argument("--out", default="r2l_demo")
    p.set_defaults(fn=cmd_demo)
    return ap


def main(argv: list[str] | None = None) -> None:
    a = build_parser().parse_args(argv)
    a.fn(a)


if __name__ == "__main__":
    main()
