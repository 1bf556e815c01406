"""Command line: ``python -m tarflow train|sample|evaluate|demo ...`` (``--help`` on each)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from labcore.cli import add_compile, add_device, add_seed, resolve_device
from labcore.compiling import maybe_compile
from labcore.logging import get_logger
from labcore.trainer_args import add_trainer_args, trainer_options
from labcore.validate import nonnegative_float_arg, positive_float_arg, positive_int_arg

if TYPE_CHECKING:  # torch and the model load inside the commands: --help stays fast
    from tarflow.model import TarFlow

log = get_logger("tarflow")


def _dataset(name: str, split: str, img_size: int):
    from tarflow.data import digits, image_folder

    if name == "digits":
        return digits(split)
    if not Path(name).is_dir():
        raise SystemExit(f"--data must be 'digits' or an image folder (<root>/<class>/<file>); {name!r} is neither")
    return image_folder(name, img_size)


def _load(args) -> TarFlow:
    from labcore.hub import exit_on_load_error
    from tarflow.model import TarFlow

    with exit_on_load_error():
        if args.official_checkpoint:
            model = TarFlow.from_reference_checkpoint(args.official_checkpoint)
        elif args.model:
            model = TarFlow.from_pretrained(args.model)
        else:
            raise SystemExit("give --model DIR (save_pretrained output) or --official-checkpoint FILE.pth")
    args.device = resolve_device(args.device)
    return model.to(args.device).eval()


def cmd_train(args) -> None:
    from tarflow.presets import PRESETS
    from tarflow.training import fit

    config = PRESETS.cli_config(args.preset)
    if args.noise_type:
        config = config.replace(noise_type=args.noise_type)
    if args.noise_std is not None:
        config = config.replace(noise_std=args.noise_std)
    train = _dataset(args.data, "train", config.img_size)
    val = _dataset(args.data, "test", config.img_size) if args.data == "digits" else None
    module = fit(
        config,
        train,
        args.out,
        val=val,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        drop_label=args.drop_label,
        sample_every=args.sample_every,
        sample_guidance=args.cfg,
        resume=args.resume,
        num_workers=args.num_workers,
        compile_model=args.compile,
        seed=args.seed,
        **trainer_options(args),
    )
    module.model.save_pretrained(Path(args.out) / "model")
    log.info("saved %s", Path(args.out) / "model")


def cmd_sample(args) -> None:
    import torch

    from labcore.figures import save_image_grid
    from labcore.rng import seed_everything

    model = _load(args)
    maybe_compile(model, args.compile, modules=model.sampling_modules())
    seed_everything(args.seed)
    n_cls = model.config.num_classes
    y = None
    if n_cls:
        y = torch.full((args.num,), args.label) if args.label is not None else torch.arange(args.num) % n_cls
        y = y.to(args.device)
    with torch.no_grad(), torch.autocast(args.device.split(":")[0], dtype=torch.bfloat16, enabled=args.bf16):
        samples = model.sample(
            args.num,
            y,
            guidance=args.cfg,
            attn_temp=args.attn_temp,
            annealed_guidance=args.annealed,
            denoise=not args.no_denoise,
            jacobi_tol=args.jacobi_tol,
        )
    path = save_image_grid(samples, args.out, nrow=n_cls if n_cls and n_cls <= 16 else None, scale=args.scale)
    log.info("saved %d samples to %s", args.num, path)


def cmd_evaluate(args) -> None:
    from tarflow.evaluation import evaluate_bpd

    model = _load(args)
    data = _dataset(args.data, args.split, model.config.img_size)
    result = {"bits_per_dim": evaluate_bpd(model, data, args.batch_size, conditional=args.conditional)}
    if args.fid:
        from tarflow.evaluation import compute_fid

        result["fid"] = compute_fid(model, data, args.fid, batch_size=args.batch_size, guidance=args.cfg)
    print(json.dumps(result, indent=1))


def cmd_demo(args) -> None:
    from tarflow.demo import main as demo

    print(json.dumps(demo(Path(args.out)), indent=1))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tarflow", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a TarFlow (Lightning)")
    t.add_argument("--preset", default="digits-tiny", help="a name of tarflow.PRESETS (the paper's and tiny ones)")
    t.add_argument("--data", default="digits", help="'digits' or an ImageFolder root")
    t.add_argument("--out", default="runs/tarflow", type=Path)
    t.add_argument("--steps", type=positive_int_arg, default=1000)
    t.add_argument("--batch-size", type=positive_int_arg, default=64)
    t.add_argument("--lr", type=positive_float_arg, default=2e-3)
    t.add_argument("--drop-label", type=float, default=0.1, help="label dropout for CFG")
    t.add_argument("--noise-type", choices=["gaussian", "uniform"], help="override the preset")
    t.add_argument("--noise-std", type=float, help="override the preset")
    t.add_argument("--sample-every", type=int, default=0, help="save a PNG sample grid every N steps")
    t.add_argument("--cfg", type=nonnegative_float_arg, default=0.0, help="guidance weight of the sample grids")
    t.add_argument("--num-workers", type=int, default=0)
    add_seed(t)
    add_trainer_args(t, checkpoint_every=500)
    t.set_defaults(func=cmd_train)

    for name, fn, helptext in (
        ("sample", cmd_sample, "draw samples into a PNG grid"),
        ("evaluate", cmd_evaluate, "bits/dim (and FID) on a dataset"),
    ):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("--model", type=Path, help="directory written by save_pretrained / train")
        s.add_argument("--official-checkpoint", type=Path, help="official apple/ml-tarflow .pth")
        add_device(s)
        s.add_argument("--cfg", type=nonnegative_float_arg, default=0.0, help="classifier-free guidance weight")
        s.set_defaults(func=fn)
        if name == "sample":
            s.add_argument("--num", type=positive_int_arg, default=64)
            s.add_argument("--label", type=int, help="one class for all samples (default: cycle classes)")
            s.add_argument(
                "--attn-temp", type=float, default=1.0, help="attention temperature of the unconditional branch"
            )
            s.add_argument("--annealed", action="store_true", help="anneal the guidance weight over tokens")
            s.add_argument("--jacobi-tol", type=positive_float_arg, help="use the Jacobi sampler with this tolerance")
            s.add_argument("--no-denoise", action="store_true", help="skip the score-based denoising step")
            s.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU)")
            add_seed(s)
            s.add_argument("--scale", type=positive_int_arg, default=1, help="integer upscaling of the PNG")
            s.add_argument("--out", type=Path, default=Path("samples.png"))
            add_compile(s)
        else:
            s.add_argument("--data", default="digits")
            s.add_argument("--split", default="test")
            s.add_argument("--batch-size", type=positive_int_arg, default=256)
            s.add_argument("--conditional", action="store_true", help="use labels (reference: y=None)")
            s.add_argument("--fid", type=int, default=0, help="also compute FID from this many samples")

    d = sub.add_parser("demo", help="the quick-start demo on sklearn digits")
    d.add_argument("--out", default="runs/tarflow-demo")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
