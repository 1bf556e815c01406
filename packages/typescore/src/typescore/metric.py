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
from typescore.similarity import SIMILARITIES, similarities


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


def bootstrap_ci(
    values: Sequence[float], confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (resamples drawn as one ``(resamples, n)`` index array)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("cannot bootstrap an empty set of scores")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
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


@dataclass
class TypeScoreResult:
    """All samples plus the aggregate: TypeScore = mean per-sample ensemble similarity (paper Sec. 3)."""

    samples: list[SampleScore]
    confidence: float = 0.95
    ci: tuple[float, float] = field(init=False)

    def __post_init__(self) -> None:
        if not self.samples:
            raise ValueError("a TypeScore needs at least one sample")
        self.ci = bootstrap_ci([s.ensemble for s in self.samples], self.confidence)

    @property
    def score(self) -> float:
        return float(np.mean([s.ensemble for s in self.samples]))

    def means(self) -> dict[str, float]:
        """Mean of each similarity and of the ensemble."""
        return {k: float(np.mean([getattr(s, k) for s in self.samples])) for k in (*SIMILARITIES, "ensemble")}

    def summary(self) -> dict:
        return {
            "typescore": self.score,
            "ci_low": self.ci[0],
            "ci_high": self.ci[1],
            "confidence": self.confidence,
            "n": len(self.samples),
            **{f"mean_{k}": v for k, v in self.means().items() if k != "ensemble"},
        }

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``scores.csv`` (per sample), ``scores.json`` (summary + samples) atomically; returns the paths."""
        from labcore.checkpoint import atomic_write_text  # imports torch: keep it off `import typescore`

        out = Path(out_dir)
        rows = [asdict(s) for s in self.samples]
        table = io.StringIO(newline="")
        writer = csv.DictWriter(table, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(out / "scores.csv", table.getvalue())
        payload = {"summary": self.summary(), "samples": rows}
        atomic_write_text(out / "scores.json", json.dumps(payload, indent=2, ensure_ascii=False))
        return {"csv": out / "scores.csv", "json": out / "scores.json"}


class TypeScore:
    """The metric: extract text from each image, normalise, compare with the instructed text, aggregate.

    ``extractor`` is any object with ``extract(image) -> str`` (see :mod:`typescore.extract`).
    """

    def __init__(
        self, extractor: Extractor | None = None, normalizer: Normalizer | None = None, confidence: float = 0.95
    ):
        self.extractor = extractor
        self.normalizer = normalizer or Normalizer()
        self.confidence = confidence

    def score_sample(self, instructed: str, extracted: str, id: str = "0", prompt: str = "") -> SampleScore:
        """Score one pair of strings (no image involved)."""
        a, b = self.normalizer(instructed), self.normalizer(extracted)
        if not a:
            raise ValueError(f"instructed text of sample {id!r} is empty after normalisation: {instructed!r}")
        return SampleScore(id, prompt, instructed, extracted, a, b, **similarities(a, b))

    def score_texts(
        self, instructed: Sequence[str], extracted: Sequence[str], items: Sequence[PromptItem] | None = None
    ) -> TypeScoreResult:
        """TypeScore of already-extracted texts."""
        if len(instructed) != len(extracted):
            raise ValueError(f"{len(instructed)} instructed texts but {len(extracted)} extracted texts")
        if items is not None and len(items) != len(instructed):
            raise ValueError(f"{len(items)} prompt items for {len(instructed)} texts")
        ids = [it.id for it in items] if items else [str(i) for i in range(len(instructed))]
        prompts = [it.prompt for it in items] if items else [""] * len(instructed)
        samples = [self.score_sample(a, b, i, p) for a, b, i, p in zip(instructed, extracted, ids, prompts)]
        return TypeScoreResult(samples, self.confidence)

    def __call__(self, images: Sequence[ImageLike], prompts: Sequence[PromptItem | str]) -> TypeScoreResult:
        """TypeScore of ``images`` generated for ``prompts`` (prompt items, or prompt strings with quoted text)."""
        if self.extractor is None:
            raise ValueError("this TypeScore has no extractor; pass one (e.g. EasyOCRExtractor()) or use score_texts")
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        items = [p if isinstance(p, PromptItem) else PromptItem.from_prompt(str(i), p) for i, p in enumerate(prompts)]
        extracted = extract_all(self.extractor, images)
        return self.score_texts([it.text for it in items], extracted, items)
