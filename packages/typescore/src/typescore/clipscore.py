"""CLIPScore baseline (the metric TypeScore is compared against, paper Sec. 4) via torchmetrics, offline.

torchmetrics' ``CLIPScore`` only accepts hub names or a callable returning ``(model, processor)``; we pass a
callable that loads a CLIP from a local folder. With transformers ≥ 5, ``CLIPModel.get_image_features`` /
``get_text_features`` return model outputs instead of tensors, which torchmetrics cannot normalise; the
:class:`TensorFeatureCLIP` adapter returns the projected embeddings (``pooler_output``) as tensors.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from typescore.extract import ImageLike, to_rgb_array


def _as_tensor(features) -> torch.Tensor:
    return features if isinstance(features, torch.Tensor) else features.pooler_output


class TensorFeatureCLIP(torch.nn.Module):
    """A ``CLIPModel`` whose ``get_*_features`` always return tensors (transformers 4 and 5 alike)."""

    def __init__(self, clip):
        super().__init__()
        self.clip = clip
        self.config = clip.config

    def get_image_features(self, *args, **kwargs) -> torch.Tensor:
        return _as_tensor(self.clip.get_image_features(*args, **kwargs))

    def get_text_features(self, *args, **kwargs) -> torch.Tensor:
        return _as_tensor(self.clip.get_text_features(*args, **kwargs))


def check_clip_dir(model_dir: str | os.PathLike) -> Path:
    """``model_dir`` as a Path if it holds a saved CLIP model *and* its processor, else a clear error (cheap: no
    loading, so a command can check it before any other work)."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"--clip {model_dir} holds no saved CLIP model (config.json missing)")
    if not any((model_dir / f).is_file() for f in ("preprocessor_config.json", "processor_config.json")):
        raise FileNotFoundError(
            f"--clip {model_dir} has no image processor (preprocessor_config.json or processor_config.json); "
            "save the CLIPProcessor there too"
        )
    if not any((model_dir / f).is_file() for f in ("tokenizer.json", "vocab.json")):
        raise FileNotFoundError(f"--clip {model_dir} has no tokenizer; save the CLIPProcessor there too")
    return model_dir


def load_clip_score(model_dir: str | os.PathLike):
    """A torchmetrics ``CLIPScore`` over the CLIP saved (``save_pretrained``: model + processor) in ``model_dir``."""
    model_dir = check_clip_dir(model_dir)
    try:
        from torchmetrics.multimodal.clip_score import CLIPScore
        from transformers import CLIPModel, CLIPProcessor
    except ImportError as err:
        raise ImportError('CLIPScore needs torchmetrics and transformers: `pip install "typescore-pt[clip]"`') from err

    def load():
        return TensorFeatureCLIP(CLIPModel.from_pretrained(model_dir).eval()), CLIPProcessor.from_pretrained(model_dir)

    return CLIPScore(model_name_or_path=load)


@torch.no_grad()
def clip_scores(metric, images: Sequence[ImageLike], texts: Sequence[str]) -> np.ndarray:
    """Per-pair CLIPScore ``max(100 · cos(image, text), 0)`` with a torchmetrics ``CLIPScore`` ``metric``."""
    if len(images) != len(texts):
        raise ValueError(f"{len(images)} images but {len(texts)} texts")
    out = []
    for image, text in zip(images, texts):
        metric.reset()
        metric.update(torch.from_numpy(to_rgb_array(image)).permute(2, 0, 1), text)
        out.append(float(metric.compute()))
    metric.reset()
    return np.asarray(out)
