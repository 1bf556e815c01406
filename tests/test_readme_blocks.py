"""Every fenced code block of the READMEs and CONTRIBUTING.md runs verbatim (issue #17 item 6).

A ```python block runs as a script, a ```bash/```sh block with ``bash -euo pipefail``: each saved to a file and
run in a fresh subprocess, in an empty temporary directory, offline (``HF_HUB_OFFLINE=1``), with this
interpreter's ``python`` and console scripts first on ``PATH``. A block that must not run here says why in an
HTML comment on the line right before its fence, ``<!-- skip: needs CUDA and the 7B checkpoint -->``; the
reason is mandatory and is the skip's message. Any other language (``text``, ``toml``, ...) is not code, and
every fence names its language. Test ids are ``README:line`` (the opening fence).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "shared" / "README.md",
        *sorted(ROOT.glob("packages/*/README.md"))]
CODE = {"python": ["{python}"], "bash": ["bash", "-euo", "pipefail"], "sh": ["bash", "-euo", "pipefail"]}
FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)")
SKIP = re.compile(r"^\s*<!--\s*skip:(.*?)-->\s*$")


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # the opening fence's line number (1-based)
    lang: str
    code: str
    skip: str | None  # the reason given by a `<!-- skip: ... -->` line right before the fence

    @property
    def id(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def blocks(doc: Path) -> list[Block]:
    """The fenced code blocks of one Markdown file; raises ValueError on an unclosed fence or empty skip reason."""
    lines = doc.read_text(encoding="utf-8").splitlines()
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
        found.append(Block(doc, start + 1, m.group(2).lower(), "\n".join(lines[start + 1 : end]) + "\n",
                           skip.group(1).strip() if skip else None))
        i = end + 1
    return found


ALL = [b for doc in DOCS if doc.exists() for b in blocks(doc)]
RUNNABLE = [b for b in ALL if b.lang in CODE]


def test_every_fence_names_its_language():
    bare = [b.id for b in ALL if not b.lang]
    assert not bare, "fences without a language (say `text` for output): " + ", ".join(bare)


def test_parser_reads_skip_markers(tmp_path):
    doc = tmp_path / "README.md"
    doc.write_text("<!-- skip: needs CUDA -->\n```python\nprint(1)\n```\n\n```bash\necho 2\n```\n")
    assert [(b.line, b.lang, b.code, b.skip) for b in blocks(doc)] == [
        (2, "python", "print(1)\n", "needs CUDA"), (6, "bash", "echo 2\n", None)]
    doc.write_text("<!-- skip: -->\n```python\nprint(1)\n```\n")
    with pytest.raises(ValueError, match="needs its reason"):
        blocks(doc)


def skip_reason(block: Block) -> str | None:
    """Why ``block`` does not run here: its marker's reason, or its package is not installed."""
    package = block.doc.parent.name if block.doc.parent.parent.name == "packages" else None
    if package and find_spec(package) is None:
        return f"{package} is not installed"
    return block.skip


def run(block: Block, tmp: Path) -> subprocess.CompletedProcess:
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "MPLBACKEND": "Agg", "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    script, work = tmp / "block", tmp / "work"
    script.write_text(block.code, encoding="utf-8")
    work.mkdir()
    cmd = [part.format(python=sys.executable) for part in CODE[block.lang]] + [str(script)]
    return subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def started(request, tmp_path_factory):
    """Every selected block that runs, started at the first one's test, two at a time (CI has 2 cores; the
    blocks are dominated by single-threaded imports): each test then waits for its own."""
    chosen = [item.callspec.params["block"] for item in request.session.items
              if getattr(item, "originalname", None) == "test_readme_block_runs"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {b.id: pool.submit(run, b, tmp_path_factory.mktemp("block")) for b in chosen if not skip_reason(b)}
        yield futures
        for f in futures.values():
            f.cancel()


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_readme_block_runs(block, started):
    reason = skip_reason(block)
    if reason:
        pytest.skip(reason)
    proc = started[block.id].result()
    assert proc.returncode == 0, (
        f"{block.id} ({block.lang}) exited with {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}"
        f"\n--- stderr\n{proc.stderr[-6000:]}")
