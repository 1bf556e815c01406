"""Multi-process training and signal safety (Lightning; see labcore.lightning_testing)."""

import signal

import pytest
import torch

from diffucoder import PRESETS, DreamModel
from diffucoder.__main__ import main as cli
from diffucoder.data import sft_tensors
from diffucoder.tokenizer import train_tiny_tokenizer
from diffucoder.train import fit
from labcore.lightning_testing import (
    assert_saved_equals_checkpoint,
    check_ddp_matches_single,
    check_fsdp_matches_single,
    check_interrupt_and_resume,
    needs_fsdp2_on_cpu,
)


def run_tiny(out, steps, opts, tie=False):  # module level: the fsdp run loads it by file and name
    tok = train_tiny_tokenizer(["def f(x):\n    return x + 1\n" * 20], vocab_size=300)
    ids, prompt_mask = sft_tensors(tok, [("def f(x):\n", "    return x + 1\n"), ("def g():\n", "    pass\n")] * 4, 16)
    ids_ = dict(vocab_size=len(tok), mask_token_id=tok.mask_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = DreamModel(PRESETS["tiny"](**ids_, tie_word_embeddings=tie))
    fit(model, ids, prompt_mask, out, max_steps=steps, batch_size=4, lr=3e-3, **opts)
    assert (model.lm_head.weight is model.model.embed_tokens.weight) == tie
    model.save_pretrained(out / "model")  # as the CLI: under fsdp every rank gathers the shards
    return out / "checkpoints" / "last.ckpt"


def run_tiny_tied(out, steps, opts):
    return run_tiny(out, steps, opts, tie=True)


def test_ddp_equals_one_process_on_the_same_global_batch(tmp_path):
    check_ddp_matches_single(run_tiny, tmp_path, steps=3, atol=1e-5)


@needs_fsdp2_on_cpu
def test_fsdp_equals_one_process_on_the_same_global_batch_and_keeps_the_tie(tmp_path):
    check_fsdp_matches_single(run_tiny_tied, tmp_path, steps=3, atol=1e-5)
    # the single run's last step ran under fsdp: last.ckpt and the saved model hold one tied embedding
    saved = DreamModel.from_pretrained(tmp_path / "single" / "model")
    assert saved.lm_head.weight is saved.model.embed_tokens.weight
    weights = assert_saved_equals_checkpoint(saved.state_dict(), tmp_path / "single" / "checkpoints" / "last.ckpt")
    torch.testing.assert_close(
        weights["model.lm_head.weight"], weights["model.model.embed_tokens.weight"], rtol=0, atol=0
    )


def test_grpo_takes_no_trainer_strategy(capsys):
    with pytest.raises(SystemExit):
        cli(["grpo", "--model", "m", "--out", "o", "--strategy", "fsdp"])
    assert "unrecognized arguments: --strategy fsdp" in capsys.readouterr().err


@pytest.mark.slow  # two CLI start-ups; the shared mechanism runs in CI via tarflow and energy_diffusion
def test_sigterm_saves_the_step_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["diffucoder", "train", "--out", str(out), "--steps", "60", "--batch-size", "4", "--length", "48"]
    args += ["--max-chars", "20000", "--vocab", "300", "--hidden", "16", "--layers", "1", "--heads", "2"]
    args += ["--kv-heads", "1", "--checkpoint-every", "3", "--device", "cpu"]
    step = check_interrupt_and_resume(args, out / "checkpoints" / "last.ckpt", sig=signal.SIGTERM)
    assert 3 <= step < 60
