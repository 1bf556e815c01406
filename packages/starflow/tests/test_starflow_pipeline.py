"""Text-to-image pipeline with a tiny random T5 and AutoencoderKL saved locally; bad-input errors."""

import pytest
import torch
from PIL import Image

from labcore.checkpoint import CheckpointError
from starflow import StarFlow, StarFlowConfig
from starflow.autoencoder import REFERENCE_VAE_PREFIXES, LatentAutoencoder, tiny_autoencoder
from starflow.conditioning import TextEncoder
from starflow.pipeline import StarFlowPipeline
from starflow.training import training_loss


def t2i_model(perturbed) -> StarFlow:
    torch.manual_seed(0)
    cfg = StarFlowConfig(
        channel_size=4, img_size=4, channels=48, head_dim=24, layers_per_block=[1, 2], txt_size=6, txt_dim=16
    )
    return perturbed(StarFlow(cfg), 0.05)


@pytest.fixture
def pipe(t5_dir, perturb):
    te = TextEncoder.from_pretrained(str(t5_dir), max_length=6)
    return StarFlowPipeline(t2i_model(perturb), LatentAutoencoder(tiny_autoencoder()), te)


def test_text_encoder_masks_padding_and_warns_on_truncation(t5_dir):
    te = TextEncoder.from_pretrained(str(t5_dir), max_length=6)
    y = te(["a red cat", ""])
    assert y.shape == (2, 6, 16)
    assert y[0, 3:].abs().max() == 0 and y[0, :3].abs().max() > 0  # 3 words, then zeroed padding
    with pytest.warns(UserWarning, match="truncated"):
        assert te(["a red cat on the grass under a big blue table"]).shape == (1, 6, 16)


def test_autoencoder_latent_shapes():
    ae = LatentAutoencoder(tiny_autoencoder())
    assert ae.scaling_factor == pytest.approx(0.18215)
    lat = ae.encode(torch.rand(2, 3, 8, 8) * 2 - 1)
    assert lat.shape == (2, *ae.latent_shape(8)) == (2, 4, 4, 4)
    assert ae.decode(lat).shape == (2, 3, 8, 8)
    with pytest.raises(ValueError, match="latents must have shape"):
        ae.decode(torch.randn(2, 3, 4, 4))


def test_finetuned_decoder_loads_from_the_reference_vae_file(tmp_path):
    """``pytorch_model.bin`` of the reference (``encoder.0/1``, ``decoder.0/1``) loads into AutoencoderKL names."""
    tiny_autoencoder(seed=0).save_pretrained(tmp_path / "vae")
    finetuned = tiny_autoencoder(seed=1)
    to_reference = {new: old for old, new in REFERENCE_VAE_PREFIXES.items()}
    state = {}
    for key, value in finetuned.state_dict().items():
        prefix = next(p for p in to_reference if key.startswith(p))
        state[to_reference[prefix] + key[len(prefix) :]] = value
    assert any(k.startswith("decoder.1.") for k in state) and any(k.startswith("encoder.1.") for k in state)
    torch.save(state, tmp_path / "pytorch_model.bin")
    ae = LatentAutoencoder.from_pretrained(str(tmp_path / "vae"), str(tmp_path / "pytorch_model.bin"))
    for key, value in finetuned.state_dict().items():
        torch.testing.assert_close(ae.finetuned_decoder.state_dict()[key], value, rtol=0, atol=0)
    lat = torch.randn(1, 4, 4, 4)
    assert (ae.decode(lat, noisy=True) - ae.decode(lat)).abs().max() > 0  # the fine-tuned weights are used
    del state["decoder.1.conv_out.weight"]
    torch.save(state, tmp_path / "broken.bin")
    with pytest.raises(CheckpointError, match="decoder.conv_out.weight"):
        LatentAutoencoder.from_pretrained(str(tmp_path / "vae"), str(tmp_path / "broken.bin"))


def test_pipeline_generates_and_roundtrips(pipe, tmp_path):
    out = pipe(
        ["a red cat", "a blue dog"],
        guidance_scale=2.0,
        num_images_per_prompt=2,
        generator=torch.Generator().manual_seed(0),
    )
    assert len(out.images) == 4 and all(isinstance(i, Image.Image) and i.size == (8, 8) for i in out.images)
    pipe.save_pretrained(tmp_path / "p")
    again = StarFlowPipeline.from_pretrained(tmp_path / "p")
    out2 = again(
        ["a red cat", "a blue dog"],
        guidance_scale=2.0,
        num_images_per_prompt=2,
        generator=torch.Generator().manual_seed(0),
        output_type="pt",
    )
    torch.testing.assert_close(out2.latents, out.latents, atol=1e-5, rtol=1e-5)


def test_pipeline_uses_finetuned_decoder_for_noisy_latents(t5_dir, perturb):
    te = TextEncoder.from_pretrained(str(t5_dir), max_length=6)
    ae = LatentAutoencoder(tiny_autoencoder(seed=0), finetuned_decoder=tiny_autoencoder(seed=1))
    gen = torch.Generator().manual_seed(0)
    out = StarFlowPipeline(t2i_model(perturb), ae, te)("a cat", generator=gen, output_type="pt")
    torch.testing.assert_close(out.images, ae.decode(out.latents, noisy=True))


def test_text_training_step_runs_through_encoders(t5_dir, perturb):
    te = TextEncoder.from_pretrained(str(t5_dir), max_length=6)
    model = t2i_model(perturb).train()
    ae = LatentAutoencoder(tiny_autoencoder())
    out = training_loss(model, torch.rand(2, 3, 8, 8) * 2 - 1, ["a cat", "a dog"], ae, te)
    out["loss"].backward()
    assert model.blocks[-1].proj_txt.weight.grad.abs().sum() > 0


def test_pipeline_bad_inputs(perturb):
    with pytest.raises(ValueError, match="no text encoder"):
        StarFlowPipeline(t2i_model(perturb), LatentAutoencoder(tiny_autoencoder()))("a cat")
    with pytest.raises(ValueError, match="latent channels"):
        StarFlowPipeline(t2i_model(perturb), LatentAutoencoder(tiny_autoencoder(latent_channels=8)))
