"""Instructed text in prompts (the quoted spans) and prompt-set files."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

# Paired quote styles; ASCII quotes are symmetric. The ASCII single quote only opens after a non-word
# character and only closes before one, so apostrophes ("Joe's", "DON'T") never delimit a span.
_QUOTE_PAIRS = [
    ("\u201c", "\u201d"),
    ("\u201e", "\u201c"),
    ("\u201e", "\u201d"),
    ("\u00ab", "\u00bb"),
    ("\u2018", "\u2019"),
    ("\u300c", "\u300d"),
    ("\u300e", "\u300f"),
]
_QUOTED = re.compile(
    "|".join(
        [r'"(?P<ascii2>[^"]*)"', r"(?<!\w)'(?P<ascii1>.*?)'(?!\w)"]
        + [f"{re.escape(o)}(?P<q{i}>[^{re.escape(c)}]*){re.escape(c)}" for i, (o, c) in enumerate(_QUOTE_PAIRS)]
    ),
    flags=re.DOTALL,
)


def quoted_spans(prompt: str) -> list[str]:
    """All quoted spans of ``prompt`` in order of appearance (any common quote style), stripped."""
    spans = []
    for m in _QUOTED.finditer(prompt):
        span = next(g for g in m.groups() if g is not None).strip()
        if span:
            spans.append(span)
    return spans


def instructed_text(prompt: str) -> str:
    """The text the image should contain: the prompt's quoted spans joined by single spaces."""
    spans = quoted_spans(prompt)
    if not spans:
        raise ValueError(
            f"prompt has no quoted text to render: {prompt!r}; put the instructed text in quotes "
            '(e.g. a sign that reads "OPEN") or give it explicitly as the item\'s "text" field'
        )
    return " ".join(spans)


@dataclass(frozen=True)
class PromptItem:
    """One instruction: its id, the prompt, the instructed text and optional metadata (style, category)."""

    id: str
    prompt: str
    text: str
    meta: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_prompt(cls, id: str, prompt: str, text: str | None = None, **meta) -> PromptItem:
        return cls(str(id), prompt, instructed_text(prompt) if text is None else text, meta)


def _from_record(index: int, record) -> PromptItem:
    if isinstance(record, str):
        return PromptItem.from_prompt(f"{index:04d}", record)
    if isinstance(record, dict) and "prompt" in record:
        rest = {k: v for k, v in record.items() if k not in ("id", "prompt", "text")}
        return PromptItem.from_prompt(record.get("id", f"{index:04d}"), record["prompt"], record.get("text"), **rest)
    raise ValueError(f"prompt record {index} must be a string or an object with a 'prompt' field, got {record!r}")


def load_prompts(path: str | Path) -> list[PromptItem]:
    """Read a prompt set: ``.txt`` (one prompt a line, ``#`` comments), ``.json`` (a list), ``.jsonl`` or ``.csv``
    (column ``prompt``, optional ``id``, ``text`` and metadata columns)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prompt file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".json":
        records = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(records, list):
            raise ValueError(f"{path}: expected a JSON list of prompts")
    elif suffix == ".jsonl":
        lines = path.read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
    elif suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            records = [{k: v for k, v in row.items() if v not in (None, "")} for row in csv.DictReader(f)]
    else:
        lines = path.read_text(encoding="utf-8").splitlines()
        records = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    items = [_from_record(i, r) for i, r in enumerate(records)]
    if not items:
        raise ValueError(f"{path} holds no prompts")
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: prompt ids are not unique")
    return items


def builtin_prompts() -> list[PromptItem]:
    """The shipped prompt set in the TYPEINST structure (our own instructions; quoted text of varied length,
    case, digits and style; categories and style requests as metadata)."""
    with resources.as_file(resources.files("typescore") / "data" / "typeinst_mini.jsonl") as p:
        return load_prompts(p)
