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
from tinydet.data import SYNTHETIC_CLASSES, SyntheticTinyObjects
from tinydet.detector import DetectorConfig, RotatedDetector
from tinydet.point_teacher import PointTeacher, PointTeacherConfig
from tinydet.train import fit


def run_tiny(out, steps, opts):  # module level: the fsdp run loads it by file and name
    """The tiny DCFL detector (BatchNorm backbone), saved as the CLI does."""
    torch.manual_seed(0)
    model = RotatedDetector(DetectorConfig.tiny(SYNTHETIC_CLASSES))
    data = SyntheticTinyObjects(4, size=64, max_objects=5)
    fit(model, data, out, max_steps=steps, batch_size=4, optimizer="adamw", lr=1e-3, warmup=1, progress=False, **opts)
    model.save_pretrained(out / "model")  # as the CLI: under fsdp every rank gathers the shards
    return out / "last.ckpt"


def test_ddp_equals_one_process_on_the_same_global_batch(tmp_path):
    check_ddp_matches_single(run_tiny, tmp_path, steps=3, atol=1e-5)


@needs_fsdp2_on_cpu
def test_fsdp_equals_one_process_on_the_same_global_batch_and_resumes_both_ways(tmp_path):
    check_fsdp_matches_single(run_tiny, tmp_path, steps=3, atol=1e-5)
    # the single run's last step ran under fsdp: its saved detector (BatchNorm statistics included: rank 0's
    # on every process) equals its last.ckpt
    saved = RotatedDetector.from_pretrained(tmp_path / "single" / "model").state_dict()
    assert any(k.endswith("running_mean") for k in saved)
    assert_saved_equals_checkpoint(saved, tmp_path / "single" / "last.ckpt", "detector.")


def test_fsdp_refuses_the_point_teacher(tmp_path):
    with pytest.raises(ValueError, match="strategy fsdp .* PointTeacher"):
        fit(PointTeacher(PointTeacherConfig(list(SYNTHETIC_CLASSES))), None, tmp_path, strategy="fsdp")


@pytest.mark.slow  # two CLI start-ups; the shared mechanism runs in CI via tarflow and energy_diffusion
def test_sigint_saves_the_step_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["tinydet", "train", "--out", str(out), "--num-images", "4", "--size", "64", "--steps", "40"]
    args += ["--batch-size", "2", "--checkpoint-every", "3", "--device", "cpu"]
    step = check_interrupt_and_resume(args, out / "checkpoints" / "last.ckpt", sig=signal.SIGINT)
    assert 3 <= step < 40
