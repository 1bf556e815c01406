import pytest
import torch

from r2l_lm import R2LModel, model_direction
from r2l_lm.arithmetic import equation
from r2l_lm.training import tiny_llama, train_causal_lm

TEXTS = [equation(a, b, 1, 1) for a, b in [(3, 4), (7, 8), (2, 9), (5, 5), (9, 1), (6, 0), (4, 4), (8, 3)]]


def fresh(tok, seed=0):
    torch.manual_seed(seed)
    return tiny_llama(len(tok), hidden=16, layers=1, heads=2, max_len=16, bos_token_id=tok.bos_token_id)


def test_resumed_training_equals_uninterrupted_training(digit_tokenizer, tmp_path):
    """3 steps, stop, resume to 6 steps == 6 steps straight (one full batch per step, same LR schedule)."""
    kw = dict(
        batch_size=len(TEXTS), lr=1e-2, seed=0, accelerator="cpu", devices=1, schedule_steps=6, checkpoint_every=3
    )
    straight = fresh(digit_tokenizer)
    losses = train_causal_lm(straight, digit_tokenizer, TEXTS, "r2l", tmp_path / "a", max_steps=6, **kw)
    chunked = fresh(digit_tokenizer)
    first = train_causal_lm(chunked, digit_tokenizer, TEXTS, "r2l", tmp_path / "b", max_steps=3, **kw)
    resumed = fresh(digit_tokenizer, seed=123)  # a new process: weights come from the checkpoint
    second = train_causal_lm(resumed, digit_tokenizer, TEXTS, "r2l", tmp_path / "b", max_steps=6, **kw)
    assert len(first) == 3 and len(second) == 6  # the whole run's curve, kept in the checkpoint
    assert second == pytest.approx(losses, abs=1e-5)
    for (name, p), q in zip(straight.named_parameters(), resumed.parameters()):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=0, msg=name)
    assert losses[-1] < losses[0]


def test_twins_record_their_direction_and_reload(digit_tokenizer, tmp_path):
    for direction in ("l2r", "r2l"):
        model = fresh(digit_tokenizer)
        train_causal_lm(model, digit_tokenizer, TEXTS, direction, tmp_path / direction, max_steps=2, batch_size=4)
        assert model_direction(model) == direction
    loaded = R2LModel.from_pretrained(tmp_path / "r2l" / "model")
    assert model_direction(loaded.model) == "r2l"
    with pytest.raises(ValueError, match="right-to-left"):
        R2LModel.from_pretrained(tmp_path / "l2r" / "model")
    with pytest.raises(ValueError, match="no training texts"):
        train_causal_lm(fresh(digit_tokenizer), digit_tokenizer, [], "r2l", tmp_path / "x", max_steps=1)


def test_demo_and_cli_run_end_to_end(tmp_path, capsys):
    import json

    from r2l_lm.__main__ import main as cli
    from r2l_lm.demo import main as demo
    from r2l_lm.simulation import SimulationConfig

    cfg = SimulationConfig(
        m=1, n=1, num_test=20, hidden=16, layers=1, heads=2, steps=3, batch_size=16, accelerator="cpu", devices=1
    )
    out = demo(tmp_path / "demo", cfg)
    assert (tmp_path / "demo" / "accuracy.png").stat().st_size > 0
    assert set(out["test accuracy (%)"]) == {
        "forward/l2r",
        "forward/r2l-mn",
        "forward/r2l-m",
        "reverse/r2l",
        "reverse/l2r-mn",
        "reverse/l2r-n",
    }
    assert all(0 <= v <= 100 for v in out["test accuracy (%)"].values())
    saved = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert {k: round(100 * v["test acc"], 1) for k, v in saved.items()} == out["test accuracy (%)"]
    assert all(f"| {name} |" in (tmp_path / "demo" / "results.md").read_text() for name in saved)
    model_dir = tmp_path / "demo" / "runs" / "forward-r2l" / "model"
    mcq = tmp_path / "mcq.jsonl"
    mcq.write_text(json.dumps({"question": "3 * 4 =", "choices": ["1 2", "1 3"], "gold": 0}) + "\n")
    cli(["score", "--model", str(model_dir), "--mcq", str(mcq)])  # direction read from the config: r2l
    res = json.loads(capsys.readouterr().out)
    assert res["questions"] == 1 and res["accuracy"] in (0.0, 1.0)
    cli(["sample", "--model", str(model_dir), "--suffix", "= 1 2", "--max-new-tokens", "3"])
    assert capsys.readouterr().out.strip().endswith("= 1 2")
    args = ["--arithmetic", "1", "1", "reverse", "--num-test", "10", "--steps", "2", "--hidden", "16", "--layers", "1"]
    args += ["--heads", "2", "--batch-size", "8", "--device", "cpu", "--devices", "1"]
    cli(["train", "--direction", "r2l", "--out", str(tmp_path / "cli"), *args])
    assert R2LModel.from_pretrained(tmp_path / "cli" / "model").model.config.num_hidden_layers == 1
    cli(["entropy", "--m", "1", "--n", "1"])
    assert "forward/r2l-mn: 1.2735 nats" in capsys.readouterr().out


def test_collator_feeds_hf_trainer(digit_tokenizer, tmp_path):
    """The dataset + collator pair is a drop-in for transformers' Trainer (its loss is the model's own)."""
    from transformers import Trainer, TrainingArguments

    from r2l_lm import R2LDataCollator, ReversedTextDataset

    model = fresh(digit_tokenizer)
    ds = ReversedTextDataset(TEXTS, digit_tokenizer, "r2l")
    collate = R2LDataCollator(digit_tokenizer)
    with torch.no_grad():
        before = float(model(**collate([ds[i] for i in range(len(ds))])).loss)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=len(TEXTS),
        learning_rate=1e-2,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
    )
    trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=collate)
    logged = trainer.train()
    assert trainer.state.global_step == 2
    assert trainer.state.log_history[0]["loss"] == pytest.approx(before, rel=1e-4)
    assert logged.training_loss < before
