"""Backbones, FPN and the Rotated RetinaNet / DCFL heads (module names follow mmrotate's key layout)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import deform_conv2d


class PixelNormalize(nn.Module):
    """``(images − mean) / std`` per channel; the buffers are not saved in checkpoints."""

    def __init__(self, mean: tuple[float, float, float], std: tuple[float, float, float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images.to(self.mean.dtype) - self.mean) / self.std  # in the model's dtype


class ConvModule(nn.Module):
    """``conv`` (+ ReLU): named like mmcv's ConvModule so state-dict keys read ``….conv.weight``."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, act: bool = True, norm: str | None = None):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, bias=norm is None)
        if norm == "gn":
            self.gn = nn.GroupNorm(min(32, cout // 4), cout)
        elif norm is not None:
            raise ValueError(f"unknown norm {norm!r}; use None or 'gn'")
        self.act = act

    def forward(self, x):
        x = self.conv(x)
        if hasattr(self, "gn"):
            x = self.gn(x)
        return F.relu(x) if self.act else x


class TinyBackbone(nn.Module):
    """A small plain conv net (stride 32) for CPU tests and demos; returns C``start_level``…C5."""

    def __init__(self, widths=(16, 24, 32, 48, 64), start_level: int = 3):
        super().__init__()
        layers, cin = [], 3
        for w in widths:
            layers.append(
                nn.Sequential(
                    nn.Conv2d(cin, w, 3, 2, 1, bias=False),
                    nn.BatchNorm2d(w),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(w, w, 3, 1, 1, bias=False),
                    nn.BatchNorm2d(w),
                    nn.ReLU(inplace=True),
                )
            )
            cin = w
        self.stages = nn.ModuleList(layers)
        self.first = start_level - 1
        self.out_channels = list(widths[self.first :])

    def forward(self, x):
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats[self.first :]


class ResNetBackbone(nn.Module):
    """torchvision ResNet (random init; :func:`load_backbone_weights` loads ImageNet weights) returning
    C``start_level``…C5.

    Parameter names (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer1.0.downsample.0``…) are those of
    mmdet's ``ResNet`` (style ``pytorch``), hence mmrotate checkpoints. BatchNorm is frozen
    (``norm_eval``) as in mmrotate's configs; ``frozen_stages=1`` also freezes the stem and ``layer1``,
    ``norm_requires_grad=False`` every BatchNorm's affine parameters (mmdet ``norm_cfg.requires_grad``).
    """

    def __init__(self, depth: int = 50, start_level: int = 3, frozen_stages: int = -1, norm_requires_grad: bool = True):
        super().__init__()
        import torchvision

        if start_level not in (2, 3):
            raise ValueError(f"start_level must be 2 (C2–C5) or 3 (C3–C5), got {start_level}")
        net = getattr(torchvision.models, f"resnet{depth}")(weights=None)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        expansion = 4 if depth >= 50 else 1
        self.first = start_level - 2
        self.out_channels = [64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion][self.first :]
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.requires_grad_(norm_requires_grad)
        if frozen_stages >= 0:  # mmdet: the stem, then layer1…layer{frozen_stages}
            for m in [self.conv1, self.bn1, *(getattr(self, f"layer{i}") for i in range(1, frozen_stages + 1))]:
                m.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        feats = [self.layer1(x)]
        for layer in (self.layer2, self.layer3, self.layer4):
            feats.append(layer(feats[-1]))
        return feats[self.first :]


def build_backbone(
    name: str, start_level: int = 3, frozen_stages: int = -1, norm_requires_grad: bool = True
) -> nn.Module:
    """``'tiny'`` or ``'resnet18/34/50/101'`` returning the maps from C``start_level`` (2 or 3) to C5
    (the ResNet options as :class:`ResNetBackbone`'s)."""
    if name == "tiny":
        return TinyBackbone(start_level=start_level)
    if name.startswith("resnet") and name[6:].isdigit():
        return ResNetBackbone(int(name[6:]), start_level, frozen_stages, norm_requires_grad)
    raise ValueError(f"unknown backbone {name!r}; use 'tiny' or 'resnet18/34/50/101'")


def _backbone_state(spec: str) -> dict[str, torch.Tensor]:
    """The state dict ``spec`` names: a local file (``.safetensors``, or a ``.pth``/``.pt`` torchvision or
    mmdet/mmrotate checkpoint; ``backbone.``/``module.`` prefixes stripped), ``torchvision://resnet50``
    (mmcv's name: torchvision's ``IMAGENET1K_V1``), a torchvision weight (``ResNet50_Weights.IMAGENET1K_V2``)
    or ``timm:<name>`` (``timm.create_model(name, pretrained=True)``; timm's ResNets use the same names)."""
    from pathlib import Path

    if Path(spec).is_file():
        if spec.endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(spec)
        else:
            from tinydet.pretrained import read_mmcv_checkpoint

            state, _ = read_mmcv_checkpoint(spec)
        if any(k.startswith("backbone.") for k in state):
            state = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
        return state
    if spec.startswith("timm:"):
        import timm

        return timm.create_model(spec.removeprefix("timm:"), pretrained=True).state_dict()
    import torchvision

    if spec.startswith("torchvision://"):
        name = spec.removeprefix("torchvision://")
        spec = f"{torchvision.models.get_model_weights(name).__name__}.IMAGENET1K_V1"
    try:
        weights = torchvision.models.get_weight(spec)
    except (ValueError, KeyError, AttributeError) as e:
        raise ValueError(
            f"backbone weights {spec!r}: not a file, 'torchvision://resnet50', a torchvision weight name "
            "('ResNet50_Weights.IMAGENET1K_V1') or 'timm:<model name>'"
        ) from e
    return weights.get_state_dict(progress=False)


def load_backbone_weights(backbone: nn.Module, spec: str) -> list[str]:
    """Load ImageNet (or any ResNet) weights named by ``spec`` (see :func:`_backbone_state`) into a
    :class:`ResNetBackbone`, as mmdet's ``init_cfg=Pretrained`` does. Every backbone tensor must be found
    with its shape (else ``ValueError`` naming the keys); the classifier (``fc.*``) is skipped.
    Returns the ignored keys."""
    if not isinstance(backbone, ResNetBackbone):
        raise ValueError(f"backbone weights need a ResNet backbone, got {type(backbone).__name__}")
    state = _backbone_state(spec)
    own = backbone.state_dict()
    missing = sorted(k for k in own if k not in state and not k.endswith("num_batches_tracked"))
    wrong = sorted(k for k in own if k in state and state[k].shape != own[k].shape)
    if missing or wrong:
        raise ValueError(
            f"backbone weights {spec!r} do not fit this ResNet: {len(missing)} missing (e.g. {missing[:3]}), "
            f"shape mismatches {wrong[:3]}; check the depth (resnet18/34/50/101)"
        )
    backbone.load_state_dict({k: state[k] for k in own if k in state}, strict=False)
    return sorted(k for k in state if k not in own)


class FPN(nn.Module):
    """mmdet ``FPN``: top-down sum of 1×1 laterals, 3×3 outputs, then ``num_outs − len(in_channels)``
    extra levels: ``extra='on_input'`` (RetinaNet/DCFL) adds stride-2 3×3 convs on the last input then
    on the previous extra level; ``extra='on_output'`` (Point Teacher, with ``relu_before_extra_convs``)
    starts them on the last output and puts a ReLU before the second and later ones;
    ``extra='max_pool'`` (``add_extra_convs=False``, Oriented R-CNN) subsamples the last output by a
    stride-2 1×1 max-pool, without parameters."""

    def __init__(self, in_channels: list[int], out_channels: int, num_outs: int = 5, extra: str = "on_input"):
        super().__init__()
        if num_outs < len(in_channels):
            raise ValueError(f"num_outs ({num_outs}) must be ≥ the number of backbone levels ({len(in_channels)})")
        if extra not in ("on_input", "on_output", "max_pool"):
            raise ValueError(f"unknown extra {extra!r}; use 'on_input', 'on_output' or 'max_pool'")
        self.lateral_convs = nn.ModuleList(ConvModule(c, out_channels, 1, act=False) for c in in_channels)
        convs = [ConvModule(out_channels, out_channels, 3, act=False) for _ in in_channels]
        for i in range(num_outs - len(in_channels) if extra != "max_pool" else 0):
            cin = in_channels[-1] if i == 0 and extra == "on_input" else out_channels
            convs.append(ConvModule(cin, out_channels, 3, stride=2, act=False))
        self.fpn_convs = nn.ModuleList(convs)
        self.num_ins, self.num_outs, self.extra = len(in_channels), num_outs, extra
        xavier_init(self)

    def forward(self, feats):
        lat = [conv(f) for conv, f in zip(self.lateral_convs, feats)]
        for i in range(len(lat) - 1, 0, -1):
            lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], size=lat[i - 1].shape[-2:], mode="nearest")
        outs = [self.fpn_convs[i](lat[i]) for i in range(self.num_ins)]
        x = feats[-1] if self.extra == "on_input" else outs[-1]
        for i, conv in enumerate(self.fpn_convs[self.num_ins :]):
            x = conv(F.relu(x) if i and self.extra == "on_output" else x)
            outs.append(x)
        while len(outs) < self.num_outs:  # extra == "max_pool"
            outs.append(F.max_pool2d(outs[-1], 1, stride=2))
        return outs


