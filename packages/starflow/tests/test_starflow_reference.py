"""Numerical agreement with the official apple/ml-starflow code, when a checkout of it is available.

The reference is not vendored: set ``STARFLOW_REFERENCE`` to a checkout of apple/ml-starflow
(``transformer_flow.py`` and ``misc/``; needs ``einops``) to run these tests (skipped otherwise).
"""

import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from starflow import JacobiOptions, StarFlow, StarFlowConfig

REFERENCE = os.environ.get("STARFLOW_REFERENCE")
pytestmark = pytest.mark.skipif(
    not REFERENCE, reason="set STARFLOW_REFERENCE to a checkout of apple/ml-starflow to compare with the official code"
)


@pytest.fixture
def reference(tmp_path, monkeypatch):
    pytest.importorskip("einops", reason="the reference code needs einops")
    monkeypatch.syspath_prepend(REFERENCE)  # for its `misc` package
    monkeypatch.delenv("MASTER_PORT", raising=False)
    spec = importlib.util.spec_from_file_location("ml_starflow_reference", Path(REFERENCE) / "transformer_flow.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not dist.is_initialized():  # its Jacobi sampler all-reduces a convergence flag
        dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    yield module
    dist.destroy_process_group()
    for name in ("misc", "misc.pe"):  # the reference's helper package, imported by its short name
        sys.modules.pop(name, None)


@torch.no_grad()
@pytest.mark.parametrize("patch_size,layers", [(1, [1, 1, 2]), (2, [1, 2])])
def test_official_model_and_ours_agree(reference, tmp_path, patch_size, layers):
    torch.manual_seed(0)
    size = 4 * patch_size
    ref = reference.Model(
        in_channels=4,
        img_size=size,
        patch_size=patch_size,
        channels=64,
        num_blocks=len(layers),
        layers_per_block=layers,
        head_dim=32,
        rope=True,
        sos=True,
        txt_size=3,
        txt_dim=8,
        cond_top_only=True,
        use_softplus=True,
        use_final_norm=True,
        soft_clip=4,
        seq_order="L2R",
    )
    for p in ref.parameters():
        p.add_(0.1 * torch.randn_like(p))  # zero-initialised heads and norms would make the check trivial
    ref.eval()
    torch.save(ref.state_dict(), tmp_path / "release.pth")
    config = StarFlowConfig(
        channel_size=4,
        img_size=size,
        patch_size=patch_size,
        channels=64,
        head_dim=32,
        layers_per_block=layers,
        txt_size=3,
        txt_dim=8,
    )
    ours = StarFlow.from_official_checkpoint(str(tmp_path / "release.pth"), config).eval()

    x, y, y_null = torch.randn(2, 4, size, size), torch.randn(2, 3, 8), torch.randn(1, 3, 8)
    x_ref, _, _, logdets = ref(x, y)
    out = ours(x, y)
    torch.testing.assert_close(ours.image(out.z), x_ref, rtol=1e-5, atol=2e-5)
    torch.testing.assert_close(out.logdet, sum(ld.flatten(1).sum(1) for ld in logdets), rtol=1e-5, atol=5e-5)

    noise = torch.randn(2, 4, size, size)
    both = torch.cat([y, y_null.expand_as(y)])  # the reference takes conditional and null rows stacked
    torch.testing.assert_close(ours.sample(noise, y), ref.reverse(noise.clone(), y), rtol=1e-5, atol=2e-5)
    torch.testing.assert_close(
        ours.sample(noise, y, y_null, 2.0), ref.reverse(noise.clone(), both, guidance=2.0), rtol=1e-5, atol=3e-5
    )
    for block, iters, th in [(4, 4, 0.0), (8, 3, 5e-3)]:
        expected = ref.reverse(
            noise.clone(), both, guidance=2.0, jacobi=True, jacobi_block_size=block, jacobi_max_iter=iters, jacobi_th=th
        )
        torch.testing.assert_close(
            ours.sample(noise, y, y_null, 2.0, jacobi=JacobiOptions(block, iters, th)), expected, rtol=1e-5, atol=3e-5
        )
