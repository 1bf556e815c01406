"""Sampler throughput, cached-vs-exact agreement and coupled-GRPO step time.

    python benchmarks/diffucoder/bench.py                      # tiny random model (CPU)
    python benchmarks/diffucoder/bench.py --model DEMO/model   # a trained checkpoint (e.g. the demo's)
    python benchmarks/diffucoder/bench.py --shape 7b           # 7B-shaped random model in bf16 (GPU)

Rows: "reference strategy" = Dream's sampler as shipped (full forward every step, one token per step,
``alg=entropy``, which is what :func:`diffucoder.diffusion_generate` runs, batched); "cached" = block-wise
prefix KV cache + confidence-threshold parallel decoding. Agreement = fraction of completion tokens equal to
the exact greedy sampler's (``alg=maskgit_plus``, temperature 0, one token per step).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from diffucoder import DreamConfig, DreamModel, diffusion_generate
from diffucoder.cached import cached_generate
from diffucoder.coupled_grpo import coupled_per_token_logps
from diffucoder.generation import left_pad

SHAPES = {
    "tiny": dict(
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
    "7b": dict(
        vocab_size=152064,
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        max_position_embeddings=32768,
        mask_token_id=151666,
        pad_token_id=151643,
    ),
}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device):
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", choices=list(SHAPES), default="tiny")
    ap.add_argument("--model", default=None, help="a trained checkpoint directory instead of a random model")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--block", type=int, default=16)
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--grpo-batch", type=int, default=4)
    ap.add_argument("--trainer-steps", type=int, default=0, help="time N CoupledGRPOTrainer steps (needs --model)")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    torch.manual_seed(0)
    if args.model:
        model = DreamModel.from_pretrained(args.model, dtype=dtype).to(device).eval()
        name = args.model
    else:
        torch.set_default_dtype(dtype)
        with torch.device(device):
            model = DreamModel(DreamConfig(**SHAPES[args.shape])).eval()
        torch.set_default_dtype(torch.float32)
        name = f"random {args.shape}"
    vocab = model.config.vocab_size
    prompt = torch.randint(0, min(vocab, 500), (args.batch, args.prompt), device=device)
    attn = None
    if args.model:  # real prompts: signature lines of standard-library functions, left-padded
        from diffucoder.data import function_snippets
        from diffucoder.tokenizer import load_tokenizer

        tok = load_tokenizer(args.model)
        heads = [tok.encode(h, add_special_tokens=False)[-args.prompt :] for h, _ in function_snippets()[: args.batch]]
        prompt, attn = left_pad(heads, tok.pad_token_id, args.prompt, device)
    new = args.new
    diffusion_generate(model, prompt, max_new_tokens=8, steps=8, alg="entropy")  # warm-up

    ref, t_ref = timed(
        lambda: diffusion_generate(model, prompt, attn, max_new_tokens=new, steps=new, alg="entropy"), device
    )
    greedy, t_greedy = timed(
        lambda: diffusion_generate(model, prompt, attn, max_new_tokens=new, steps=new, alg="maskgit_plus"), device
    )
    half, t_half = timed(
        lambda: diffusion_generate(model, prompt, attn, max_new_tokens=new, steps=new // 2, alg="entropy"), device
    )
    (cached, calls), t_cached = timed(
        lambda: cached_generate(
            model, prompt, attn, max_new_tokens=new, block_length=args.block, threshold=args.threshold
        ),
        device,
    )
    (dual, calls_dual), t_dual = timed(
        lambda: cached_generate(
            model, prompt, attn, max_new_tokens=new, block_length=args.block, threshold=args.threshold, dual_cache=True
        ),
        device,
    )
    (nocache, calls_nc), t_nocache = timed(
        lambda: cached_generate(
            model, prompt, attn, max_new_tokens=new, block_length=args.block, threshold=args.threshold, use_cache=False
        ),
        device,
    )
    tokens = args.batch * new

    def agree(x):
        return (x[:, args.prompt :] == greedy[:, args.prompt :]).float().mean().item()

    print(f"model: {name}, device: {device}, dtype: {dtype}, batch {args.batch}, prompt {args.prompt}, new {new}")
    print("| sampler | model calls | tokens/s | speed-up vs reference | agreement with exact greedy |")
    print("|---|---|---|---|---|")
    rows = [
        ("reference strategy (entropy, 1 token/step)", new, t_ref, ref),
        ("exact greedy (maskgit_plus, 1 token/step)", new, t_greedy, greedy),
        (f"exact, {new // 2} steps (2 tokens/step)", new // 2, t_half, half),
        (f"threshold {args.threshold}, block {args.block}, no cache", calls_nc, t_nocache, nocache.sequences),
        (f"prefix cache: threshold {args.threshold}, block {args.block}", calls, t_cached, cached.sequences),
        (f"dual cache: threshold {args.threshold}, block {args.block}", calls_dual, t_dual, dual.sequences),
    ]
    for label, n_calls, secs, seqs in rows:
        print(f"| {label} | {n_calls} | {tokens / secs:.1f} | {t_ref / secs:.2f}x | {agree(seqs):.3f} |")

    for label, seqs in (("prefix", cached.sequences), ("dual", dual.sequences)):
        same = (seqs == nocache.sequences)[:, args.prompt :].float().mean().item()
        print(f"{label} cache vs the same threshold schedule without cache: {same:.3f} of tokens agree")
    model.train()
    ids = torch.randint(0, min(vocab, 500), (args.grpo_batch, args.prompt + new), device=device)

    def grpo_step():
        logps = coupled_per_token_logps(model, ids, new, [1], model.config.mask_token_id)
        logps.mean().backward()

    grpo_step()
    model.zero_grad()
    _, t_step = timed(grpo_step, device)
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
