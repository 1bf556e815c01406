"""Named recipes: the papers' real-size models with the reference training schedule (AI-TOD-R @847c656 configs).

``tinydet.create(name)`` builds the model (:mod:`tinydet.presets`); ``RECIPES[name]`` holds the schedule
``train --recipe`` uses: SGD momentum 0.9, weight decay 1e-4, linear warm-up over 500 iterations from 1/3 of the
rate, ×0.1 at epochs 8 and 11 of 12, gradient clipping 35 (``schedule_1x.py``); images resized to 800
(``RResize``, AI-TOD-R images are 800×800: single scale, no multi-scale in these configs) and flipped
horizontally / vertically / diagonally with probability 0.25 each (``RRandomFlip``; Point Teacher's pipeline
has no flips).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Recipe:
    """One named recipe: which model, its config overrides (the preset of the same name), and the schedule."""

    model: str  # "single" (RotatedDetector), "two_stage" (TwoStageDetector) or "point_teacher"
    config: dict[str, Any] = field(default_factory=dict)
    lr: float = 0.0025
    images_per_gpu: int = 2  # samples_per_gpu (the configs do not say how many GPUs)
    epochs: int = 12
    lr_steps: tuple[int, int] = (8, 11)
    warmup_iters: int = 500
    momentum: float = 0.9
    weight_decay: float = 1e-4
    grad_clip: float = 35.0
    image_size: int = 800
    flip: bool = True
    source: str = ""

    def schedule(self, num_images: int, gpus: int = 1) -> dict[str, int]:
        """Iterations for ``num_images`` training images: ``max_steps`` (12 epochs) and ``warmup``."""
        if num_images < 1:
            raise ValueError(f"num_images must be ≥ 1, got {num_images}")
        per_epoch = -(-num_images // (self.images_per_gpu * gpus))
        return {"max_steps": self.epochs * per_epoch, "warmup": self.warmup_iters}


RECIPES: dict[str, Recipe] = {
    "dcfl_r50_aitodr_1x": Recipe(
        "single", {"head": "dcfl"}, lr=0.0025, images_per_gpu=2, source="configs/dcfl/aitodr_dcfl_r50.py"
    ),
    # the DCFL config with RetinaNet's head and max-IoU assigner (0.5 / 0.4): DCFL's controlled baseline.
    # mmrotate's own rotated RetinaNet (9 anchors, L1 delta loss, trainable BN affine) is not built here.
    "retinanet_r50_aitodr_1x": Recipe(
        "single", {"head": "retina"}, lr=0.0025, images_per_gpu=2, source="configs/dcfl/aitodr_dcfl_r50.py"
    ),
    "oriented_rcnn_dcfl_r50_aitodr_1x": Recipe(
        "two_stage", {"rpn": "dcfl"}, lr=0.005, images_per_gpu=4, source="configs/dcfl/aitodr_oriented_rcnn_r50.py"
    ),
    # Point Teacher's released config is for SODA-A (sodaa_fcos_pointteacher_1x.py, angle_version le90); on
    # AI-TOD-R we keep its network, angle version and schedule with AI-TOD-R's classes and the SODA-A shape
    # priors (no AI-TOD-R priors are released)
    "point_teacher_r50_aitodr": Recipe(
        "point_teacher",
        {"angle_version": "le90"},
        lr=0.0025,
        images_per_gpu=2,
        flip=False,
        source="sodaa_fcos_pointteacher_1x.py",
    ),
}
