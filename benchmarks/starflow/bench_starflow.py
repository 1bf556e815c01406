"""STARFlow sampling latency and training step time vs a straightforward TarFlow-style sampler.

Ours: preallocated KV cache, condition prefix prefilled once, conditional and null rows batched
in one call (closed-form guidance), optional Jacobi blocks. Baseline, in the same run and on the
same weights: a cache grown by concatenation and guidance as two separate calls per step.
Both produce the same samples (checked). Training: one AdamW step on noise-augmented latents,
SDPA causal attention vs the explicit boolean mask.

    python benchmarks/starflow/bench_starflow.py --preset XL --batch 16        # GPU (paper setting)
    python benchmarks/starflow/bench_starflow.py --preset cpu-small --batch 4  # CPU
"""

from __future__ import annotations

import argparse
import functools

import torch

from labcore.seeds import Spread, timed_rounds
from starflow import PRESETS, JacobiOptions, MetaBlock, StarFlow, StarFlowConfig
from starflow.conditioning import ClassEmbedder
from starflow.guidance import guided_gaussian


class ConcatCache:
    """A KV cache that grows by ``torch.cat`` each step (the straightforward strategy)."""

    def __init__(self, num_layers: int):
        self.k, self.v, self.index = [None] * num_layers, [None] * num_layers, [0] * num_layers

    def append(self, layer, k, v):
        self.k[layer] = k if self.k[layer] is None else torch.cat([self.k[layer], k], 2)
        self.v[layer] = v if self.v[layer] is None else torch.cat([self.v[layer], v], 2)
        self.index[layer] += k.shape[2]
        return self.k[layer], self.v[layer]


@torch.no_grad()
def baseline_block_reverse(block, z, y=None, y_null=None, guidance=0.0):
    """Sequential inverse with concatenating caches and two calls per step for guidance."""
    zp = block.permute(z.float())
    b, t, _ = zp.shape
    conds = [y, y_null.expand_as(y)] if (guidance > 0 and block.txt_dim) else [y if block.txt_dim else None]
    dtype = block.proj_in.weight.dtype
    caches, ropes = [], []
    for c in conds:
        cache = ConcatCache(len(block.attn_blocks))
        rope = block.rope(c.shape[1] if c is not None else 0, z.device)
        if c is not None:
            block.trunk(block.proj_txt(c.to(dtype)), rope, cache)
        caches.append(cache)
        ropes.append(rope)
    x = torch.empty_like(zp)
    tok = block.sos_embed.expand(b, -1, -1)
    for i in range(t):
        heads = [block.head(block.trunk(block.proj_in(tok.to(dtype)), r, c)) for r, c in zip(ropes, caches)]
        mu, sigma = heads[0]
        if len(heads) == 2:
            mu, sigma = guided_gaussian(mu, sigma, heads[1][0], heads[1][1], guidance)
        x[:, i : i + 1] = zp[:, i : i + 1] * sigma + mu
        tok = x[:, i : i + 1]
    return block.permute(x)


@torch.no_grad()
def baseline_sample(model, noise, y, y_null, guidance):
    h = baseline_block_reverse(model.blocks[-1], model.tokens(noise), y, y_null, guidance)
    for block in reversed(model.blocks[:-1]):
        h = baseline_block_reverse(block, h)
    return model.image(h)


