"""CLI: train (Lightning, resumable) → sample grid → evaluate, on digits at a tiny budget."""

import json

from starflow.__main__ import main


def test_cli_train_sample_evaluate(tmp_path, capsys):
    out = tmp_path / "run"
    main(["train", "--preset", "digits", "--data", "digits", "--steps", "2", "--batch-size", "16", "--out", str(out),
          "--save-every", "1"])
    assert (out / "model" / "model.safetensors").exists() and (out / "checkpoints" / "last.ckpt").exists()
    main(["train", "--preset", "digits", "--data", "digits", "--steps", "3", "--batch-size", "16", "--out", str(out)])
    main(["sample", "--model", str(out / "model"), "--class-labels", "1", "7", "--guidance", "1.5", "--num", "2",
          "--out", str(tmp_path / "grid.png"), "--jacobi-block", "4"])
    assert (tmp_path / "grid.png").stat().st_size > 0
    capsys.readouterr()
    main(["evaluate", "--model", str(out / "model"), "--data", "digits", "--batch-size", "900"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["examples"] == 1797 and result["bits_per_dim"] == result["bits_per_dim"]
