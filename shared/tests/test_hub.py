"""The save/load contract (labcore.hub) on toy models of both routes, through the conformance suite."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from labcore.checkpoint import CheckpointError
from labcore.conformance import COUNTS, NONFINITE, CallSpec, ModelSpec, conformance_tests, step_guard
from labcore.hub import HubMixin, PreTrainedMixin, looks_local, safetensors_header


@dataclass
class ToyConfig:
    width: int = 4
    sizes: tuple[int, ...] = (2, 3)


class Toy(nn.Module, HubMixin, paper_url="https://arxiv.org/abs/0000.00000"):
    """A toy model with a dataclass config."""

    hub_max_parameters = 10_000

    def __init__(self, config: ToyConfig):
        super().__init__()
        self.config = config
        self.lin = nn.Linear(config.width, sum(config.sizes))
        self.register_buffer("scale", torch.ones(config.width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.isfinite(x).all():
            raise ValueError("x contains NaN or inf")
        return self.lin(x * self.scale)


class KwToy(nn.Module, HubMixin):
    """A toy model with keyword arguments."""

    def __init__(self, dim: int = 3, hidden: int = 5):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.Linear(hidden, dim))


class ToyTfConfig(PretrainedConfig):
    model_type = "labcore_toy"

    def __init__(self, hidden_size: int = 6, **kwargs):
        self.hidden_size = hidden_size
        super().__init__(**kwargs)


class ToyTf(PreTrainedMixin, PreTrainedModel):
    """A toy transformers model."""

    config_class = ToyTfConfig
    hub_max_parameters = 1_000_000

    def __init__(self, config: ToyTfConfig):
        super().__init__(config)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(0.0, 0.02)
            module.bias.data.zero_()


def _sample_steps(steps: int, x: torch.Tensor) -> torch.Tensor:
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or inf")
    return x * steps


globals().update(
    conformance_tests(
        models=[
            ModelSpec(lambda: Toy(ToyConfig()), {"width": 5}, {"width": 10**6}, name="Toy"),
            ModelSpec(lambda: KwToy(), {"hidden": 7}, {"hidden": 10**9}, name="KwToy"),
            ModelSpec(lambda: ToyTf(ToyTfConfig()), {"hidden_size": 7}, {"hidden_size": 10**5}, name="ToyTf"),
        ],
        calls=[
            CallSpec(
                "sample", _sample_steps, lambda: {"steps": 2, "x": torch.ones(2)}, {"steps": COUNTS, "x": NONFINITE}
            )
        ],
    )
)


def test_tuple_fields_come_back_as_tuples(tmp_path):
    Toy(ToyConfig(sizes=(1, 2, 3))).save_pretrained(tmp_path)
    assert Toy.from_pretrained(tmp_path).config.sizes == (1, 2, 3)


def test_legacy_untagged_config_loads(tmp_path):
    """Directories written before the tag existed load, as long as the fields are the model's."""
    model = Toy(ToyConfig())
    model.save_pretrained(tmp_path)
    raw = json.loads((tmp_path / "config.json").read_text())
    del raw["labcore"]
    (tmp_path / "config.json").write_text(json.dumps(raw))
    Toy.from_pretrained(tmp_path)


def test_foreign_tag_names_both_classes(tmp_path):
    KwToy().save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match=r"KwToy.*not .*\.Toy"):
        Toy.from_pretrained(tmp_path)


def test_strict_false_allows_unexpected_keys(tmp_path):
    from safetensors.torch import load_file, save_file

    Toy(ToyConfig()).save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    tensors["extra"] = torch.zeros(1)
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="extra"):
        Toy.from_pretrained(tmp_path)
    Toy.from_pretrained(tmp_path, strict=False)


def test_repo_ids_are_not_local():
    assert not looks_local("org/name") and not looks_local("name")
    assert looks_local("./name") and looks_local("a/b/c") and looks_local("/abs")


def test_header_reader_refuses_a_short_file(tmp_path):
    Toy(ToyConfig()).save_pretrained(tmp_path)
    assert set(safetensors_header(tmp_path / "model.safetensors")) == {"lin.weight", "lin.bias", "scale"}
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[:-1])
    with pytest.raises(CheckpointError, match="truncated"):
        safetensors_header(tmp_path / "model.safetensors")


def test_step_guard_stops_a_runaway_loop():
    lin = nn.Linear(1, 1)
    with pytest.raises(RuntimeError, match="forward calls"), step_guard(max_calls=10):
        while True:
            lin(torch.zeros(1))
