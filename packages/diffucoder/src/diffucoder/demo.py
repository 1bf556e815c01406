"""Quick start: train a tiny Dream-shaped diffusion coder on standard-library functions, sample, measure AR-ness.

Step-budgeted and seeded: the same numbers on any machine. Writes ``loss.png`` and ``arness_vs_temperature.png``.
"""

from __future__ import annotations

from pathlib import Path

from diffucoder.arness import arness_vs_temperature
from diffucoder.config import DreamConfig
from diffucoder.data import function_snippets, sft_tensors
from diffucoder.generation import diffusion_generate, left_pad
from diffucoder.modeling import DreamModel
from diffucoder.tokenizer import dream_config_kwargs, train_tiny_tokenizer
from diffucoder.train import fit
from labcore.corpora import python_source
from labcore.figures import save_line_plot
from labcore.logging import get_logger
from labcore.rng import seed_everything

log = get_logger("diffucoder.demo")


def main(out_dir: Path, train_steps: int = 600, seed: int = 0) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)
    tok = train_tiny_tokenizer([python_source(300_000)], vocab_size=512)
    pairs = function_snippets(1_000_000)
    ids, prompt_mask = sft_tensors(tok, pairs, length=48)
    held_out = 8
    train_ids, train_prompt = ids[held_out:], prompt_mask[held_out:]
    cfg = DreamConfig(
        **dream_config_kwargs(tok),
        hidden_size=96,
        intermediate_size=192,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    model = DreamModel(cfg)
    log.info("training on %d functions (%d held out) for %d steps", len(train_ids), held_out, train_steps)
    losses = fit(
        model,
        train_ids,
        train_prompt,
        out_dir / "run",
        max_steps=train_steps,
        batch_size=32,
        lr=1e-3,
        seed=seed,
    )
    model.eval()
    save_line_plot({"masked-diffusion loss": losses}, out_dir / "loss.png", ylabel="loss / token", title="SFT")
    model.save_pretrained(out_dir / "model")
    tok.save_pretrained(out_dir / "model")

    samples = []
    for i in range(3):  # held-out signatures
        prompt = ids[i : i + 1, : int(prompt_mask[i].sum())]
        out = diffusion_generate(model, prompt, max_new_tokens=32, steps=32, alg="entropy")
        samples.append(tok.decode(out[0], skip_special_tokens=True))
        log.info("sample %d:\n%s", i, samples[-1])

    prompts = [row[:n] for row, n in zip(ids[:held_out].tolist(), prompt_mask[:held_out].sum(-1).tolist())]
    batch, attn = left_pad(prompts, tok.pad_token_id)
    temps = [0.2, 0.6, 1.0, 1.4]
    ar = arness_vs_temperature(model, batch, temps, max_new_tokens=24, attention_mask=attn, seed=seed)
    save_line_plot(
        {"local AR-ness@1": (temps, [ar[t][0] for t in temps]), "global AR-ness@1": (temps, [ar[t][1] for t in temps])},
        out_dir / "arness_vs_temperature.png",
        xlabel="sampling temperature",
        ylabel="AR-ness",
        title="entropy decoding, one token per step",
    )
    return {
        "train_steps": len(losses),
        "first_loss": losses[0],
        "final_loss": sum(losses[-20:]) / len(losses[-20:]),
        "samples": samples,
        "arness": {str(t): {"local": ar[t][0], "global": ar[t][1]} for t in temps},
    }
