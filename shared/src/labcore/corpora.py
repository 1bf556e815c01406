"""Offline text corpora built from what every Python install ships.

``python_source`` concatenates standard-library modules (a code corpus); ``text8_like``
turns their docstrings and comments into text8's alphabet (lowercase a–z and single spaces),
so character-level bits/char are comparable in kind to text8 numbers. ``digits_split`` is the one
train/test split of scikit-learn's 8×8 digits that every image package trains and evaluates on.
"""

from __future__ import annotations

import ast
import re
import sysconfig
from pathlib import Path

TEXT8_ALPHABET = " abcdefghijklmnopqrstuvwxyz"


def _stdlib_files(limit: int | None = None) -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.glob("*.py") if p.is_file())
    return files[:limit] if limit else files


def python_source(max_chars: int = 1_000_000) -> str:
    """Standard-library source files, concatenated in a fixed order up to ``max_chars``."""
    parts, total = [], 0
    for path in _stdlib_files():
        text = path.read_text(encoding="utf-8", errors="ignore")
        parts.append(text)
        total += len(text)
        if total >= max_chars:
            break
    return "".join(parts)[:max_chars]


def _docstrings(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)))]
    return [d for n in nodes if (d := ast.get_docstring(n))]


def text8_like(max_chars: int = 1_000_000) -> str:
    """Standard-library docstrings normalised to text8's 27-symbol alphabet."""
    chunks, total = [], 0
    for path in _stdlib_files():
        for doc in _docstrings(path.read_text(encoding="utf-8", errors="ignore")):
            clean = re.sub(r"[^a-z]+", " ", doc.lower()).strip()
            if clean:
                chunks.append(clean)
                total += len(clean) + 1
        if total >= max_chars:
            break
    text = " ".join(chunks)[:max_chars]
    if not text:
        raise RuntimeError("no docstrings found in the standard library; is this a stripped Python install?")
    return text


def digits_split(split: str = "train", test_size: int = 297, *, package: str):
    """scikit-learn's 8×8 digits as ``(images (N, 8, 8) float grey levels 0–16, labels (N,) long)``.

    The last ``test_size`` of the 1797 images are the test split, the rest the training split, so a
    model is never scored on the images it was trained on. ``package`` names the caller whose
    ``demo`` extra installs scikit-learn (for the error when it is missing).
    """
    import torch

    from labcore.extras import require

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    d = require("sklearn.datasets", extra="demo", package=package).load_digits()
    sl = slice(None, -test_size) if split == "train" else slice(-test_size, None)
    return torch.from_numpy(d.images[sl]).float(), torch.from_numpy(d.target[sl]).long()
