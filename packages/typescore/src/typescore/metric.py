"""TypeScore over a set of (image, instruction) pairs: per-sample breakdown, aggregate, bootstrap interval."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from typescore.extract import Extractor, ImageLike, extract_all
from typescore.normalize import Normalizer
from typescore.prompts import PromptItem
from typescore.similarity import SIMILARITIES, best_matching_span, ensemble_similarity, similarities


@dataclass(frozen=True)
class SampleScore:
    """Scores of one image: the instructed and extracted text (raw and normalised) and each similarity."""

    id: str
    prompt: str
    instructed: str
    extracted: str
    instructed_norm: str
    extracted_norm: str
    ned: float
    sw: float
    nlcs: float
    ensemble: float
    span: str = ""  # normalised extracted text that best matches the instructed text (``best_matching_span``)
    span_ensemble: float = 0.0  # ensemble similarity of the instructed text and ``span``
    extra_text: str = ""  # normalised extracted text outside ``span``: unrequested scene text
    meta: dict = field(default_factory=dict, compare=False)  # prompt metadata (style, category, ...)

    def row(self) -> dict:
        """A flat record (metadata as columns) for CSV/JSON output."""
        out = {k: v for k, v in asdict(self).items() if k != "meta"}
        return {**out, "words": len(self.instructed_norm.split()), **self.meta}


def bootstrap_ci(
    values: Sequence[float], confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (resamples drawn as one ``(resamples, n)`` index array)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        raise ValueError(f"a bootstrap interval needs at least 2 scores, got {x.size}")
    if not np.isfinite(x).all():
        raise ValueError("scores contain NaN or inf; every per-sample score must be a number in [0, 1]")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    means = x[np.random.default_rng(seed).integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


def paired_difference_ci(
    a: Sequence[float], b: Sequence[float], confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of ``a − b`` over paired samples (same prompts) and its percentile bootstrap interval.

    Two models are *resolved* by a metric when the interval excludes 0 (paper Sec. 4 compares this resolution of
    TypeScore and CLIPScore).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired scores must have the same shape, got {a.shape} and {b.shape}")
    d = a - b
    return (float(d.mean()), *bootstrap_ci(d, confidence, resamples, seed))


LENGTH_BINS = ((1, 1), (2, 3), (4, 7), (8, 15), (16, None))  # instructed words, for the length breakdown


def _length_bin(words: int) -> str:
    for lo, hi in LENGTH_BINS:
        if words >= lo and (hi is None or words <= hi):
            return f"{lo}+" if hi is None else str(lo) if lo == hi else f"{lo}-{hi}"
    return "0"


MODES = ("whole", "span")


@dataclass
class TypeScoreResult:
    """All samples plus the aggregate: TypeScore = mean per-sample ensemble similarity (paper Sec. 3).

    ``mode="whole"`` (default, the paper's definition) compares the instructed text with all extracted text;
    ``mode="span"`` (ours) with its best-matching span only, unrequested scene text being reported separately
    (``extra_text``, ``mean_extra_chars``). Both are always in :meth:`summary`. ``ci`` is ``None`` for a single
    sample (no interval can be estimated from one score).
    """

    samples: list[SampleScore]
    confidence: float = 0.95
    mode: str = "whole"
    provenance: dict = field(default_factory=dict)
    ci: tuple[float, float] | None = field(init=False)

    def __post_init__(self) -> None:
        if not self.samples:
            raise ValueError("a TypeScore needs at least one sample")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        self.ci = bootstrap_ci(self.per_sample(), self.confidence) if len(self.samples) > 1 else None

    def per_sample(self, mode: str | None = None) -> list[float]:
        """Per-sample scores under ``mode`` (default: this result's)."""
        key = "span_ensemble" if (mode or self.mode) == "span" else "ensemble"
        return [getattr(s, key) for s in self.samples]

    @property
    def score(self) -> float:
        return float(np.mean(self.per_sample()))

    def means(self) -> dict[str, float]:
        """Mean of each similarity and of the ensemble (whole extracted text)."""
        return {k: float(np.mean([getattr(s, k) for s in self.samples])) for k in (*SIMILARITIES, "ensemble")}

    def breakdown(self, key: str) -> dict[str, dict]:
        """Score by a metadata field (``style``, ``category``, ...) or ``"length"`` (instructed words, binned):
        ``{value: {"n", "typescore", "ci_low", "ci_high"}}``; samples without the field are left out."""
        groups: dict[str, list[float]] = {}
        for s, v in zip(self.samples, self.per_sample()):
            label = _length_bin(len(s.instructed_norm.split())) if key == "length" else s.meta.get(key)
            if label not in (None, ""):
                groups.setdefault(str(label), []).append(v)
        out = {}
        for label, vals in sorted(groups.items()):
            lo, hi = bootstrap_ci(vals, self.confidence) if len(vals) > 1 else (None, None)
            out[label] = {"n": len(vals), "typescore": float(np.mean(vals)), "ci_low": lo, "ci_high": hi}
        return out

    def breakdowns(self) -> dict[str, dict[str, dict]]:
        """:meth:`breakdown` by length and by every metadata field the samples carry."""
        keys = sorted({k for s in self.samples for k, v in s.meta.items() if isinstance(v, (str, int))})
        return {k: self.breakdown(k) for k in ("length", *keys)}

    def summary(self) -> dict:
        return {
            "typescore": self.score,
            "mode": self.mode,
            "ci_low": self.ci[0] if self.ci else None,
            "ci_high": self.ci[1] if self.ci else None,
            "confidence": self.confidence,
            "n": len(self.samples),
            "typescore_whole": float(np.mean(self.per_sample("whole"))),
            "typescore_span": float(np.mean(self.per_sample("span"))),
            "mean_extra_chars": float(np.mean([len(s.extra_text) for s in self.samples])),
            **{f"mean_{k}": v for k, v in self.means().items() if k != "ensemble"},
        }

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``scores.csv`` (per sample, metadata as columns) and ``scores.json`` (provenance, summary,
        breakdowns, samples) atomically; returns the paths."""
        from labcore.checkpoint import atomic_write_text  # imports torch: keep it off `import typescore`

        out = Path(out_dir)
        rows = [s.row() for s in self.samples]
        columns = list(dict.fromkeys(k for r in rows for k in r))
        table = io.StringIO(newline="")
        writer = csv.DictWriter(table, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(out / "scores.csv", table.getvalue())
        payload = {
            "provenance": self.provenance,
            "summary": self.summary(),
            "breakdowns": self.breakdowns(),
            "samples": rows,
        }
        atomic_write_text(out / "scores.json", json.dumps(payload, indent=2, ensure_ascii=False))
        return {"csv": out / "scores.csv", "json": out / "scores.json"}


class TypeScore:
    """The metric: extract text from each image, normalise, compare with the instructed text, aggregate.

    ``extractor`` is any object with ``extract(image) -> str`` (see :mod:`typescore.extract`); ``mode`` picks the
    headline score (``"whole"``, the paper's, or ``"span"``, see :class:`TypeScoreResult`).
    """

    def __init__(
        self,
        extractor: Extractor | None = None,
        normalizer: Normalizer | None = None,
        confidence: float = 0.95,
        mode: str = "whole",
    ):
        if not 0 < confidence < 1:
            raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.extractor = extractor
        self.normalizer = normalizer or Normalizer()
        self.confidence = confidence
        self.mode = mode

    def provenance(self) -> dict:
        """What produced a score: package and extractor versions, normalisation, mode."""
        from typescore.provenance import describe

        return describe(self.extractor, self.normalizer, self.mode)

    def check_items(self, items: Sequence[PromptItem]) -> None:
        """Refuse prompts whose instructed text normalises to nothing (cheap: run it before generating or OCR)."""
        for it in items:
            if not self.normalizer(it.text):
                raise ValueError(f"instructed text of prompt {it.id!r} is empty after normalisation: {it.text!r}")

    def score_sample(
        self, instructed: str, extracted: str, id: str = "0", prompt: str = "", meta: dict | None = None
    ) -> SampleScore:
        """Score one pair of strings (no image involved)."""
        a, b = self.normalizer(instructed), self.normalizer(extracted)
        if not a:
            raise ValueError(f"instructed text of sample {id!r} is empty after normalisation: {instructed!r}")
        start, end, _ = best_matching_span(a, b)
        span, extra = b[start:end], " ".join((b[:start].strip(), b[end:].strip())).strip()
        return SampleScore(
            id,
            prompt,
            instructed,
            extracted,
            a,
            b,
            **similarities(a, b),
            span=span,
            span_ensemble=ensemble_similarity(a, span),
            extra_text=extra,
            meta=dict(meta or {}),
        )

    def score_texts(
        self, instructed: Sequence[str], extracted: Sequence[str], items: Sequence[PromptItem] | None = None
    ) -> TypeScoreResult:
        """TypeScore of already-extracted texts."""
        if len(instructed) != len(extracted):
            raise ValueError(f"{len(instructed)} instructed texts but {len(extracted)} extracted texts")
        if items is not None and len(items) != len(instructed):
            raise ValueError(f"{len(items)} prompt items for {len(instructed)} texts")
        items = items or [PromptItem(str(i), "", t) for i, t in enumerate(instructed)]
        samples = [self.score_sample(a, b, it.id, it.prompt, it.meta) for a, b, it in zip(instructed, extracted, items)]
        return TypeScoreResult(samples, self.confidence, self.mode, self.provenance())

    def __call__(self, images: Sequence[ImageLike], prompts: Sequence[PromptItem | str]) -> TypeScoreResult:
        """TypeScore of ``images`` generated for ``prompts`` (prompt items, or prompt strings with quoted text)."""
        if self.extractor is None:
            raise ValueError("this TypeScore has no extractor; pass one (e.g. EasyOCRExtractor()) or use score_texts")
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        items = [p if isinstance(p, PromptItem) else PromptItem.from_prompt(str(i), p) for i, p in enumerate(prompts)]
        self.check_items(items)  # before any extraction work
        extracted = extract_all(self.extractor, images)
        return self.score_texts([it.text for it in items], extracted, items)
