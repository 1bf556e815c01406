"""Multi-process training and signal safety (Lightning; see labcore.lightning_testing)."""

import signal

import pytest
import torch

from labcore.lightning_testing import check_ddp_matches_single, check_interrupt_and_resume
from tarflow_lm import PRESETS, TarFlowLMModel
from tarflow_lm.data import encode_chars
from tarflow_lm.training import train


def test_ddp_equals_one_process_on_the_same_global_batch(tmp_path):
    stream = encode_chars("the quick brown fox jumps over the lazy dog " * 20)

    def run(out, steps, opts):
        torch.manual_seed(0)
        model = TarFlowLMModel(PRESETS["tiny"](max_seq_len=8, hidden_size=16, num_heads=2, num_mixtures=2))
        train(model, stream, steps=steps, batch_size=4, out_dir=out, **opts)
        return out / "checkpoints" / "last.ckpt"

    check_ddp_matches_single(run, tmp_path, steps=3, atol=1e-6)


@pytest.mark.slow  # two CLI start-ups; the shared mechanism runs in CI via tarflow and energy_diffusion
def test_sigterm_saves_the_step_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["tarflow_lm", "train", "--out", str(out), "--steps", "150", "--batch-size", "2", "--seq-len", "8"]
    args += ["--max-chars", "5000", "--eval-windows", "2", "--num-samples", "2", "--checkpoint-every", "3"]
    step = check_interrupt_and_resume([*args, "--device", "cpu"], out / "checkpoints" / "last.ckpt", sig=signal.SIGTERM)
    assert 3 <= step < 150
    assert (out / "metrics.json").exists()
