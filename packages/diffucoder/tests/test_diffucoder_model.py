import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel

from diffucoder import DreamConfig, DreamModel, shift_logits
from diffucoder.tokenizer import (
    DLM_PAD,
    IM_END,
    IM_START,
    MASK,
    dream_config_kwargs,
    load_tokenizer,
    mask_token_id,
    train_tiny_tokenizer,
)


def official_keys(layers: int) -> set[str]:
    """Parameter names of an official Dream / DiffuCoder checkpoint (Qwen2 layout, untied lm_head)."""
    keys = {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"}
    for i in range(layers):
        p = f"model.layers.{i}."
        keys |= {p + f"self_attn.{n}_proj.{w}" for n in "qkv" for w in ("weight", "bias")}
        keys |= {p + "self_attn.o_proj.weight", p + "input_layernorm.weight", p + "post_attention_layernorm.weight"}
        keys |= {p + f"mlp.{n}_proj.weight" for n in ("gate", "up", "down")}
    return keys


def test_checkpoint_round_trip_has_official_layout(tmp_path, model):
    model.save_pretrained(tmp_path)
    saved = load_file(next(tmp_path.glob("*.safetensors")))
    assert set(saved) == official_keys(model.config.num_hidden_layers)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model_type"] == "Dream" and cfg["tie_word_embeddings"] is False and cfg["mask_token_id"] == 15
    loaded, info = DreamModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    auto = AutoModel.from_pretrained(tmp_path)
    assert isinstance(auto, DreamModel) and isinstance(AutoConfig.from_pretrained(tmp_path), DreamConfig)
    x = torch.randint(0, 15, (2, 7))
    torch.testing.assert_close(auto(x).logits, model(x).logits)
    assert loaded.lm_head.weight.data_ptr() != loaded.model.embed_tokens.weight.data_ptr()


def test_official_config_json_loads(tmp_path, model):
    """A config.json as shipped with the official checkpoints (auto_map, architectures, rope_scaling null)."""
    model.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg.update(
        {
            "architectures": ["DreamModel"],
            "rope_scaling": None,
            "use_sliding_window": False,
            "auto_map": {"AutoConfig": "configuration_dream.DreamConfig", "AutoModel": "modeling_dream.DreamModel"},
        }
    )
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    loaded, info = DreamModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert isinstance(AutoModel.from_pretrained(tmp_path), DreamModel)  # registered class, no remote code


def test_incompatible_checkpoint_is_reported(tmp_path, model):
    model.save_pretrained(tmp_path)
    with pytest.raises(Exception, match="size|shape|mismatch"):
        DreamModel.from_pretrained(tmp_path, hidden_size=32, intermediate_size=64)
    # a checkpoint lacking a weight (e.g. tied embeddings without lm_head) is refused, not randomly completed
    weights = load_file(tmp_path / "model.safetensors")
    weights["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(2)  # derived buffer: ignored
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    DreamModel.from_pretrained(tmp_path)
    weights["model.extra.weight"] = weights.pop("lm_head.weight")
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"(?s)missing keys.*lm_head\.weight.*unexpected keys.*model\.extra\.weight"):
        DreamModel.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="does not match DreamModel"):
        AutoModel.from_pretrained(tmp_path)
    loose, info = DreamModel.from_pretrained(tmp_path, strict=False, output_loading_info=True)
    assert info["missing_keys"] and isinstance(loose, DreamModel)


def test_attention_is_bidirectional(model):
    x = torch.randint(0, 15, (1, 8))
    y = x.clone()
    y[0, -1] = (x[0, -1] + 1) % 15
    assert not torch.allclose(model(x).logits[0, 0], model(y).logits[0, 0])


def test_left_padding_with_position_ids_matches_unpadded(model):
    x = torch.randint(0, 15, (1, 6))
    padded = torch.cat([torch.full((1, 3), 14), x], dim=1)
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1, 1]])
    pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    torch.testing.assert_close(model(padded, mask, pos).logits[:, 3:], model(x).logits, atol=1e-5, rtol=1e-5)


