"""Instructed text in prompts (the quoted spans) and prompt-set files."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

# Quote pairs (opening, closing). A character may close one pair and open another (German „…“ vs English “…”).
_PAIRS = [
    ('"', '"'),
    ("'", "'"),
    ("\u201c", "\u201d"),  # “…”
    ("\u201e", "\u201c"),  # „…“
    ("\u201e", "\u201d"),  # „…”
    ("\u201a", "\u2018"),  # ‚…‘
    ("\u2018", "\u2019"),  # ‘…’
    ("\u00ab", "\u00bb"),  # «…»
    ("\u300c", "\u300d"),  # 「…」
    ("\u300e", "\u300f"),  # 『…』
]
_OPENS = {o for o, _ in _PAIRS}
_CLOSES: dict[str, set[str]] = {}
for _o, _c in _PAIRS:
    _CLOSES.setdefault(_c, set()).add(_o)
_SYMMETRIC = {'"', "'"}
_APOSTROPHES = {"'", "\u2019"}  # also written inside words: Joe's, DON'T, Joe’s


def _blank(ch: str | None) -> bool:
    return ch is None or ch.isspace()


def quoted_spans(prompt: str) -> list[str]:
    """The outermost quoted spans of ``prompt`` in order of appearance (any common quote style), stripped.

    A stack parser, so quotes nest (``'rock 'n' roll forever'`` is one span). A quote character between two
    letters is an apostrophe (``Joe’s``, ``DON'T``); an ASCII quote opens only after a blank, an opening bracket
    or another quote, and closes only where no letter or digit follows, so an inch mark (``a 12" pizza``) or a
    trailing apostrophe that closes nothing is ignored.
    """
    spans, stack = [], []  # stack of (opening character, index)
    n = len(prompt)
    for i, ch in enumerate(prompt):
        if ch not in _OPENS and ch not in _CLOSES:
            continue
        prev = prompt[i - 1] if i > 0 else None
        nxt = prompt[i + 1] if i + 1 < n else None
        if ch in _APOSTROPHES and prev is not None and nxt is not None and prev.isalnum() and nxt.isalnum():
            continue
        symmetric = ch in _SYMMETRIC
        followed_by_word = nxt is not None and nxt.isalnum()
        closes = bool(stack) and stack[-1][0] in _CLOSES.get(ch, ()) and not (symmetric and followed_by_word)
        if closes:
            _, start = stack.pop()
            if not stack:
                span = prompt[start + 1 : i].strip()
                if span:
                    spans.append(span)
        elif ch in _OPENS and not (symmetric and not (_blank(prev) or prev in "([{" or prev in _OPENS)):
            stack.append((ch, i))
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


def _from_record(where: str, index: int, record) -> PromptItem:
    if isinstance(record, str):
        record = {"prompt": record}
    if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
        raise ValueError(f"{where}: a prompt record must be a string or an object with a 'prompt' string: {record!r}")
    text = record.get("text")
    if text is not None and (not isinstance(text, str) or not text.strip()):
        raise ValueError(f"{where}: 'text' must be a non-empty string (or absent: the quoted text), got {text!r}")
    rest = {k: v for k, v in record.items() if k not in ("id", "prompt", "text")}
    try:
        return PromptItem.from_prompt(record.get("id", f"{index:04d}"), record["prompt"], text, **rest)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


PROMPT_SUFFIXES = (".txt", ".json", ".jsonl", ".csv")


def load_prompts(path: str | Path) -> list[PromptItem]:
    """Read a prompt set: ``.txt`` (one prompt a line, ``#`` comments), ``.json`` (a list), ``.jsonl`` or ``.csv``
    (column ``prompt``, optional ``id``, ``text`` and metadata columns). Errors name ``file:line``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prompt file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in PROMPT_SUFFIXES:
        raise ValueError(f"{path}: unknown prompt-file type {suffix!r}; use one of {', '.join(PROMPT_SUFFIXES)}")
    text = path.read_text(encoding="utf-8")
    records: list[tuple[str, object]] = []  # (file:line, record)
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of prompts, got {type(data).__name__}")
        records = [(f"{path}[{i}]", r) for i, r in enumerate(data)]
    elif suffix == ".jsonl":
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append((f"{path}:{lineno}", json.loads(line)))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
    elif suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if "prompt" not in (reader.fieldnames or []):
            raise ValueError(f"{path}:1: the CSV header needs a 'prompt' column, got {reader.fieldnames}")
        for row in reader:
            records.append((f"{path}:{reader.line_num}", {k: v for k, v in row.items() if v not in (None, "")}))
    else:
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip() and not line.lstrip().startswith("#"):
                records.append((f"{path}:{lineno}", line.strip()))
    items = [_from_record(where, i, r) for i, (where, r) in enumerate(records)]
    if not items:
        raise ValueError(f"{path} holds no prompts")
    seen: dict[str, str] = {}
    for (where, _), it in zip(records, items):
        if it.id in seen:
            raise ValueError(f"{where}: prompt id {it.id!r} is not unique (first at {seen[it.id]})")
        seen[it.id] = where
    return items


def builtin_prompts() -> list[PromptItem]:
    """The shipped prompt set in the TYPEINST structure (our own instructions; quoted text of varied length,
    case, digits and style; categories and style requests as metadata)."""
    with resources.as_file(resources.files("typescore") / "data" / "typeinst_mini.jsonl") as p:
        return load_prompts(p)
