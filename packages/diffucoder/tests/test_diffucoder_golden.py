"""Golden outputs of the official Dream sampler and DiffuCoder's coupled-GRPO log-probs
(``golden/make_golden.py``; repositories and commits in the JSON).

Always runs: the reference weights load through ``DreamModel.from_pretrained`` (a checkpoint directory as
released); logits agree to ``atol=rtol=1e-5`` (float32, CPU), temperature-0 generations of every
algorithm token for token, and the coupled per-token log-probabilities given the official masks to
``atol=rtol=1e-5``.
"""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from diffucoder import DreamModel, diffusion_generate
from diffucoder.coupled_grpo import coupled_logps_given_masks, official_masks

GOLDEN = Path(__file__).parent / "golden"
EX = load_file(GOLDEN / "diffucoder_golden.safetensors")
META = json.loads((GOLDEN / "diffucoder_golden.json").read_text())
MASK_ID = META["config"]["mask_token_id"]


@pytest.fixture(scope="module")
def model():
    return DreamModel.from_pretrained(GOLDEN / "dream", dtype=torch.float32).eval()


def no_mask_hook(step, x, logits):
    logits = logits.clone()
    logits[..., MASK_ID] = -torch.inf
    return logits


def test_official_commits_are_recorded():
    assert all(len(c) == 40 for c in META["official_repositories"].values())


@torch.no_grad()
def test_logits_match_the_reference_dream(model):
    torch.testing.assert_close(model(EX["prompt"]).logits, EX["logits"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("alg,steps", [tuple(c) for c in META["cases"]])
def test_greedy_generation_matches_the_reference_sampler(model, alg, steps):
    out = diffusion_generate(
        model,
        EX["prompt"],
        max_new_tokens=META["new_tokens"],
        steps=steps,
        alg=alg,
        generation_logits_hook_func=no_mask_hook,
    )
    assert torch.equal(out, EX[f"generate/{alg}/{steps}"])


@pytest.mark.parametrize("key", list(META["grpo"]))
def test_coupled_grpo_log_probs_match_the_official_trainer(model, key):
    """Left-padded rows, no attention mask (the trainer attends to pads), official masks and ratios."""
    spec, ids = META["grpo"][key], EX["grpo/input_ids"]
    n = len(spec["seeds"])
    masks = torch.stack([EX[f"grpo/{key}/mask/{i}"] for i in range(n)])
    t = torch.cat([EX[f"grpo/{key}/t/{i}"] for i in range(n)])
    with torch.no_grad():
        got = coupled_logps_given_masks(model, ids, spec["logits_to_keep"], masks, t, MASK_ID)
    torch.testing.assert_close(got, EX[f"grpo/{key}/logps"], rtol=1e-5, atol=1e-5)
    micro = len(ids) // spec["gradient_accumulation_steps"]
    for i, seed in enumerate(spec["seeds"]):  # the official mask draw, reproduced
        m, ratio = official_masks(tuple(ids.shape), spec["logits_to_keep"], seed, micro_batch=micro)
        assert torch.equal(m, masks[i]) and ratio == pytest.approx(t[i].item(), abs=1e-6)
