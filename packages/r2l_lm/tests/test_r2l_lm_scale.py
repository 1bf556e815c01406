"""Multi-process training and signal safety (Lightning; see labcore.lightning_testing)."""

import signal

import pytest
import torch
from transformers import AutoModelForCausalLM

from labcore.lightning_testing import (
    assert_saved_equals_checkpoint,
    check_ddp_matches_single,
    check_fsdp_matches_single,
    check_interrupt_and_resume,
    needs_fsdp2_on_cpu,
)
from r2l_lm.__main__ import main as cli
from r2l_lm.arithmetic import equation, make_digit_tokenizer
from r2l_lm.training import tiny_llama, train_causal_lm

TEXTS = [equation(a, b, 1, 1) for a, b in [(3, 4), (7, 8), (2, 9), (5, 5), (9, 1), (6, 0), (4, 4), (8, 3)]]


def run_tiny(out, steps, opts):  # module level: the fsdp run loads it by file and name
    torch.manual_seed(0)
    tok = make_digit_tokenizer()
    model = tiny_llama(len(tok), hidden=16, layers=1, heads=2, max_len=16)
    train_causal_lm(model, tok, TEXTS, "r2l", out, max_steps=steps, batch_size=4, lr=1e-2, **opts)
    assert model.lm_head.weight is model.model.embed_tokens.weight, "the tied embeddings came apart"
    return out / "checkpoints" / "last.ckpt"


def test_ddp_equals_one_process_on_the_same_global_batch(tmp_path):
    check_ddp_matches_single(run_tiny, tmp_path, steps=3, atol=1e-6)


@needs_fsdp2_on_cpu
def test_fsdp_equals_one_process_on_the_same_global_batch_and_keeps_the_tie(tmp_path):
    check_fsdp_matches_single(run_tiny, tmp_path, steps=3, atol=1e-6)
    # the single run's last step ran under fsdp: last.ckpt and the saved model hold one tied embedding
    saved = AutoModelForCausalLM.from_pretrained(tmp_path / "single" / "model")
    assert saved.lm_head.weight is saved.model.embed_tokens.weight
    assert saved.config.architectures == ["LlamaForCausalLM"]
    weights = assert_saved_equals_checkpoint(saved.state_dict(), tmp_path / "single" / "checkpoints" / "last.ckpt")
    torch.testing.assert_close(
        weights["model.lm_head.weight"], weights["model.model.embed_tokens.weight"], rtol=0, atol=0
    )


def test_simulate_refuses_fsdp_before_training(tmp_path):
    with pytest.raises(ValueError, match="simulate .* --strategy fsdp"):
        cli(["simulate", "--strategy", "fsdp", "--device", "cpu", "--devices", "2", "--out", str(tmp_path)])
    assert not any(tmp_path.iterdir())


@pytest.mark.slow  # two CLI start-ups; the shared mechanism runs in CI via tarflow and energy_diffusion
def test_sigterm_saves_the_step_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["r2l_lm", "train", "--direction", "r2l", "--out", str(out), "--arithmetic", "1", "1", "forward"]
    args += ["--num-test", "10", "--hidden", "16", "--layers", "1", "--heads", "2", "--steps", "150"]
    args += ["--batch-size", "8", "--checkpoint-every", "3", "--device", "cpu"]
    step = check_interrupt_and_resume(args, out / "checkpoints" / "last.ckpt", sig=signal.SIGTERM)
    assert 3 <= step < 150
    assert (out / "model" / "config.json").exists()