def xavier_init(module: nn.Module) -> None:
    """mmcv's ``Xavier`` init (uniform) for every conv of a neck, biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


def _init_head(head: nn.Module, cls_layer: nn.Conv2d) -> None:
    for m in head.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, std=0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    nn.init.constant_(cls_layer.bias, -math.log((1 - 0.01) / 0.01))  # prior probability 0.01 (RetinaNet)


class RetinaHead(nn.Module):
    """Rotated RetinaNet head, one anchor per location: ``stacked_convs`` 3×3 convs per branch."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        feat_channels: int = 256,
        stacked_convs: int = 4,
        norm: str | None = None,
    ):
        super().__init__()
        chans = [in_channels] + [feat_channels] * stacked_convs
        self.cls_convs = nn.ModuleList(ConvModule(chans[i], feat_channels, norm=norm) for i in range(stacked_convs))
        self.reg_convs = nn.ModuleList(ConvModule(chans[i], feat_channels, norm=norm) for i in range(stacked_convs))
        self.retina_cls = nn.Conv2d(feat_channels, num_classes, 3, padding=1)
        self.retina_reg = nn.Conv2d(feat_channels, 5, 3, padding=1)
        _init_head(self, self.retina_cls)

    def forward_single(self, x):
        c, r = x, x
        for conv in self.cls_convs:
            c = conv(c)
        for conv in self.reg_convs:
            r = conv(r)
        return self.retina_cls(c), self.retina_reg(r), None

    def forward(self, feats):
        return [list(t) for t in zip(*(self.forward_single(f) for f in feats))]


