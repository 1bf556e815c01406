"""The collection's quick start: run every installed package's tiny demo and write one report.

Packages register a demo under the entry-point group ``labcore.demos`` as a function
``main(out_dir: pathlib.Path) -> dict`` that writes its PNGs into ``out_dir`` and returns its
numbers and its claim row (``"claim": labcore.claims.Claim(...).as_dict()``). Demos are step-budgeted and seeded;
each runs in a fresh process on one thread, so its numbers do not depend on the machine's core
count or load. The report goes to ``<out>/REPORT.md``, ``<out>/REPORT.html`` and ``<out>/report.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from labcore.logging import get_logger

log = get_logger("quickstart")


def discover() -> dict[str, Any]:
    """Installed demos by package name (labcore's own first)."""
    eps = {ep.name: ep for ep in entry_points(group="labcore.demos")}
    return dict(sorted(eps.items(), key=lambda kv: (kv[0] != "labcore", kv[0])))


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def run_demo(name: str, out_dir: Path) -> dict[str, Any]:
    """Run one registered demo on one thread; its numbers, claim row, figures, wall and CPU seconds."""
    import torch

    from labcore.claims import claim_from

    torch.set_num_threads(1)
    out_dir.mkdir(parents=True, exist_ok=True)
    start, cpu = time.perf_counter(), time.process_time()
    try:
        result = dict(discover()[name].load()(out_dir) or {})
        claim = claim_from(result)
        result.pop("claim", None)
        res: dict[str, Any] = {"status": "ok", "metrics": _jsonable(result), "claim": claim and claim.as_dict()}
    except Exception:
        res = {"status": "failed", "error": traceback.format_exc(), "claim": None}
        log.error("%s demo failed:\n%s", name, res["error"])
    res["seconds"] = time.perf_counter() - start
    res["cpu_seconds"] = time.process_time() - cpu
    res["figures"] = [str(p.relative_to(out_dir)) for p in sorted(out_dir.rglob("*.png"))]
    log.info("%s: %s in %.1f s (%.1f s CPU)", name, res["status"], res["seconds"], res["cpu_seconds"])
    return res


def run_in_fresh_process(name: str, out_dir: Path) -> dict[str, Any]:
    """:func:`run_demo` in a new spawned interpreter (no state leaks between demos, on every Python); a demo
    whose process dies (a crash, the OOM killer) is reported as failed instead of hanging the quick start."""
    start = time.perf_counter()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as one:
        try:
            return one.submit(run_demo, name, out_dir).result()
        except BrokenProcessPool as err:
            log.error("%s demo: its process died (%s)", name, err)
            error = f"the demo's process died: {err}"
    return {
        "status": "failed",
        "error": error,
        "claim": None,
        "seconds": time.perf_counter() - start,
        "cpu_seconds": 0.0,
        "figures": [],
    }


def numbers(report: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What must be identical between two runs: each demo's status, numbers and claim row. Timings are not
    numbers of the demo: the runner's own and any metric whose name contains ``seconds`` are left out."""

    def keep(v: dict[str, Any]) -> dict[str, Any]:
        metrics = {m: x for m, x in (v.get("metrics") or {}).items() if "seconds" not in m}
        return {"status": v.get("status"), "metrics": metrics, "claim": v.get("claim")}

    return {k: keep(v) for k, v in report.items()}


def differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Paths (``pkg.metrics.key``) where two :func:`numbers` trees differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += differences(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [f"{prefix.rstrip('.')}: {a!r} != {b!r}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labcore-quickstart", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs"), help="report directory (default: runs)")
    parser.add_argument("--only", nargs="*", default=None, help="run only these packages' demos")
    parser.add_argument(
        "--jobs", type=int, default=min(2, os.cpu_count() or 1), help="demos run at once, one thread each (default: 2)"
    )
    parser.add_argument(
        "--compare", type=Path, default=None, help="an earlier report.json: exit 1 unless every number is identical"
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    if args.compare and not args.compare.is_file():
        parser.error(f"--compare {args.compare}: no such report.json")
    demos = discover()
    if args.only:
        unknown = set(args.only) - set(demos)
        if unknown:
            parser.error(f"no demo registered for {sorted(unknown)}; installed: {sorted(demos)}")
        demos = {k: v for k, v in demos.items() if k in args.only}
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"  # inherited by the demo processes: NumPy/scikit-learn on one thread too
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = {name: pool.submit(run_in_fresh_process, name, args.out / name) for name in demos}
        results = {name: f.result() for name, f in futures.items()}
    from labcore.report import write_report

    report = write_report(args.out, results, wall_seconds=time.perf_counter() - start, jobs=args.jobs)
    log.info("report written to %s (and REPORT.html)", report)
    ok = all(r["status"] == "ok" for r in results.values())
    if args.compare:
        earlier = json.loads(args.compare.read_text())["demos"]
        diff = differences(numbers({k: v for k, v in earlier.items() if k in results}), numbers(results))
        for line in diff:
            log.error("differs from %s: %s", args.compare, line)
        log.info("numbers identical to %s: %s", args.compare, not diff)
        ok = ok and not diff
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
