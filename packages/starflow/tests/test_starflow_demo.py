"""The quick-start demo runs end to end at a tiny budget (through the CLI) and writes its PNGs."""

import json

from starflow.__main__ import main as cli


def test_demo_runs_tiny_budget_through_cli(tmp_path, capsys):
    cli(["demo", "--out", str(tmp_path), "--steps", "3", "--per-class", "1"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for name in ("starflow_loss.png", "starflow_samples_w0.png", "starflow_samples_w2.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert 0.0 <= result["label_accuracy_w2"] <= 1.0
    assert result["train_steps"] == 3 and result["claim"]["baseline"] == result["label_accuracy_w0"]


def test_demo_seed_reaches_the_run(tmp_path):
    from starflow.demo import main

    runs = [main(tmp_path / str(seed), steps=2, per_class=1, seed=seed) for seed in (0, 0, 1)]
    assert runs[0]["test_nll_nats_per_dim"] == runs[1]["test_nll_nats_per_dim"]
    assert runs[0]["test_nll_nats_per_dim"] != runs[2]["test_nll_nats_per_dim"]
