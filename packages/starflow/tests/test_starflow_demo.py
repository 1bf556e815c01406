"""The quick-start demo runs end to end at a tiny budget and writes its PNGs."""

from starflow.demo import main


def test_demo_runs_tiny_budget(tmp_path):
    result = main(tmp_path, steps=3, batch_size=16, per_class=1)
    for name in ("starflow_loss.png", "starflow_samples_w0.png", "starflow_samples_w2.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert 0.0 <= result["label_accuracy_w2"] <= 1.0
    assert result["train_steps"] == 3
