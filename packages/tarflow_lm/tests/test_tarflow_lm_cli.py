"""The demo and CLI run end to end at a tiny budget, and a training run resumes from its checkpoint."""

import json

import pytest
import torch

from tarflow_lm import PRESETS, TarFlowLMModel
from tarflow_lm.__main__ import main as cli
from tarflow_lm.data import decode_chars, encode_chars, random_windows
from tarflow_lm.demo import main as demo
from tarflow_lm.training import train


def test_demo_runs_and_writes_pngs(tmp_path):
    out = demo(tmp_path, steps=3, batch_size=4, max_chars=20_000)
    assert (tmp_path / "multipass_edits.png").exists() and (tmp_path / "train_bpc.png").exists()
    assert out["flow valid IW-8 bits/char"] > 0 and len(out["flow sample"]) == 32 and len(out["AR sample"]) == 32
    assert abs(out["claim"]["baseline"] - out["AR valid bits/char (exact)"]) < 1e-3
    assert out["multi-pass: share of final text per pass"][-1] == 1.0


def test_cli_train_evaluate_sample(tmp_path, capsys):
    args = [
        "train",
        "--out",
        str(tmp_path),
        "--steps",
        "4",
        "--batch-size",
        "4",
        "--seq-len",
        "8",
        "--checkpoint-every",
        "2",
        "--max-chars",
        "20000",
        "--eval-windows",
        "4",
        "--num-samples",
        "2",
        "--progressive",
    ]
    cli(args)
    trained = json.loads((tmp_path / "metrics.json").read_text())
    assert trained["elbo_bpc"] > 0
    capsys.readouterr()
    cli(
        ["evaluate", "--model", str(tmp_path / "model"), "--max-chars", "20000", "--eval-windows", "4"]
        + ["--num-samples", "2"]
    )
    reloaded = json.loads(capsys.readouterr().out)  # the saved model, same windows and seed: same bounds
    assert reloaded == pytest.approx({k: v for k, v in trained.items() if k != "final_train_bpc"}, rel=1e-6)
    cli(["sample", "--model", str(tmp_path / "model"), "--num", "1", "--passes"])
    assert "pass 2:" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no model"):
        cli(["sample", "--model", str(tmp_path / "nowhere")])


def test_training_resumes_exactly(tmp_path):
    stream = encode_chars("the quick brown fox jumps over the lazy dog " * 20)
    make = lambda: TarFlowLMModel(PRESETS["tiny"](max_seq_len=8, hidden_size=16, num_heads=2, num_mixtures=2))  # noqa: E731
    torch.manual_seed(0)
    full = train(make(), stream, steps=4, batch_size=2, show_progress=False)
    torch.manual_seed(0)
    first = make()
    train(first, stream, steps=2, batch_size=2, out_dir=tmp_path, checkpoint_every=2, show_progress=False)
    torch.manual_seed(1)  # a different process state: resuming must restore everything
    resumed = train(make(), stream, steps=4, batch_size=2, out_dir=tmp_path, checkpoint_every=2, show_progress=False)
    assert resumed == pytest.approx(full, rel=1e-5)


def test_char_codec_roundtrip_and_errors():
    text = "hello world"
    assert decode_chars(encode_chars(text)) == text
    with pytest.raises(ValueError, match="outside text8's alphabet"):
        encode_chars("Hello!")
    with pytest.raises(ValueError, match="too short"):
        random_windows(encode_chars("abc"), 2, 8)


def test_progressive_training_trains_then_freezes_each_layer(tmp_path):
    """Train, freeze, add: over 2 stages of 2 steps, layer 1 is untouched in stage 1 and layer 0 and the
    codebook are untouched in stage 2 (compared through the step-2 and step-4 checkpoints)."""
    torch.manual_seed(0)
    config = PRESETS["tiny"](
        max_seq_len=8, layer_types=["affine", "affine"], num_mixtures=0, hidden_size=16, num_heads=2
    )
    model = TarFlowLMModel(config)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    stream = encode_chars("the quick brown fox jumps over the lazy dog " * 20)
    for stop in (2, None):  # stop after step 2, keep its weights, resume
        train(model, stream, steps=4, batch_size=4, lr=1e-2, progressive=True, out_dir=tmp_path, stop_after=stop)
        if stop:
            at2 = {k: v.clone() for k, v in model.state_dict().items()}
    at4 = model.state_dict()

    def same(state_a, state_b, prefix):
        return all(torch.equal(state_a[k], state_b[k]) for k in state_a if k.startswith(prefix))

    assert same(init, at2, "flows.1.") and not same(init, at2, "flows.0.")  # stage 1 trains layer 0 only
    assert not same(init, at2, "codebook.")
    assert same(at2, at4, "flows.0.") and same(at2, at4, "codebook.")  # stage 2 freezes them ...
    assert not same(at2, at4, "flows.1.")  # ... and trains the newly added layer


def test_cli_device_reaches_the_model(tmp_path, stop_at_device):
    config = PRESETS["tiny"](max_seq_len=8, hidden_size=16, num_heads=2, num_mixtures=2)
    TarFlowLMModel(config).save_pretrained(tmp_path)
    for command in (["sample"], ["evaluate", "--max-chars", "20000"]):
        with pytest.raises(stop_at_device, match="meta"):
            cli([*command, "--model", str(tmp_path), "--device", "meta"])


def test_cli_demo_runs_the_labcore_demo(tmp_path, monkeypatch, capsys):
    import tarflow_lm.demo

    monkeypatch.setattr(tarflow_lm.demo, "main", lambda out, steps: {"out": str(out), "steps": steps})
    cli(["demo", "--out", str(tmp_path), "--steps", "3"])
    assert json.loads(capsys.readouterr().out) == {"out": str(tmp_path), "steps": 3}
