"""End-to-end: CLI train/resume/evaluate/sample and the demo on tiny settings."""

import json

import pytest
import torch

from dnfs.__main__ import main
from dnfs.demo import run
from dnfs.exact import exact_log_z, exact_marginals
from dnfs.metrics import effective_sample_size
from dnfs.targets import LatticeIsing, LatticePotts

TINY = [
    "--side",
    "3",
    "--sigma",
    "0.2",
    "--bias",
    "0.1",
    "--arch",
    "mlp",
    "--hidden",
    "16",
    "--steps-per-epoch",
    "3",
    "--num-times",
    "9",
    "--trajectories",
    "16",
    "--eval-samples",
    "64",
    "--checkpoint-every",
    "1",
    "--device",
    "cpu",
]


def test_cli_train_resume_evaluate_sample(tmp_path, capsys):
    out = tmp_path / "run"
    main(["train", *TINY, "--steps", "3", "--out", str(out)])
    main(["train", *TINY, "--steps", "6", "--out", str(out)])  # resumes by default
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 6
    main(["train", *TINY, "--steps", "2", "--no-resume", "--out", str(out)])
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 2
    capsys.readouterr()
    main(["evaluate", "--model", str(out), "--num", "64", "--steps", "8", "--device", "cpu"])
    report = json.loads(capsys.readouterr().out)
    exact = exact_log_z(LatticeIsing(3, 0.2, 0.1, dtype=torch.float64))
    assert 0 < report["ess"] <= 1 and report["exact"]["log_z"] == pytest.approx(exact, abs=1e-9)
    main(
        [
            "sample",
            "--model",
            str(out),
            "--num",
            "8",
            "--steps",
            "8",
            "--out",
            str(tmp_path / "s.pt"),
            "--device",
            "cpu",
        ]
    )
    saved = torch.load(tmp_path / "s.pt")
    assert saved["samples"].shape == (8, 9) and saved["log_weights"].shape == (8,)
    # the reported ESS is that of the saved weights, and the samples are Ising spins {0, 1}
    printed = json.loads(capsys.readouterr().out)
    assert printed["ess"] == pytest.approx(effective_sample_size(saved["log_weights"]), abs=1e-12)
    assert set(saved["samples"].unique().tolist()) <= {0, 1} and torch.isfinite(saved["log_weights"]).all()


def test_cli_errors_on_a_directory_without_a_model(tmp_path):
    with pytest.raises(SystemExit, match="dnfs train"):
        main(["evaluate", "--model", str(tmp_path), "--device", "cpu"])


def test_demo_runs_on_tiny_settings(tmp_path):
    out = run(
        tmp_path,
        side=3,
        epochs=1,
        hidden=16,
        num_times=5,
        trajectories=8,
        steps_per_epoch=2,
        eval_samples=32,
        track_samples=16,
    )
    assert (tmp_path / "ess.png").exists() and (tmp_path / "loss.png").exists()
    assert out["log_z_exact"] == pytest.approx(exact_log_z(LatticeIsing(3, 0.1, 0.2, dtype=torch.float64)), abs=1e-9)
    assert 0 < out["ess"] <= 1
    # the reference magnetisation is the exact mean spin (enumeration of the 512 states)
    p_up = exact_marginals(LatticeIsing(3, 0.1, 0.2, dtype=torch.float64))[:, 1]
    assert out["magnetisation_exact"] == pytest.approx(float((2 * p_up - 1).mean()), abs=1e-9)


def test_cli_potts_reports_the_enumerated_log_z(tmp_path, capsys):
    out = tmp_path / "potts"
    flags = [
        "--target",
        "potts",
        "--states",
        "3",
        "--side",
        "3",
        "--sigma",
        "0.3",
        "--arch",
        "transformer",
        "--hidden",
        "16",
        "--blocks",
        "1",
        "--steps",
        "2",
        "--steps-per-epoch",
        "2",
        "--num-times",
        "5",
        "--trajectories",
        "8",
        "--eval-samples",
        "16",
        "--device",
        "cpu",
    ]
    main(["train", *flags, "--out", str(out)])
    capsys.readouterr()
    main(["evaluate", "--model", str(out), "--num", "32", "--steps", "4", "--device", "cpu"])
    report = json.loads(capsys.readouterr().out)
    assert report["exact_log_z"] == pytest.approx(exact_log_z(LatticePotts(3, 3, 0.3)), abs=1e-4)
