"""The fenced code blocks of a Markdown file, with their skip markers (the README-blocks convention, #17 item 6).

A block that must not run says why in an HTML comment on the line right before its fence,
``<!-- skip: needs CUDA and the 7B checkpoint -->``; the reason is mandatory.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)")
SKIP = re.compile(r"^\s*<!--\s*skip:(.*?)-->\s*$")
# how a block of each code language runs verbatim (any other language, ``text`` or ``toml``, is not code)
RUNNERS = {"python": ("{python}",), "bash": ("bash", "-euo", "pipefail"), "sh": ("bash", "-euo", "pipefail")}


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


def offline_env(python: str | Path) -> dict[str, str]:
    """This process's environment, offline (no hub), headless plots, ``python``'s venv first on ``PATH``."""
    path = f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "MPLBACKEND": "Agg", "PATH": path}


def run_block(block: Block, python: str | Path, cwd: Path, script: Path) -> subprocess.CompletedProcess:
    """Run a code block verbatim with ``python`` (saved to ``script``, run in ``cwd`` with :func:`offline_env`)."""
    script.write_text(block.code, encoding="utf-8")
    cmd = [part.format(python=python) for part in RUNNERS[block.lang]] + [str(script)]
    return subprocess.run(cmd, cwd=cwd, env=offline_env(python), capture_output=True, text=True, timeout=900)
