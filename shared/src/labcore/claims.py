"""The demo contract: every quick-start demo states the paper's headline claim and the number that tests it.

A demo's ``main(out_dir)`` returns its numbers plus ``"claim": Claim(...).as_dict()`` (plain JSON):
the claim in one sentence, what was measured, our number, the baseline beside it, a verdict that follows from the
comparison the demo coded (:func:`verdict`), a plain note where the toy scale cannot show the
claim, and the figures (file names in ``out_dir``) that show it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SUPPORTS = "supports"
NOT_SHOWN = "does not show at this scale"
CONTRADICTS = "contradicts"
VERDICTS = (SUPPORTS, NOT_SHOWN, CONTRADICTS)


def verdict(supported: bool, *, scale_limited: bool = True) -> str:
    """``supports`` when the demo's comparison came out as the paper says; otherwise ``does not show at
    this scale`` when the toy scale is the plausible reason (say why in the note), else ``contradicts``."""
    if supported:
        return SUPPORTS
    return NOT_SHOWN if scale_limited else CONTRADICTS


@dataclass
class Claim:
    """One row of the report's summary table."""

    claim: str  # the paper's headline claim, one sentence
    measure: str  # what the numbers are, e.g. "label accuracy of 100 samples, w=2"
    ours: float | str
    baseline: float | str
    baseline_name: str  # what the baseline is, e.g. "same model, no guidance"
    verdict: str
    note: str = ""  # plain words where the scale cannot show the claim, caveats
    figures: list[str] = field(default_factory=list)  # file names inside the demo's out_dir

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}; use labcore.claims.verdict()")
        if self.verdict != SUPPORTS and not self.note:
            raise ValueError(f"a claim with verdict {self.verdict!r} needs a note that says why in plain words")
        for name in ("claim", "measure", "baseline_name"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"Claim.{name} must not be empty")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def claim_from(result: dict[str, Any]) -> Claim | None:
    """The :class:`Claim` a demo returned under ``"claim"`` (a Claim or its dict), or None."""
    c = result.get("claim")
    if c is None or isinstance(c, Claim):
        return c
    if isinstance(c, dict):
        return Claim(**c)
    raise TypeError(f"a demo's 'claim' must be a labcore.claims.Claim or its dict, got {type(c).__name__}")
