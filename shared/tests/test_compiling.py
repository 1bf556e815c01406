"""labcore.compiling.maybe_compile: refusals, and a compiled Lightning trainer run equals the eager one."""

import pytest
import torch

from labcore import compiling
from labcore.compiling import maybe_compile
from labcore.lightning import StepModule, losses, make_trainer, shard


def test_refusals_name_the_option_and_what_to_do(monkeypatch):
    net = torch.nn.Linear(2, 2)
    assert maybe_compile(net, False) is net and net._compiled_call_impl is None
    with pytest.raises(TypeError, match="compile must be True or False"):
        maybe_compile(net, "yes")
    with pytest.raises(ValueError, match="does not apply here: double backward.*without --compile"):
        maybe_compile(net, True, unsupported="double backward")
    with pytest.raises(TypeError, match="modules must be a non-empty iterable"):
        maybe_compile(net, True, modules=[])
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(compiling.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="needs a C\\+\\+ compiler.*install g\\+\\+"):
        maybe_compile(net, True)
    assert net._compiled_call_impl is None
    maybe_compile(net, True, backend="eager")  # no C++ needed
    assert net._compiled_call_impl is not None


class _Regression(StepModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))

    def step_loss(self, step, index, count):
        x = torch.randn(8, 4, generator=torch.Generator().manual_seed(step))
        x = shard(x, index, count)
        return ((self.net(x) - x.sum(1, keepdim=True)) ** 2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_compiled_trainer_run_equals_eager(compile_backend):
    runs = []
    for enabled in (False, True):
        torch.manual_seed(0)
        module = _Regression()
        maybe_compile(module.net, enabled, backend=compile_backend)
        torch._dynamo.utils.counters.clear()
        trainer = make_trainer(None, max_steps=3, accelerator="cpu", devices=1)
        trainer.fit(module)
        runs.append((losses(trainer), torch.cat([p.detach().flatten() for p in module.parameters()])))
    (loss_e, w_e), (loss_c, w_c) = runs
    # a graph was captured: nn.Sequential's forward is torch.nn code, which torch 2.4-2.6 ran eagerly
    assert runs[1][0] != [] and torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0
    torch.testing.assert_close(loss_c, loss_e, rtol=1e-5, atol=1e-6)  # float32 rounding of fused kernels
    torch.testing.assert_close(w_c, w_e, rtol=1e-5, atol=1e-6)
