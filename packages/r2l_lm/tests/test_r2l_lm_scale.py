"""Multi-process training and signal safety (Lightning; see labcore.lightning_testing)."""

import signal

import pytest
import torch

from labcore.lightning_testing import check_ddp_matches_single, check_interrupt_and_resume
from r2l_lm.arithmetic import equation
from r2l_lm.training import tiny_llama, train_causal_lm

TEXTS = [equation(a, b, 1, 1) for a, b in [(3, 4), (7, 8), (2, 9), (5, 5), (9, 1), (6, 0), (4, 4), (8, 3)]]


def test_ddp_equals_one_process_on_the_same_global_batch(digit_tokenizer, tmp_path):
    def run(out, steps, opts):
        torch.manual_seed(0)
        model = tiny_llama(len(digit_tokenizer), hidden=16, layers=1, heads=2, max_len=16)
        train_causal_lm(model, digit_tokenizer, TEXTS, "r2l", out, max_steps=steps, batch_size=4, lr=1e-2, **opts)
        return out / "checkpoints" / "last.ckpt"

    check_ddp_matches_single(run, tmp_path, steps=3, atol=1e-6)


@pytest.mark.slow  # two CLI start-ups; the shared mechanism runs in CI via tarflow and energy_diffusion
def test_sigterm_saves_the_step_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["r2l_lm", "train", "--direction", "r2l", "--out", str(out), "--arithmetic", "1", "1", "forward"]
    args += ["--num-test", "10", "--hidden", "16", "--layers", "1", "--heads", "2", "--steps", "150"]
    args += ["--batch-size", "8", "--checkpoint-every", "3", "--device", "cpu"]
    step = check_interrupt_and_resume(args, out / "checkpoints" / "last.ckpt", sig=signal.SIGTERM)
    assert 3 <= step < 150
    assert (out / "model" / "config.json").exists()
