"""Write the golden fixtures of ``test_tarflow_golden.py`` from the official apple/ml-tarflow code.

    python packages/tarflow/tests/golden/make_golden.py /path/to/ml-tarflow

Builds two tiny official ``Model``s (class-conditional NVP with 3 classes; unconditional volume-preserving
with a learnt prior variance), fills EVERY weight with seeded random values (the zero-initialised
``proj_out`` too), rounds them to float16 so they are stored exactly, and records the official outputs in
float32 on CPU: forward latents and log-determinants, ``get_loss``, bits/dim as ``evaluate_bpd.py``,
``reverse`` with and without guidance / attention temperature / annealing / ``guide_what``, and the
one-step self-denoising of ``evaluate_fid.py`` (lr = B·H·W·C·σ², gradient of ``get_loss``). Only outputs
are written here, never the official code.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from labcore.golden import write_golden_meta

HERE = Path(__file__).parent
# file name = the official naming <dataset>_model_<patch>_<channels>_<blocks>_<layers>_<noise_std>
MODELS = {
    "afhq_model_2_64_2_1_0.07": dict(nvp=True, num_classes=3, noise_std=0.07),
    "imagenet64_model_2_64_2_1_0.05": dict(nvp=False, num_classes=0, noise_std=0.05),
}
IMG, CH = 8, 3


def official_module(root: Path):
    spec = importlib.util.spec_from_file_location("ml_tarflow_official", root / "transformer_flow.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def randomise(model: torch.nn.Module, seed: int) -> None:
    """Every parameter random (fan-in scaled matrices, O(1) norms, small output layer), exact in float16."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g)
            if "norm" in name:
                value = float(name.endswith("weight")) + 0.1 * r
            elif p.ndim == 2 and "embed" not in name:
                value = r / p.shape[1] ** 0.5
            else:
                value = 0.5 * r
            if "proj_out" in name:
                value = 0.15 * value
            p.copy_(value.half().float())
        if not model.blocks[0].nvp:
            model.var.copy_((0.5 + torch.rand(model.var.shape, generator=g)).half().float())


def official_denoise(model, x, y, noise_std):
    """``evaluate_fid.py``'s self-denoising step with ``self_denoising_lr=1``."""
    x = x.clone().requires_grad_(True)
    z, _, logdets = model(x, y)
    (grad,) = torch.autograd.grad(model.get_loss(z, logdets), [x])
    lr = x.shape[0] * IMG * IMG * CH * noise_std**2
    return (x - lr * grad).detach()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("official", type=Path, help="checkout of apple/ml-tarflow")
    args = ap.parse_args()
    ref = official_module(args.official)
    torch.set_default_dtype(torch.float32)
    out: dict[str, torch.Tensor] = {}
    for seed, (name, kw) in enumerate(MODELS.items()):
        torch.manual_seed(seed)
        model = ref.Model(CH, IMG, 2, 64, 2, 1, nvp=kw["nvp"], num_classes=kw["num_classes"])
        randomise(model, seed)
        model.eval()
        save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, HERE / f"{name}.safetensors")
        p = f"{name}/"
        g = torch.Generator().manual_seed(100 + seed)
        x = torch.rand(4, CH, IMG, IMG, generator=g) * 2 - 1
        y = torch.tensor([0, 2, -1, 1]) if kw["num_classes"] else None  # -1: the CFG 'no label' row
        out[p + "x"] = x
        if y is not None:
            out[p + "y"] = y
        with torch.no_grad():
            z, _, logdets = model(x, y)
            out[p + "z"] = z
            out[p + "logdet_per_dim"] = logdets
            out[p + "loss"] = model.get_loss(z, logdets).reshape(1)
            # evaluate_bpd.py: uniform dequantisation of 8-bit pixels, y=None, log(k=128) per dimension
            x_int = torch.randint(0, 256, (4, CH, IMG, IMG), generator=g).float()
            xq = ((x_int + torch.rand(x_int.shape, generator=g)) / 256) * 2 - 1
            zq, _, ldq = model(xq, None)
            n_dims = IMG * IMG * CH
            prior = (-0.5 * (zq**2 + np.log(2 * np.pi))).flatten(1).sum(-1) - np.log(128) * n_dims
            out[p + "bpd_x"] = xq
            out[p + "bpd"] = (-prior / n_dims - ldq) / np.log(2)
        # sampling: noise drawn exactly as TarFlow.sample(num, generator=Generator().manual_seed(s)) draws it
        yc = torch.tensor([1, 0, 2]) if kw["num_classes"] else None
        cases = {"plain": dict(guidance=0.0)}
        if kw["num_classes"]:
            cases.update(
                cfg=dict(guidance=1.5),
                cfg_temp_annealed=dict(guidance=1.0, attn_temp=0.7, annealed_guidance=True),
                cfg_a=dict(guidance=0.8, guide_what="a"),
                cfg_b_temp=dict(guidance=2.0, guide_what="b", attn_temp=1.3),
            )
        for case, ckw in cases.items():
            noise = torch.randn(3, 16, 12, generator=torch.Generator().manual_seed(7))
            with torch.no_grad():
                samples = model.reverse(noise.clone(), yc, **ckw)
            out[f"{p}sample/{case}"] = samples
            out[f"{p}sample/{case}/denoised"] = official_denoise(model, samples, yc, kw["noise_std"])
        if yc is not None:
            out[p + "sample_y"] = yc
    save_file({k: v.contiguous() for k, v in out.items()}, HERE / "tarflow_golden.safetensors")
    write_golden_meta(
        HERE / "tarflow_golden.json",
        "https://github.com/apple/ml-tarflow",
        args.official,
        "python packages/tarflow/tests/golden/make_golden.py <checkout of apple/ml-tarflow>",
        models=MODELS,
        sample_noise="torch.randn(3, 16, 12, generator=torch.Generator().manual_seed(7))",
    )


if __name__ == "__main__":
    main()
