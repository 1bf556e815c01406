"""``strategy="fsdp"`` in labcore.lightning.make_trainer: refused on CPU, equal to one plain process on a GPU."""

import pytest
import torch

from labcore.lightning import StepModule, losses, make_trainer, shard


class _Regression(StepModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))

    def step_loss(self, step, index, count):
        x = shard(torch.randn(8, 4, generator=torch.Generator().manual_seed(step)), index, count).to(self.device)
        return ((self.net(x) - x.sum(1, keepdim=True)) ** 2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_fsdp_on_cpu_is_refused_naming_ddp(tmp_path):
    with pytest.raises(ValueError, match="'fsdp' needs CUDA.*use 'ddp' on CPU"):
        make_trainer(tmp_path, max_steps=2, accelerator="cpu", strategy="fsdp")


@pytest.mark.gpu
def test_fsdp_run_equals_a_plain_gpu_run(tmp_path):
    runs = {}
    for strategy in ("auto", "fsdp"):
        torch.manual_seed(0)
        module = _Regression()
        trainer = make_trainer(tmp_path / strategy, max_steps=3, accelerator="cuda", devices=1, strategy=strategy)
        trainer.fit(module)
        state = torch.load(tmp_path / strategy / "last.ckpt", map_location="cpu", weights_only=False)
        runs[strategy] = (losses(trainer), state["state_dict"])
    (loss_a, sd_a), (loss_f, sd_f) = runs["auto"], runs["fsdp"]
    torch.testing.assert_close(loss_f, loss_a, rtol=1e-5, atol=1e-6)
    assert set(sd_f) == set(sd_a)  # full (unsharded) state dict in last.ckpt
    for k in sd_a:
        torch.testing.assert_close(sd_f[k].cpu(), sd_a[k].cpu(), rtol=1e-5, atol=1e-6)
