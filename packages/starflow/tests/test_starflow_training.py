"""Training really steps: the loss on a fixed batch goes down; Lightning fits and resumes; dropout rates."""

import random

import torch

from labcore.lightning import AtomicCheckpointIO
from starflow import StarFlow, StarFlowConfig
from starflow.conditioning import drop_captions, drop_labels
from starflow.training import StarFlowModule, make_trainer, train_loop


def class_config(layers_per_block=(1, 1)) -> StarFlowConfig:
    return StarFlowConfig(
        channel_size=1,
        img_size=4,
        patch_size=2,
        channels=48,
        head_dim=24,
        layers_per_block=layers_per_block,
        num_classes=3,
        noise_std=0.1,
    )


def test_train_loop_reduces_loss_on_fixed_batch():
    torch.manual_seed(0)
    model = StarFlow(class_config())
    x = torch.rand(16, 1, 4, 4) * 2 - 1
    labels = torch.arange(16) % 3
    before = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        y = model.config.num_classes and torch.nn.functional.one_hot(labels, 4).float()[:, None]
        nll0 = -model.log_prob(x, y).mean()
    losses = train_loop(model, [(x, labels)], steps=40, lr=3e-3, warmup=5)
    with torch.no_grad():
        nll1 = -model.log_prob(x, y).mean()
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.1
    assert nll1 < nll0 - 1.0
    assert all((a != b.detach()).any() for a, b in zip(before, model.parameters()))


def test_lightning_fit_checkpoints_and_resumes(tmp_path):
    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.rand(32, 1, 4, 4) * 2 - 1, torch.arange(32) % 3)
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    module = StarFlowModule(class_config(), lr=3e-3, warmup=2, total_steps=12)
    w0 = module.model.blocks[0].proj_out.weight.detach().clone()
    trainer = make_trainer(tmp_path, max_steps=6, save_every=3, devices=1, grad_clip=1.0)
    trainer.fit(module, loader)
    assert not torch.equal(w0, module.model.blocks[0].proj_out.weight)
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert last.exists()
    resumed = StarFlowModule(class_config(), lr=3e-3, warmup=2, total_steps=12)
    trainer2 = make_trainer(tmp_path, max_steps=9, save_every=3, devices=1)
    trainer2.fit(resumed, loader, ckpt_path=str(last))
    assert trainer2.global_step == 9
    assert isinstance(trainer2.strategy.checkpoint_io, AtomicCheckpointIO)
    assert (tmp_path / "lightning_logs").exists()  # CSV logs


def test_loss_is_reference_nll_plus_latent_norm_penalty():
    """loss = 0.5·mean z² − log-det/D + 1e-4·Σ mean(h²) over the input and every shallow output (train.py)."""
    torch.manual_seed(0)
    model = StarFlow(class_config(layers_per_block=(1, 1, 1)))
    x, y = torch.randn(4, 1, 4, 4), torch.nn.functional.one_hot(torch.arange(4) % 3, 4).float()[:, None]
    h, logdet, hs = model.tokens(x), 0.0, []
    for i, block in enumerate(model.blocks):
        hs.append(h)
        h, ld = block(h, y if i == len(model.blocks) - 1 else None)
        logdet = logdet + ld
    expected = 0.5 * h.square().mean() - (logdet / 16).mean() + 1e-4 * sum(t.square().mean() for t in hs)
    torch.testing.assert_close(model.loss(x, y)["loss"], expected)


def test_condition_dropout_rates():
    labels = torch.zeros(20000, dtype=torch.long)
    dropped = drop_labels(labels, 10, 0.1, torch.Generator().manual_seed(0))
    assert abs((dropped == 10).float().mean().item() - 0.1) < 0.01
    caps = drop_captions(["a cat"] * 20000, 0.1, random.Random(0))
    assert abs(caps.count("") / 20000 - 0.1) < 0.01
