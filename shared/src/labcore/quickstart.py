"""The collection's quick start: run every installed package's tiny demo and write one report.

Packages register a demo under the entry-point group ``labcore.demos`` as a function
``main(out_dir: pathlib.Path) -> dict`` that writes its PNGs into ``out_dir`` and returns its
headline numbers. The report goes to ``<out>/REPORT.md`` and ``<out>/report.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from labcore.logging import get_logger

log = get_logger("quickstart")


def discover() -> dict[str, Any]:
    """Installed demos by package name (labcore's own first)."""
    eps = {ep.name: ep for ep in entry_points(group="labcore.demos")}
    return dict(sorted(eps.items(), key=lambda kv: (kv[0] != "labcore", kv[0])))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def write_report(out: Path, results: dict[str, dict[str, Any]]) -> Path:
    lines = ["# Quick-start report", ""]
    for name, res in results.items():
        lines += [f"## {name}", "", f"status: **{res['status']}**, {res['seconds']:.1f} s", ""]
        if res.get("metrics"):
            lines += ["| metric | value |", "|---|---|"]
            lines += [f"| {k} | {_fmt(v)} |" for k, v in res["metrics"].items()]
            lines.append("")
        lines += [f"![{Path(f).name}]({Path(f).relative_to(out)})" for f in res.get("figures", [])]
        if res.get("error"):
            lines += ["```", res["error"].rstrip(), "```"]
        lines.append("")
    (out / "report.json").write_text(json.dumps(results, indent=1, default=str))
    path = out / "REPORT.md"
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labcore-quickstart", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs"), help="report directory (default: runs)")
    parser.add_argument("--only", nargs="*", default=None, help="run only these packages' demos")
    args = parser.parse_args(argv)
    demos = discover()
    if args.only:
        unknown = set(args.only) - set(demos)
        if unknown:
            parser.error(f"no demo registered for {sorted(unknown)}; installed: {sorted(demos)}")
        demos = {k: v for k, v in demos.items() if k in args.only}
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    for name, ep in demos.items():
        out_dir = args.out / name
        out_dir.mkdir(parents=True, exist_ok=True)
        log.info("running the %s demo into %s", name, out_dir)
        start = time.perf_counter()
        try:
            metrics = ep.load()(out_dir) or {}
            res: dict[str, Any] = {"status": "ok", "metrics": metrics}
        except Exception:
            res = {"status": "failed", "error": traceback.format_exc()}
            log.error("%s demo failed:\n%s", name, res["error"])
        res["seconds"] = time.perf_counter() - start
        res["figures"] = [str(p) for p in sorted(out_dir.rglob("*.png"))]
        results[name] = res
        log.info("%s: %s in %.1f s %s", name, res["status"], res["seconds"], res.get("metrics", ""))
    report = write_report(args.out, results)
    log.info("report written to %s", report)
    return 0 if all(r["status"] == "ok" for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
