"""Compare our DreamModel and sampler with Dream's reference code, given a local copy of it.

    python benchmarks/diffucoder/check_against_reference.py --reference-dir DIR --model CKPT

``DIR`` holds a package ``dream/`` with the reference ``configuration_dream.py``, ``modeling_dream.py``,
``generation_utils.py`` (e.g. from NVlabs/Fast-dLLM ``dream/model/``; not shipped here). Two shims let that
code run on transformers 5 (the removed "default" RoPE initialiser and the generation-config plumbing);
neither touches the computation. Prints the maximal logit difference and, per algorithm and step count,
whether greedy (temperature 0) generations are token-identical. Unpadded prompts only: the Fast-dLLM copy
ignores position ids.
"""

from __future__ import annotations

import argparse
import sys

import torch

from diffucoder import DreamModel, diffusion_generate


def _shim_rope() -> None:
    import transformers.modeling_rope_utils as rope

    def default(config, device=None, **_):
        dim = config.hidden_size // config.num_attention_heads
        exponent = torch.arange(0, dim, 2, dtype=torch.int64).float().to(device) / dim
        return 1.0 / (config.rope_theta**exponent), 1.0

    rope.ROPE_INIT_FUNCTIONS.setdefault("default", default)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference-dir", required=True)
    ap.add_argument("--model", required=True, help="a Dream checkpoint directory (e.g. the demo's model)")
    ap.add_argument("--new", type=int, default=16)
    args = ap.parse_args()
    sys.path.insert(0, args.reference_dir)
    _shim_rope()
    from dream import DreamConfig as RefConfig
    from dream import DreamModel as RefModel
    from dream.generation_utils import DreamGenerationConfig

    DreamGenerationConfig.validate = lambda self, *a, **k: None
    ours = DreamModel.from_pretrained(args.model).eval()
    skip = {"model_type", "architectures", "transformers_version", "rope_parameters"}
    ref = RefModel(RefConfig(**{k: v for k, v in ours.config.to_dict().items() if k not in skip})).eval()
    ref.load_state_dict(ours.state_dict())
    ref._prepare_generation_config = lambda gc, **kw: DreamGenerationConfig(
        pad_token_id=ours.config.pad_token_id, **{k: v for k, v in kw.items() if k != "attention_mask"}
    )
    x = torch.randint(0, min(500, ours.config.vocab_size - 8), (3, 8), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        diff = (ours(x).logits - ref(x, "full", None).logits).abs().max().item()
    print(f"max |logit difference|: {diff:.3g}")
    mask = ours.config.mask_token_id
    cases = [(alg, s) for alg in ("maskgit_plus", "topk_margin", "entropy") for s in (args.new, args.new // 2, 5)]
    cases.append(("origin", 1))  # origin is random for steps > 1
    for alg, steps in cases:
        theirs = ref.diffusion_generate(
            x,
            max_new_tokens=args.new,
            steps=steps,
            alg=alg,
            temperature=0.0,
            mask_token_id=mask,
            return_dict_in_generate=True,
        ).sequences
        mine = diffusion_generate(ours, x, max_new_tokens=args.new, steps=steps, alg=alg)
        print(f"{alg:13s} steps={steps:3d} token-identical: {torch.equal(theirs, mine)}")


if __name__ == "__main__":
    main()
