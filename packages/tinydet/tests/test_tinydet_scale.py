"""Multi-process training and signal safety (Lightning; see labcore.lightning_testing)."""

import signal

import pytest
import torch

from labcore.lightning_testing import check_ddp_matches_single, check_interrupt_and_resume
from tinydet.data import SYNTHETIC_CLASSES, SyntheticTinyObjects
from tinydet.detector import DetectorConfig, RotatedDetector
from tinydet.train import fit


def test_ddp_equals_one_process_on_the_same_global_batch(tmp_path):
    data = SyntheticTinyObjects(4, size=64, max_objects=5)

    def run(out, steps, opts):
        torch.manual_seed(0)
        model = RotatedDetector(DetectorConfig.tiny(SYNTHETIC_CLASSES))
        fit(
            model,
            data,
            out,
            max_steps=steps,
            batch_size=4,
            optimizer="adamw",
            lr=1e-3,
            warmup=1,
            progress=False,
            **opts,
        )
        return out / "last.ckpt"

    check_ddp_matches_single(run, tmp_path, steps=3, atol=1e-5)


@pytest.mark.slow  # two CLI start-ups; the shared mechanism runs in CI via tarflow and energy_diffusion
def test_sigint_saves_the_step_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["tinydet", "train", "--out", str(out), "--num-images", "4", "--size", "64", "--steps", "40"]
    args += ["--batch-size", "2", "--checkpoint-every", "3", "--device", "cpu"]
    step = check_interrupt_and_resume(args, out / "checkpoints" / "last.ckpt", sig=signal.SIGINT)
    assert 3 <= step < 40