def test_prefix_kv_cache_reproduces_full_forward(model):
    x = torch.randint(0, 15, (2, 10))
    full = model(x, use_cache=True)
    past = tuple((k[:, :, :4], v[:, :, :4]) for k, v in full.past_key_values)
    torch.testing.assert_close(model(x[:, 4:], past_key_values=past).logits, full.logits[:, 4:], atol=1e-5, rtol=1e-5)


def test_dual_kv_cache_reproduces_full_forward(model):
    x = torch.randint(0, 15, (2, 12))
    mask = torch.tensor([[0] + [1] * 11, [1] * 12])
    pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    full = model(x, mask, pos, use_cache=True)
    past = tuple((k[:, :, :4], v[:, :, :4]) for k, v in full.past_key_values)
    future = tuple((k[:, :, 8:], v[:, :, 8:]) for k, v in full.past_key_values)
    block = model(x[:, 4:8], mask, pos[:, 4:8], past_key_values=past, future_key_values=future)
    torch.testing.assert_close(block.logits, full.logits[:, 4:8], atol=1e-5, rtol=1e-5)


def test_shifted_logit_convention():
    logits = torch.arange(5.0).view(1, 5, 1)
    assert shift_logits(logits).flatten().tolist() == [0.0, 0.0, 1.0, 2.0, 3.0]


def test_bad_inputs(model, make_config):
    with pytest.raises(ValueError, match="2-D integer"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(torch.zeros(1, 65, dtype=torch.long))
    with pytest.raises(ValueError, match="divisible"):
        make_config(hidden_size=15)
    with pytest.raises(NotImplementedError):
        make_config(rope_scaling={"rope_type": "yarn", "factor": 2.0})


def test_tiny_tokenizer_has_dream_special_tokens(tmp_path, make_config):
    tok = train_tiny_tokenizer(["def add(a, b):\n    return a + b\n"] * 4, vocab_size=300)
    for special in (MASK, DLM_PAD, IM_START, IM_END):
        ids = tok.encode(special, add_special_tokens=False)
        assert len(ids) == 1 and tok.decode(ids) == special
    text = "def add(a, b):\n    return a + b\n"
    assert tok.decode(tok.encode(text)) == text
    tok.save_pretrained(tmp_path)
    again = load_tokenizer(tmp_path)
    kw = dream_config_kwargs(again)
    assert kw["mask_token_id"] == mask_token_id(tok) == tok.convert_tokens_to_ids(MASK)
    assert kw["pad_token_id"] == tok.convert_tokens_to_ids(DLM_PAD) and kw["vocab_size"] == len(tok)
    model = DreamModel(make_config(**kw, hidden_size=8, num_attention_heads=2, num_key_value_heads=1))
    assert model.lm_head.out_features == len(tok)


def test_tokenizer_without_mask_token_is_rejected():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel({"a": 0, "b": 1, "[UNK]": 2}, unk_token="[UNK]"))
    with pytest.raises(ValueError, match="mask"):
        mask_token_id(PreTrainedTokenizerFast(tokenizer_object=raw))


def test_seeded_models_differ(make_model):
    assert not torch.equal(make_model(0).lm_head.weight, make_model(1).lm_head.weight)


def test_bf16_forward_close_to_float32(model):
    x = torch.randint(0, 15, (2, 8))
    ref = model(x).logits
    low = model.to(torch.bfloat16)(x).logits.float()
    assert torch.isfinite(low).all() and (low - ref).abs().max() < 0.1 * ref.abs().max()


def test_diffusion_generate_method_matches_function(model):
    from diffucoder import diffusion_generate

    x = torch.randint(0, 15, (2, 3))
    kwargs = dict(max_new_tokens=5, steps=5, alg="maskgit_plus")
    assert torch.equal(model.diffusion_generate(x, **kwargs), diffusion_generate(model, x, **kwargs))


