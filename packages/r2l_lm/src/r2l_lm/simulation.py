"""Run the arithmetic simulation: train one model per (format, direction) and score its MCQ variants."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from labcore.logging import get_logger
from r2l_lm.arithmetic import (
    VARIANTS,
    equation,
    make_digit_tokenizer,
    make_mcqs,
    split_pairs,
    theoretical_conditional_entropy,
)
from r2l_lm.scoring import MCQScorer
from r2l_lm.training import tiny_llama, train_causal_lm

log = get_logger("r2l_lm.simulation")


@dataclass
class SimulationConfig:
    m: int = 2
    n: int = 2
    num_test: int = 1000
    num_train: int | None = None
    hidden: int = 128
    layers: int = 2
    heads: int = 4
    steps: int = 1500
    batch_size: int = 256
    lr: float = 3e-3
    seed: int = 0
    strategy: str = "auto"
    accelerator: str = "auto"
    extra: dict = field(default_factory=dict)


def run_model(cfg: SimulationConfig, fmt: str, direction: str, out_dir: str | os.PathLike) -> dict[str, dict]:
    """Train the ``fmt``/``direction`` model and evaluate every variant it can score (train and test)."""
    tok = make_digit_tokenizer()
    train, test = split_pairs(cfg.m, cfg.n, cfg.num_test, cfg.seed, cfg.num_train)
    texts = [equation(int(a), int(b), cfg.m, cfg.n, fmt) for a, b in train]
    torch.manual_seed(cfg.seed)
    model = tiny_llama(
        len(tok),
        cfg.hidden,
        cfg.layers,
        cfg.heads,
        max_len=4 * (cfg.m + cfg.n) + 8,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    log.info("training %s/%s on %d equations for %d steps", fmt, direction, len(texts), cfg.steps)
    train_causal_lm(
        model,
        tok,
        texts,
        direction,
        Path(out_dir) / f"{fmt}-{direction}",
        max_steps=cfg.steps,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        seed=cfg.seed,
        strategy=cfg.strategy,
        accelerator=cfg.accelerator,
    )
    model.eval()
    scorer = MCQScorer(model, tok, direction, batch_size=512)
    results = {}
    for variant, d in VARIANTS[fmt].items():
        if d != direction:
            continue
        row = {"theoretical H (nats)": theoretical_conditional_entropy(cfg.m, cfg.n, variant)}
        for split, pairs in (("test", test), ("train", train[: cfg.num_test])):
            items = make_mcqs(pairs, cfg.m, cfg.n, variant, fmt, seed=cfg.seed + 1)
            qs, opts = [it.question for it in items], [it.options for it in items]
            pred = scorer.predict(qs, opts)
            row[f"{split} accuracy"] = sum(p == it.gold for p, it in zip(pred, items)) / len(items)
            if split == "test":
                gold = [it.options[it.gold] for it in items]
                row["test cond. entropy (nats)"] = float(scorer.gold_nll(qs, gold).mean())
        results[f"{fmt}/{variant}"] = row
        log.info("%s/%s: %s", fmt, variant, row)
    return results
