"""Provenance of golden fixtures: the JSON written next to outputs of official code (``tests/golden/``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def git_commit(checkout: str | Path) -> str:
    """The commit id of a git checkout, or ``"unknown"`` when it is not one."""
    out = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def write_golden_meta(path: str | Path, repository: str, checkout: str | Path, command: str, **fields) -> None:
    """``path``: the official repository and commit, the command that made the fixtures, torch and Python
    versions, then ``fields`` (the generator's settings)."""
    import torch

    meta = {
        "official_repository": repository,
        "official_commit": git_commit(checkout),
        "command": command,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        **fields,
    }
    Path(path).write_text(json.dumps(meta, indent=1) + "\n")