class _DeformWeight(nn.Module):
    """A bias-free 3×3 ``weight`` as mmcv's ``ModulatedDeformConv2d`` stores it; the owning head calls
    :meth:`reset_parameters` (mmcv's init: uniform ±1/√fan_in) once its other layers are initialised."""

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.weight[0].numel())
        nn.init.uniform_(self.weight, -bound, bound)


class DilatedConv(_DeformWeight):
    """DCFL's deformable conv with fixed offsets ``(d−1)·k`` (kernel taps at ``d·k``): exactly a
    bias-free dilated 3×3 conv; the weight is stored as ``weight`` like mmcv's ``DeformConv2d``, and
    initialised as that class does (Chasel-Tsui/MMCV-DCFL ``deform_conv.py``: Kaiming uniform for ReLU,
    ±√(6/fan_in), √6 ≈ 2.45× the modulated conv's bound)."""

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, nonlinearity="relu")

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels, channels, 3, 3))
        self.dilation = dilation

    def forward(self, x):
        return F.conv2d(x, self.weight, padding=self.dilation, dilation=self.dilation)


def modulated_deform_conv3x3(
    x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """DCNv2 3×3 conv (stride 1, padding 1) by bilinear ``grid_sample`` of the 9 shifted taps.

    Same semantics as ``torchvision.ops.deform_conv2d`` (offsets ``(dy, dx)`` per tap, zeros
    outside the image) but its CPU backward is a fraction of the cost.
    """
    b, c, h, w = x.shape
    ky, kx = torch.meshgrid(torch.arange(-1, 2, device=x.device), torch.arange(-1, 2, device=x.device), indexing="ij")
    off = offset.view(b, 9, 2, h, w)
    ys = torch.arange(h, device=x.device).view(1, 1, h, 1) + ky.reshape(1, 9, 1, 1) + off[:, :, 0]
    xs = torch.arange(w, device=x.device).view(1, 1, 1, w) + kx.reshape(1, 9, 1, 1) + off[:, :, 1]
    grid = torch.stack([(2 * xs + 1) / w - 1, (2 * ys + 1) / h - 1], -1).view(b, 9 * h, w, 2)
    taps = F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
    taps = taps.view(b, c, 9, h, w) * mask.view(b, 1, 9, h, w)
    return torch.einsum("bckhw,ock->bohw", taps, weight.reshape(weight.shape[0], c, 9))


class ModulatedDeformConv(_DeformWeight):
    """Modulated deformable 3×3 conv (DCNv2, bias-free). With ``learn_offsets`` it predicts its own
    offsets (18 channels, ``(dy, dx)`` per tap) and mask from ``conv_offset`` and returns them."""

    def __init__(self, channels: int, learn_offsets: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels, channels, 3, 3))
        if learn_offsets:
            self.conv_offset = nn.Conv2d(channels, 27, 3, padding=1)

    def forward(self, x, offset=None, mask=None):
        if offset is None:
            o1, o2, m = self.conv_offset(x).chunk(3, dim=1)
            offset, mask = torch.cat([o1, o2], 1), m.sigmoid()
        if x.is_cuda:
            return deform_conv2d(x, offset, self.weight, padding=1, mask=mask), offset, mask
        return modulated_deform_conv3x3(x, offset, mask, self.weight), offset, mask


