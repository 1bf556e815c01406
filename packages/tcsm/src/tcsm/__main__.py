"""CLI: ``python -m tcsm train|finetune|sample|evaluate|demo``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from labcore.cli import add_compile, add_device, add_seed, resolve_device
from labcore.compiling import maybe_compile
from labcore.logging import get_logger
from labcore.trainer_args import add_trainer_args, step_generator, trainer_options

if TYPE_CHECKING:  # torch and the model load inside the commands: --help stays fast
    from tcsm.model import TCSMDenoiser

log = get_logger("tcsm")


def _load(path: str, device: str = "cpu") -> tuple[TCSMDenoiser, object]:
    from tcsm.model import TCSMDenoiser
    from tcsm.noise import make_process

    if not (Path(path) / "config.json").exists():
        raise SystemExit(f"{path} holds no saved denoiser (config.json missing); train one with `python -m tcsm train`")
    from labcore.hub import exit_on_load_error

    with exit_on_load_error():
        model = TCSMDenoiser.from_pretrained(path).eval().to(device)
    return model, make_process(model.config.process, model.config.vocab_size, model.config.schedule)


def cmd_train(a) -> None:
    from labcore.rng import seed_everything
    from tcsm.config import TCSMConfig
    from tcsm.data import CharCorpus
    from tcsm.model import TCSMDenoiser
    from tcsm.noise import make_process
    from tcsm.objective import TCSMObjective
    from tcsm.train import train

    seed_everything(a.seed)
    corpus = CharCorpus(a.max_chars)
    cfg = TCSMConfig(
        vocab_size=len(corpus.vocab),
        hidden_size=a.hidden,
        num_hidden_layers=a.layers,
        num_attention_heads=a.heads,
        max_position_embeddings=a.length,
        process=a.process,
        schedule=a.schedule,
    )
    model, process = TCSMDenoiser(cfg), make_process(a.process, cfg.vocab_size, a.schedule)
    objective = TCSMObjective(process, a.family, a.divergence, weighting=a.weighting)
    maybe_compile(model, a.compile)
    train(
        model,
        objective,
        lambda step: corpus.batch(a.batch_size, a.length, generator=step_generator(a.seed, step)),
        a.steps,
        lr=a.lr,
        out_dir=a.out,
        seed=a.seed,
        resume=a.resume,
        **trainer_options(a),
    )
    model.save_pretrained(Path(a.out) / "denoiser")
    log.info("saved %s", Path(a.out) / "denoiser")


def cmd_finetune(a) -> None:
    from labcore.rng import seed_everything
    from tcsm.data import CharCorpus
    from tcsm.demo import vowel_count
    from tcsm.posttrain import reward_finetune

    seed_everything(a.seed)
    model, process = _load(a.model)
    corpus = CharCorpus(a.max_chars)
    length = model.config.max_position_embeddings
    maybe_compile(model, a.compile)
    reward_finetune(
        model,
        process,
        vowel_count,
        a.beta,
        lambda step: corpus.batch(a.batch_size, length, generator=step_generator(a.seed, step)),
        a.steps,
        lr=a.lr,
        out_dir=a.out,
        seed=a.seed,
        resume=a.resume,
        **trainer_options(a),
    )
    model.save_pretrained(Path(a.out) / "denoiser")
    log.info("saved %s", Path(a.out) / "denoiser")


def cmd_sample(a) -> None:
    import torch

    from tcsm.data import CharVocab
    from tcsm.sampling import sample

    device = resolve_device(a.device)
    model, process = _load(a.model, device)
    maybe_compile(model, a.compile)
    xs = sample(
        model,
        process,
        a.num,
        a.length or model.config.max_position_embeddings,
        a.steps,
        device=device,
        generator=torch.Generator(device).manual_seed(a.seed),
    )
    for line in CharVocab().decode(xs):
        print(line)


def cmd_evaluate(a) -> None:
    import torch

    from tcsm.data import CharCorpus
    from tcsm.likelihood import bits_per_char, nelbo, perplexity_bound

    device = resolve_device(a.device)
    model, process = _load(a.model, device)
    length = model.config.max_position_embeddings
    valid = CharCorpus(a.max_chars).eval_batches(length, a.sequences).to(device)
    bound = nelbo(model, process, valid, a.samples, torch.Generator(device).manual_seed(a.seed))
    bpc, ppl = bits_per_char(bound, length), perplexity_bound(bound, length)
    print(json.dumps({"bits_per_char_bound": bpc, "perplexity_bound": ppl, "sequences": len(valid)}))


def cmd_demo(a) -> None:
    from tcsm.demo import main as demo

    print(json.dumps(demo(Path(a.out)), indent=1))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tcsm", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="pre-train a denoiser with TCSM on the text8-like corpus")
    t.add_argument("--out", required=True)
    t.add_argument("--steps", type=int, default=2000)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--length", type=int, default=64)
    t.add_argument("--hidden", type=int, default=128)
    t.add_argument("--layers", type=int, default=4)
    t.add_argument("--heads", type=int, default=4)
    t.add_argument("--process", choices=["masked", "uniform"], default="masked")
    t.add_argument("--schedule", choices=["linear", "cosine"], default="linear")
    t.add_argument("--family", choices=["distribution", "score"], default="distribution")
    t.add_argument("--divergence", default=None, help="kl (distribution) or gkl/l2 (score); data supports these")
    t.add_argument("--weighting", choices=["elbo", "constant"], default="elbo")
    t.add_argument("--lr", type=float, default=1e-3)
    t.set_defaults(fn=cmd_train)
    f = sub.add_parser("finetune", help="reward fine-tuning toward p_ref·exp(r/β) (reward: vowel count)")
    f.add_argument("--model", required=True)
    f.add_argument("--out", required=True)
    f.add_argument("--beta", type=float, default=2.0)
    f.add_argument("--steps", type=int, default=200)
    f.add_argument("--batch-size", type=int, default=32)
    f.add_argument("--lr", type=float, default=1e-3)
    f.set_defaults(fn=cmd_finetune)
    for q in (t, f):
        add_trainer_args(q, checkpoint_every=200)
    s = sub.add_parser("sample", help="print samples of a saved denoiser")
    s.add_argument("--model", required=True)
    s.add_argument("--num", type=int, default=8)
    s.add_argument("--length", type=int, default=None)
    s.add_argument("--steps", type=int, default=64)
    add_compile(s)
    s.set_defaults(fn=cmd_sample)
    e = sub.add_parser("evaluate", help="validation bits/char (ELBO bound of the model's process)")
    e.add_argument("--model", required=True)
    e.add_argument("--sequences", type=int, default=256)
    e.add_argument("--samples", type=int, default=16, help="Monte Carlo times (masked) or grid steps (uniform)")
    e.set_defaults(fn=cmd_evaluate)
    d = sub.add_parser("demo", help="the quick-start demo")
    d.add_argument("--out", default="runs/tcsm")
    d.set_defaults(fn=cmd_demo)
    for q in (t, f, s, e, d):
        add_seed(q)
        q.add_argument("--max-chars", type=int, default=400_000)
    for q in (s, e):
        add_device(q)
    return p


def main(argv: list[str] | None = None) -> None:
    a = build_parser().parse_args(argv)
    a.fn(a)


if __name__ == "__main__":
    main()
