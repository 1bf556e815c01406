"""Release rehearsal helpers: what installing one built package adds over torch, offline.

A clean venv with only torch is built cheaply and exactly: a ``.pth`` line makes a directory of
symlinks visible, holding the installed files of torch's dependency closure and nothing else (read
from the distributions' metadata). The third-party dependencies a built wheel declares are resolved
the same way (their installed copies made visible through a second ``.pth``), so pip installs our
packages from the built files with ``--no-index`` and nothing is downloaded; an import that the
metadata forgot fails there, as it would for a user. Sizes are the installed files' bytes.
"""

from __future__ import annotations

import email
import os
import re
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requires(reqs: list[str], extras: set[str]) -> list[Requirement]:
    out = []
    for text in reqs:
        req = Requirement(text)
        marker: Marker | None = req.marker
        if marker is None or any(marker.evaluate({"extra": e}) for e in (extras or {""})):
            out.append(req)
    return out


def wheel_metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(zf.read(name))


def wheel_requires(wheel: Path) -> list[str]:
    return wheel_metadata(wheel).get_all("Requires-Dist") or []


def pyproject_requires(project_dir: Path) -> tuple[str, list[str]]:
    """``(name, Requires-Dist lines)`` of a source tree's ``pyproject.toml`` (extras as markers)."""
    import tomllib

    project = tomllib.loads((project_dir / "pyproject.toml").read_text())["project"]
    reqs = list(project.get("dependencies", []))
    for extra, items in project.get("optional-dependencies", {}).items():
        reqs += [f'{r}; extra == "{extra}"' for r in items]
    return project["name"], reqs


def wheel_size(wheel: Path) -> int:
    """Bytes of the files a wheel installs."""
    with zipfile.ZipFile(wheel) as zf:
        return sum(i.file_size for i in zf.infolist())


def closure(roots: list[tuple[str, set[str]]], ours: dict[str, list[str]]) -> tuple[set[str], list[str]]:
    """Installed third-party distributions needed by ``roots`` (``(name, extras)``), following our own
    projects through ``ours`` (canonical name -> their ``Requires-Dist`` lines); also the names not installed."""
    seen, missing, todo = set(), [], list(roots)
    done: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        key = (canonical(name), frozenset(extras))
        if key in done:
            continue
        done.add(key)
        if key[0] in ours:
            reqs = ours[key[0]]
        else:
            try:
                dist = metadata.distribution(name)
            except metadata.PackageNotFoundError:
                missing.append(name)
                continue
            seen.add(canonical(dist.metadata["Name"]))
            reqs = dist.requires or []
        for req in _requires(reqs, set(extras)):
            todo.append((req.name, set(req.extras)))
    return seen, sorted(set(missing))


def dist_files(name: str) -> list[Path]:
    dist = metadata.distribution(name)
    return [Path(dist.locate_file(f)) for f in dist.files or []]


def dist_size(names: set[str]) -> int:
    """Bytes of the installed files of these distributions."""
    return sum(p.stat().st_size for n in names for p in dist_files(n) if p.is_file())


def symlink_site(names: set[str], site: Path) -> Path:
    """A directory holding symlinks to the top-level entries (packages, modules, .dist-info) of ``names``."""
    site.mkdir(parents=True, exist_ok=True)
    for name in names:
        dist = metadata.distribution(name)
        base = Path(dist.locate_file(""))
        for f in dist.files or []:
            top = Path(f).parts[0]
            if top == ".." or top.endswith(".data"):
                continue
            link = site / top
            if not link.exists() and not link.is_symlink():
                link.symlink_to(base / top)
    return site


def make_venv(venv: Path, visible: list[Path]) -> Path:
    """A venv (no pip of its own) seeing only ``visible`` directories besides the standard library."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "_rehearsal.pth").write_text("".join(f"{d}\n" for d in visible))
    return python


def pip_install(python: Path, find_links: Path, spec: str) -> None:
    """``pip install --no-index --find-links`` into ``python``'s venv, with this interpreter's pip."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-index",
                    "--no-build-isolation", "--find-links", str(find_links), spec], check=True, env=env)
