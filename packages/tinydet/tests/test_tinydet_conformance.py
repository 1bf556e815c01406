"""Bad-input conformance (labcore.conformance): the save/load contract of the three detectors, predict's inputs,
CLI model paths."""

from __future__ import annotations

import torch

from labcore.conformance import EXTRA_DIM, MISSING_DIM, NONFINITE, Bad, CallSpec, CliSpec, ModelSpec, conformance_tests
from tinydet.__main__ import main
from tinydet.detector import DetectorConfig, RotatedDetector
from tinydet.point_teacher import PointTeacher, PointTeacherConfig
from tinydet.two_stage import TwoStageConfig, TwoStageDetector

CLASSES = ["a", "b"]


def _detector() -> RotatedDetector:
    torch.manual_seed(0)
    return RotatedDetector(DetectorConfig.tiny(CLASSES)).eval()


def _two_stage() -> TwoStageDetector:
    torch.manual_seed(0)
    return TwoStageDetector(TwoStageConfig.tiny(CLASSES)).eval()


def _point_teacher() -> PointTeacher:
    torch.manual_seed(0)
    return PointTeacher(PointTeacherConfig(CLASSES, backbone="tiny")).eval()


AS_UINT8 = Bad("uint8", lambda t: (t * 255).to(torch.uint8))
RANGE_255 = Bad("range_0_255", lambda t: t * 255)
BAD_IMAGES = (*NONFINITE, EXTRA_DIM, MISSING_DIM, AS_UINT8, RANGE_255)

globals().update(
    conformance_tests(
        models=[
            ModelSpec(_detector, {"fpn_channels": 48}, {"fpn_channels": 2**17}, name="RotatedDetector"),
            ModelSpec(_two_stage, {"fc_channels": 64}, {"fc_channels": 2**20}, name="TwoStageDetector"),
            ModelSpec(_point_teacher, {"fpn_channels": 48}, {"fpn_channels": 2**17}, name="PointTeacher"),
        ],
        calls=[
            CallSpec(
                name,
                lambda images, m=make: m().predict(images),
                lambda: {"images": torch.rand(1, 3, 64, 64)},
                {"images": BAD_IMAGES},
            )
            for name, make in (
                ("RotatedDetector.predict", _detector),
                ("TwoStageDetector.predict", _two_stage),
                ("PointTeacher.predict", _point_teacher),
            )
        ],
        clis=[
            CliSpec(
                "tinydet",
                main,
                [
                    (["predict", "--model", "{missing}", "--images", "{empty_file}"], "{missing}"),
                    (["predict", "--model", "{empty_dir}", "--images", "{empty_file}"], "config.json"),
                    (["evaluate", "--model", "{corrupt}"], "config.json"),
                ],
            )
        ],
    )
)