def dynamic_prior_shift(offsets: list[torch.Tensor], strides: list[int], scale: float) -> torch.Tensor:
    """DCFL's dynamic prior (§4.2): per location the mean ``(dy, dx)`` DCN offset over the 9 taps, as an
    ``(x, y)`` shift in pixels ``× stride × scale``; ``(B, HW summed over levels, 2)``, level-major and
    row-major like the anchor grids. Detached: the shift only moves priors for assignment."""
    parts = []
    for off, stride in zip(offsets, strides):
        mean = off.detach().reshape(off.shape[0], 9, 2, -1).mean(1).permute(0, 2, 1)  # (B, HW, (dy, dx))
        parts.append(mean.flip(-1) * stride * scale)
    return torch.cat(parts, 1)


class DCFLHead(RetinaHead):
    """DCFL head (paper §4.1): the last two convs of each branch are a dilated conv then a modulated
    deformable conv; the regression branch learns the offsets and the classification branch reuses
    them, and the offsets are returned so the dynamic prior can shift anchors (§4.2)."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        feat_channels: int = 256,
        stacked_convs: int = 4,
        dilation_rate: int = 3,
        norm: str | None = None,
    ):
        nn.Module.__init__(self)
        if stacked_convs < 2:
            raise ValueError("the DCFL head needs stacked_convs ≥ 2 (dilated + deformable conv at the end)")
        chans = [in_channels] + [feat_channels] * stacked_convs
        plain = stacked_convs - 2
        self.cls_convs = nn.ModuleList(
            [
                *(ConvModule(chans[i], feat_channels, norm=norm) for i in range(plain)),
                DilatedConv(feat_channels, dilation_rate),
                ModulatedDeformConv(feat_channels, learn_offsets=False),
            ]
        )
        self.reg_convs = nn.ModuleList(
            [
                *(ConvModule(chans[i], feat_channels, norm=norm) for i in range(plain)),
                DilatedConv(feat_channels, dilation_rate),
                ModulatedDeformConv(feat_channels, learn_offsets=True),
            ]
        )
        if plain == 0 and in_channels != feat_channels:
            raise ValueError("with stacked_convs=2, in_channels must equal feat_channels")
        self.retina_cls = nn.Conv2d(feat_channels, num_classes, 3, padding=1)
        self.retina_reg = nn.Conv2d(feat_channels, 5, 3, padding=1)
        _init_head(self, self.retina_cls)
        # ``conv_offset`` keeps the N(0, 0.01) of every Conv2d: the reference's head init_cfg overrides the
        # zeros that mmcv's ModulatedDeformConvG sets (its own init_weights is not called again inside
        # the heads' nn.ModuleList), so offsets, hence the dynamic prior, start small but not zero
        for m in self.modules():
            if isinstance(m, _DeformWeight):
                m.reset_parameters()

    def forward_single(self, x):
        r = x
        for conv in self.reg_convs[:-2]:
            r = conv(r)
        r = self.reg_convs[-2](r)
        r, offset, mask = self.reg_convs[-1](r)
        c = x
        for conv in self.cls_convs[:-2]:
            c = conv(c)
        c, _, _ = self.cls_convs[-1](self.cls_convs[-2](c), offset, mask)
        return self.retina_cls(c), self.retina_reg(r), offset
