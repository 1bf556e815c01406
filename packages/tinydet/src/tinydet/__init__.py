"""Oriented tiny object detection: Rotated RetinaNet and DCFL (arXiv 2412.11582) in pure PyTorch."""

from labcore.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".data": ("AITOD_CLASSES", "DOTA_CLASSES", "SyntheticTinyObjects", "read_aitodr_txt", "read_dota_txt"),
        ".detector": ("DetectorConfig", "RotatedDetector"),
        ".evaluate": ("coco_rotated_ap", "voc_rotated_map"),
        ".presets": ("PRESETS", "create"),
        ".two_stage": ("TwoStageConfig", "TwoStageDetector"),
    },
)
__version__ = "0.1.0"
