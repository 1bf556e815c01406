"""Multi-process training and signal safety (Lightning; see labcore.lightning_testing)."""

import signal

import pytest

from diffucoder.data import sft_tensors
from diffucoder.tokenizer import train_tiny_tokenizer
from diffucoder.train import fit
from labcore.lightning_testing import check_ddp_matches_single, check_interrupt_and_resume


def test_ddp_equals_one_process_on_the_same_global_batch(tmp_path, make_model):
    tok = train_tiny_tokenizer(["def f(x):\n    return x + 1\n" * 20], vocab_size=300)
    ids, prompt_mask = sft_tensors(tok, [("def f(x):\n", "    return x + 1\n"), ("def g():\n", "    pass\n")] * 4, 16)

    def run(out, steps, opts):
        model = make_model(0, vocab_size=len(tok), mask_token_id=tok.mask_token_id, pad_token_id=tok.pad_token_id)
        fit(model, ids, prompt_mask, out, max_steps=steps, batch_size=4, lr=3e-3, **opts)
        return out / "checkpoints" / "last.ckpt"

    check_ddp_matches_single(run, tmp_path, steps=3, atol=1e-5)


@pytest.mark.slow  # two CLI start-ups; the shared mechanism runs in CI via tarflow and energy_diffusion
def test_sigterm_saves_the_step_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["diffucoder", "train", "--out", str(out), "--steps", "60", "--batch-size", "4", "--length", "48"]
    args += ["--max-chars", "20000", "--vocab", "300", "--hidden", "16", "--layers", "1", "--heads", "2"]
    args += ["--kv-heads", "1", "--checkpoint-every", "3", "--device", "cpu"]
    step = check_interrupt_and_resume(args, out / "checkpoints" / "last.ckpt", sig=signal.SIGTERM)
    assert 3 <= step < 60