@pytest.mark.gpu
def test_cuda_bf16_sampling(make_model):
    from diffucoder import diffusion_generate
    from diffucoder.cached import cached_generate

    model = make_model(0).to("cuda", torch.bfloat16)
    x = torch.randint(0, 13, (2, 4), device="cuda")
    out = diffusion_generate(model, x, max_new_tokens=8, steps=8, alg="entropy")
    cached, _ = cached_generate(model, x, max_new_tokens=8, block_length=4, dual_cache=True)
    assert out.shape == cached.sequences.shape == (2, 12) and torch.equal(out[:, :4], x)


def test_chat_prompt_layout():
    from diffucoder.tokenizer import chat_prompt

    text = chat_prompt("  Write add.  ")
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
    assert text.endswith("Write add.\n<|im_end|>\n<|im_start|>assistant\n")


def test_tied_embeddings_follow_transformers_contract(tmp_path, make_config):
    """``_tied_weights_keys`` maps target -> source (transformers 5); tied models build, tie and round-trip."""
    assert dict(DreamModel._tied_weights_keys) == {"lm_head.weight": "model.embed_tokens.weight"}
    tied = DreamModel(make_config(tie_word_embeddings=True))
    assert tied.lm_head.weight.data_ptr() == tied.model.embed_tokens.weight.data_ptr()
    tied.save_pretrained(tmp_path)
    back = DreamModel.from_pretrained(tmp_path)
    assert back.lm_head.weight.data_ptr() == back.model.embed_tokens.weight.data_ptr()
    torch.testing.assert_close(back.lm_head.weight, tied.model.embed_tokens.weight)


def test_causal_checkpoint_refused_unless_converted(tmp_path):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    qwen = Qwen2ForCausalLM(
        Qwen2Config(
            vocab_size=16,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
        )
    ).eval()
    qwen.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="convert_causal"):
        DreamModel.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="mask_token_id"):
        DreamModel.from_pretrained(tmp_path, convert_causal=True)
    dream = DreamModel.from_pretrained(tmp_path, convert_causal=True, mask_token_id=15)  # strict: all keys used
    assert dream.config.model_type == "Dream" and dream.config.mask_token_id == 15
    torch.testing.assert_close(dream.model.embed_tokens.weight, qwen.model.embed_tokens.weight)
    x = torch.randint(0, 15, (1, 6))
    tril = torch.ones(6, 6, dtype=torch.bool).tril()[None, None]
    with torch.no_grad():
        causal, bidirectional, masked = qwen(x).logits, dream(x).logits, dream(x, attention_mask=tril).logits
    torch.testing.assert_close(masked, causal)  # same function under a causal mask: weights carried over intact
    assert not torch.allclose(bidirectional, causal, atol=1e-3)  # the converted model attends both ways


@torch.no_grad()
@pytest.mark.parametrize("layers", [1, 2])
def test_in_place_cache_window_reproduces_the_full_forward(layers, make_model):
    """cache_position: a slice written into full-length key/value buffers = the full forward on that slice.
    One layer: also after the slice's tokens changed (deeper cached keys would then be stale by design)."""
    model = make_model(0, num_hidden_layers=layers)
    x = torch.randint(0, 15, (2, 12))
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[0, :2] = 0  # left padding
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = model(x, mask, pos, use_cache=True).past_key_values
    outside = cache[0][0][:, :, :5].clone()
    y = x.clone()
    if layers == 1:
        y[:, 6:9] = torch.randint(0, 15, (2, 3))  # tokens revealed since the cache was filled
    part = model(y[:, 5:9], mask, pos[:, 5:9], past_key_values=cache, cache_position=5).logits
    torch.testing.assert_close(part, model(y, mask, pos).logits[:, 5:9], atol=1e-5, rtol=1e-5)
    assert torch.equal(cache[0][0][:, :, :5], outside)
    with pytest.raises(ValueError, match="cache_position"):
        model(y[:, 5:9], past_key_values=cache, cache_position=10)
