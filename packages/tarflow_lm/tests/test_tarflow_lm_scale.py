"""Multi-process training and signal safety (Lightning; see labcore.lightning_testing)."""

import signal

import pytest
import torch

from labcore.lightning_testing import (
    assert_saved_equals_checkpoint,
    check_ddp_matches_single,
    check_fsdp_matches_single,
    check_interrupt_and_resume,
    needs_fsdp2_on_cpu,
)
from tarflow_lm import PRESETS, TarFlowLMModel
from tarflow_lm.data import encode_chars
from tarflow_lm.training import train

STREAM = encode_chars("the quick brown fox jumps over the lazy dog " * 20)


def run_tiny_tied(out, steps, opts):  # module level: the fsdp run loads it by file and name
    """A Mix-1 layer and a Mix-d layer tied to the codebook (the codebook is the model's, used inside the flow
    layer's forward and by the root's encoder and decoder); the model is saved as the CLI does (every process)."""
    torch.manual_seed(0)
    types = ["mix1", "mixd_tied"]
    model = TarFlowLMModel(
        PRESETS["tiny"](max_seq_len=8, hidden_size=16, num_heads=2, num_mixtures=2, layer_types=types)
    )
    train(model, STREAM, steps=steps, batch_size=4, out_dir=out, **opts)
    model.save_pretrained(out / "model")
    return out / "checkpoints" / "last.ckpt"


def test_ddp_equals_one_process_on_the_same_global_batch(tmp_path):
    def run(out, steps, opts):
        torch.manual_seed(0)
        model = TarFlowLMModel(PRESETS["tiny"](max_seq_len=8, hidden_size=16, num_heads=2, num_mixtures=2))
        train(model, STREAM, steps=steps, batch_size=4, out_dir=out, **opts)
        return out / "checkpoints" / "last.ckpt"

    check_ddp_matches_single(run, tmp_path, steps=3, atol=1e-6)


@needs_fsdp2_on_cpu
def test_fsdp_with_a_tied_codebook_equals_one_process_resumes_both_ways_and_saves_the_full_model(tmp_path):
    check_fsdp_matches_single(run_tiny_tied, tmp_path, steps=3, atol=1e-6)
    # the single run's last step ran under fsdp: its saved model holds the full weights of its last.ckpt
    saved = TarFlowLMModel.from_pretrained(tmp_path / "single" / "model").state_dict()
    assert_saved_equals_checkpoint(saved, tmp_path / "single" / "checkpoints" / "last.ckpt")


@pytest.mark.slow  # two CLI start-ups; the shared mechanism runs in CI via tarflow and energy_diffusion
def test_sigterm_saves_the_step_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["tarflow_lm", "train", "--out", str(out), "--steps", "150", "--batch-size", "2", "--seq-len", "8"]
    args += ["--max-chars", "5000", "--eval-windows", "2", "--num-samples", "2", "--checkpoint-every", "3"]
    step = check_interrupt_and_resume([*args, "--device", "cpu"], out / "checkpoints" / "last.ckpt", sig=signal.SIGTERM)
    assert 3 <= step < 150
    assert (out / "metrics.json").exists()
