"""CLI: ``python -m tarflow_lm train|evaluate|sample|demo`` on the offline text8-like character corpus."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from labcore.cli import add_compile, add_device, add_seed, resolve_device
from labcore.compiling import maybe_compile
from labcore.logging import get_logger
from labcore.trainer_args import add_trainer_args, trainer_options

if TYPE_CHECKING:  # torch and the model load inside the commands: --help stays fast
    from tarflow_lm.modeling import TarFlowLMModel

log = get_logger("tarflow_lm.cli")


def _load(path: str, device: str) -> TarFlowLMModel:
    from tarflow_lm.modeling import TarFlowLMModel

    if not (Path(path) / "config.json").exists():
        raise SystemExit(f"no model at {path}: pass the 'model' folder written by `python -m tarflow_lm train`")
    from labcore.hub import exit_on_load_error

    with exit_on_load_error():
        return TarFlowLMModel.from_pretrained(path).eval().to(resolve_device(device))


def cmd_train(a) -> None:
    from labcore.checkpoint import atomic_write_text
    from labcore.rng import seed_everything
    from tarflow_lm.data import contiguous_windows, text8_like_splits
    from tarflow_lm.modeling import TarFlowLMModel
    from tarflow_lm.presets import PRESETS
    from tarflow_lm.training import evaluate, train

    seed_everything(a.seed)
    overrides = {"max_seq_len": a.seq_len} if a.seq_len else {}
    if a.layer_types:
        overrides["layer_types"] = a.layer_types.split(",")
    if a.patch_size:
        overrides["patch_size"] = a.patch_size
    config = PRESETS.cli_config(a.preset, **overrides)
    if config.vocab_size != 27:
        raise SystemExit(
            f"preset {a.preset} has vocab {config.vocab_size}; the bundled corpus is character-level "
            "(27 symbols): use --preset tiny or text8"
        )
    model = maybe_compile(TarFlowLMModel(config), a.compile)
    train_ids, valid_ids = text8_like_splits(a.max_chars)
    losses = train(
        model,
        train_ids,
        steps=a.steps,
        batch_size=a.batch_size,
        lr=a.lr,
        progressive=a.progressive,
        out_dir=a.out,
        seed=a.seed,
        resume=a.resume,
        **trainer_options(a),
    )
    model.save_pretrained(Path(a.out) / "model")
    metrics = evaluate(model, contiguous_windows(valid_ids, config.max_seq_len, a.eval_windows), a.num_samples)
    metrics["final_train_bpc"] = losses[-1] if losses else float("nan")
    atomic_write_text(Path(a.out) / "metrics.json", json.dumps(metrics, indent=2))
    log.info("validation: %s", metrics)


def cmd_evaluate(a) -> None:
    from tarflow_lm.data import contiguous_windows, text8_like_splits
    from tarflow_lm.training import evaluate

    model = _load(a.model, a.device)
    _, valid_ids = text8_like_splits(a.max_chars)
    windows = contiguous_windows(valid_ids, model.config.max_seq_len, a.eval_windows).to(model.device)
    print(json.dumps(evaluate(model, windows, a.num_samples), indent=2))


def cmd_sample(a) -> None:
    import torch

    from tarflow_lm.data import decode_chars

    model = _load(a.model, a.device)
    maybe_compile(model, a.compile, modules=model.sampling_modules())
    gen = torch.Generator(model.device).manual_seed(a.seed)
    passes = model.generate(a.num, a.seq_len, a.temperature, gen, return_passes=True)
    for i in range(a.num):
        if a.passes:
            for p, ids in enumerate(passes):
                print(f"[{i}] pass {p}: {decode_chars(ids[i])}")
        else:
            print(decode_chars(passes[-1][i]))


def cmd_demo(a) -> None:
    from tarflow_lm.demo import main as demo

    print(json.dumps(demo(Path(a.out), steps=a.steps), indent=1))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tarflow_lm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train on the text8-like corpus; resumes from OUT/checkpoints")
    t.add_argument("--out", required=True)
    t.add_argument("--preset", default="tiny", help="a name of tarflow_lm.PRESETS")
    t.add_argument("--layer-types", help="comma list, e.g. mix1,affine,mixd")
    t.add_argument("--patch-size", type=int)
    t.add_argument("--seq-len", type=int)
    t.add_argument("--steps", type=int, default=500)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--progressive", action="store_true", help="train one flow layer at a time, freezing earlier ones")
    add_trainer_args(t, checkpoint_every=100)
    for p in (t, sub.add_parser("evaluate", help="ELBO / importance-weighted BPC on held-out windows")):
        p.add_argument("--max-chars", type=int, default=300_000)
        p.add_argument("--eval-windows", type=int, default=128)
        p.add_argument("--num-samples", type=int, default=8, help="K for the importance-weighted bound")
    sub.choices["evaluate"].add_argument("--model", required=True)
    add_device(sub.choices["evaluate"])
    add_seed(t)
    s = sub.add_parser("sample", help="sample u ~ N(0, τ²I), invert, decode (optionally every pass)")
    s.add_argument("--model", required=True)
    s.add_argument("--num", type=int, default=4)
    s.add_argument("--seq-len", type=int)
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--passes", action="store_true", help="print the decode of every intermediate flow layer")
    add_seed(s)
    add_device(s)
    add_compile(s)
    d = sub.add_parser("demo", help="the quick-start demo: flow vs AR baseline on the text8-like corpus, PNGs")
    d.add_argument("--out", default="runs/tarflow_lm-demo")
    d.add_argument("--steps", type=int, default=600, help="training steps (a step budget: same numbers anywhere)")
    return parser


def main(argv: list[str] | None = None) -> None:
    a = build_parser().parse_args(argv)
    {"train": cmd_train, "evaluate": cmd_evaluate, "sample": cmd_sample, "demo": cmd_demo}[a.command](a)


if __name__ == "__main__":
    main()
