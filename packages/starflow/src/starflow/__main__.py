"""``python -m starflow train|sample|evaluate|demo`` (also the ``starflow`` console script).

Examples::

    python -m starflow demo --out runs/starflow-demo
    python -m starflow train --preset digits --data digits --steps 2000 --out runs/digits
    python -m starflow sample --model runs/digits/model --class-labels 0 1 2 --guidance 2 --out grid.png
    python -m starflow sample --official-checkpoint starflow_3B_t2i_256x256.pth --vae ./sd-vae-ft-ema \\
        --text-encoder ./flan-t5-xl --prompt "a corgi on the beach" --guidance 2.5 --jacobi-block 64
    python -m starflow evaluate --model runs/digits/model --data digits
    python -m starflow train --config cfg.json --data captions:/data/cc --vae ./sd-vae --text-encoder ./flan-t5 \\
        --strategy fsdp --precision bf16-mixed --out runs/t2i
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from labcore.cli import add_compile, add_device, add_seed, resolve_device
from labcore.compiling import maybe_compile
from labcore.logging import get_logger
from labcore.trainer_args import add_trainer_args, trainer_options
from labcore.validate import nonnegative_float_arg, positive_float_arg, positive_int_arg

log = get_logger("starflow")


def _dataset(spec: str, image_size: int, split: str = "train"):
    from starflow.data import ClassFolder, ImageCaptionFolder, digits_dataset

    if spec == "digits":
        return digits_dataset(split)  # evaluate scores the held-out split, never the training images
    kind, _, path = spec.partition(":")
    if kind == "classes":
        return ClassFolder(path, image_size)
    if kind == "captions":
        return ImageCaptionFolder(path, image_size)
    raise SystemExit(f"--data must be digits, classes:PATH or captions:PATH, got {spec!r}")


def _config(args):
    from starflow.config import StarFlowConfig
    from starflow.presets import PRESETS

    if args.config:
        return StarFlowConfig(**json.loads(Path(args.config).read_text()))
    return PRESETS.cli_config(args.preset)


def train(args) -> None:
    from labcore.lightning import fit, step_dataloader
    from labcore.rng import seed_everything
    from starflow.autoencoder import LatentAutoencoder
    from starflow.conditioning import TextEncoder
    from starflow.data import cache_latents
    from starflow.training import StarFlowModule, make_trainer, save_model

    opts = trainer_options(args)  # refuses --compile with --strategy fsdp before anything is loaded
    opts["precision"] = opts["precision"] or "32-true"
    seed_everything(args.seed)
    cfg = _config(args)
    ae = LatentAutoencoder.from_pretrained(args.vae) if args.vae else None
    if ae is not None:
        ae.check_model(cfg)
    te = TextEncoder.from_pretrained(args.text_encoder, cfg.txt_size) if args.text_encoder else None
    if cfg.conditional and not cfg.num_classes and te is None:
        raise SystemExit("this config is text-conditional: pass --text-encoder (a local T5 directory)")
    image_size = cfg.img_size * (ae.downsample_factor if ae else 1)
    data = _dataset(args.data, image_size)
    latents = False
    if args.cache_latents and (ae is None or not args.data.startswith("classes:")):
        raise SystemExit("--cache-latents needs --vae and a classes:DIR dataset (captions are encoded on the fly)")
    if ae is not None and args.cache_latents:
        data, latents = cache_latents(data, ae, Path(args.out) / "latents.safetensors"), True
    loader = step_dataloader(data, min(args.batch_size, len(data)), seed=args.seed, num_workers=args.workers)
    module = StarFlowModule(
        cfg,
        lr=args.lr,
        warmup=args.warmup,
        total_steps=args.steps,
        autoencoder=ae,
        text_encoder=te,
        latents=latents,
        seed=args.seed,
    )
    maybe_compile(module.model, args.compile)
    trainer = make_trainer(
        args.out, args.steps, grad_clip=args.grad_clip, save_every=opts.pop("checkpoint_every"), **opts
    )
    fit(trainer, module, loader, resume=args.resume)
    save_model(trainer, module, Path(args.out) / "model")
    if trainer.is_global_zero:
        log.info("saved %s", Path(args.out) / "model")


def sample(args) -> None:
    import torch

    from labcore.figures import save_image_grid
    from labcore.hub import exit_on_load_error
    from labcore.rng import seed_everything
    from starflow.autoencoder import LatentAutoencoder
    from starflow.conditioning import TextEncoder
    from starflow.flow import JacobiOptions
    from starflow.model import StarFlow
    from starflow.pipeline import StarFlowPipeline

    seed_everything(args.seed)
    if bool(args.model) == bool(args.official_checkpoint):
        raise SystemExit("pass exactly one of --model (a save_pretrained directory) or --official-checkpoint (.pth)")
    if args.finetuned_decoder and not args.vae:
        raise SystemExit("--finetuned-decoder replaces the decoder of a VAE: pass the VAE with --vae too")
    with exit_on_load_error():
        if args.official_checkpoint:
            model = StarFlow.from_official_checkpoint(args.official_checkpoint, _config(args) if args.config else None)
            pipe = StarFlowPipeline(model)
        elif (Path(args.model) / "transformer").exists():
            pipe = StarFlowPipeline.from_pretrained(args.model)
        else:
            pipe = StarFlowPipeline(StarFlow.from_pretrained(args.model))
    if args.vae:
        pipe.autoencoder = LatentAutoencoder.from_pretrained(args.vae, args.finetuned_decoder)
        pipe.autoencoder.check_model(pipe.model.config)
    if args.text_encoder:
        pipe.text_encoder = TextEncoder.from_pretrained(args.text_encoder, pipe.model.config.txt_size)
    pipe.to(resolve_device(args.device))
    maybe_compile(pipe.model, args.compile, modules=pipe.model.sampling_modules())
    jacobi = JacobiOptions(args.jacobi_block, args.jacobi_iters, args.jacobi_threshold) if args.jacobi_block else None
    out = pipe(
        args.prompt or None,
        class_labels=args.class_labels,
        guidance_scale=args.guidance,
        num_images_per_prompt=args.num,
        generator=torch.Generator().manual_seed(args.seed),
        jacobi=jacobi,
        output_type="pt",
    )
    save_image_grid(out.images, args.out, nrow=args.num, scale=args.scale)
    log.info("wrote %d samples to %s", len(out.images), args.out)


def evaluate(args) -> None:
    import torch

    from labcore.hub import exit_on_load_error
    from labcore.metrics import bits_per_dim
    from labcore.rng import seed_everything
    from starflow.conditioning import ClassEmbedder
    from starflow.model import StarFlow

    seed_everything(args.seed)
    device = resolve_device(args.device)
    with exit_on_load_error():
        model = StarFlow.from_pretrained(args.model).eval().to(device)
    cfg = model.config
    if cfg.conditional and not cfg.num_classes:
        raise SystemExit("evaluate supports unconditional and class-conditional pixel/latent datasets")
    loader = torch.utils.data.DataLoader(_dataset(args.data, cfg.img_size, "test"), batch_size=args.batch_size)
    total, n = 0.0, 0
    with torch.no_grad():
        for x, labels in loader:
            x = x.to(device)
            x = x + cfg.noise_std * torch.randn_like(x)
            y = ClassEmbedder(cfg.num_classes)(labels).to(device) if cfg.num_classes else None
            total += -model.log_prob(x, y).sum().item()
            n += len(x)
    nll = total / n
    dims = cfg.channel_size * cfg.img_size**2
    print(
        json.dumps(
            {"nll_nats": nll, "nats_per_dim": nll / dims, "bits_per_dim": float(bits_per_dim(nll, dims)), "examples": n}
        )
    )


def demo(args) -> None:
    from starflow.demo import main as run_demo

    print(json.dumps(run_demo(Path(args.out), steps=args.steps, per_class=args.per_class, guidance=args.guidance)))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m starflow", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train with Lightning (resumes from OUT/checkpoints/last.ckpt)")
    t.add_argument("--preset", default="digits", help="a name of starflow.PRESETS (the paper's sizes and tiny ones)")
    t.add_argument("--config", help="JSON file of StarFlowConfig fields (overrides --preset)")
    t.add_argument("--data", default="digits", help="digits | classes:DIR | captions:DIR")
    t.add_argument("--vae", help="local diffusers AutoencoderKL directory (latent space)")
    t.add_argument("--text-encoder", help="local T5 directory (encoder + tokenizer)")
    t.add_argument("--cache-latents", action="store_true", help="encode the dataset once to OUT/latents.safetensors")
    t.add_argument("--steps", type=positive_int_arg, default=2000)
    t.add_argument("--batch-size", type=positive_int_arg, default=64)
    t.add_argument("--lr", type=positive_float_arg, default=1e-3)
    t.add_argument("--warmup", type=int, default=100)
    t.add_argument("--grad-clip", type=float, default=1.0)
    add_trainer_args(t, checkpoint_every=500)
    t.add_argument("--workers", type=int, default=0)
    t.add_argument("--out", default="runs/starflow")
    add_seed(t)
    s = sub.add_parser("sample", help="sample a grid PNG")
    s.add_argument("--model", help="a save_pretrained model or pipeline directory")
    s.add_argument("--official-checkpoint", help="a reference .pth, e.g. starflow_3B_t2i_256x256.pth")
    s.add_argument("--config", help="JSON of StarFlowConfig fields for --official-checkpoint (default: by file name)")
    s.add_argument("--vae", help="local diffusers AutoencoderKL directory (decodes latents to images)")
    s.add_argument("--finetuned-decoder", help="fine-tuned VAE for noisy latents: a directory or the reference's file")
    s.add_argument("--text-encoder", help="local T5 directory (encoder + tokenizer) for text-conditional models")
    s.add_argument("--prompt", nargs="*")
    s.add_argument("--class-labels", type=int, nargs="*")
    s.add_argument("--guidance", type=nonnegative_float_arg, default=0.0)
    s.add_argument("--num", type=positive_int_arg, default=4, help="images per prompt / label")
    s.add_argument("--jacobi-block", type=int, default=0, help="Jacobi block size (0: sequential; reference: 64)")
    s.add_argument("--jacobi-iters", type=int, default=32, help="max iterations per block (reference: 32)")
    s.add_argument("--jacobi-threshold", type=float, default=5e-3, help="relative change to stop (reference: 0.005)")
    s.add_argument("--scale", type=positive_int_arg, default=4)
    s.add_argument("--out", default="samples.png")
    add_seed(s)
    add_device(s)
    add_compile(s)
    e = sub.add_parser("evaluate", help="NLL / bits per dim of noise-augmented data")
    e.add_argument("--model", required=True)
    e.add_argument("--data", default="digits")
    e.add_argument("--batch-size", type=positive_int_arg, default=256)
    add_seed(e)
    add_device(e)
    d = sub.add_parser("demo", help="the quick-start demo: class-conditional digits, grids with/without guidance")
    d.add_argument("--out", default="runs/starflow-demo")
    d.add_argument("--steps", type=positive_int_arg, default=400)
    d.add_argument("--per-class", type=positive_int_arg, default=10)
    d.add_argument("--guidance", type=nonnegative_float_arg, default=2.0)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    {"train": train, "sample": sample, "evaluate": evaluate, "demo": demo}[args.cmd](args)


if __name__ == "__main__":
    main()
