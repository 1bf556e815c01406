"""Write the golden fixtures of ``test_diffucoder_golden.py`` from the official Dream and DiffuCoder code.

    python packages/diffucoder/tests/golden/make_golden.py /path/to/Fast-dLLM /path/to/ml-diffucoder

* Dream: the reference ``DreamModel`` and ``diffusion_generate`` as vendored in NVlabs/Fast-dLLM
  ``dream/model/`` (the Dream-org modelling code; the HF-hub original is not reachable offline). A tiny model
  with EVERY weight seeded random (rounded to float16, stored exactly) gives logits and the temperature-0
  generations of every algorithm (``origin`` with one step: it is random otherwise), with a logits hook that
  forbids the ``<|mask|>`` token as a proposal. Two shims let that code run on transformers 5 (the removed
  "default" RoPE initialiser and the generation-config plumbing); neither touches the computation.
* Coupled-GRPO: apple/ml-diffucoder ``DiffuGRPOTrainer._get_per_token_logps`` with its ``forward_process``,
  ``get_logits`` and ``selective_log_softmax``, executed from the file's own source (the module as a whole
  imports a TRL version that no longer exists) on the same model, on left-padded rows without an attention
  mask (as the trainer runs), for one mask seed (what the trainer passes) and for two seeds with gradient
  accumulation 2 (masks repeated over the accumulation chunks). The masks and mask ratios are recorded too.

Only outputs are written, never the official code.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import sys
import types
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from labcore.golden import git_commit

HERE = Path(__file__).parent
CONFIG = dict(
    vocab_size=16,
    hidden_size=16,
    intermediate_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
    mask_token_id=15,
    pad_token_id=14,
    bos_token_id=13,
    eos_token_id=13,
    rope_theta=10000.0,
)
NEW_TOKENS = 8
CASES = [(alg, steps) for alg in ("maskgit_plus", "topk_margin", "entropy") for steps in (8, 4, 3)] + [("origin", 1)]
GRPO_SEEDS = {"one_seed": ([42], 1), "two_seeds_ga2": ([7, 8], 2)}  # mask seeds, gradient accumulation


def no_mask_hook(step, x, logits):
    logits = logits.clone()
    logits[..., CONFIG["mask_token_id"]] = -torch.inf
    return logits


def official_dream(root: Path):
    import transformers.modeling_rope_utils as rope

    def default(config, device=None, **_):
        dim = config.hidden_size // config.num_attention_heads
        exponent = torch.arange(0, dim, 2, dtype=torch.int64).float().to(device) / dim
        return 1.0 / (config.rope_theta**exponent), 1.0

    rope.ROPE_INIT_FUNCTIONS.setdefault("default", default)
    sys.path.insert(0, str(root / "dream"))
    from model import DreamConfig, DreamModel
    from model.generation_utils import DreamGenerationConfig

    DreamGenerationConfig.validate = lambda self, *a, **k: None
    return DreamConfig, DreamModel, DreamGenerationConfig


def official_grpo(root: Path):
    """The trainer's log-prob functions, compiled from ``coupled_grpo.py``'s own source."""
    from accelerate.utils import set_seed

    tree = ast.parse((root / "src" / "open_r1" / "coupled_grpo.py").read_text())
    wanted = {"selective_log_softmax", "forward_process", "get_logits", "_get_per_token_logps"}
    nodes = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name in wanted]
    namespace = {"torch": torch, "F": F, "random": random, "set_seed": set_seed}
    exec(compile(ast.Module(body=nodes, type_ignores=[]), "coupled_grpo.py", "exec"), namespace)
    return namespace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fast_dllm", type=Path, help="checkout of NVlabs/Fast-dLLM (Dream reference code)")
    ap.add_argument("diffucoder", type=Path, help="checkout of apple/ml-diffucoder")
    args = ap.parse_args()
    RefConfig, RefModel, GenConfig = official_dream(args.fast_dllm)
    torch.manual_seed(0)
    model = RefModel(RefConfig(**CONFIG)).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g)
            p.copy_(((1.0 + 0.2 * r) if "norm" in name else (0.5 * r if p.dim() == 2 else 0.2 * r)).half().float())
    (HERE / "dream").mkdir(exist_ok=True)
    save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, HERE / "dream" / "model.safetensors")
    from diffucoder import DreamConfig  # ours: config.json next to the weights, as a released checkpoint

    DreamConfig(**CONFIG).save_pretrained(HERE / "dream")
    model._prepare_generation_config = lambda gc, **kw: GenConfig(
        pad_token_id=CONFIG["pad_token_id"], **{k: v for k, v in kw.items() if k != "attention_mask"}
    )
    out: dict[str, torch.Tensor] = {}
    x = torch.randint(0, 13, (3, 8), generator=g)
    out["prompt"] = x
    with torch.no_grad():
        out["logits"] = model(x, "full", None).logits
        for alg, steps in CASES:
            out[f"generate/{alg}/{steps}"] = model.diffusion_generate(
                x,
                max_new_tokens=NEW_TOKENS,
                steps=steps,
                alg=alg,
                temperature=0.0,
                mask_token_id=CONFIG["mask_token_id"],
                return_dict_in_generate=True,
                generation_logits_hook_func=no_mask_hook,
            ).sequences

    grpo = official_grpo(args.diffucoder)
    ids = torch.randint(0, 13, (4, 12), generator=g)
    ids[1, :2] = ids[3, :3] = CONFIG["pad_token_id"]  # left padding, attended to as in the trainer
    k = 6
    out["grpo/input_ids"] = ids
    for key, (seeds, accumulation) in GRPO_SEEDS.items():
        trainer = types.SimpleNamespace(
            args=types.SimpleNamespace(gradient_accumulation_steps=accumulation),
            processing_class=types.SimpleNamespace(mask_token_id=CONFIG["mask_token_id"]),
        )
        for name in ("forward_process", "get_logits"):
            setattr(trainer, name, types.MethodType(grpo[name], trainer))
        with torch.no_grad():
            logps = grpo["_get_per_token_logps"](trainer, model, ids.expand(len(seeds), -1, -1), k, seeds)
        out[f"grpo/{key}/logps"] = logps
        for i, seed in enumerate(seeds):  # the masks and ratios it used, drawn again by its forward_process
            prompt_index = torch.arange(ids.shape[1]) < ids.shape[1] - k
            _, weights, mask = trainer.forward_process(
                ids, prompt_index, CONFIG["mask_token_id"], seed=seed, accumulate=len(seeds) > 1
            )
            out[f"grpo/{key}/mask/{i}"] = mask[:, -k:]
            out[f"grpo/{key}/t/{i}"] = torch.tensor([1 / weights[1]])

    save_file({k: v.contiguous() for k, v in out.items()}, HERE / "diffucoder_golden.safetensors")

    meta = {
        "official_repositories": {
            "https://github.com/NVlabs/Fast-dLLM (dream/model: Dream reference code)": git_commit(args.fast_dllm),
            "https://github.com/apple/ml-diffucoder (src/open_r1/coupled_grpo.py)": git_commit(args.diffucoder),
        },
        "command": "python packages/diffucoder/tests/golden/make_golden.py <Fast-dLLM> <ml-diffucoder>",
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "config": CONFIG,
        "new_tokens": NEW_TOKENS,
        "cases": CASES,
        "grpo": {
            key: {"seeds": s, "gradient_accumulation_steps": a, "logits_to_keep": k}
            for key, (s, a) in GRPO_SEEDS.items()
        },
    }
    (HERE / "diffucoder_golden.json").write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
    main()
