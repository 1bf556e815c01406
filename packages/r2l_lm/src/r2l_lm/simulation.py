"""The arithmetic simulation (Sec. 4): train one model per (format, direction), score every variant.

Four models (forward/reverse data x L2R/R2L reading) with identical settings; each variant of
:data:`r2l_lm.arithmetic.VARIANTS` is scored by the model of its direction on MCQs built from held-out
(test) and training pairs, next to its measured and theoretical conditional entropy.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from labcore.checkpoint import atomic_write_text
from labcore.logging import get_logger
from r2l_lm.arithmetic import (
    FORMATS,
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

PAPER_ANCHORS = {  # test accuracy (%) of the paper's 4x4-digit simulation (README of the official code)
    "forward/l2r": 99.81,
    "forward/r2l-mn": 59.71,
    "forward/r2l-m": 60.93,
    "reverse/r2l": 100.0,
    "reverse/l2r-mn": 97.82,
    "reverse/l2r-n": 99.85,
}


@dataclass
class SimulationConfig:
    m: int = 2
    n: int = 2
    num_test: int = 1000
    num_train: int | None = None  # None: every pair not in the test split
    num_choices: int = 4
    hidden: int = 128
    layers: int = 4
    heads: int = 4
    steps: int = 2000
    batch_size: int = 256
    lr: float = 3e-3
    seed: int = 0
    strategy: str = "auto"
    accelerator: str = "auto"
    devices: int | str = "auto"
    precision: str | None = None


def train_model(cfg: SimulationConfig, fmt: str, direction: str, out_dir: str | os.PathLike, train: np.ndarray):
    """Train the ``fmt``/``direction`` model; returns ``(model, tokenizer, losses)``."""
    tok = make_digit_tokenizer()
    texts = [equation(int(a), int(b), cfg.m, cfg.n, fmt) for a, b in train]
    torch.manual_seed(cfg.seed)  # twins start from the same weights
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
    losses = train_causal_lm(
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
        devices=cfg.devices,
        precision=cfg.precision,
    )
    return model.eval(), tok, losses


def evaluate_variants(
    model: torch.nn.Module, tok, cfg: SimulationConfig, fmt: str, direction: str, train: np.ndarray, test: np.ndarray
) -> dict[str, dict[str, float]]:
    """Accuracy and gold NLL ("cond. ent.") on test and train MCQs for each variant this model scores."""
    scorer = MCQScorer(model, tok, direction, batch_size=512)
    rows = {}
    for variant, d in VARIANTS[fmt].items():
        if d != direction:
            continue
        row = {
            "theo. cond. ent.": theoretical_conditional_entropy(cfg.m, cfg.n, variant),
            "theo. cond. ent. (train set)": theoretical_conditional_entropy(cfg.m, cfg.n, variant, pairs=train),
        }
        for split, pairs in (("test", test), ("train", train[: len(test)])):
            items = make_mcqs(pairs, cfg.m, cfg.n, variant, fmt, seed=cfg.seed + 1, num_choices=cfg.num_choices)
            res = scorer.evaluate(
                [it.question for it in items], [it.options for it in items], [it.gold for it in items]
            )
            row[f"{split} acc"], row[f"{split} cond. ent."] = res["accuracy"], res["gold_nll"]
        rows[f"{fmt}/{variant}"] = row
        log.info("%s/%s: %s", fmt, variant, {k: round(v, 4) for k, v in row.items()})
    return rows


def run_simulation(
    cfg: SimulationConfig, out_dir: str | os.PathLike, formats: tuple[str, ...] = FORMATS
) -> dict[str, dict[str, float]]:
    """Train the L2R and R2L twins for each format and evaluate all variants; returns one row per variant.

    Each model is scored in the same process right after training, so ``strategy="fsdp"`` (which leaves it
    sharded over the processes) is refused: use ``ddp``, or ``python -m r2l_lm train --strategy fsdp`` and
    ``score`` the saved model."""
    if cfg.strategy == "fsdp":
        raise ValueError(
            "simulate (run_simulation) with --strategy fsdp: each model is scored in the same process right after "
            "training, while FSDP leaves it sharded over the processes; use --strategy ddp, or train each model with "
            "`python -m r2l_lm train --strategy fsdp` and score the saved model with `python -m r2l_lm score`"
        )
    train, test = split_pairs(cfg.m, cfg.n, cfg.num_test, cfg.seed, cfg.num_train)
    results: dict[str, dict[str, float]] = {}
    for fmt in formats:
        for direction in ("l2r", "r2l"):
            model, tok, losses = train_model(cfg, fmt, direction, out_dir, train)
            rows = evaluate_variants(model, tok, cfg, fmt, direction, train, test)
            final = float(np.mean(losses[-max(1, len(losses) // 10) :])) if losses else float("nan")
            for row in rows.values():
                row["training loss"] = final
            results.update(rows)
    return results


def format_table(results: dict[str, dict[str, float]], cfg: SimulationConfig | None = None) -> str:
    """A Markdown table: one row per variant, the paper's test accuracy alongside."""
    cols = ["test acc", "train acc", "test cond. ent.", "train cond. ent.", "theo. cond. ent.", "training loss"]
    head = "| variant | " + " | ".join(cols) + " | paper test acc (4x4) |"
    lines = [head, "|" + "---|" * (len(cols) + 2)]
    for name, row in results.items():
        vals = [f"{100 * row[c]:.2f}%" if c.endswith("acc") else f"{row[c]:.3f}" for c in cols]
        lines.append(f"| {name} | " + " | ".join(vals) + f" | {PAPER_ANCHORS[name]:.2f}% |")
    if cfg is not None:
        lines.append("")
        lines.append("config: " + ", ".join(f"{k}={v}" for k, v in asdict(cfg).items()))
    return "\n".join(lines)


def write_results(results: dict[str, dict[str, float]], out_dir: str | os.PathLike, cfg: SimulationConfig) -> str:
    """Write ``results.json`` and the Markdown ``results.md`` table into ``out_dir``; returns the table."""
    table = format_table(results, cfg)
    atomic_write_text(Path(out_dir) / "results.json", json.dumps(results, indent=2))
    atomic_write_text(Path(out_dir) / "results.md", table + "\n")
    return table
