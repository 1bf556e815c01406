"""Model configuration and the reference checkpoint naming scheme (named presets: :mod:`tarflow.presets`)."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass


@dataclass
class TarFlowConfig:
    """Hyper-parameters of a :class:`~tarflow.TarFlow` (names follow apple/ml-tarflow's ``Model``).

    ``noise_type`` is ``"gaussian"`` (generation models, trained on ``x + noise_std·ε``) or
    ``"uniform"`` (likelihood models, uniform dequantisation); it does not change the weights.
    """

    in_channels: int = 3
    img_size: int = 64
    patch_size: int = 2
    channels: int = 768
    num_blocks: int = 8
    layers_per_block: int = 8
    head_dim: int = 64
    expansion: int = 4
    nvp: bool = True
    num_classes: int = 0
    noise_std: float = 0.05
    noise_type: str = "gaussian"

    def __post_init__(self) -> None:
        if self.img_size % self.patch_size:
            raise ValueError(
                f"img_size={self.img_size} is not divisible by patch_size={self.patch_size}; "
                f"choose a patch size among {[p for p in range(1, self.img_size + 1) if self.img_size % p == 0]}"
            )
        if self.channels % self.head_dim:
            raise ValueError(f"channels={self.channels} must be a multiple of head_dim={self.head_dim}")
        if self.noise_type not in ("gaussian", "uniform"):
            raise ValueError(f"noise_type must be 'gaussian' or 'uniform', got {self.noise_type!r}")
        for name in ("in_channels", "img_size", "patch_size", "channels", "num_blocks", "layers_per_block"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def num_patches(self) -> int:
        return (self.img_size // self.patch_size) ** 2

    @property
    def token_dim(self) -> int:
        return self.in_channels * self.patch_size**2

    @property
    def num_dims(self) -> int:
        return self.in_channels * self.img_size**2

    def replace(self, **changes) -> TarFlowConfig:
        return dataclasses.replace(self, **changes)

    @property
    def reference_name(self) -> str:
        """``P_C_T_K_noise`` as the reference's ``train.py`` names its checkpoints."""
        tail = f"{self.noise_std:.2f}" if self.noise_type == "gaussian" else "uniform"
        return f"{self.patch_size}_{self.channels}_{self.num_blocks}_{self.layers_per_block}_{tail}"


_REFERENCE_NAME = re.compile(
    r"(?:(?P<dataset>[a-z0-9]+)_model_)?(?P<p>\d+)_(?P<c>\d+)_(?P<t>\d+)_(?P<k>\d+)_(?P<noise>uniform|\d+(?:\.\d+)?)"
)
DATASET_CLASSES = {"imagenet": 1000, "imagenet64": 0, "afhq": 3, "mnist": 10}
DATASET_CHANNELS = {"imagenet": 3, "imagenet64": 3, "afhq": 3, "mnist": 1}  # RGB ImageFolders; MNIST is grey


def parse_reference_name(name: str) -> dict:
    """Fields encoded in a reference checkpoint file name, e.g. ``afhq_model_8_768_8_8_0.07.pth``."""
    m = _REFERENCE_NAME.search(name)
    if m is None:
        raise ValueError(
            f"cannot read a config from {name!r}: expected the reference naming "
            f"'<dataset>_model_<patch>_<channels>_<blocks>_<layers>_<noise_std|uniform>.pth'"
        )
    out = {
        "patch_size": int(m["p"]),
        "channels": int(m["c"]),
        "num_blocks": int(m["t"]),
        "layers_per_block": int(m["k"]),
    }
    if m["noise"] == "uniform":
        out["noise_type"] = "uniform"
    else:
        out.update(noise_type="gaussian", noise_std=float(m["noise"]))
    if m["dataset"]:
        out["dataset"] = m["dataset"]
    return out


def config_from_reference(
    name: str, shapes: dict[str, tuple[int, ...]], in_channels: int | None = None
) -> TarFlowConfig:
    """Combine the file name's fields with what the weights' shapes fix (image size, channels, classes).

    The weights fix only ``channels·patch²`` per token, so a file renamed to another patch size
    would load as a model of other images (3-channel patch-4 weights named patch 2 read as 12
    channels). The channel count must therefore be the dataset's (``imagenet``/``afhq``: 3,
    ``mnist``: 1), the given ``in_channels``, or, for a name without a dataset, 1 or 3.
    """
    fields = parse_reference_name(name)
    dataset = fields.pop("dataset", None)
    p = fields["patch_size"]
    pos = shapes.get("blocks.0.pos_embed")
    proj_in = shapes.get("blocks.0.proj_in.weight")
    if pos is None or proj_in is None:
        raise ValueError("not a reference TarFlow state dict: blocks.0.pos_embed / blocks.0.proj_in.weight missing")
    side = math.isqrt(pos[0])
    if side * side != pos[0] or proj_in[1] % (p * p):
        raise ValueError(
            f"weights do not fit patch_size={p} from the file name: pos_embed has {pos[0]} tokens, "
            f"proj_in takes {proj_in[1]} inputs; was the file renamed?"
        )
    class_embed = shapes.get("blocks.0.class_embed")
    num_classes = class_embed[0] if class_embed is not None else 0
    if dataset in DATASET_CLASSES and DATASET_CLASSES[dataset] != num_classes and dataset != "imagenet64":
        raise ValueError(
            f"file name says dataset {dataset!r} ({DATASET_CLASSES[dataset]} classes), weights hold {num_classes}"
        )
    channels = proj_in[1] // (p * p)
    expected = in_channels if in_channels is not None else DATASET_CHANNELS.get(dataset)
    if channels != expected and (expected is not None or channels not in (1, 3)):
        fits = [q for q in range(1, 65) if proj_in[1] % (q * q) == 0 and proj_in[1] // (q * q) in (1, 3)]
        raise ValueError(
            f"weights do not fit patch_size={p} from the file name: proj_in takes {proj_in[1]} = "
            f"{channels}·{p}² inputs per token, i.e. {channels}-channel images, but "
            + (f"in_channels={expected} was expected" if expected is not None else "images have 1 or 3 channels")
            + f"; was the file renamed? (patch sizes giving 1 or 3 channels: {fits}; "
            "pass in_channels=... if the model really takes other images)"
        )
    nvp = shapes["blocks.0.proj_out.weight"][0] == 2 * proj_in[1]
    return TarFlowConfig(
        in_channels=channels, img_size=side * p, num_classes=num_classes, nvp=nvp, **fields
    )
