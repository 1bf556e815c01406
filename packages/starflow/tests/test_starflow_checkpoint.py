"""Checkpoint layouts: the reference release's key/shape layout, save/from_pretrained, patch order."""

import pytest
import torch

from labcore.checkpoint import CheckpointError
from labcore.flows import patchify
from starflow import PRESETS, StarFlow, StarFlowConfig
from starflow.official import _patch_order, load_official_state_dict, official_config


def reference_layout(c: StarFlowConfig) -> dict[str, tuple[int, ...]]:
    """Keys and shapes of ``transformer_flow.Model`` (apple/ml-starflow) written out by hand from its source."""
    d, ch, t = c.token_dim, c.channels, c.seq_len
    shapes = {
        "var": (t, d),
        "feat_rope.freqs_cos": (c.txt_size + t, c.head_dim),
        "feat_rope.freqs_sin": (c.txt_size + t, c.head_dim),
    }
    n = len(c.layers_per_block)
    for i, layers in enumerate(c.layers_per_block):
        b = f"blocks.{i}."
        shapes |= {
            b + "proj_in.weight": (ch, d),
            b + "proj_in.bias": (ch,),
            b + "proj_out.weight": (2 * d, ch),
            b + "proj_out.bias": (2 * d,),
            b + "sos_embed": (1, 1, d),
            b + "final_norm.weight": (ch,),
            b + "attn_mask": (t + c.txt_size, t + c.txt_size),
        }
        if i == n - 1 and c.txt_dim:
            shapes |= {b + "proj_txt.weight": (ch, c.txt_dim), b + "proj_txt.bias": (ch,)}
        for j in range(layers):
            a = f"{b}attn_blocks.{j}."
            shapes |= {
                a + "attention.norm.weight": (ch,),
                a + "attention.norm.bias": (ch,),
                a + "attention.qkv.weight": (3 * ch, ch),
                a + "attention.qkv.bias": (3 * ch,),
                a + "attention.proj.weight": (ch, ch),
                a + "attention.proj.bias": (ch,),
                a + "mlp.norm.weight": (ch,),
                a + "mlp.norm.bias": (ch,),
                a + "mlp.main.0.weight": (4 * ch, ch),
                a + "mlp.main.0.bias": (4 * ch,),
                a + "mlp.main.2.weight": (ch, 4 * ch),
                a + "mlp.main.2.bias": (ch,),
            }
    return shapes


def tiny_3b_like() -> StarFlowConfig:
    """The 3B T2I config scaled down: same structure (6 blocks, 2(5)-d, text prefix, patch 1, 4 channels)."""
    return StarFlowConfig(
        channel_size=4,
        img_size=4,
        patch_size=1,
        channels=64,
        head_dim=32,
        layers_per_block=[2, 2, 2, 2, 2, 3],
        txt_size=5,
        txt_dim=16,
    )


def test_official_layout_keys_and_shapes_load(tmp_path):
    cfg = tiny_3b_like()
    layout = reference_layout(cfg)
    g = torch.Generator().manual_seed(0)
    state = {k: torch.randn(s, generator=g) for k, s in layout.items()}
    torch.save(state, tmp_path / "starflow_tiny.pth")
    model = StarFlow.from_official_checkpoint(str(tmp_path / "starflow_tiny.pth"), cfg)
    ours = model.state_dict()
    assert set(ours) == {k for k in layout if "attn_mask" not in k and k not in ("var",) and "feat_rope" not in k}
    for k, v in ours.items():
        torch.testing.assert_close(v, state[k])
    assert model.blocks[-1].txt_dim and not any(b.txt_dim for b in model.blocks[:-1])


def test_official_3b_preset_layout_matches_reference_shapes():
    cfg = PRESETS["3B-t2i-256"]()
    layout = reference_layout(cfg)
    with torch.device("meta"):
        model = StarFlow(cfg)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == {k: s for k, s in layout.items() if k in ours}
    assert len(layout) - len(ours) == len(cfg.layers_per_block) + 3  # only the deprecated buffers differ


def test_released_checkpoint_name_selects_its_preset(tmp_path):
    assert official_config("ckpts/starflow_3B_t2i_256x256.pth").to_dict() == PRESETS["3B-t2i-256"]().to_dict()
    torch.save({}, tmp_path / "my_model.pth")
    with pytest.raises(ValueError, match="pass config="):
        StarFlow.from_official_checkpoint(str(tmp_path / "my_model.pth"))


def test_official_loader_rejects_mismatches():
    cfg = tiny_3b_like()
    state = {k: torch.zeros(s) for k, s in reference_layout(cfg).items()}
    state["blocks.0.proj_in.weight"] = torch.zeros(3, 3)
    with pytest.raises(CheckpointError, match="proj_in"):
        load_official_state_dict(StarFlow(cfg), state)


def test_patch_feature_order_matches_reference_rearrange():
    cfg = StarFlowConfig(channel_size=3, img_size=4, patch_size=2, channels=32, head_dim=16, layers_per_block=[1])
    x = torch.randn(2, 3, 4, 4)
    ours = patchify(x, 2)
    # reference: '... c (h p1) (w p2) -> ... h w (p1 p2 c)'
    ref = x.reshape(2, 3, 2, 2, 2, 2).permute(0, 2, 4, 3, 5, 1).reshape(2, 4, 12)
    torch.testing.assert_close(ref[..., _patch_order(cfg)], ours)


def test_save_pretrained_roundtrip(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").exists()
    loaded = StarFlow.from_pretrained(tmp_path / "m").eval()
    x, y = torch.randn(2, 4, 4, 4), torch.randn(2, 3, 8)
    torch.testing.assert_close(loaded.log_prob(x, y), tiny_model.log_prob(x, y))
    assert loaded.config.layers_per_block == tiny_model.config.layers_per_block
