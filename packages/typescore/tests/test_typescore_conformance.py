"""Bad-input conformance (labcore.conformance): the metric's entry points (prompt files, scoring, intervals) and
the CLI's paths. typescore saves no model of its own, so it registers no ModelSpec."""

from __future__ import annotations

import math

from labcore.conformance import COUNTS, CallSpec, CliSpec, conformance_tests
from typescore.__main__ import main
from typescore.metric import TypeScore, bootstrap_ci
from typescore.prompts import load_prompts

globals().update(
    conformance_tests(
        calls=[
            CallSpec(
                "load_prompts",
                load_prompts,
                lambda: {"path": "unused"},
                {"path": ("/no/such/prompts.txt",)},
                errors=(FileNotFoundError, ValueError),
                names={"path": "prompts.txt"},
            ),
            CallSpec(
                "bootstrap_ci",
                bootstrap_ci,
                lambda: {"values": [0.2, 0.8, 0.5], "confidence": 0.9, "resamples": 10},
                {"values": ([], [0.5], [0.5, math.nan]), "confidence": (0.0, 1.0, math.nan), "resamples": COUNTS},
                names={"values": ("scores", "values", "nan")},
            ),
            CallSpec(
                "TypeScore.score_texts",
                lambda instructed, extracted: TypeScore().score_texts(instructed, extracted),
                lambda: {"instructed": ["hello"], "extracted": ["hello"]},
                {"instructed": ([], ["   "]), "extracted": ([], ["a", "b"])},
                names={"instructed": ("instructed", "texts", "empty"), "extracted": ("extracted", "texts", "empty")},
            ),
        ],
        clis=[
            CliSpec(
                "typescore",
                main,
                [
                    (["evaluate", "{missing}"], "{missing}"),
                    (["evaluate", "{empty_dir}", "--prompts", "{missing}"], "{missing}"),
                    (["evaluate", "{empty_dir}", "--prompts", "{empty_file}"], "{empty_file}"),
                ],
            )
        ],
    )
)
