"""Named configurations: the papers' real-size models (one per :data:`tinydet.recipes.RECIPES` entry, R-50 with
256-channel FPN/heads, AI-TOD-R's classes) and tiny CPU ones (tiny conv backbone, the synthetic scenes' classes).

``PRESETS[name](**overrides)`` is a fresh config; ``create(name, backbone_weights=None, **overrides)`` the randomly
initialised detector (labcore's preset convention, :mod:`labcore.presets`).
"""

from __future__ import annotations

from functools import partial

from torch import nn

from labcore.presets import Presets
from tinydet.data import AITOD_CLASSES, SYNTHETIC_CLASSES
from tinydet.detector import DetectorConfig, RotatedDetector
from tinydet.point_teacher import PointTeacher, PointTeacherConfig
from tinydet.recipes import RECIPES
from tinydet.two_stage import TwoStageConfig, TwoStageDetector

_CONFIG = {
    "single": DetectorConfig,
    "two_stage": TwoStageConfig.reference,
    "point_teacher": PointTeacherConfig.reference,
}
_TINY_CLASSES = list(SYNTHETIC_CLASSES)

PRESETS = Presets(
    "tinydet",
    {DetectorConfig: RotatedDetector, TwoStageConfig: TwoStageDetector, PointTeacherConfig: PointTeacher},
    {
        **{name: partial(_CONFIG[r.model], classes=list(AITOD_CLASSES), **r.config) for name, r in RECIPES.items()},
        "dcfl_tiny": partial(DetectorConfig.tiny, classes=_TINY_CLASSES, head="dcfl"),
        "retinanet_tiny": partial(DetectorConfig.tiny, classes=_TINY_CLASSES, head="retina"),
        "oriented_rcnn_dcfl_tiny": partial(TwoStageConfig.tiny, classes=_TINY_CLASSES, rpn="dcfl"),
        "point_teacher_tiny": partial(PointTeacherConfig, classes=_TINY_CLASSES, backbone="tiny"),
    },
)


def create(name: str, backbone_weights: str | None = None, **overrides) -> nn.Module:
    """The detector of preset ``name`` (``overrides`` replace config fields, e.g. ``classes=[...]``), optionally
    with ImageNet backbone weights (a local file, ``torchvision://resnet50``, a torchvision weight name or
    ``timm:<name>``; see :func:`tinydet.model.load_backbone_weights`)."""
    model = PRESETS.create(name, **overrides)
    if backbone_weights:
        from tinydet.model import load_backbone_weights

        teacher = isinstance(model, PointTeacher)
        load_backbone_weights(model.student.backbone if teacher else model.backbone, backbone_weights)
        if teacher:  # the EMA teacher starts as a copy of the student
            model.teacher.load_state_dict(model.student.state_dict())
    return model
