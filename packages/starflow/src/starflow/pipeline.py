"""``StarFlowPipeline``: prompt (or class label) → PIL images, in the style of a diffusers pipeline.

Folder layout of :meth:`StarFlowPipeline.save_pretrained`: ``transformer/`` (the flow),
``text_encoder/`` + ``tokenizer/`` (T5), ``vae/`` (AutoencoderKL) and optionally ``vae_decoder/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from starflow.autoencoder import LatentAutoencoder
from starflow.conditioning import ClassEmbedder, TextEncoder
from starflow.flow import JacobiOptions
from starflow.model import StarFlow


@dataclass
class StarFlowPipelineOutput:
    images: list[Image.Image] | torch.Tensor
    latents: torch.Tensor


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    arr = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in np.ascontiguousarray(arr)]


class StarFlowPipeline:
    def __init__(
        self, model: StarFlow, autoencoder: LatentAutoencoder | None = None, text_encoder: TextEncoder | None = None
    ):
        self.model, self.autoencoder, self.text_encoder = model.eval(), autoencoder, text_encoder
        if autoencoder is not None:
            autoencoder.check_model(model.config)

    @classmethod
    def from_pretrained(cls, path: str | Path) -> StarFlowPipeline:
        path = Path(path)
        model = StarFlow.from_pretrained(path / "transformer")
        ae = None
        if (path / "vae").exists():
            dec = path / "vae_decoder"
            ae = LatentAutoencoder.from_pretrained(str(path / "vae"), str(dec) if dec.exists() else None)
        te = None
        if (path / "text_encoder").exists():
            from transformers import AutoTokenizer, T5EncoderModel

            te = TextEncoder(
                T5EncoderModel.from_pretrained(path / "text_encoder"),
                AutoTokenizer.from_pretrained(path / "tokenizer"),
                model.config.txt_size,
            )
        return cls(model, ae, te)

    def to(self, device: str | torch.device) -> StarFlowPipeline:
        """Move the flow, the autoencoder and the text encoder onto ``device`` (in place); returns ``self``."""
        self.model.to(device)
        if self.autoencoder is not None:
            self.autoencoder.to(device)
        if self.text_encoder is not None:
            self.text_encoder.encoder.to(device)
        return self

    def save_pretrained(self, path: str | Path) -> None:
        path = Path(path)
        self.model.save_pretrained(path / "transformer")
        if self.autoencoder is not None:
            self.autoencoder.vae.save_pretrained(path / "vae")
            if self.autoencoder.finetuned_decoder is not None:
                self.autoencoder.finetuned_decoder.save_pretrained(path / "vae_decoder")
        if self.text_encoder is not None:
            self.text_encoder.encoder.save_pretrained(path / "text_encoder")
            self.text_encoder.tokenizer.save_pretrained(path / "tokenizer")

    def encode_condition(self, prompt, class_labels, n: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        cfg = self.model.config
        if not cfg.conditional:
            return None, None
        if cfg.num_classes:
            if class_labels is None:
                raise ValueError("this model is class-conditional: pass class_labels")
            emb = ClassEmbedder(cfg.num_classes)
            labels = torch.as_tensor(class_labels).reshape(-1).repeat_interleave(n)
            return emb(labels), emb.null(1)
        if self.text_encoder is None:
            raise ValueError(
                "this checkpoint is text-conditional but the pipeline has no text encoder; "
                "pass text_encoder=TextEncoder.from_pretrained(...)"
            )
        if prompt is None:
            raise ValueError("this model is text-conditional: pass a prompt")
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        y = self.text_encoder([p for p in prompts for _ in range(n)])
        return y, self.text_encoder.null(1)

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        class_labels=None,
        guidance_scale: float = 0.0,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | None = None,
        jacobi: JacobiOptions | None = None,
        temperature: float = 1.0,
        output_type: str = "pil",
    ) -> StarFlowPipelineOutput:
        """Sample images; ``guidance_scale`` is ``w`` of the closed-form guidance (0 = none)."""
        y, y_null = self.encode_condition(prompt, class_labels, num_images_per_prompt)
        batch = y.shape[0] if y is not None else num_images_per_prompt
        p = next(self.model.parameters())
        noise = torch.randn((batch, *self.model.input_shape), generator=generator).to(p.device) * temperature
        y = y.to(p.device) if y is not None else None
        y_null = y_null.to(p.device) if y_null is not None else None
        latents = self.model.sample(noise, y, y_null, guidance_scale, jacobi)
        finetuned = self.autoencoder is not None and self.autoencoder.finetuned_decoder is not None
        if finetuned:
            images = self.autoencoder.decode(latents, noisy=True)
        else:
            latents = self.model.denoise(latents, y)
            images = self.autoencoder.decode(latents) if self.autoencoder is not None else latents.clamp(-1, 1)
        return StarFlowPipelineOutput(to_pil(images) if output_type == "pil" else images, latents)
