"""``strategy="fsdp"`` (FSDP2 through Lightning's ModelParallelStrategy) in labcore.lightning.make_trainer."""

import pytest
import torch

from labcore.lightning import StepModule, checked_units, fsdp2, fsdp2_on_cpu, losses, make_trainer, shard
from labcore.lightning_testing import assert_saved_equals_checkpoint, check_fsdp_matches_single, needs_fsdp2_on_cpu


class _Regression(StepModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
        self.blocks = torch.nn.ModuleList([torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)])

    def step_loss(self, step, index, count):
        x = shard(torch.randn(8, 4, generator=torch.Generator().manual_seed(step)), index, count).to(self.device)
        for block in self.blocks:
            x = x + torch.tanh(block(x))
        return ((self.net(x) - x.sum(1, keepdim=True)) ** 2).mean()

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=0.05)


def train_regression(out, steps, opts):  # module level: the fsdp run loads it by file and name
    torch.manual_seed(0)
    trainer = make_trainer(out, max_steps=steps, **opts)
    trainer.fit(_Regression(), ckpt_path=str(out / "last.ckpt") if (out / "last.ckpt").exists() else None)
    return out / "last.ckpt"


def test_units_are_the_blocks_then_the_roots():
    m = _Regression()
    assert m.fsdp_units() == checked_units(m) == [m.blocks[1], m.blocks[0], m.net]
    assert callable(fsdp2()[0])


def test_units_leaving_a_trainable_parameter_out_are_refused():
    m = _Regression()
    m.fsdp_units = lambda: list(m.blocks)
    with pytest.raises(ValueError, match=r"outside every unit.*net\.0\.weight, net\.0\.bias"):
        checked_units(m)
    m.net.requires_grad_(False)  # frozen parts may stay whole
    assert checked_units(m) == list(m.blocks)


def test_units_splitting_a_tied_parameter_are_refused():
    m = _Regression()
    m.blocks[1].weight = m.blocks[0].weight  # tied, like an input embedding and an output layer
    with pytest.raises(ValueError, match=r"splits the tied parameters blocks\.0\.weight, blocks\.1\.weight"):
        checked_units(m)  # the default units put each block in its own unit
    m.fsdp_units = lambda: [m]  # one unit holding both keeps the tie
    assert checked_units(m) == [m]


@needs_fsdp2_on_cpu
def test_fsdp_on_two_cpu_processes_equals_one_process_and_resumes_both_ways(tmp_path):
    out = check_fsdp_matches_single(train_regression, tmp_path, steps=3, atol=1e-6)
    assert out["weights"] <= 1e-6


def test_fsdp_refuses_a_precision_it_cannot_run(tmp_path):
    with pytest.raises(ValueError, match="strategy 'fsdp' supports precision .*got '16-mixed'"):
        make_trainer(tmp_path, max_steps=2, accelerator="cpu", strategy="fsdp", precision="16-mixed")


@pytest.mark.gpu
def test_fsdp_run_equals_a_plain_gpu_run(tmp_path):
    runs = {}
    for strategy in ("auto", "fsdp"):
        torch.manual_seed(0)
        module = _Regression()
        trainer = make_trainer(tmp_path / strategy, max_steps=3, accelerator="cuda", devices=1, strategy=strategy)
        trainer.fit(module)
        if strategy == "fsdp":
            assert isinstance(module.net, fsdp2()[1]) and all(isinstance(b, fsdp2()[1]) for b in module.blocks)
        state = torch.load(tmp_path / strategy / "last.ckpt", map_location="cpu", weights_only=False)
        runs[strategy] = (losses(trainer), state["state_dict"])
    (loss_a, sd_a), (loss_f, sd_f) = runs["auto"], runs["fsdp"]
    torch.testing.assert_close(loss_f, loss_a, rtol=1e-5, atol=1e-6)
    assert set(sd_f) == set(sd_a)  # full (unsharded) state dict in last.ckpt
    for k in sd_a:
        torch.testing.assert_close(sd_f[k].cpu(), sd_a[k].cpu(), rtol=1e-5, atol=1e-6)


def test_saved_weights_must_equal_the_checkpoint_exactly(tmp_path):
    weights = {"model.w": torch.ones(2), "model.b": torch.zeros(1)}
    torch.save({"state_dict": {**weights, "head.w": torch.ones(1)}}, tmp_path / "last.ckpt")
    saved = {"w": torch.ones(2), "b": torch.zeros(1)}
    state = assert_saved_equals_checkpoint(saved, tmp_path / "last.ckpt", only=False)
    assert set(state) == {"model.w", "model.b", "head.w"}
    with pytest.raises(AssertionError, match="holds more than model"):
        assert_saved_equals_checkpoint(saved, tmp_path / "last.ckpt")
    with pytest.raises(AssertionError, match="w: "):
        assert_saved_equals_checkpoint(
            {**saved, "w": torch.tensor([1.0, 1.0 + 1e-7])}, tmp_path / "last.ckpt", only=False
        )
    with pytest.raises(AssertionError, match="keys differ"):
        assert_saved_equals_checkpoint({"w": torch.ones(2)}, tmp_path / "last.ckpt", only=False)


@pytest.mark.parametrize(
    ("version", "runs"), [("2.4.0", False), ("2.8.0+cu128", False), ("2.9.0", True), ("2.14.1+cu130", True)]
)
def test_fsdp_on_cpu_from_torch_2_9(monkeypatch, version, runs):
    monkeypatch.setattr(torch, "__version__", version)
    assert fsdp2_on_cpu() is runs
