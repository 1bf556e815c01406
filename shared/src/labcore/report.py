"""The quick-start report, as Markdown and as plain HTML from the same data.

Both open with the one-screen summary (package, claim, our number, baseline, verdict) and a line of
figure links per package, then one section per demo: its claim, note, numbers and figures.
"""

from __future__ import annotations

import html
import json
import platform
from pathlib import Path
from typing import Any

MISSING = "no claim row"


def fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {fmt(x)}" for k, x in v.items())
    if isinstance(v, list):
        return ", ".join(fmt(x) for x in v)
    return str(v)


def summary_rows(results: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    """One row per demo; failed demos and demos without a claim row say so in the verdict column."""
    rows = []
    for name, res in results.items():
        c = res.get("claim")
        if res["status"] != "ok":
            rows.append({"package": name, "claim": "", "measure": "", "ours": "", "baseline": "", "verdict": "FAILED"})
        elif not c:
            rows.append({"package": name, "claim": "", "measure": "", "ours": "", "baseline": "", "verdict": MISSING})
        else:
            rows.append(
                {
                    "package": name,
                    "claim": c["claim"],
                    "measure": c["measure"],
                    "ours": fmt(c["ours"]),
                    "baseline": f"{fmt(c['baseline'])} ({c['baseline_name']})",
                    "verdict": c["verdict"],
                }
            )
    return rows


def _header(results: dict[str, dict[str, Any]], wall_seconds: float, jobs: int) -> str:
    ok = sum(r["status"] == "ok" for r in results.values())
    cpu = sum(r["cpu_seconds"] for r in results.values())
    return (
        f"{ok} of {len(results)} demos ran; {wall_seconds:.0f} s wall with {jobs} demo(s) at a time, "
        f"{cpu:.0f} s CPU in all (one thread per demo; {platform.machine()}, {platform.system()}). "
        "Numbers are seeded and step-budgeted: they do not depend on the machine's load; times do."
    )


def markdown(results: dict[str, dict[str, Any]], wall_seconds: float, jobs: int) -> str:
    lines = ["# Quick-start report", "", _header(results, wall_seconds, jobs), ""]
    lines += ["| package | paper's claim | measure | ours | baseline | verdict |", "|---|---|---|---|---|---|"]
    for r in summary_rows(results):
        cells = [f"[{r['package']}](#{r['package']})", r["claim"], r["measure"], r["ours"], r["baseline"]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + f" | **{r['verdict']}** |")
    lines += ["", "Figures:", ""]
    for name, res in results.items():
        links = ", ".join(f"[{Path(f).name}]({name}/{f})" for f in res.get("figures", []))
        lines.append(f"- {name}: {links or 'none'}")
    lines.append("")
    for name, res in results.items():
        lines += [f"## {name}", "", f"status: **{res['status']}**, {res['seconds']:.1f} s wall, "
                  f"{res['cpu_seconds']:.1f} s CPU", ""]
        if c := res.get("claim"):
            lines += [f"**Claim.** {c['claim']}", "", f"**Verdict: {c['verdict']}.** {c['measure']}: "
                      f"{fmt(c['ours'])} vs {fmt(c['baseline'])} ({c['baseline_name']}). {c['note']}", ""]
        if res.get("metrics"):
            lines += ["| metric | value |", "|---|---|"]
            lines += [f"| {k} | {fmt(v).replace('|', '/')} |" for k, v in res["metrics"].items()]
            lines.append("")
        lines += [f"![{Path(f).name}]({name}/{f})" for f in res.get("figures", [])]
        if res.get("error"):
            lines += ["```", res["error"].rstrip(), "```"]
        lines.append("")
    return "\n".join(lines)


def to_html(results: dict[str, dict[str, Any]], wall_seconds: float, jobs: int) -> str:
    e = html.escape
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Quick-start report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}img{max-width:100%;margin:4px}</style>",
        "</head><body><h1>Quick-start report</h1>",
        f"<p>{e(_header(results, wall_seconds, jobs))}</p>",
        "<table><tr><th>package</th><th>paper's claim</th><th>measure</th><th>ours</th><th>baseline</th>"
        "<th>verdict</th></tr>",
    ]
    for r in summary_rows(results):
        cells = "".join(f"<td>{e(r[k])}</td>" for k in ("claim", "measure", "ours", "baseline"))
        out.append(f"<tr><td><a href='#{e(r['package'])}'>{e(r['package'])}</a></td>{cells}"
                   f"<td><b>{e(r['verdict'])}</b></td></tr>")
    out.append("</table><h3>Figures</h3><ul>")
    for name, res in results.items():
        links = ", ".join(f"<a href='{e(name)}/{e(f)}'>{e(Path(f).name)}</a>" for f in res.get("figures", []))
        out.append(f"<li>{e(name)}: {links or 'none'}</li>")
    out.append("</ul>")
    for name, res in results.items():
        out.append(f"<h2 id='{e(name)}'>{e(name)}</h2><p>status: <b>{e(res['status'])}</b>, "
                   f"{res['seconds']:.1f} s wall, {res['cpu_seconds']:.1f} s CPU</p>")
        if c := res.get("claim"):
            out.append(f"<p><b>Claim.</b> {e(c['claim'])}</p><p><b>Verdict: {e(c['verdict'])}.</b> "
                       f"{e(c['measure'])}: {e(fmt(c['ours']))} vs {e(fmt(c['baseline']))} "
                       f"({e(c['baseline_name'])}). {e(c['note'])}</p>")
        if res.get("metrics"):
            out.append("<table>" + "".join(f"<tr><td>{e(str(k))}</td><td>{e(fmt(v))}</td></tr>"
                                           for k, v in res["metrics"].items()) + "</table>")
        out += [f"<img src='{e(name)}/{e(f)}' alt='{e(Path(f).name)}'>" for f in res.get("figures", [])]
        if res.get("error"):
            out.append(f"<pre>{e(res['error'])}</pre>")
    out.append("</body></html>")
    return "\n".join(out)


def write_report(out: Path, results: dict[str, dict[str, Any]], wall_seconds: float = 0.0, jobs: int = 1) -> Path:
    """Write ``REPORT.md``, ``REPORT.html`` and ``report.json`` into ``out``; returns the Markdown path."""
    meta = {"wall_seconds": wall_seconds, "jobs": jobs, "demos": results}
    (out / "report.json").write_text(json.dumps(meta, indent=1, default=str))
    (out / "REPORT.html").write_text(to_html(results, wall_seconds, jobs))
    path = out / "REPORT.md"
    path.write_text(markdown(results, wall_seconds, jobs))
    return path
