"""Checkpoint layouts: the official apple/ml-tarflow state dict, HF-style save/load, bad input."""

import pytest
import torch
from safetensors.torch import save_file

from tarflow import PRESETS, TarFlow, TarFlowConfig, parse_reference_name
from tarflow.config import config_from_reference


def reference_layout(
    in_channels, img_size, patch_size, channels, num_blocks, layers_per_block, nvp=True, num_classes=0, expansion=4
):
    """Key → shape of apple/ml-tarflow ``transformer_flow.Model(...).state_dict()``, listed from its source."""
    t = (img_size // patch_size) ** 2
    d = in_channels * patch_size**2
    c = channels
    keys = {}
    for i in range(num_blocks):
        p = f"blocks.{i}."
        keys[p + "proj_in.weight"] = (c, d)
        keys[p + "proj_in.bias"] = (c,)
        keys[p + "pos_embed"] = (t, c)
        if num_classes:
            keys[p + "class_embed"] = (num_classes, 1, c)
        for j in range(layers_per_block):
            q = f"{p}attn_blocks.{j}."
            keys.update(
                {
                    q + "attention.norm.weight": (c,),
                    q + "attention.norm.bias": (c,),
                    q + "attention.qkv.weight": (3 * c, c),
                    q + "attention.qkv.bias": (3 * c,),
                    q + "attention.proj.weight": (c, c),
                    q + "attention.proj.bias": (c,),
                    q + "mlp.norm.weight": (c,),
                    q + "mlp.norm.bias": (c,),
                    q + "mlp.main.0.weight": (c * expansion, c),
                    q + "mlp.main.0.bias": (c * expansion,),
                    q + "mlp.main.2.weight": (c, c * expansion),
                    q + "mlp.main.2.bias": (c,),
                }
            )
        keys[p + "proj_out.weight"] = (2 * d if nvp else d, c)
        keys[p + "proj_out.bias"] = (2 * d if nvp else d,)
        keys[p + "attn_mask"] = (t, t)
    keys["var"] = (t, d)
    return keys


def fake_reference_state(layout, seed=0):
    g = torch.Generator().manual_seed(seed)
    state = {k: 0.02 * torch.randn(shape, generator=g) for k, shape in layout.items()}
    for k, shape in layout.items():
        if k.endswith("attn_mask"):
            state[k] = torch.tril(torch.ones(shape))
        if k == "var":
            state[k] = torch.ones(shape)
    return state


@pytest.mark.parametrize("nvp,num_classes", [(True, 3), (False, 0)])
def test_reference_layout_keys_and_shapes_match(nvp, num_classes):
    layout = reference_layout(3, 16, 4, 128, 2, 2, nvp=nvp, num_classes=num_classes)
    ours = TarFlow(TarFlowConfig(3, 16, 4, 128, 2, 2, nvp=nvp, num_classes=num_classes)).state_dict()
    assert set(ours) == set(layout)
    assert {k: tuple(v.shape) for k, v in ours.items()} == layout


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_from_reference_checkpoint_loads_with_zero_missing_or_unexpected(tmp_path, suffix):
    layout = reference_layout(3, 16, 4, 128, 2, 2, num_classes=3)
    state = fake_reference_state(layout)
    path = tmp_path / f"afhq_model_4_128_2_2_0.07{suffix}"
    if suffix == ".pth":
        torch.save(state, path)
    else:
        save_file(state, str(path))
    model = TarFlow.from_reference_checkpoint(path)
    c = model.config
    assert (c.img_size, c.patch_size, c.channels, c.num_blocks, c.layers_per_block) == (16, 4, 128, 2, 2)
    assert (c.num_classes, c.noise_std, c.noise_type, c.nvp) == (3, 0.07, "gaussian", True)
    missing, unexpected = model.load_state_dict(state, strict=True)
    assert not missing and not unexpected
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_reference_name_parsing():
    assert parse_reference_name("afhq_model_8_768_8_8_0.07.pth") == dict(
        dataset="afhq",
        patch_size=8,
        channels=768,
        num_blocks=8,
        layers_per_block=8,
        noise_type="gaussian",
        noise_std=0.07,
    )
    assert parse_reference_name("imagenet64_model_2_768_8_8_uniform.pth")["noise_type"] == "uniform"
    assert PRESETS["afhq-256"]().reference_name == "8_768_8_8_0.07"
    with pytest.raises(ValueError, match="reference naming"):
        parse_reference_name("model.pth")


def test_checkpoint_for_another_config_is_rejected(tmp_path):
    state = fake_reference_state(reference_layout(3, 16, 4, 128, 2, 2))
    wrong_blocks = tmp_path / "imagenet64_model_4_128_3_2_0.05.pth"  # name says 3 blocks, weights hold 2
    torch.save(state, wrong_blocks)
    with pytest.raises(Exception, match="missing keys.*blocks.2"):
        TarFlow.from_reference_checkpoint(wrong_blocks)
    wrong_patch = tmp_path / "imagenet64_model_3_128_2_2_0.05.pth"  # 48 inputs is not 3 channels of 3x3
    torch.save(state, wrong_patch)
    with pytest.raises(ValueError, match="patch_size=3"):
        TarFlow.from_reference_checkpoint(wrong_patch)
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    with pytest.raises(ValueError, match="3 classes"):
        config_from_reference("afhq_model_4_128_2_2_0.07.pth", shapes)


def test_save_pretrained_round_trip_is_exact(tmp_path, tiny_model):
    tiny_model.update_prior(torch.randn(4, 16, 2))
    tiny_model.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").exists() and (tmp_path / "m" / "config.json").exists()
    loaded = TarFlow.from_pretrained(tmp_path / "m")
    assert loaded.config == tiny_model.config
    for k, v in tiny_model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    x = torch.randn(2, 2, 4, 4)
    torch.testing.assert_close(loaded.nll(x), tiny_model.nll(x), rtol=0, atol=0)


def test_bad_inputs_name_the_expected_values(tiny_model):
    with pytest.raises(ValueError, match=r"\(B, 2, 4, 4\)"):
        tiny_model(torch.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"\(B, 2, 4, 4\)"):
        tiny_model(torch.randn(1, 2, 6, 6))
    with pytest.raises(ValueError, match="3 classes"):
        tiny_model(torch.randn(2, 2, 4, 4), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="not divisible by patch_size"):
        TarFlowConfig(img_size=10, patch_size=4)
    with pytest.raises(ValueError, match="unconditional"):
        TarFlow(TarFlowConfig(1, 4, 2, 32, 1, 1, head_dim=32))(torch.randn(1, 1, 4, 4), torch.tensor([0]))
    with pytest.raises(ValueError, match="guidance"):
        tiny_model.inverse(torch.randn(1, 16, 2), guidance=-1.0)
    with pytest.raises(KeyError, match="did you mean 'imagenet64-.*presets: afhq-256"):
        PRESETS["imagenet-65"]
    with pytest.raises(ValueError, match="float images"):
        tiny_model(torch.zeros(1, 2, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="NaN"):
        tiny_model.bits_per_dim(torch.full((1, 2, 4, 4), float("nan")))
    with pytest.raises(ValueError, match=r"latents of shape \(B, 16, 2\)"):
        tiny_model.inverse(torch.randn(1, 16, 3))
    with pytest.raises(ValueError, match="integer tensor of shape"):
        tiny_model(torch.randn(2, 2, 4, 4), torch.tensor([0.0, 1.0]))
