"""Numerical agreement with the official apple/ml-tarflow code, when a checkout of it is available.

The reference is not vendored: set ``TARFLOW_REFERENCE`` to a directory holding its
``transformer_flow.py`` to run these tests (skipped otherwise, e.g. in CI).
"""

import importlib.util
import os
from pathlib import Path

import pytest
import torch

from tarflow import TarFlow

REFERENCE = os.environ.get("TARFLOW_REFERENCE")
pytestmark = pytest.mark.skipif(
    not REFERENCE, reason="set TARFLOW_REFERENCE to a checkout of apple/ml-tarflow to compare with the official code"
)


def reference_module():
    spec = importlib.util.spec_from_file_location("ml_tarflow_reference", Path(REFERENCE) / "transformer_flow.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@torch.no_grad()
@pytest.mark.parametrize("nvp,num_classes", [(True, 3), (False, 0)])
def test_official_model_and_ours_agree(tmp_path, seeded, nvp, num_classes):
    ref = reference_module().Model(3, 8, 2, 128, 3, 2, nvp=nvp, num_classes=num_classes)
    for name, p in ref.named_parameters():
        if "proj_out" in name:  # zero-initialised: randomise so the flow is not the identity
            p.normal_(0, 0.02)
    if not nvp:
        ref.var.uniform_(0.5, 1.5)
    ref.eval()
    name = "afhq_model_2_128_3_2_0.07.pth" if num_classes else "imagenet64_model_2_128_3_2_0.05.pth"
    torch.save(ref.state_dict(), tmp_path / name)
    ours = TarFlow.from_reference_checkpoint(tmp_path / name).eval()

    x = torch.randn(4, 3, 8, 8)
    y = torch.tensor([0, 2, 1, 0]) if num_classes else None
    z_ref, _, logdets = ref(x, y)
    out = ours(x, y)
    torch.testing.assert_close(out.z, z_ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.get_loss(out.z, out.logdet), ref.get_loss(z_ref, logdets), rtol=1e-6, atol=1e-6)

    noise = torch.randn(4, 16, 12)
    for kw in (
        dict(guidance=0.0),
        dict(guidance=1.0, attn_temp=0.7, annealed_guidance=True),
        dict(guidance=0.8, guide_what="a"),
    ):
        torch.testing.assert_close(
            ours.inverse(noise.clone(), y, **kw), ref.reverse(noise.clone(), y, **kw), rtol=1e-5, atol=1e-5
        )
