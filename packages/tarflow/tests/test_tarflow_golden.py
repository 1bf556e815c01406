"""Golden outputs of the official apple/ml-tarflow code (``golden/make_golden.py``; commit in the JSON).

Always runs: the official weights are loaded through ``TarFlow.from_reference_checkpoint`` and every
output is compared in float32 on CPU with ``atol=rtol=1e-5`` (samples and denoised samples ``2e-5``,
accumulated over 16 sequential steps).
"""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tarflow import TarFlow

GOLDEN = Path(__file__).parent / "golden"
EXPECTED = load_file(GOLDEN / "tarflow_golden.safetensors")
META = json.loads((GOLDEN / "tarflow_golden.json").read_text())
CASES = {
    "plain": dict(guidance=0.0),
    "cfg": dict(guidance=1.5),
    "cfg_temp_annealed": dict(guidance=1.0, attn_temp=0.7, annealed_guidance=True),
    "cfg_a": dict(guidance=0.8, guide_what="a"),
    "cfg_b_temp": dict(guidance=2.0, guide_what="b", attn_temp=1.3),
}


def close(actual, expected, tol=1e-5):
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol, check_dtype=False)


def load(name):
    model = TarFlow.from_reference_checkpoint(GOLDEN / f"{name}.safetensors").eval()
    return model, {k.split("/", 1)[1]: v for k, v in EXPECTED.items() if k.startswith(name + "/")}


def test_official_commit_is_recorded():
    assert len(META["official_commit"]) == 40


@torch.no_grad()
@pytest.mark.parametrize("name", list(META["models"]))
def test_forward_logdet_loss_and_bits_per_dim_match_the_official_code(name):
    model, ex = load(name)
    out = model(ex["x"], ex.get("y"))
    close(out.z, ex["z"])
    close(out.logdet / model.config.num_dims, ex["logdet_per_dim"])
    close(model.get_loss(out.z, out.logdet), ex["loss"][0])
    close(model.bits_per_dim(ex["bpd_x"]), ex["bpd"])


SAMPLES = sorted((k.split("/")[0], k.split("/")[2]) for k in EXPECTED if k.count("/") == 2 and "/sample/" in k)


@pytest.mark.parametrize("name,case", SAMPLES)
def test_samples_and_denoised_samples_match_the_official_code(name, case):
    model, ex = load(name)
    y = ex.get("sample_y")

    def draw(**kw):
        return model.sample(3, y, **CASES[case], generator=torch.Generator().manual_seed(7), **kw)

    close(draw(denoise=False), ex[f"sample/{case}"], 2e-5)
    close(draw(), ex[f"sample/{case}/denoised"], 2e-5)  # a Gaussian-noise model denoises by default
