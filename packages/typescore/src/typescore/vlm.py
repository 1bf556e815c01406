"""VLM extractor and style-adherence check through a transformers chat image-text-to-text model (paper Sec. 3, 5).

The paper extracts the text with GPT-4o and asks the VLM whether the rendering follows the instructed style,
separating style from text fidelity. Any local chat VLM loadable with ``AutoModelForImageTextToText`` and
``AutoProcessor`` (with a chat template) works here. The prompts below are ours: the paper's exact wording was not
available to us.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from typescore.extract import ImageLike, to_rgb_array

EXTRACTION_PROMPT = (
    "Transcribe all the text that appears in this image exactly as written, keeping its spelling. "
    "Answer with the text only; answer with nothing if the image has no text."
)
STYLE_PROMPT = 'Is the text in this image rendered in this style: "{style}"? Answer yes or no.'


class VLMExtractor:
    """``extract(image) -> str`` by asking a local chat VLM to transcribe the image (greedy decoding)."""

    name = "vlm"

    def __init__(
        self,
        model_dir: str | os.PathLike,
        prompt: str = EXTRACTION_PROMPT,
        max_new_tokens: int = 64,
        device: str = "cpu",
        dtype: str = "float32",
    ):
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise FileNotFoundError(f"{model_dir} holds no saved VLM (config.json missing)")
        try:
            import transformers
            from packaging.version import Version
            from transformers import AutoModelForImageTextToText, AutoProcessor
        except ImportError as err:
            raise ImportError('the VLM backend needs transformers: `pip install "typescore-pt[vlm]"`') from err

        self.processor = AutoProcessor.from_pretrained(model_dir, local_files_only=True)
        if getattr(self.processor, "chat_template", None) is None:
            raise ValueError(f"the processor in {model_dir} has no chat template; the VLM backend needs a chat model")
        dtype_kw = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
        self.model = (
            AutoModelForImageTextToText.from_pretrained(
                model_dir, local_files_only=True, **{dtype_kw: getattr(torch, dtype)}
            )
            .to(device)
            .eval()
        )
        self.prompt, self.max_new_tokens, self.device = prompt, max_new_tokens, device

    @torch.no_grad()
    def ask(self, image: ImageLike, question: str) -> str:
        """One user turn (image + question); the decoded answer without the prompt."""
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True)
        inputs = self.processor(images=[Image.fromarray(to_rgb_array(image))], text=[text], return_tensors="pt")
        inputs = inputs.to(self.device)
        # only what the model takes: generate refuses the rest (transformers 4.46: token_type_ids of a tokenizer
        # that returns them to a LLaVA)
        params = inspect.signature(self.model.forward).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            inputs = {k: v for k, v in inputs.items() if k in params}
        out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        return self.processor.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()

    def extract(self, image: ImageLike) -> str:
        return self.ask(image, self.prompt)


_YES, _NO = re.compile(r"^\W*(yes|yeah|yep|true)\b", re.I), re.compile(r"^\W*(no|nope|false)\b", re.I)


def parse_yes_no(answer: str) -> float | None:
    """1.0 for an answer that starts with yes, 0.0 for no, ``None`` when it is neither."""
    if _YES.match(answer):
        return 1.0
    if _NO.match(answer):
        return 0.0
    return None


@dataclass(frozen=True)
class StyleResult:
    """Per-image answers and the adherence rate over the answers that parse as yes/no."""

    answers: list[str]
    verdicts: list[float | None]

    @property
    def adherence(self) -> float:
        valid = [v for v in self.verdicts if v is not None]
        return float(np.mean(valid)) if valid else float("nan")

    @property
    def unparsed(self) -> int:
        return sum(v is None for v in self.verdicts)


def style_adherence(
    vlm, images: Sequence[ImageLike], styles: Sequence[str], template: str = STYLE_PROMPT
) -> StyleResult:
    """Ask ``vlm`` (anything with ``ask(image, question) -> str``) whether each image follows its style."""
    if len(images) != len(styles):
        raise ValueError(f"{len(images)} images but {len(styles)} styles")
    answers = [vlm.ask(im, template.format(style=style)) for im, style in zip(images, styles)]
    return StyleResult(answers, [parse_yes_no(a) for a in answers])
