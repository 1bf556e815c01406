"""Multi-process training and signal safety (Lightning; see labcore.lightning_testing)."""

import signal

import pytest
import torch

from labcore.lightning import fit, step_dataloader
from labcore.lightning_testing import check_ddp_matches_single, check_interrupt_and_resume
from starflow.config import StarFlowConfig
from starflow.training import StarFlowModule, make_trainer


def test_ddp_equals_one_process_on_the_same_global_batch(tmp_path):
    g = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.rand(32, 1, 4, 4, generator=g) * 2 - 1, torch.arange(32) % 3)
    cfg = StarFlowConfig(
        channel_size=1,
        img_size=4,
        patch_size=2,
        channels=48,
        head_dim=24,
        layers_per_block=(1, 1),
        num_classes=3,
        noise_std=0.1,
    )

    def run(out, steps, opts):
        torch.manual_seed(0)
        module = StarFlowModule(cfg, lr=3e-3, warmup=1, total_steps=steps)
        trainer = make_trainer(out, steps, devices=opts.pop("devices"), **opts)
        fit(trainer, module, step_dataloader(data, 8))
        return out / "checkpoints" / "last.ckpt"

    check_ddp_matches_single(run, tmp_path, steps=3, atol=1e-5)


@pytest.mark.slow  # two CLI start-ups; the shared mechanism runs in CI via tarflow and energy_diffusion
def test_sigterm_saves_the_step_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["starflow", "train", "--out", str(out), "--steps", "60", "--batch-size", "8", "--checkpoint-every", "3"]
    step = check_interrupt_and_resume([*args, "--device", "cpu"], out / "checkpoints" / "last.ckpt", sig=signal.SIGTERM)
    assert 3 <= step < 60
    assert (out / "model" / "config.json").exists()
