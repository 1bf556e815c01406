"""Write the golden fixtures of ``test_starflow_golden.py`` from the official apple/ml-starflow code.

    python packages/starflow/tests/golden/make_golden.py /path/to/ml-starflow   # needs einops

Builds two tiny official ``Model``s (RoPE, SOS, text conditioning on the deep block only, softplus,
final norm, soft clip 4, L2R order: the options ``StarFlow`` implements), adds seeded noise to EVERY
weight (zero-initialised heads and norms would make parity trivial), rounds the weights to float16 so
they are stored exactly, and records in float32 on CPU: the forward latents and per-block
log-determinants, ``get_loss`` plus ``train.py``'s latent-norm penalty, the reverse pass without and
with guidance (conditional and null rows stacked, as the official sampler takes them), the Jacobi
sampler, and ``train.py``'s ``self_denoise`` step (lr = noise_std², gradient of ``get_loss`` times the
number of elements). Only outputs are written, never the official code.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file

from labcore.golden import write_golden_meta

HERE = Path(__file__).parent
MODELS = {
    "p2": dict(img_size=8, patch_size=2, channels=64, head_dim=32, layers_per_block=[1, 1, 1]),
    "p1": dict(img_size=4, patch_size=1, channels=32, head_dim=32, layers_per_block=[1, 2]),
}
TXT_SIZE, TXT_DIM, CHANNELS = 3, 8, 4
LATENT_NORM = 0.5  # large, so that the penalty is visible in the loss
NOISE_STD = 0.3
JACOBI = [(4, 4, 0.0), (8, 3, 5e-3)]  # (block size, max iterations, threshold)


def official_module(root: Path):
    sys.path.insert(0, str(root))  # for its `misc` package
    spec = importlib.util.spec_from_file_location("ml_starflow_official", root / "transformer_flow.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("official", type=Path, help="checkout of apple/ml-starflow")
    args = ap.parse_args()
    ref = official_module(args.official)
    with tempfile.TemporaryDirectory() as tmp:  # its Jacobi sampler all-reduces a convergence flag
        dist.init_process_group("gloo", init_method=f"file://{tmp}/pg", rank=0, world_size=1)
        out: dict[str, torch.Tensor] = {}
        for seed, (name, kw) in enumerate(MODELS.items()):
            torch.manual_seed(seed)
            model = ref.Model(
                in_channels=CHANNELS,
                num_blocks=len(kw["layers_per_block"]),
                rope=True,
                sos=True,
                txt_size=TXT_SIZE,
                txt_dim=TXT_DIM,
                cond_top_only=True,
                use_softplus=True,
                use_final_norm=True,
                soft_clip=4,
                seq_order="L2R",
                **kw,
            )
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(0.1 * torch.randn_like(p))
                    p.copy_(p.half().float())
            model.eval()
            save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, HERE / f"{name}.safetensors")
            s, p = kw["img_size"], f"{name}/"
            g = torch.Generator().manual_seed(100 + seed)
            x = torch.randn(2, CHANNELS, s, s, generator=g)
            y, y_null = torch.randn(2, TXT_SIZE, TXT_DIM, generator=g), torch.randn(1, TXT_SIZE, TXT_DIM, generator=g)
            noise = torch.randn(2, CHANNELS, s, s, generator=g)
            out.update({p + "x": x, p + "y": y, p + "y_null": y_null, p + "noise": noise})
            with torch.no_grad():
                z, _, outputs, logdets = model(x, y)
                out[p + "z"] = z
                for i, ld in enumerate(logdets):
                    out[f"{p}logdet/{i}"] = ld
                loss = model.get_loss(z, logdets)["loss"]
                out[p + "loss"] = (loss + LATENT_NORM * sum(h.pow(2).mean() for h in outputs[:-1])).reshape(1)
                both = torch.cat([y, y_null.expand_as(y)])
                out[p + "sample/plain"] = model.reverse(noise.clone(), y)
                out[p + "sample/guided"] = model.reverse(noise.clone(), both, guidance=2.0)
                for b, iters, th in JACOBI:
                    out[f"{p}sample/jacobi_{b}_{iters}_{th}"] = model.reverse(
                        noise.clone(),
                        both,
                        guidance=2.0,
                        jacobi=True,
                        jacobi_block_size=b,
                        jacobi_max_iter=iters,
                        jacobi_th=th,
                    )
            sample = out[p + "sample/guided"].clone().requires_grad_(True)
            z, _, _, logdets = model(sample, y)
            (grad,) = torch.autograd.grad(model.get_loss(z, logdets)["loss"], [sample])
            out[p + "denoised"] = (sample - NOISE_STD**2 * sample.numel() * grad).detach()
        dist.destroy_process_group()
    save_file({k: v.contiguous() for k, v in out.items()}, HERE / "starflow_golden.safetensors")
    write_golden_meta(
        HERE / "starflow_golden.json",
        "https://github.com/apple/ml-starflow",
        args.official,
        "python packages/starflow/tests/golden/make_golden.py <checkout of apple/ml-starflow>",
        models=MODELS,
        txt_size=TXT_SIZE,
        txt_dim=TXT_DIM,
        channel_size=CHANNELS,
        latent_norm_regularization=LATENT_NORM,
        noise_std=NOISE_STD,
        jacobi=JACOBI,
    )


if __name__ == "__main__":
    main()
