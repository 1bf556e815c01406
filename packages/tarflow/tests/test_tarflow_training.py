"""Training loop, demo, CLI and evaluation plumbing at tiny budgets."""

import json

import numpy as np
import pytest
import torch
from scipy import linalg
from torch.utils.data import TensorDataset

from tarflow import TarFlow, TarFlowConfig
from tarflow.__main__ import main as cli
from tarflow.data import dequantize_uniform, digits, drop_labels
from tarflow.demo import main as demo
from tarflow.evaluation import compute_fid, evaluate_bpd, fid_metric
from tarflow.training import fit

TINY = TarFlowConfig(1, 8, 4, 32, 2, 1, head_dim=16, num_classes=10, noise_type="uniform")


def test_digits_are_8bit_in_minus_one_one():
    x, y = digits("test").tensors
    assert x.shape == (297, 1, 8, 8) and y.max() == 9
    pixels = (x + 1) * 255 / 2
    torch.testing.assert_close(pixels, pixels.round())
    deq = dequantize_uniform(x)
    assert torch.all((deq > -1) & (deq < 1)) and torch.all(((deq + 1) * 128 - pixels).abs() < 1.0 + 1e-4)


def test_label_dropout_rate(seeded):
    y = drop_labels(torch.zeros(20000, dtype=torch.long), 0.1)
    assert abs((y == -1).float().mean().item() - 0.1) < 0.01 and set(y.tolist()) == {0, -1}


def test_evaluate_bpd_is_the_mean_model_bpd(seeded):
    model = TarFlow(TINY).eval()
    data = TensorDataset(*[t[:40] for t in digits("test").tensors])
    x = dequantize_uniform(data.tensors[0], torch.Generator().manual_seed(5))
    expected = model.bits_per_dim(x).mean().item()
    assert evaluate_bpd(model, data, batch_size=40, seed=5) == pytest.approx(expected, rel=1e-6)


def test_training_resumes_from_atomic_checkpoint(tmp_path, seeded):
    train = TensorDataset(*[t[:256] for t in digits("train").tensors])
    module = fit(
        TINY, train, tmp_path, steps=4, batch_size=64, lr=3e-3, checkpoint_every=2, progress_bar=False, sample_every=4
    )
    ckpts = tmp_path / "checkpoints"
    assert (ckpts / "last.ckpt").exists() and not list(ckpts.glob(".*"))  # atomic: no temp files left
    assert (tmp_path / "samples" / "samples_0000004.png").exists()
    before = module.model.state_dict()
    resumed = fit(TINY, train, tmp_path, steps=6, batch_size=64, lr=3e-3, checkpoint_every=2, progress_bar=False)
    assert resumed.trainer.global_step == 6
    changed = any(not torch.equal(v, resumed.model.state_dict()[k]) for k, v in before.items())
    assert changed


def test_volume_preserving_training_learns_prior_variance(tmp_path, seeded):
    train = TensorDataset(*[t[:128] for t in digits("train").tensors])
    module = fit(TINY.replace(nvp=False), train, tmp_path, steps=2, batch_size=64, progress_bar=False)
    assert not torch.allclose(module.model.var, torch.ones_like(module.model.var))


def test_demo_runs_at_a_tiny_budget(tmp_path):
    out = demo(tmp_path, bpd_steps=3, gen_steps=3, guidance=(0.0, 1.0), chosen=1.0, batch_size=32, gen_batch_size=16)
    assert np.isfinite(out["test_bits_per_dim"]) and out["test_bits_per_dim"] > 0
    assert (tmp_path / "tarflow_digits_samples.png").exists()
    assert (tmp_path / "tarflow_label_accuracy_vs_guidance.png").exists()
    assert out["claim"]["baseline"] == out["label_accuracy_w0"] and out["claim"]["ours"] == out["label_accuracy_w1"]
    assert 0 <= out["label_accuracy_w1_annealed"] <= 1
    assert (tmp_path / "tarflow-digits" / "model.safetensors").exists()


def test_demo_refuses_a_chosen_guidance_it_does_not_sample(tmp_path):
    with pytest.raises(ValueError, match="chosen=3"):
        demo(tmp_path, guidance=(0.0, 1.0), chosen=3.0)
    with pytest.raises(ValueError, match="contain 0"):
        demo(tmp_path, guidance=(1.0, 2.0), chosen=2.0)


def test_cli_sample_and_evaluate(tmp_path, capsys, seeded):
    TarFlow(TINY).save_pretrained(tmp_path / "m")
    cli(["sample", "--model", str(tmp_path / "m"), "--num", "4", "--cfg", "1", "--out", str(tmp_path / "s.png")])
    assert (tmp_path / "s.png").exists()
    cli(["evaluate", "--model", str(tmp_path / "m"), "--batch-size", "300"])
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{") :])["bits_per_dim"] > 0
    with pytest.raises(SystemExit):
        cli(["sample", "--num", "2"])


class TinyFeatures(torch.nn.Module):
    """A fixed random projection standing in for Inception (the real path needs downloaded weights)."""

    num_features = 6

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(3 * 8 * 8, 6)

    def forward(self, x):
        return self.proj(x.float().flatten(1))


def _frechet(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fid_through_torchmetrics_matches_closed_form(seeded):
    model = TarFlow(TINY).eval()
    real = TensorDataset(*[t[:64] for t in digits("test").tensors])
    feats = TinyFeatures()
    gen = torch.Generator().manual_seed(1)
    value = compute_fid(model, real, 64, metric=fid_metric(feats), batch_size=64, generator=gen)
    gen = torch.Generator().manual_seed(1)
    y = torch.randint(10, (64,), generator=gen)
    fake = model.sample(64, y, annealed_guidance=True, generator=gen)
    rgb = lambda x: (0.5 * (x.clamp(-1, 1) + 1)).expand(-1, 3, -1, -1)  # noqa: E731
    with torch.no_grad():
        expected = _frechet(feats(rgb(real.tensors[0])).double().numpy(), feats(rgb(fake)).double().numpy())
    assert value == pytest.approx(expected, rel=1e-3, abs=1e-4)


def test_a_few_training_steps_lower_test_bits_per_dim(tmp_path, seeded):
    train = TensorDataset(*[t[:512] for t in digits("train").tensors])
    test = TensorDataset(*[t[:128] for t in digits("test").tensors])
    before = evaluate_bpd(TarFlow(TINY).eval(), test)
    module = fit(TINY, train, tmp_path, steps=30, batch_size=64, lr=3e-3, warmup_steps=5, progress_bar=False)
    after = evaluate_bpd(module.model.eval(), test)
    assert after < before - 0.5, (before, after)


@pytest.mark.slow
def test_full_demo_reaches_its_reported_bits_per_dim_and_label_accuracy(tmp_path):
    out = demo(tmp_path)
    assert out["test_bits_per_dim"] < 6.0
    assert out["claim"]["verdict"] == "supports", out["claim"]  # guided samples: label accuracy >= 0.8


def test_cli_train_seed_reaches_fit(tmp_path, monkeypatch):
    """``train --seed`` is the seed ``fit`` trains with (was hard-coded)."""
    import tarflow.training

    class Stop(Exception):
        pass

    def spy(config, train, out, **kwargs):
        raise Stop(kwargs["seed"])

    monkeypatch.setattr(tarflow.training, "fit", spy)
    for seed in (0, 7):
        with pytest.raises(Stop) as stop:
            cli(["train", "--out", str(tmp_path), "--seed", str(seed), "--steps", "1"])
        assert stop.value.args == (seed,)
