import json
from pathlib import Path

import pytest
import torch

from labcore.testing import enable as pytest_configure  # noqa: F401  (opt in to the gpu/slow markers and fixtures)


@pytest.fixture
def tiny_sd_pipeline(tmp_path) -> Path:
    """A tiny random Stable Diffusion pipeline (character-level CLIP tokenizer) saved locally; no hub."""
    diffusers = pytest.importorskip("diffusers")
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = _char_clip_tokenizer(tmp_path, 16)
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(CLIPTextConfig(**_char_clip_text_config(tokenizer), projection_dim=16))
    unet = diffusers.UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=2,
        norm_num_groups=4,
    )
    vae = diffusers.AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(8, 8),
        norm_num_groups=4,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        sample_size=16,
    )
    pipe = diffusers.StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=diffusers.DDIMScheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(tmp_path / "pipe")
    return tmp_path / "pipe"


def _char_clip_tokenizer(folder: Path, max_length: int):
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz0123456789\"'.,!?:%-":
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=max_length)


# One tiny transformer size for every tower, and the 32-pixel, 8-pixel-patch vision side that the CLIP and the
# LLaVA fixtures share (their image processors must produce the vision tower's image size).
_TINY_TOWER = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
_TINY_VISION = dict(**_TINY_TOWER, image_size=32, patch_size=8)


def _char_clip_text_config(tokenizer) -> dict:
    """Tiny CLIP text-tower settings over the character tokenizer (its start/end ids; end doubles as padding)."""
    return dict(
        **_TINY_TOWER,
        vocab_size=len(tokenizer),
        max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
    )


def _tiny_image_processor():
    from transformers import CLIPImageProcessor

    size = _TINY_VISION["image_size"]
    return CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})


@pytest.fixture
def tiny_clip(tmp_path) -> Path:
    """A tiny random CLIP (model + processor, 32-pixel images) saved locally with save_pretrained."""
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor

    tokenizer = _char_clip_tokenizer(tmp_path, 77)
    torch.manual_seed(0)
    config = CLIPConfig(text_config=_char_clip_text_config(tokenizer), vision_config=_TINY_VISION, projection_dim=16)
    CLIPModel(config).save_pretrained(tmp_path / "clip")
    CLIPProcessor(image_processor=_tiny_image_processor(), tokenizer=tokenizer).save_pretrained(tmp_path / "clip")
    return tmp_path / "clip"


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory) -> Path:
    """A tiny random LLaVA (CLIP vision tower + Llama, byte-level tokenizer, chat template) saved locally."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    folder = tmp_path_factory.mktemp("vlm")
    bytes_bpe = Tokenizer(
        models.BPE(vocab={c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}, merges=[])
    )
    bytes_bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bytes_bpe.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bytes_bpe,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        additional_special_tokens=["<image>"],
    )
    template = (
        "{% for m in messages %}{{ m['role'] }}: {% for c in m['content'] %}{% if c['type'] == 'image' %}<image>"
        "{% else %}{{ c['text'] }}{% endif %}{% endfor %}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    processor = LlavaProcessor(
        image_processor=_tiny_image_processor(),
        tokenizer=tokenizer,
        patch_size=_TINY_VISION["patch_size"],
        vision_feature_select_strategy="default",
        chat_template=template,
        num_additional_image_tokens=1,
        image_token="<image>",
    )
    torch.manual_seed(0)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(**_TINY_VISION),
        text_config=LlamaConfig(
            **_TINY_TOWER,
            vocab_size=len(tokenizer),
            num_key_value_heads=2,
            max_position_embeddings=512,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=(_TINY_VISION["image_size"] // _TINY_VISION["patch_size"]) ** 2,  # 4.46 reads fewer as legacy
        vision_feature_layer=-1,
    )
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
