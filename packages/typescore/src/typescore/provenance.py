"""Provenance recorded with every score: which package, extractor and settings produced it."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

# extractor name -> the distribution whose version identifies it
_BACKEND_DISTRIBUTIONS = {"easyocr": "easyocr", "rapidocr": "rapidocr-onnxruntime", "vlm": "transformers"}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def describe(extractor, normalizer, mode: str) -> dict:
    """Package version, extractor (name, its library's version, weights), normalisation flags, score mode."""
    name = getattr(extractor, "name", type(extractor).__name__ if extractor is not None else None)
    dist = _BACKEND_DISTRIBUTIONS.get(name)
    backend = {"name": name, "version": _version(dist) if dist else None}
    if getattr(extractor, "weights", None) is not None:
        backend["weights"] = str(extractor.weights)
    return {
        "typescore": _version("typescore-pt"),
        "extractor": backend,
        "normalizer": asdict(normalizer),
        "mode": mode,
    }


def file_digest(path: str | Path) -> dict:
    """``{"path", "sha256"}`` of a file (e.g. the prompt set a score was computed on)."""
    path = Path(path)
    return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
