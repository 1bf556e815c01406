"""Offline text corpora built from what every Python install ships.

``python_source`` concatenates standard-library modules (a code corpus); ``text8_like``
turns their docstrings and comments into text8's alphabet (lowercase a–z and single spaces),
so character-level bits/char are comparable in kind to text8 numbers.
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
