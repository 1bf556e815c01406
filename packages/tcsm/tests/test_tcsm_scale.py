"""Multi-process training and signal safety (Lightning; see labcore.lightning_testing)."""

import pytest
import torch

from labcore.lightning_testing import (
    assert_saved_equals_checkpoint,
    check_ddp_matches_single,
    check_fsdp_matches_single,
    check_interrupt_and_resume,
    needs_fsdp2_on_cpu,
)
from tcsm import TCSMConfig, TCSMDenoiser, TCSMObjective
from tcsm.noise import MaskedProcess
from tcsm.train import train


def _batches(step: int) -> torch.Tensor:  # module level: the spawned DDP processes unpickle it
    return torch.randint(0, 5, (8, 8), generator=torch.Generator().manual_seed(step))


def run_tiny(out, steps, opts):  # module level: the fsdp run loads it by file and name
    torch.manual_seed(0)
    cfg = TCSMConfig(
        vocab_size=5, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=8
    )
    model = TCSMDenoiser(cfg)
    train(model, TCSMObjective(MaskedProcess(5)), _batches, steps, out_dir=out, log_every=0, **opts)
    model.save_pretrained(out / "denoiser")  # as the CLI: under fsdp every rank gathers the shards
    return out / "checkpoints" / "last.ckpt"


def test_ddp_equals_one_process_on_the_same_global_batch(tmp_path):
    check_ddp_matches_single(run_tiny, tmp_path, steps=3, atol=1e-6)


@needs_fsdp2_on_cpu
def test_fsdp_equals_one_process_on_the_same_global_batch_and_resumes_both_ways(tmp_path):
    check_fsdp_matches_single(run_tiny, tmp_path, steps=3, atol=1e-6)
    # the single run's last step ran under fsdp: its saved denoiser holds the full weights of its last.ckpt
    saved = TCSMDenoiser.from_pretrained(tmp_path / "single" / "denoiser").state_dict()
    assert_saved_equals_checkpoint(saved, tmp_path / "single" / "checkpoints" / "last.ckpt")


@pytest.mark.slow  # two CLI start-ups; the shared mechanism runs in CI via tarflow and energy_diffusion
def test_sigint_saves_the_step_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["tcsm", "train", "--out", str(out), "--steps", "150", "--batch-size", "4", "--length", "8"]
    args += ["--hidden", "16", "--layers", "1", "--heads", "2", "--max-chars", "5000"]
    args += ["--checkpoint-every", "3", "--device", "cpu"]
    step = check_interrupt_and_resume(args, out / "checkpoints" / "last.ckpt", sig=2)
    assert 3 <= step < 150
    assert (out / "denoiser" / "config.json").exists()
