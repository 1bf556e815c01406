import json

import pytest
import torch

from labcore import quickstart
from labcore.claims import CONTRADICTS, NOT_SHOWN, SUPPORTS, Claim, claim_from, verdict
from labcore.digits import DigitClassifier
from labcore.report import write_report


def _claim(**kw):
    base = dict(claim="c", measure="m", ours=0.5, baseline=0.25, baseline_name="b", verdict=SUPPORTS)
    return Claim(**{**base, **kw})


def test_verdict_follows_the_comparison():
    assert verdict(True) == SUPPORTS
    assert verdict(False) == NOT_SHOWN
    assert verdict(False, scale_limited=False) == CONTRADICTS


def test_claim_rejects_unknown_verdicts_and_unexplained_failures():
    with pytest.raises(ValueError, match="verdict must be one of"):
        _claim(verdict="great")
    with pytest.raises(ValueError, match="needs a note"):
        _claim(verdict=NOT_SHOWN)
    with pytest.raises(ValueError, match="measure"):
        _claim(measure=" ")
    assert claim_from({"claim": _claim().as_dict()}) == _claim()
    assert claim_from({}) is None


def _results(tmp_path):
    (tmp_path / "pkg").mkdir()
    claim = _claim(verdict=NOT_SHOWN, note="too small", figures=["a.png"]).as_dict()
    ok = {"status": "ok", "metrics": {"x": 0.123456, "d": {"a": 1}}, "claim": claim, "seconds": 2.0,
          "cpu_seconds": 1.5, "figures": ["a.png"]}
    bare = {"status": "ok", "metrics": {}, "claim": None, "seconds": 1.0, "cpu_seconds": 1.0, "figures": []}
    failed = {"status": "failed", "error": "Traceback", "claim": None, "seconds": 1.0, "cpu_seconds": 1.0,
              "figures": []}
    return {"pkg": ok, "bare": bare, "broken": failed}


def test_report_opens_with_the_summary_and_links_every_figure(tmp_path):
    results = _results(tmp_path)
    md = write_report(tmp_path, results, wall_seconds=3.0, jobs=2).read_text()
    summary = md[: md.index("## pkg")]
    assert "| [pkg](#pkg) | c | m | 0.5 | 0.25 (b) | **does not show at this scale** |" in summary
    assert "**no claim row**" in summary and "**FAILED**" in summary
    assert "[a.png](pkg/a.png)" in summary and "too small" in md
    html = (tmp_path / "REPORT.html").read_text()
    assert "<img src='pkg/a.png'" in html and "does not show at this scale" in html and "too small" in html
    assert json.loads((tmp_path / "report.json").read_text())["demos"]["pkg"]["metrics"]["x"] == 0.123456


def test_differences_ignore_timings_but_not_numbers(tmp_path):
    a = _results(tmp_path)
    b = json.loads(json.dumps(a))
    b["pkg"]["seconds"] = 99.0
    a["pkg"]["metrics"]["decode seconds (this machine)"], b["pkg"]["metrics"]["decode seconds (this machine)"] = 1, 2
    assert quickstart.differences(quickstart.numbers(a), quickstart.numbers(b)) == []
    b["pkg"]["metrics"]["d"]["a"] = 2
    assert quickstart.differences(quickstart.numbers(a), quickstart.numbers(b)) == ["pkg.metrics.d.a: 1 != 2"]


def test_digit_classifier_scores_and_validates():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 1, 2, 2, generator=g) * 3
    labels = torch.arange(60) % 3
    images = centres[labels] + 0.1 * torch.randn(60, 1, 2, 2, generator=g)
    clf = DigitClassifier(images, labels)
    assert clf.accuracy(images, labels) == 1.0
    assert clf.accuracy(images, (labels + 1) % 3) == 0.0
    with pytest.raises(ValueError, match="shape"):
        clf.predict(torch.zeros(2, 1, 3, 3))
    with pytest.raises(ValueError, match="NaN"):
        clf.predict(torch.full((2, 1, 2, 2), float("nan")))
