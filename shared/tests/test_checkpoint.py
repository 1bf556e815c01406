import json
import random

import numpy as np
import pytest
import torch

from labcore.checkpoint import (
    CheckpointError,
    atomic_write,
    atomic_write_text,
    latest_checkpoint,
    load_checkpoint,
    load_state_dict_checked,
    save_checkpoint,
)


def _model():
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))


def _step(model, opt):
    opt.zero_grad()
    model(torch.randn(5, 3)).pow(2).mean().backward()
    opt.step()


def test_round_trip_and_exact_resume(tmp_path, seeded):
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(3):
        _step(model, opt)
    save_checkpoint(tmp_path, 3, model=model, optimizer=opt, extra={"note": "x"},
                    extra_tensors={"ema.weight": torch.ones(2)})
    # continue the original run two more steps, remembering the result
    _step(model, opt)
    _step(model, opt)
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    after_py, after_np = random.random(), np.random.rand()

    resumed = _model()
    opt2 = torch.optim.AdamW(resumed.parameters(), lr=1e-2)
    state = load_checkpoint(tmp_path, model=resumed, optimizer=opt2)
    assert state["step"] == 3 and state["extra"] == {"note": "x"}
    assert torch.equal(state["extra_tensors"]["ema.weight"], torch.ones(2))
    _step(resumed, opt2)
    _step(resumed, opt2)
    for k, v in resumed.state_dict().items():
        assert torch.equal(v, expected[k]), k  # bitwise: optimizer moments and torch RNG restored
    assert random.random() == after_py and np.random.rand() == after_np


def test_latest_pointer_keep_and_incomplete_dirs_ignored(tmp_path):
    model = _model()
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, model=model, keep=2)
    assert sorted(p.name for p in tmp_path.glob("step-*")) == ["step-00000002", "step-00000003"]
    assert latest_checkpoint(tmp_path).name == "step-00000003"
    # a half-written directory (no state.json) left by a crash is never picked
    (tmp_path / "step-00000009").mkdir()
    (tmp_path / "latest").unlink()
    assert latest_checkpoint(tmp_path).name == "step-00000003"
    assert latest_checkpoint(tmp_path / "nothing") is None


def test_corrupt_file_gives_clear_error(tmp_path):
    path = save_checkpoint(tmp_path, 1, model=_model())
    (path / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path, model=_model())
    (path / "state.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        load_checkpoint(tmp_path / "missing")


def test_mismatch_names_keys_and_shapes():
    model = _model()
    sd = dict(model.state_dict())
    sd["0.weight"] = torch.zeros(7, 3)
    sd.pop("2.bias")
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as err:
        load_state_dict_checked(model, sd)
    msg = str(err.value)
    assert "missing keys (1): 2.bias" in msg
    assert "unexpected keys (1): extra.weight" in msg
    assert "0.weight: expected (4, 3), got (7, 3)" in msg


def test_tied_weights_and_json_state(tmp_path):
    emb = torch.nn.Embedding(5, 3)
    head = torch.nn.Linear(3, 5, bias=False)
    head.weight = emb.weight
    model = torch.nn.ModuleDict({"emb": emb, "head": head})
    path = save_checkpoint(tmp_path, 7, model=model, save_rng=False)
    assert json.loads((path / "state.json").read_text())["step"] == 7
    fresh = torch.nn.ModuleDict({"emb": torch.nn.Embedding(5, 3), "head": torch.nn.Linear(3, 5, bias=False)})
    load_checkpoint(path, model=fresh)
    assert torch.equal(fresh["head"].weight, emb.weight)


def test_interrupted_atomic_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "state.json"
    atomic_write_text(path, "old")

    def interrupted(f):
        f.write(b"half a fi")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, interrupted)
    assert path.read_text() == "old" and list(tmp_path.iterdir()) == [path]


def test_lightning_checkpoint_io_is_atomic(tmp_path, monkeypatch):
    pytest.importorskip("lightning")
    from labcore.lightning import AtomicCheckpointIO

    io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1}, path)

    def interrupted(obj, f):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["step"] == 1 and list(tmp_path.iterdir()) == [path]
