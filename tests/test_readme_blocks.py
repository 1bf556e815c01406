"""Every fenced code block of the READMEs and CONTRIBUTING.md runs verbatim (issue #17 item 6).

A ```python block runs as a script, a ```bash/```sh block with ``bash -euo pipefail``: each saved to a file and
run in a fresh subprocess, in an empty temporary directory, offline (``HF_HUB_OFFLINE=1``), with this
interpreter's ``python`` and console scripts first on ``PATH``. A block that must not run here says why in an
HTML comment on the line right before its fence, ``<!-- skip: needs CUDA and the 7B checkpoint -->``; the
reason is mandatory and is the skip's message. Any other language (``text``, ``toml``, ...) is not code, and
every fence names its language. Test ids are ``README:line`` (the opening fence).
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from importlib.util import find_spec
from pathlib import Path

import pytest

from labcore.markdown import RUNNERS, Block, blocks, run_block

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "shared" / "README.md",
        *sorted(ROOT.glob("packages/*/README.md"))]
ALL = [b for doc in DOCS if doc.exists() for b in blocks(doc)]


def block_id(block: Block) -> str:
    return f"{block.doc.relative_to(ROOT)}:{block.line}"

RUNNABLE = [b for b in ALL if b.lang in RUNNERS]


def test_every_fence_names_its_language():
    bare = [block_id(b) for b in ALL if not b.lang]
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
    work = tmp / "work"
    work.mkdir()
    return run_block(block, sys.executable, work, tmp / "block")


@pytest.fixture(scope="module")
def started(request, tmp_path_factory):
    """Every selected block that runs, started at the first one's test, two at a time (CI has 2 cores; the
    blocks are dominated by single-threaded imports): each test then waits for its own."""
    chosen = [item.callspec.params["block"] for item in request.session.items
              if getattr(item, "originalname", None) == "test_readme_block_runs"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {block_id(b): pool.submit(run, b, tmp_path_factory.mktemp("block"))
                   for b in chosen if not skip_reason(b)}
        yield futures
        for f in futures.values():
            f.cancel()


@pytest.mark.parametrize("block", RUNNABLE, ids=[block_id(b) for b in RUNNABLE])
def test_readme_block_runs(block, started):
    reason = skip_reason(block)
    if reason:
        pytest.skip(reason)
    proc = started[block_id(block)].result()
    assert proc.returncode == 0, (
        f"{block_id(block)} ({block.lang}) exited with {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}"
        f"\n--- stderr\n{proc.stderr[-6000:]}")
