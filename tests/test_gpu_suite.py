"""``benchmarks/gpu_suite.py --smoke``: a row set per package, every number finite (timings never asserted)."""

import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_suite  # noqa: E402


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_table_formats_ratio_and_missing_memory():
    text = gpu_suite.table("cpu", [gpu_suite.Row("p", "m, ms", 2.0, 5.0, 1.5)])
    assert _cells(text.splitlines()[2]) == ["cpu", "p", "m, ms", "2", "5", "2.5", "1.5", "n/a"]


def test_smoke_run_writes_one_table_with_every_package(tmp_path):
    out = tmp_path / "suite.md"
    env_cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu_suite.py"), "--smoke", "--out", str(out)]
    subprocess.run(env_cmd, check=True, cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in out.read_text().splitlines() if line.startswith("|")]
    header, rows = _cells(lines[0]), [dict(zip(_cells(lines[0]), _cells(line))) for line in lines[2:]]
    assert header[:6] == ["device", "package", "metric", "ours", "baseline", "ratio"]
    assert {r["package"] for r in rows} == set(gpu_suite.PACKAGES) == set(gpu_suite.CASES)
    assert all(r["device"].startswith("CPU") for r in rows)
    assert not any(r["metric"].startswith("GPU tests") for r in rows)  # --smoke never runs the gpu tests
    for r in rows:
        values = [float(r[k]) for k in ("ours", "baseline", "ratio")]
        assert all(math.isfinite(v) and v > 0 for v in values), r
        assert math.isclose(values[2], values[1] / values[0], rel_tol=1e-2), r
