"""Coordinate-descent training improves the sampler; the replay buffer; checkpoints resume."""

import pytest
import torch

from dnfs.mlp import LEMLPConfig, LocallyEquivariantMLP
from dnfs.train import DNFSTrainer, ReplayBuffer, TrainConfig

TINY = dict(num_times=17, num_trajectories=64, batch_size=64, steps_per_epoch=20, eval_samples=1000, lr=3e-3)
CPU = {"accelerator": "cpu"}


def make_trainer(path, control="stein", seed=0):
    torch.manual_seed(seed)
    model = LocallyEquivariantMLP(LEMLPConfig(9, 2, hidden_dim=32))
    return DNFSTrainer(model, path, TrainConfig(**TINY, control=control), seed=seed)


def test_training_raises_the_effective_sample_size(ising3_path):
    trainer = make_trainer(ising3_path)
    before = trainer.evaluate()["ess"]
    epochs = []
    history = trainer.fit(240, eval_every=6, callback=lambda epoch, info: epochs.append((epoch, info)), **CPU)
    after = trainer.evaluate()["ess"]
    assert before < 0.05 and after > 0.3
    assert len(history.loss) == 240 and torch.isfinite(torch.tensor(history.loss)).all()
    # one callback per epoch with the mean of its 20 step losses; ESS probes at epochs 6 and 12
    assert [e for e, _ in epochs] == list(range(1, 13))
    assert epochs[0][1]["loss"] == pytest.approx(sum(history.loss[:20]) / 20)
    assert [e for e, _ in history.ess[:2]] == [6, 12] and "ess" in epochs[5][1] and "ess" not in epochs[4][1]


def test_leaps_style_learned_control_trains(ising3_path):
    trainer = make_trainer(ising3_path, control="learned")
    with torch.no_grad():
        untrained = trainer.control(trainer.times)
    history = trainer.fit(60, **CPU)
    assert trainer.control is not None and torch.isfinite(torch.tensor(history.loss)).all()
    # c_φ(t) is fitted to the same target as the Stein control variate (the per-time mean of ξ_t): training
    # brings it far closer to the per-time sample means c_t than it was at initialisation
    with torch.no_grad():
        gap = (trainer.control(trainer.times) - trainer.c_t).abs().mean()
    assert gap < 0.2 * (untrained - trainer.c_t).abs().mean()
    assert sum(history.loss[-20:]) < sum(history.loss[:20])


def test_replay_buffer_keeps_the_newest_trajectories_and_shuffles_by_pass():
    buf = ReplayBuffer(capacity=8)
    times = torch.linspace(0, 1, 3)
    for k in range(3):
        buf.push(torch.full((3, 4, 2), k), times)  # 4 trajectories each
    assert len(buf) == 2 * 4 * 3
    x, t, idx = buf.batch(0, 24, seed=0)
    assert set(x[:, 0].tolist()) == {1, 2} and torch.allclose(t, times[idx])
    # consecutive mini-batches of one pass are disjoint and cover the buffer; a pass is a function of the seed
    buf.push(torch.arange(24).view(3, 8, 1), times)
    rows = torch.cat([buf.batch(p, 6, seed=1)[0][:, 0] for p in range(4)])
    assert sorted(rows.tolist()) == list(range(24))
    assert torch.equal(buf.batch(2, 6, seed=1)[0], buf.batch(2, 6, seed=1)[0])
    assert not torch.equal(buf.batch(4, 6, seed=1)[0], buf.batch(0, 6, seed=1)[0])  # the next pass reshuffles


def test_a_run_resumed_from_its_checkpoint_equals_an_uninterrupted_one(ising3_path, tmp_path):
    """Stopped mid-epoch (step 30 of 20-step epochs): the checkpoint carries c_t and the replay buffer."""
    straight = make_trainer(ising3_path)
    straight.fit(40, **CPU)
    first = make_trainer(ising3_path)
    first.fit(40, out_dir=tmp_path, checkpoint_every=10, stop_after=30, **CPU)
    resumed = make_trainer(ising3_path, seed=0)
    history = resumed.fit(40, out_dir=tmp_path, **CPU)
    assert len(history.loss) == 40 and resumed.global_step == 40
    assert torch.equal(resumed.c_t, straight.c_t)
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_bad_config_and_bad_splits(ising3_path):
    with pytest.raises(ValueError, match="control"):
        TrainConfig(control="none")
    with pytest.raises(ValueError, match="eval_every"):
        make_trainer(ising3_path).fit(1, eval_every=-1, **CPU)
    with pytest.raises(ValueError, match="batch_size=64 must be divisible by processes x accumulation = 3"):
        make_trainer(ising3_path).fit(1, accumulate_grad_batches=3, **CPU)
