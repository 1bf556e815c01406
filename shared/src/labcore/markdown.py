"""The fenced code blocks of a Markdown file, with their skip markers (the README-blocks convention, #17 item 6).

A block that must not run says why in an HTML comment on the line right before its fence,
``<!-- skip: needs CUDA and the 7B checkpoint -->``; the reason is mandatory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)")
SKIP = re.compile(r"^\s*<!--\s*skip:(.*?)-->\s*$")


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # the opening fence's line number (1-based)
    lang: str
    code: str
    skip: str | None  # the reason given by a `<!-- skip: ... -->` line right before the fence


def blocks(doc: Path) -> list[Block]:
    """The fenced code blocks of one Markdown file; raises ValueError on an unclosed fence or empty skip reason."""
    lines = Path(doc).read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, start = m.group(1), i
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip().startswith(fence)), None)
        if end is None:
            raise ValueError(f"{doc}:{start + 1}: fence never closed")
        skip = SKIP.match(lines[start - 1]) if start else None
        if skip and not skip.group(1).strip():
            raise ValueError(f"{doc}:{start + 1}: a skip marker needs its reason: <!-- skip: why -->")
        found.append(Block(Path(doc), start + 1, m.group(2).lower(), "\n".join(lines[start + 1 : end]) + "\n",
                           skip.group(1).strip() if skip else None))
        i = end + 1
    return found
