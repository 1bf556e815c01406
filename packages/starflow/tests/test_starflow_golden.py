"""Golden outputs of the official apple/ml-starflow code (``golden/make_golden.py``; commit in the JSON).

Always runs: the official weights go through ``StarFlow.from_official_checkpoint`` and every output is
compared in float32 on CPU with ``atol=rtol=1e-5`` (samples ``3e-5``: they accumulate over the sequential
inverse of every block).
"""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from starflow import JacobiOptions, StarFlow, StarFlowConfig

GOLDEN = Path(__file__).parent / "golden"
EXPECTED = load_file(GOLDEN / "starflow_golden.safetensors")
META = json.loads((GOLDEN / "starflow_golden.json").read_text())


def close(actual, expected, tol=1e-5):
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol)


@pytest.fixture(params=list(META["models"]), scope="module")
def golden(request, tmp_path_factory):
    name, kw = request.param, META["models"][request.param]
    config = StarFlowConfig(
        channel_size=META["channel_size"],
        txt_size=META["txt_size"],
        txt_dim=META["txt_dim"],
        latent_norm_regularization=META["latent_norm_regularization"],
        noise_std=META["noise_std"],
        **kw,
    )
    path = tmp_path_factory.mktemp(name) / "release.pth"  # the official format: a torch state dict
    torch.save({k: v.float() for k, v in load_file(GOLDEN / f"{name}.safetensors").items()}, path)
    model = StarFlow.from_official_checkpoint(str(path), config).eval()
    return model, {k.split("/", 1)[1]: v for k, v in EXPECTED.items() if k.startswith(name + "/")}


def test_official_commit_is_recorded():
    assert len(META["official_commit"]) == 40


@torch.no_grad()
def test_forward_and_loss_with_latent_norm_penalty_match_the_official_code(golden):
    model, ex = golden
    out = model(ex["x"], ex["y"])
    close(model.image(out.z), ex["z"])
    logdets = [v for k, v in sorted(ex.items()) if k.startswith("logdet/")]
    close(out.logdet, sum(ld.flatten(1).sum(1) for ld in logdets), 5e-5)
    close(model.loss(ex["x"], ex["y"])["loss"], ex["loss"][0])


@torch.no_grad()
def test_samples_with_guidance_and_jacobi_match_the_official_code(golden):
    model, ex = golden
    noise, y, y_null = ex["noise"], ex["y"], ex["y_null"]
    close(model.sample(noise, y), ex["sample/plain"], 3e-5)
    close(model.sample(noise, y, y_null, 2.0), ex["sample/guided"], 3e-5)
    for block, iters, th in META["jacobi"]:
        jacobi = JacobiOptions(block, iters, th)
        close(model.sample(noise, y, y_null, 2.0, jacobi=jacobi), ex[f"sample/jacobi_{block}_{iters}_{th}"], 3e-5)


def test_denoising_step_matches_the_official_self_denoise(golden):
    model, ex = golden
    close(model.denoise(ex["sample/guided"], ex["y"]), ex["denoised"], 3e-5)
