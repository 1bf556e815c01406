"""Oriented tiny object detection: Rotated RetinaNet and DCFL (arXiv 2412.11582) in pure PyTorch."""

from tinydet.data import AITOD_CLASSES, DOTA_CLASSES, SyntheticTinyObjects, read_aitodr_txt, read_dota_txt
from tinydet.detector import DetectorConfig, RotatedDetector
from tinydet.evaluate import coco_rotated_ap, voc_rotated_map
from tinydet.two_stage import TwoStageConfig, TwoStageDetector

__all__ = [
    "AITOD_CLASSES",
    "DOTA_CLASSES",
    "SyntheticTinyObjects",
    "read_aitodr_txt",
    "read_dota_txt",
    "DetectorConfig",
    "RotatedDetector",
    "TwoStageConfig",
    "TwoStageDetector",
    "coco_rotated_ap",
    "voc_rotated_map",
]
__version__ = "0.1.0"
