"""TarFlow speed: our fast paths against the reference implementation's strategy, same weights, same run.

Training step (forward + backward + AdamW): ``is_causal`` SDPA vs the explicit ``attn_mask``.
Sampling (images/s, with CFG): preallocated KV cache + conditional/unconditional batched in one
call vs concatenating caches + separate CFG calls; plus the Jacobi sampler. Also checks that both
strategies give the same log-likelihood and samples on the same weights.

    python benchmarks/tarflow/bench_speed.py                       # CPU, preset cpu-bench
    python benchmarks/tarflow/bench_speed.py --preset imagenet64-cond --device cuda   # the GPU table
"""

from __future__ import annotations

import argparse
import json

import torch

from labcore.metrics import bits_per_dim
from labcore.seeds import Spread, timed_rounds
from tarflow import PRESETS, TarFlow
from tarflow.baseline import baseline_forward, baseline_inverse
from tarflow.model import BIN_WIDTH


def randomize_output_layers(model: TarFlow, scale: float = 0.02) -> None:
    """Non-zero output projections so that samples depend on the network (fresh models start at identity)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for block in model.blocks:
            w = block.proj_out.weight
            w.copy_(scale * torch.randn(w.shape, generator=g).to(w.device))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default=None, help="default: imagenet64-cond on CUDA, cpu-bench on CPU")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=None, help="training batch (default 64 GPU / 16 CPU)")
    p.add_argument("--sample-batch", type=int, default=None, help="sampling batch (default 64 GPU / 8 CPU)")
    p.add_argument("--cfg", type=float, default=2.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args()
    gpu = args.device.startswith("cuda")
    name = args.preset or ("imagenet64-cond" if gpu else "cpu-bench")
    batch = args.batch or (64 if gpu else 16)
    sample_batch = args.sample_batch or (64 if gpu else 8)
    amp = torch.autocast(args.device.split(":")[0], dtype=torch.bfloat16, enabled=gpu)
    torch.manual_seed(0)
    config = PRESETS[name]()
    model = TarFlow(config).to(args.device)
    randomize_output_layers(model)
    c = config
    x = torch.rand(batch, c.in_channels, c.img_size, c.img_size, device=args.device) * 2 - 1
    y = torch.randint(max(c.num_classes, 1), (batch,), device=args.device) if c.num_classes else None
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, betas=(0.9, 0.95), weight_decay=1e-4)

    def train_step(forward):
        def step():
            opt.zero_grad(set_to_none=True)
            with amp:
                z, logdet = forward(x, y)
                loss = 0.5 * z.float().pow(2).mean() - logdet.mean() / c.num_dims
            loss.backward()
            opt.step()

        return step

    ours_fwd = lambda x, y: model(x, y)[:2]  # noqa: E731
    ref_fwd = lambda x, y: baseline_forward(model, x, y)  # noqa: E731
    (t_train_ref, t_train_ours), _ = timed_rounds([train_step(ref_fwd), train_step(ours_fwd)], args.repeats)

    model.eval()
    with torch.no_grad(), amp:
        bpd_ours = model.bits_per_dim(x, y).float().mean().item()
        z_ref, ld_ref = baseline_forward(model, x, y)
        bpd_ref = bits_per_dim(model.latent_nll(z_ref, ld_ref), c.num_dims, bin_width=BIN_WIDTH).mean().item()

    noise = torch.randn(sample_batch, c.num_patches, c.token_dim, device=args.device)
    ys = torch.randint(max(c.num_classes, 1), (sample_batch,), device=args.device) if c.num_classes else None
    kw = dict(guidance=args.cfg, attn_temp=1.0, annealed_guidance=True)
    with torch.no_grad(), amp:
        (t_ref, t_ours, t_jac), (x_ref, x_ours, x_jac) = timed_rounds(
            [
                lambda: baseline_inverse(model, noise, ys, **kw),
                lambda: model.inverse(noise, ys, **kw),
                lambda: model.inverse(noise, ys, jacobi_tol=1e-3, **kw),
            ],
            args.repeats,
        )
    diff = (x_ours.float() - x_ref.float()).abs().max().item()
    diff_jac = (x_jac.float() - x_ours.float()).abs().max().item()

    device_name = torch.cuda.get_device_name() if gpu else f"CPU ({torch.get_num_threads()} threads)"
    spread = lambda v, digits=3: Spread(tuple(v)).format("median", digits)  # noqa: E731
    per_s = lambda ts: [sample_batch / t for t in ts]  # noqa: E731
    rows = [  # (label, reference, ours, speed-up per round)
        ("training step (s)", t_train_ref, t_train_ours, [r / o for r, o in zip(t_train_ref, t_train_ours)]),
        ("sampling, images/s (CFG)", per_s(t_ref), per_s(t_ours), [r / o for r, o in zip(t_ref, t_ours)]),
        ("sampling, images/s, Jacobi tol 1e-3", per_s(t_ref), per_s(t_jac), [r / o for r, o in zip(t_ref, t_jac)]),
    ]
    print(
        f"preset {name} ({c.reference_name}, {c.img_size}px, {c.num_patches} tokens), device {device_name}, "
        f"train batch {batch}, sample batch {sample_batch}, cfg {args.cfg}, {'bf16' if gpu else 'fp32'}; "
        f"median [min, max] over {args.repeats} rounds, the strategies back to back in each round"
    )
    print("| measure | reference strategy | ours | speed-up (per round) |")
    print("|---|---|---|---|")
    for label, ref, ours, speedup in rows:
        print(f"| {label} | {spread(ref)} | {spread(ours)} | {spread(speedup, 2)}× |")
    print(f"| bits/dim on the same weights and inputs | {bpd_ref:.5f} | {bpd_ours:.5f} | |")
    print(f"max |sample difference|: ours vs reference {diff:.2e}, Jacobi vs sequential {diff_jac:.2e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "preset": name,
                    "device": device_name,
                    "train_step_s": [t_train_ref, t_train_ours],
                    "sample_images_per_s": [per_s(t_ref), per_s(t_ours), per_s(t_jac)],
                    "bpd": [bpd_ref, bpd_ours],
                    "max_sample_diff": diff,
                    "max_jacobi_diff": diff_jac,
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
