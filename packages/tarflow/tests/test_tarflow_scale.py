"""Multi-process training and signal safety (Lightning; see labcore.lightning_testing)."""

import signal

import pytest
from torch.utils.data import TensorDataset

from labcore.lightning_testing import (
    check_ddp_matches_single,
    check_fsdp_matches_single,
    check_interrupt_and_resume,
    needs_fsdp2_on_cpu,
)
from tarflow import TarFlowConfig
from tarflow.data import digits
from tarflow.training import fit

TINY = TarFlowConfig(1, 8, 4, 16, 1, 1, head_dim=8, num_classes=10, noise_type="gaussian", noise_std=0.1)


def run_tiny(out, steps, opts):  # module level: the fsdp run loads it by file and name
    train = TensorDataset(*[t[:64] for t in digits("train").tensors])
    fit(TINY, train, out, steps=steps, batch_size=8, lr=3e-3, drop_label=0.2, progress_bar=False, **opts)
    return out / "checkpoints" / "last.ckpt"


def test_ddp_equals_one_process_on_the_same_global_batch(tmp_path):
    check_ddp_matches_single(run_tiny, tmp_path, steps=3, atol=1e-5)


@needs_fsdp2_on_cpu
def test_fsdp_equals_one_process_on_the_same_global_batch_and_resumes_both_ways(tmp_path):
    check_fsdp_matches_single(run_tiny, tmp_path, steps=3, atol=1e-5)


def test_fsdp_refuses_in_training_samples(tmp_path):
    with pytest.raises(ValueError, match="sample_every .* with strategy fsdp"):
        fit(TINY, None, tmp_path, steps=2, sample_every=1, strategy="fsdp")


def test_sigterm_saves_the_step_exits_nonzero_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["tarflow", "train", "--out", str(out), "--steps", "60", "--batch-size", "8", "--checkpoint-every", "3"]
    step = check_interrupt_and_resume([*args, "--device", "cpu"], out / "checkpoints" / "last.ckpt", sig=signal.SIGTERM)
    assert 3 <= step < 60
    assert (out / "model" / "config.json").exists()
