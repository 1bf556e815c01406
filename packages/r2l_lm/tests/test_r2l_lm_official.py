import pytest
import torch

from r2l_lm.model import DIRECTION_KEY
from r2l_lm.official import llama3_2b_config, load_official_checkpoint, meta_to_hf_state_dict


def meta_llama_forward(
    sd: dict, ids: torch.Tensor, heads: int, kv_heads: int, theta: float, eps: float
) -> torch.Tensor:
    """An independent Meta/torchtune-style Llama forward: interleaved complex RoPE, GQA, SwiGLU."""

    def norm(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    def rope(x):  # (T, H, d): rotate pairs (2i, 2i+1) by pos * theta^(-2i/d)
        d = x.shape[-1]
        freqs = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
        angle = torch.arange(x.shape[0], dtype=torch.float64)[:, None] * freqs[None]
        xc = torch.view_as_complex(x.double().reshape(*x.shape[:-1], -1, 2).contiguous())
        return torch.view_as_real(xc * torch.polar(torch.ones_like(angle), angle)[:, None]).flatten(-2)

    x = sd["tok_embeddings.weight"][ids].double()
    t = ids.shape[0]
    n_layers = len({k.split(".")[1] for k in sd if k.startswith("layers.")})
    for i in range(n_layers):
        w = {k.split(".", 2)[2]: v.double() for k, v in sd.items() if k.startswith(f"layers.{i}.")}
        h = norm(x, w["attention_norm.weight"])
        d = w["attention.wq.weight"].shape[0] // heads
        q = rope((h @ w["attention.wq.weight"].T).view(t, heads, d))
        k = rope((h @ w["attention.wk.weight"].T).view(t, kv_heads, d)).repeat_interleave(heads // kv_heads, 1)
        v = (h @ w["attention.wv.weight"].T).view(t, kv_heads, d).repeat_interleave(heads // kv_heads, 1)
        scores = torch.einsum("qhd,khd->hqk", q, k) / d**0.5
        scores = scores.masked_fill(torch.ones(t, t).triu(1).bool(), float("-inf"))
        att = torch.einsum("hqk,khd->qhd", scores.softmax(-1), v).reshape(t, heads * d)
        x = x + att @ w["attention.wo.weight"].T
        h = norm(x, w["ffn_norm.weight"])
        gate = torch.nn.functional.silu(h @ w["feed_forward.w1.weight"].T) * (h @ w["feed_forward.w3.weight"].T)
        x = x + gate @ w["feed_forward.w2.weight"].T
    return norm(x, sd["norm.weight"].double()) @ sd["output.weight"].double().T


@pytest.fixture
def tiny_meta_checkpoint(tmp_path):
    cfg = llama3_2b_config(
        vocab_size=50,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        hidden_size=32,
        intermediate_size=48,
        max_position_embeddings=64,
        bos_token_id=1,
    )
    g = torch.Generator().manual_seed(0)
    d, hd = 32, 8
    sd = {
        "tok_embeddings.weight": torch.randn(50, d, generator=g),
        "norm.weight": 1 + 0.1 * torch.randn(d, generator=g),
        "output.weight": torch.randn(50, d, generator=g) / d**0.5,
    }
    shapes = {
        "attention.wq.weight": (4 * hd, d),
        "attention.wk.weight": (2 * hd, d),
        "attention.wv.weight": (2 * hd, d),
        "attention.wo.weight": (d, 4 * hd),
        "attention_norm.weight": (d,),
        "ffn_norm.weight": (d,),
        "feed_forward.w1.weight": (48, d),
        "feed_forward.w2.weight": (d, 48),
        "feed_forward.w3.weight": (48, d),
    }
    for i in range(2):
        for name, shape in shapes.items():
            w = torch.randn(*shape, generator=g)
            sd[f"layers.{i}.{name}"] = 1 + 0.1 * w if len(shape) == 1 else w / shape[1] ** 0.5
    path = tmp_path / "checkpoint.pt"
    torch.save(sd, path)
    return path, sd, cfg


def test_official_checkpoint_logits_match_a_meta_style_reference(tiny_meta_checkpoint):
    path, sd, cfg = tiny_meta_checkpoint
    model = load_official_checkpoint(path, "r2l", config=cfg).eval()
    assert getattr(model.config, DIRECTION_KEY) == "r2l"
    ids = torch.tensor([1, 7, 3, 42, 9, 9, 0, 17, 25, 4])
    theta = cfg.rope_parameters["rope_theta"] if getattr(cfg, "rope_parameters", None) else cfg.rope_theta
    want = meta_llama_forward(sd, ids, 4, 2, theta, cfg.rms_norm_eps)
    with torch.no_grad():
        got = model(input_ids=ids[None]).logits[0].double()
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_official_loader_rejects_foreign_checkpoints(tiny_meta_checkpoint, tmp_path):
    _, sd, cfg = tiny_meta_checkpoint
    with pytest.raises(KeyError, match="not a Meta-layout"):
        meta_to_hf_state_dict({"model.embed_tokens.weight": sd["tok_embeddings.weight"]}, cfg)
    bad = dict(sd)
    del bad["layers.1.feed_forward.w2.weight"]
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(RuntimeError, match="down_proj"):
        load_official_checkpoint(tmp_path / "bad.pt", "r2l", config=cfg)
    with pytest.raises(ValueError, match="direction"):
        load_official_checkpoint(tmp_path / "bad.pt", "up", config=cfg)
