"""SIGTERM on a real `dnfs train` run: the step is saved (exit 143) and the same command resumes and finishes."""

from labcore.lightning_testing import check_interrupt_and_resume


def test_sigterm_saves_the_step_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["dnfs", "train", "--side", "3", "--arch", "mlp", "--hidden", "8", "--steps-per-epoch", "2"]
    args += ["--num-times", "4", "--trajectories", "8", "--batch-size", "8", "--eval-every", "0"]
    args += ["--steps", "300", "--checkpoint-every", "5", "--device", "cpu", "--out", str(out)]
    step = check_interrupt_and_resume(args, out / "checkpoints" / "last.ckpt")
    assert 5 <= step < 300
    assert (out / "model" / "config.json").exists() and (out / "target.json").exists()
