import json
import shutil

import pytest
import torch

from energy_diffusion.cli import load_energy, main
from energy_diffusion.demo import main as demo


def test_train_resume_and_sample(tmp_path, seeded):
    run = tmp_path / "run"
    common = [
        "train",
        "--target",
        "toy-a",
        "--out",
        str(run),
        "--n-data",
        "512",
        "--hidden",
        "16",
        "--depth",
        "2",
        "--batch-size",
        "64",
    ]
    main([*common, "--teacher-steps", "6", "--distill-steps", "4", "--checkpoint-every", "3"])
    first = load_energy(run / "energy")
    main([*common, "--teacher-steps", "8", "--distill-steps", "6"])  # resumes both stages from their checkpoints
    state = torch.load(run / "energy_ckpt" / "last.ckpt", weights_only=False)
    assert state["global_step"] == 6
    assert len(next(iter(state["callbacks"].values()))["losses"]) == 6
    assert any(not torch.equal(p, q) for p, q in zip(first.parameters(), load_energy(run / "energy").parameters()))
    for method in ("smc", "reverse"):
        out = tmp_path / f"{method}.pt"
        main(
            [
                "sample",
                "--model",
                str(run / "energy"),
                str(run / "energy"),
                "--betas",
                "1",
                "0.5",
                "--method",
                method,
                "--num",
                "64",
                "--steps",
                "10",
                "--out",
                str(out),
            ]
        )
        x = torch.load(out)
        assert x.shape == (64, 2) and torch.isfinite(x).all()
        assert out.with_suffix(".png").stat().st_size > 0


def test_cli_rejects_bad_inputs(tmp_path):
    with pytest.raises(SystemExit, match="no saved energy"):
        load_energy(tmp_path)
    bad = tmp_path / "bad.pt"
    torch.save(torch.tensor([[0.0, float("nan")]]), bad)
    with pytest.raises(SystemExit, match="NaN"):
        main(["train", "--target", str(bad), "--out", str(tmp_path / "r")])
    with pytest.raises(SystemExit, match="toy-a"):
        main(["train", "--target", "no-such-target", "--out", str(tmp_path / "r")])


def test_mismatched_checkpoint_is_reported(tmp_path, seeded):
    main(
        [
            "train",
            "--out",
            str(tmp_path),
            "--n-data",
            "256",
            "--hidden",
            "8",
            "--depth",
            "2",
            "--batch-size",
            "32",
            "--teacher-steps",
            "2",
            "--distill-steps",
            "2",
        ]
    )
    other = tmp_path / "other"
    shutil.copytree(tmp_path / "energy", other)
    meta = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**meta, "sigma_max": meta["sigma_max"] / 2}))
    with pytest.raises(SystemExit, match="different .sigma_max, sigma_data"):
        main(["sample", "--model", str(tmp_path / "energy"), str(other), "--num", "4", "--out", str(tmp_path / "x.pt")])
    cfg = tmp_path / "energy" / "config.json"
    cfg.write_text(cfg.read_text().replace('"hidden": 8', '"hidden": 12'))
    with pytest.raises(SystemExit, match="shape"):
        load_energy(tmp_path / "energy")


def test_demo_runs_on_a_tiny_budget(tmp_path, seeded):
    metrics = demo(tmp_path, teacher_steps=10, distill_steps=5, n=200, steps=20)
    claim = metrics.pop("claim")
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert claim["ours"].count(";") == 1 and claim["verdict"] in ("supports", "does not show at this scale")
    for png in ("composition.png", "low_temperature.png", "training_losses.png"):
        assert (tmp_path / png).stat().st_size > 0


def test_steps_evaluate_and_device(tmp_path, seeded, capsys, stop_at_device):
    from energy_diffusion.cli import built_in_target, exact_composition

    tiny = ["--n-data", "256", "--hidden", "8", "--depth", "2", "--batch-size", "32"]
    main(["train", "--target", "toy-a", "--out", str(tmp_path), "--steps", "3", *tiny])
    for stage in ("teacher_ckpt", "energy_ckpt"):  # --steps is each stage's step budget
        assert torch.load(tmp_path / stage / "last.ckpt", weights_only=False)["global_step"] == 3
    energy = str(tmp_path / "energy")
    capsys.readouterr()
    main(["evaluate", "--model", energy, energy, "--num", "64", "--steps", "5"])
    result = json.loads(capsys.readouterr().out)
    assert result["targets"] == ["toy-a", "toy-a"] and result["samples"] == 64
    assert result["mmd2"] > result["noise_floor_mmd2"] and result["sliced_wasserstein"] > 0  # 3 steps: far off
    square, _ = built_in_target("toy-a").power(2)
    assert torch.allclose(exact_composition(["toy-a", "toy-a"], [1.0, 1.0]).means, square.means)
    with pytest.raises(SystemExit, match="integer --betas"):
        main(["evaluate", "--model", energy, "--betas", "0.5"])
    for command in ("sample", "evaluate"):
        with pytest.raises(stop_at_device, match="meta"):
            main([command, "--model", energy, "--device", "meta"])
