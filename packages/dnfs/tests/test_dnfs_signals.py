"""SIGTERM on a real `dnfs train` run: the epoch finishes, a checkpoint is saved, exit 143; --resume continues."""

import json
import signal
import subprocess
import sys

from labcore.checkpoint import latest_checkpoint
from labcore.lightning_testing import interrupt_cli


def test_sigterm_saves_the_epoch_and_the_run_resumes(tmp_path):
    out, ckpt = tmp_path / "run", tmp_path / "run" / "checkpoints"
    args = ["dnfs", "train", "--side", "3", "--model", "mlp", "--hidden", "8", "--steps-per-epoch", "2"]
    args += ["--num-times", "4", "--trajectories", "8", "--batch-size", "8", "--eval-every", "0"]
    args += ["--checkpoint-every", "1", "--device", "cpu", "--out", str(out)]
    done = interrupt_cli([*args, "--epochs", "5000"], lambda: latest_checkpoint(ckpt) is not None)
    assert done.returncode == 128 + signal.SIGTERM, done.stdout[-2000:]
    epoch = json.loads((latest_checkpoint(ckpt) / "state.json").read_text())["step"]
    assert f"after epoch {epoch}: saved" in done.stdout and 1 <= epoch < 5000
    again = subprocess.run([sys.executable, "-m", *args, "--epochs", str(epoch + 1), "--resume"], capture_output=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((latest_checkpoint(ckpt) / "state.json").read_text())["step"] == epoch + 1
