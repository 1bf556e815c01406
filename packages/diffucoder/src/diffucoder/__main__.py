"""CLI: ``python -m diffucoder train|sample|arness|evaluate|grpo|demo``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from labcore.cli import add_compile, add_device, add_seed, resolve_device
from labcore.compiling import maybe_compile
from labcore.extras import require
from labcore.logging import get_logger
from labcore.trainer_args import add_trainer_args, trainer_options

log = get_logger("diffucoder")


def _load(path: str, device: str):
    import torch

    from diffucoder.modeling import DreamModel
    from diffucoder.tokenizer import load_tokenizer

    if not (Path(path) / "config.json").exists():
        raise SystemExit(
            f"{path} holds no checkpoint (config.json missing); train one with `python -m diffucoder train`"
        )
    device = resolve_device(device)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    from labcore.hub import exit_on_load_error

    with exit_on_load_error():
        model = DreamModel.from_pretrained(path, dtype=dtype)
    return model.to(device).eval(), load_tokenizer(path)


def _sampler_kwargs(a) -> dict:
    alg = a.alg or "entropy"
    return {"temperature": a.temperature, "top_p": a.top_p, "top_k": a.top_k, "alg": alg, "alg_temp": a.alg_temp}


def cmd_train(a) -> None:
    from diffucoder.config import DreamConfig
    from diffucoder.data import function_snippets, sft_tensors
    from diffucoder.modeling import DreamModel
    from diffucoder.tokenizer import dream_config_kwargs, load_tokenizer, train_tiny_tokenizer
    from diffucoder.train import fit
    from labcore.rng import seed_everything

    seed_everything(a.seed)
    out = Path(a.out)
    if (out / "model" / "config.json").exists() and (out / "checkpoints").exists():
        model, tok = DreamModel.from_pretrained(out / "model"), load_tokenizer(out / "model")
    else:
        from labcore.corpora import python_source

        tok = train_tiny_tokenizer([python_source(a.max_chars)], vocab_size=a.vocab)
        cfg = DreamConfig(
            **dream_config_kwargs(tok),
            hidden_size=a.hidden,
            intermediate_size=2 * a.hidden,
            num_hidden_layers=a.layers,
            num_attention_heads=a.heads,
            num_key_value_heads=a.kv_heads,
            max_position_embeddings=max(128, a.length),
        )
        model = DreamModel(cfg)
        model.save_pretrained(out / "model")
        tok.save_pretrained(out / "model")
    ids, prompt_mask = sft_tensors(tok, function_snippets(a.max_chars), a.length)
    maybe_compile(model, a.compile)
    losses = fit(
        model,
        ids,
        prompt_mask,
        out,
        a.steps,
        a.batch_size,
        a.lr,
        seed=a.seed,
        progress=True,
        resume=a.resume,
        **trainer_options(a),
    )
    model.save_pretrained(out / "model")
    tok.save_pretrained(out / "model")
    log.info("saved %s (last loss %.3f)", out / "model", losses[-1] if losses else float("nan"))


def cmd_sample(a) -> None:
    import torch

    from diffucoder.cached import cached_generate
    from diffucoder.generation import diffusion_generate

    model, tok = _load(a.model, a.device)
    maybe_compile(model, a.compile)
    ids = torch.tensor([tok.encode(a.prompt, add_special_tokens=False)] * a.num, device=model.device)
    g = torch.Generator(model.device).manual_seed(a.seed)
    if a.cached:
        try:
            out, calls = cached_generate(
                model,
                ids,
                max_new_tokens=a.max_new_tokens,
                block_length=a.block_length,
                threshold=None if a.steps else a.threshold,
                steps=a.steps,
                alg=a.alg,
                alg_temp=a.alg_temp,
                temperature=a.temperature,
                top_p=a.top_p,
                top_k=a.top_k,
                dual_cache=a.dual_cache,
                generator=g,
            )
        except ValueError as err:
            raise SystemExit(f"sample --cached: {err}") from err
        seqs = out.sequences
        log.info("cached sampler: %d model calls", calls)
    else:
        seqs = diffusion_generate(
            model,
            ids,
            max_new_tokens=a.max_new_tokens,
            steps=a.steps or a.max_new_tokens,
            generator=g,
            **_sampler_kwargs(a),
        )
    for row in seqs:
        print(tok.decode(row, skip_special_tokens=True))
        print("-" * 40)


def cmd_arness(a) -> None:
    import torch

    from diffucoder.arness import arness_vs_temperature
    from labcore.figures import save_line_plot

    model, tok = _load(a.model, a.device)
    ids = torch.tensor([tok.encode(a.prompt, add_special_tokens=False)] * a.num, device=model.device)
    res = arness_vs_temperature(model, ids, a.temperatures, a.max_new_tokens, a.alg or "entropy", a.k, seed=a.seed)
    temps = list(res)
    save_line_plot(
        {
            f"local AR-ness@{a.k}": (temps, [res[t][0] for t in temps]),
            f"global AR-ness@{a.k}": (temps, [res[t][1] for t in temps]),
        },
        a.out,
        xlabel="temperature",
        ylabel="AR-ness",
        title=f"alg={a.alg or 'entropy'}",
    )
    print(json.dumps({str(t): {"local": lo, "global": gl} for t, (lo, gl) in res.items()}))


def cmd_evaluate(a) -> None:
    from diffucoder.humaneval import evaluate, generate, load_problems

    model, tok = _load(a.model, a.device)
    problems = load_problems(a.limit)
    completions = generate(
        model, tok, problems, a.num, a.max_new_tokens, a.steps or a.max_new_tokens, **_sampler_kwargs(a)
    )
    scores = evaluate(problems, completions, tuple(a.k), timeout=a.timeout)
    scores.pop("per_problem")
    print(json.dumps({"problems": len(problems), "samples": a.num, **scores}))


def cmd_grpo(a) -> None:
    import torch

    Dataset = require("datasets", extra="rl", package="diffucoder").Dataset
    GRPOConfig = require("trl", extra="rl", package="diffucoder").GRPOConfig

    from diffucoder.coupled_grpo import CoupledGRPOTrainer
    from diffucoder.humaneval import load_problems
    from diffucoder.recipes import OFFICIAL_MAX_PROMPT_TOKENS, OFFICIAL_SYSTEM_PROMPT, recipe_settings
    from diffucoder.rewards import code_format_reward, code_reward
    from diffucoder.tokenizer import chat_prompt, load_tokenizer

    config, trainer_kwargs = recipe_settings(a.recipe)
    overrides = {
        "max_steps": a.steps,
        "num_generations": a.generations,
        "max_completion_length": a.max_new_tokens,
        "learning_rate": a.lr,
    }
    config.update({k: v for k, v in overrides.items() if v is not None})
    if a.generations is not None:  # one prompt's group per generation batch, split over accumulation steps
        accumulation = config.get("gradient_accumulation_steps", 1)
        even = a.generations % accumulation == 0
        config["per_device_train_batch_size"] = a.generations // accumulation if even else a.generations
    for key, value in (("diffusion_steps", a.diffusion_steps), ("generation_temperature", a.temperature)):
        if value is not None:
            trainer_kwargs[key] = value
    tok = load_tokenizer(a.model)
    rows = []
    for p in load_problems(a.limit):
        prompt = p["prompt"]
        if a.recipe == "official":  # chat template with the recipe's system prompt, last 200 prompt tokens
            ids = tok.encode(chat_prompt(prompt, OFFICIAL_SYSTEM_PROMPT), add_special_tokens=False)
            prompt = tok.decode(ids[-OFFICIAL_MAX_PROMPT_TOKENS:])
        rows.append({"prompt": prompt, "test_cases": [f"{p['test']}\ncheck({p['entry_point']})"]})
    cuda = torch.cuda.is_available()
    args = GRPOConfig(
        output_dir=a.out,
        report_to=[],
        save_steps=50,
        use_cpu=not cuda,
        bf16=cuda,
        logging_steps=1,
        **config,
    )
    trainer = CoupledGRPOTrainer(
        model=a.model,
        reward_funcs=[code_reward, code_format_reward],
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tok,
        **trainer_kwargs,
    )
    trainer.train(resume_from_checkpoint=any(Path(a.out).glob("checkpoint-*")))
    trainer.save_model(str(Path(a.out) / "model"))


def cmd_demo(a) -> None:
    from diffucoder.demo import main as demo

    print(json.dumps(demo(Path(a.out), train_steps=a.steps, seed=a.seed), indent=1))


def _add_sampler(p) -> None:
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--steps", type=int, default=None, help="diffusion steps (default: one token per step)")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument(
        "--alg",
        default=None,
        choices=["origin", "maskgit_plus", "topk_margin", "entropy"],
        help="confidence ranking (default entropy; with --cached only together with --steps)",
    )
    p.add_argument("--alg-temp", type=float, default=None)
    p.add_argument("--num", type=int, default=1, help="samples per prompt")
    add_seed(p)
    add_device(p)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="diffucoder", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("train", help="masked-diffusion SFT of a small Dream model on standard-library functions")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--length", type=int, default=64)
    p.add_argument("--max-chars", type=int, default=1_000_000)
    p.add_argument("--vocab", type=int, default=512)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    add_seed(p)
    add_trainer_args(p, checkpoint_every=100)
    p.set_defaults(fn=cmd_train)
    p = sub.add_parser("sample", help="sample a completion (exact Dream sampler or --cached)")
    p.add_argument("--model", required=True)
    p.add_argument("--prompt", required=True)
    p.add_argument("--cached", action="store_true", help="block-wise KV-cached sampler (Fast-dLLM)")
    p.add_argument("--dual-cache", action="store_true", help="with --cached: cache the suffix too")
    p.add_argument("--block-length", type=int, default=32, help="with --cached")
    p.add_argument(
        "--threshold", type=float, default=0.9, help="with --cached and no --steps: parallel-decoding threshold"
    )
    _add_sampler(p)
    add_compile(p)
    p.set_defaults(fn=cmd_sample)
    p = sub.add_parser("arness", help="record decoding orders and plot AR-ness vs temperature (PNG)")
    p.add_argument("--model", required=True)
    p.add_argument("--prompt", required=True)
    p.add_argument("--temperatures", type=float, nargs="+", default=[0.2, 0.6, 1.0, 1.4])
    p.add_argument("--k", type=int, default=1)
    p.add_argument("--out", default="arness.png")
    _add_sampler(p)
    p.set_defaults(fn=cmd_arness)
    p = sub.add_parser("evaluate", help="HumanEval pass@k (sandboxed execution)")
    p.add_argument("--model", required=True)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--k", type=int, nargs="+", default=[1])
    p.add_argument("--timeout", type=float, default=5.0)
    _add_sampler(p)
    p.set_defaults(fn=cmd_evaluate)
    p = sub.add_parser("grpo", help="coupled-GRPO on HumanEval prompts with the code + format rewards")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument(
        "--recipe",
        choices=["official", "clean"],
        default="official",
        help="official: apple/ml-diffucoder's trainer and config_coupled_code.yaml; clean: our variant",
    )
    p.add_argument("--steps", type=int, default=None, help="optimiser steps (default: the recipe's)")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--generations", type=int, default=None, help="completions per prompt (default: the recipe's)")
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--diffusion-steps", type=int, default=None)
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.set_defaults(fn=cmd_grpo)
    p = sub.add_parser("demo", help="train a tiny model for ~1 minute, sample, AR-ness plot")
    p.add_argument("--out", default="diffucoder_demo")
    p.add_argument("--steps", type=int, default=600, help="training steps (a step budget: same numbers on any machine)")
    add_seed(p)
    p.set_defaults(fn=cmd_demo)
    return ap


def main(argv: list[str] | None = None) -> None:
    a = build_parser().parse_args(argv)
    a.fn(a)


if __name__ == "__main__":
    main()