def train_step(model, noise, y, device, explicit_mask: bool):
    """One AdamW step of ``model``, with the reference-strategy boolean mask or SDPA's ``is_causal``."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def step():
        for blk in model.blocks:
            if explicit_mask:
                blk.params = functools.partial(MetaBlock.params, blk, explicit_mask=True)
            else:
                blk.__dict__.pop("params", None)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = model.loss(noise, y)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="cpu-small", help="a starflow preset or cpu-small")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--guidance", type=float, default=2.5)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--dtype", default="auto", help="float32 | bfloat16 | auto (bf16 on CUDA)")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.preset == "cpu-small":
        cfg = StarFlowConfig(
            channel_size=4, img_size=8, channels=256, head_dim=64, layers_per_block=[2, 2, 8], num_classes=10
        )
    else:
        cfg = PRESETS[args.preset]()
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}.get(
        args.dtype, torch.bfloat16 if device.type == "cuda" else torch.float32
    )
    torch.manual_seed(0)
    model = StarFlow(cfg).to(device).eval()
    with torch.no_grad():
        for blk in model.blocks:  # non-trivial heads so both samplers do real work
            blk.proj_out.weight.normal_(0, 0.02)
    emb = ClassEmbedder(cfg.num_classes) if cfg.num_classes else None
    noise = torch.randn(args.batch, *model.input_shape, device=device)
    if emb is not None:
        y, y_null = emb(torch.arange(args.batch) % cfg.num_classes).to(device), emb.null().to(device)
    else:
        y = torch.randn(args.batch, cfg.txt_size, cfg.txt_dim, device=device) if cfg.conditional else None
        y_null = torch.zeros(1, cfg.txt_size, cfg.txt_dim, device=device) if cfg.conditional else None
    n_params = sum(q.numel() for q in model.parameters())

    ours = model.sample(noise, y, y_null, args.guidance)
    base = baseline_sample(model, noise, y, y_null, args.guidance)
    agree = (ours - base).abs().max().item()
    jac = model.sample(noise, y, y_null, args.guidance, jacobi=JacobiOptions(16, 16, 1e-3))
    jac_rel = ((jac - ours).square().mean() / ours.square().mean()).sqrt().item()

    model_dt = model.to(dtype)
    (t_base, t_ours, t_jac), _ = timed_rounds(
        [
            lambda: baseline_sample(model_dt, noise, y, y_null, args.guidance),
            lambda: model_dt.sample(noise, y, y_null, args.guidance),
            lambda: model_dt.sample(noise, y, y_null, args.guidance, jacobi=JacobiOptions(16, 16, 1e-3)),
        ],
        args.repeats,
    )
    model_f = model.to(torch.float32).train()
    lat = noise + cfg.noise_std * torch.randn_like(noise)
    (t_mask, t_causal), _ = timed_rounds(
        [train_step(model_f, lat, y, device, True), train_step(model_f, lat, y, device, False)], args.repeats
    )
    model_f.eval()
    for blk in model_f.blocks:
        blk.__dict__.pop("params", None)
    per_image = lambda ts: [t / args.batch for t in ts]  # noqa: E731
    ratio = lambda num, den: [n / d for n, d in zip(num, den)]  # noqa: E731
    rows = [
        ("sample: concat cache + two-call CFG (baseline) (per image)", per_image(t_base)),
        ("sample: prealloc cache + batched closed-form CFG (per image)", per_image(t_ours)),
        ("sample: + Jacobi blocks (16, 16 it, 1e-3) (per image)", per_image(t_jac)),
        ("train step: explicit mask (per step)", t_mask),
        ("train step: SDPA is_causal (per step)", t_causal),
    ]
    ratios = [
        ("sampling, baseline / ours", ratio(t_base, t_ours)),
        ("sampling, baseline / ours + Jacobi", ratio(t_base, t_jac)),
        ("train step, explicit mask / is_causal", ratio(t_mask, t_causal)),
    ]

    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(
        f"\nSTARFlow benchmark — preset {args.preset} ({n_params / 1e6:.1f}M params, layers "
        f"{cfg.layers_per_block}, {cfg.seq_len} tokens), batch {args.batch}, guidance {args.guidance}, "
        f"{name}, sampling dtype {dtype}"
    )
    print(f"max |ours − baseline| = {agree:.2e};  Jacobi relative RMS deviation = {jac_rel:.2e}\n")
    fmt = lambda v, digits: Spread(tuple(v)).format("median", digits)  # noqa: E731
    print(f"median [min, max] over {args.repeats} rounds; each round runs the sampling rows, then the train rows\n")
    print("| what | seconds |\n|---|---|")
    for what, sec in rows:
        print(f"| {what} | {fmt(sec, 4)} |")
    print("\n| speed-up, per round | × |\n|---|---|")
    for what, r in ratios:
        print(f"| {what} | {fmt(r, 2)} |")


if __name__ == "__main__":
    main()
