"""Coordinate-descent training improves the sampler; checkpoints resume."""

import pytest
import torch

from dnfs.mlp import LEMLPConfig, LocallyEquivariantMLP
from dnfs.train import DNFSTrainer, ReplayBuffer, TrainConfig

TINY = dict(num_times=17, num_trajectories=64, batch_size=64, steps_per_epoch=20, eval_samples=1000, lr=3e-3)


def make_trainer(path, control="stein", seed=0):
    torch.manual_seed(seed)
    model = LocallyEquivariantMLP(LEMLPConfig(9, 2, hidden_dim=32))
    return DNFSTrainer(model, path, TrainConfig(**TINY, control=control), generator=torch.Generator().manual_seed(seed))


def test_training_raises_the_effective_sample_size(ising3_path):
    trainer = make_trainer(ising3_path)
    before = trainer.evaluate()["ess"]
    trainer.fit(12)
    after = trainer.evaluate()["ess"]
    assert before < 0.05 and after > 0.3
    assert len(trainer.history.loss) == 12 and all(map(torch.isfinite, torch.tensor(trainer.history.loss)))


def test_leaps_style_learned_control_trains(ising3_path):
    trainer = make_trainer(ising3_path, control="learned")
    with torch.no_grad():
        untrained = trainer.control(trainer.times)
    trainer.fit(3)
    assert trainer.control is not None and torch.isfinite(torch.tensor(trainer.history.loss)).all()
    # c_φ(t) is fitted to the same target as the Stein control variate (the per-time mean of ξ_t): training
    # brings it far closer to the per-time sample means c_t than it was at initialisation
    with torch.no_grad():
        gap = (trainer.control(trainer.times) - trainer.c_t).abs().mean()
    assert gap < 0.2 * (untrained - trainer.c_t).abs().mean()
    assert trainer.history.loss[-1] < trainer.history.loss[0]


def test_replay_buffer_keeps_the_newest_trajectories():
    buf = ReplayBuffer(capacity=8)
    times = torch.linspace(0, 1, 3)
    for k in range(3):
        buf.push(torch.full((3, 4, 2), k), times)  # 4 trajectories each
    assert len(buf) == 2 * 4 * 3
    x, t, idx = next(buf.batches(24, 1))
    assert set(x[:, 0].tolist()) == {1, 2}
    assert torch.allclose(t, times[idx])


def test_checkpoint_resume(ising3_path, tmp_path):
    trainer = make_trainer(ising3_path)
    trainer.fit(2, checkpoint_dir=tmp_path, checkpoint_every=1)
    fresh = make_trainer(ising3_path, seed=1)
    fresh.load_checkpoint(tmp_path)
    assert fresh.epoch == 2 and torch.allclose(fresh.c_t, trainer.c_t)
    for a, b in zip(trainer.model.parameters(), fresh.model.parameters()):
        assert torch.equal(a, b)
    fresh.fit(1)
    assert fresh.epoch == 3


def test_bad_config():
    with pytest.raises(ValueError, match="control"):
        TrainConfig(control="none")
