"""labcore.lightning's step-indexed batches: processes partition each global batch; resuming continues it."""

from itertools import islice
from types import SimpleNamespace

import pytest

pytest.importorskip("lightning")
from labcore.lightning import StepBatchSampler, make_trainer, micro_seed  # noqa: E402


def _batches(sampler, trainer, n):
    StepBatchSampler._trainer = trainer
    try:
        return list(islice(iter(sampler), n))
    finally:
        StepBatchSampler._trainer = None


def _trainer(step=0, rank=0, world=1, accum=1):
    return SimpleNamespace(global_step=step, global_rank=rank, world_size=world, accumulate_grad_batches=accum)


def test_processes_and_micro_batches_partition_each_global_batch():
    sampler = StepBatchSampler(20, 8, seed=3)
    single = _batches(sampler, _trainer(), 4)  # 4 steps; epoch of 2 steps (20 // 8), then a new permutation
    assert all(len(b) == 8 and len(set(b)) == 8 for b in single)
    assert not set(single[0]) & set(single[1]) and single[2] != single[0]
    accum = _batches(sampler, _trainer(accum=2), 8)
    ranks = [_batches(sampler, _trainer(rank=r, world=2), 4) for r in (0, 1)]
    for s in range(4):
        assert accum[2 * s] + accum[2 * s + 1] == single[s]
        assert ranks[0][s] + ranks[1][s] == single[s]


def test_a_resumed_sampler_continues_mid_epoch():
    sampler = StepBatchSampler(20, 4, seed=0)
    assert _batches(sampler, _trainer(step=3), 5) == _batches(sampler, _trainer(), 8)[3:]


def test_bad_sizes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="batch size"):
        StepBatchSampler(4, 5)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        make_trainer(tmp_path, max_steps=0)
    with pytest.raises(ValueError, match="checkpoint_every"):
        make_trainer(tmp_path, max_steps=2, checkpoint_every=0)
    with pytest.raises(ValueError, match="strategy"):
        make_trainer(tmp_path, max_steps=2, strategy="horovod")
    assert len({micro_seed(0, s, i) for s in range(50) for i in range(8)}) == 400
