"""Command line: ``python -m tinydet demo|train|predict|evaluate``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from labcore.cli import add_compile, add_device, resolve_device
from labcore.compiling import maybe_compile
from labcore.logging import get_logger, progress
from labcore.trainer_args import add_trainer_args, trainer_options
from labcore.validate import nonnegative_int_arg, positive_float_arg, positive_int_arg

log = get_logger("tinydet")
CLASS_SETS = {"aitod": "AITOD_CLASSES", "dota": "DOTA_CLASSES", "synthetic": "SYNTHETIC_CLASSES"}

if TYPE_CHECKING:  # torch loads inside the commands: --help stays fast
    import torch


def _dataset(spec: str, classes: str, num_images: int, size: int, protocol: str | None = None):
    from tinydet import data

    if spec == "synthetic":
        return data.SyntheticTinyObjects(num_images, size=size)
    return data.DOTAStyleDataset(spec, getattr(data, CLASS_SETS[classes]), protocol=protocol)


def _load_image(path: Path) -> torch.Tensor:
    import numpy as np
    import torch
    from PIL import Image

    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)


def cmd_demo(args) -> None:
    from tinydet.demo import run, run_point_teacher

    if args.point_teacher:
        steps = args.steps or 800
        res = run_point_teacher(Path(args.out), steps=steps, burn_in_steps=steps // 2, seed=args.seed)
        print(json.dumps(res, indent=1))
    else:
        seeds = tuple(range(args.seed, args.seed + args.num_seeds))
        steps = {"steps": args.steps} if args.steps else {}  # default: run()'s
        print(json.dumps(run(Path(args.out), heads=tuple(args.heads), seeds=seeds, **steps), indent=1))


def _load_model(path):
    """A saved :class:`RotatedDetector`, :class:`TwoStageDetector` or :class:`PointTeacher`, told apart
    by the tag in its config (older saves: by their config fields)."""
    from labcore.hub import exit_on_load_error, load_tagged
    from tinydet.detector import RotatedDetector
    from tinydet.point_teacher import PointTeacher
    from tinydet.two_stage import TwoStageDetector

    with exit_on_load_error():
        return load_tagged(path, [PointTeacher, TwoStageDetector, RotatedDetector])


def cmd_train(args) -> None:
    from tinydet import data
    from tinydet.detector import DetectorConfig, RotatedDetector
    from tinydet.train import fit
    from tinydet.two_stage import TwoStageConfig, TwoStageDetector

    opts = trainer_options(args)  # refuses --compile with --strategy fsdp before anything is built
    classes = getattr(data, CLASS_SETS["synthetic" if args.data == "synthetic" else args.classes])
    if args.recipe:  # the paper's real-size model and schedule
        _train_recipe(args, classes, opts)
        return
    if args.head.endswith("-rcnn"):  # Oriented R-CNN with the DCFL or the plain oriented RPN
        rpn = args.head.removesuffix("-rcnn")
        preset = TwoStageConfig.tiny if args.backbone == "tiny" else TwoStageConfig.reference
        cfg = preset(classes, rpn, backbone=args.backbone)
    elif args.backbone == "tiny":
        cfg = DetectorConfig.tiny(classes, head=args.head)
    else:
        cfg = DetectorConfig(classes=list(classes), head=args.head, backbone=args.backbone)
    ds = _dataset(args.data, args.classes, args.num_images, args.size)
    if args.head == "point-teacher":  # trains from box centres only (the boxes stay unused)
        from tinydet.data import PointLabels
        from tinydet.point_teacher import SYNTHETIC_SHAPES, PointTeacher, PointTeacherConfig

        preset = PointTeacherConfig if args.backbone == "tiny" else PointTeacherConfig.reference
        pt_cfg = preset(list(classes), backbone=args.backbone, burn_in_steps=(args.steps or 200) // 2)
        if args.data == "synthetic":  # shape priors known for these scenes
            pt_cfg.shape_list = SYNTHETIC_SHAPES
        detector = PointTeacher(pt_cfg)
        ds = PointLabels(ds)
    else:
        detector = TwoStageDetector(cfg) if isinstance(cfg, TwoStageConfig) else RotatedDetector(cfg)
        if args.backbone_weights:
            from tinydet.model import load_backbone_weights

            load_backbone_weights(detector.backbone, args.backbone_weights)
        if not args.no_flip:  # AI-TOD-R's pipelines: RRandomFlip, 0.25 per direction (Point Teacher's has none)
            ds = data.RandomFlip(ds, version=cfg.angle_version)
    maybe_compile(detector, args.compile)
    fit(
        detector,
        ds,
        Path(args.out) / "checkpoints",
        seed=args.seed,
        max_steps=args.steps or 200,
        batch_size=args.batch_size or 8,
        lr=args.lr,
        optimizer=args.optimizer,
        warmup=args.warmup,
        resume=args.resume,
        **opts,
    )
    detector.save_pretrained(Path(args.out) / "model")
    log.info("saved %s", Path(args.out) / "model")


def _train_recipe(args, classes, opts: dict) -> None:
    """``train --recipe NAME``: :func:`tinydet.create` and the recipe's SGD schedule (12 epochs over
    the data unless ``--steps``; ``--batch-size`` images per step, default the config's per-GPU count)."""
    from tinydet import data
    from tinydet.presets import create
    from tinydet.recipes import RECIPES
    from tinydet.train import fit

    recipe = RECIPES[args.recipe]
    detector = create(args.recipe, args.backbone_weights, classes=list(classes))
    ds = _dataset(args.data, args.classes, args.num_images, args.size)
    if recipe.model == "point_teacher":
        ds = data.PointLabels(ds)
    elif recipe.flip and not args.no_flip:
        ds = data.RandomFlip(ds, version=detector.config.angle_version)
    batch = args.batch_size or recipe.images_per_gpu
    steps = args.steps or recipe.epochs * -(-len(ds) // batch)
    log.info("recipe %s (%s): %d steps of %d images, SGD lr %g", args.recipe, recipe.source, steps, batch, recipe.lr)
    maybe_compile(detector, args.compile)
    fit(
        detector,
        ds,
        Path(args.out) / "checkpoints",
        max_steps=steps,
        batch_size=batch,
        lr=recipe.lr,
        optimizer="sgd",
        warmup=recipe.warmup_iters,
        resume=args.resume,
        seed=args.seed,
        **opts,
    )
    log.info("saved %s", detector.save_pretrained(Path(args.out) / "model"))


def cmd_predict(args) -> None:
    import numpy as np

    from labcore.rotated import obb_to_poly
    from tinydet.visualize import draw_boxes

    detector = _load_model(args.model)
    maybe_compile(detector, args.compile)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in progress([Path(p) for p in args.images], desc="predict"):
        image = _load_image(path)
        if args.patch_size:  # DOTA-style: sliding windows, detections merged by rotated NMS
            from tinydet.split import predict_large

            det = predict_large(detector, image, args.patch_size, args.gap, score_thr=args.score_thr)
        else:
            det = detector.predict(image[None], score_thr=args.score_thr)[0]
        lines = [
            " ".join(f"{v:.1f}" for v in poly) + f" {detector.config.classes[lab]} {score:.4f}"
            for poly, lab, score in zip(
                obb_to_poly(det["boxes"]).reshape(-1, 8).tolist(), det["labels"].tolist(), det["scores"].tolist()
            )
        ]
        (out / f"{path.stem}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
        from PIL import Image

        drawn = draw_boxes(image, det["boxes"], det["labels"], scale=1)
        Image.fromarray((drawn.permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(out / f"{path.stem}.png")
    log.info("wrote DOTA-style detections (x1 y1 … x4 y4 class score) and PNGs to %s", out)


def cmd_evaluate(args) -> None:
    from tinydet.evaluate import coco_rotated_ap, voc_rotated_map

    device = resolve_device(args.device)
    detector = _load_model(args.model).to(device)
    ds = _dataset(args.data, args.classes, args.num_images, args.size, args.protocol)
    dets, gts = [], []
    for i in progress(range(len(ds)), desc="evaluate"):
        item = ds[i]
        det = detector.predict(item["image"][None].to(device))[0]
        dets.append({key: value.cpu() for key, value in det.items()})
        gts.append(item)
    n = detector.config.num_classes
    metrics = {
        **coco_rotated_ap(dets, gts, n, protocol=args.protocol),
        **voc_rotated_map(dets, gts, n, protocol=args.protocol),
    }
    print(json.dumps({"protocol": args.protocol, **metrics}, indent=1))


def cmd_split(args) -> None:
    from tinydet import data
    from tinydet.split import split_folder

    classes = getattr(data, CLASS_SETS[args.classes])
    n = split_folder(args.data, args.out, classes, args.size, args.gap, args.iof_thr)
    log.info("wrote %d patches of %d px to %s/images and labelTxt", n, args.size, args.out)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinydet", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--seed", type=int, default=0, help="seeds torch/numpy/python (init, shuffling, flips)")
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="DCFL vs Rotated RetinaNet on synthetic scenes (CPU, minutes)", parents=[common])
    d.add_argument("--out", default="runs/tinydet-demo")
    d.add_argument(
        "--steps", type=positive_int_arg, default=None, help="default 100 per seed (detectors) / 800 (Point Teacher)"
    )
    d.add_argument("--point-teacher", action="store_true", help="the Point Teacher demo (points only)")
    d.add_argument(
        "--num-seeds", type=positive_int_arg, default=3, help="detector demo: seeds --seed … --seed+N−1, mean reported"
    )
    d.add_argument(
        "--heads",
        nargs="+",
        choices=["retina", "dcfl", "dcfl-rcnn", "oriented-rcnn"],
        default=["retina", "dcfl"],
        help="detectors to train and compare (dcfl-rcnn: Oriented R-CNN with the DCFL RPN; oriented-rcnn: plain)",
    )
    d.set_defaults(fn=cmd_demo)
    for name, fn in (("train", cmd_train), ("evaluate", cmd_evaluate)):
        s = sub.add_parser(name, parents=[common])
        s.add_argument("--data", default="synthetic", help="'synthetic' or a folder with images/ and labelTxt/")
        s.add_argument("--classes", choices=sorted(CLASS_SETS), default="aitod")
        s.add_argument("--num-images", type=positive_int_arg, default=64, help="synthetic data only")
        s.add_argument("--size", type=positive_int_arg, default=128, help="synthetic image size")
        s.set_defaults(fn=fn)
        if name == "train":
            s.add_argument(
                "--head",
                choices=["dcfl", "retina", "dcfl-rcnn", "oriented-rcnn", "point-teacher"],
                default="dcfl",
                help="dcfl-rcnn: Oriented R-CNN with the DCFL RPN (the paper's 15.7 AP model); oriented-rcnn: plain",
            )
            s.add_argument("--backbone", default="tiny", help="'tiny' or resnet18/34/50/101")
            s.add_argument(
                "--recipe",
                choices=[
                    "dcfl_r50_aitodr_1x",
                    "retinanet_r50_aitodr_1x",
                    "oriented_rcnn_dcfl_r50_aitodr_1x",
                    "point_teacher_r50_aitodr",
                ],
                help="the paper's real-size model and SGD 1x schedule (overrides --head/--backbone/--lr/--optimizer)",
            )
            s.add_argument(
                "--backbone-weights",
                help="ResNet weights: a local .pth/.safetensors, torchvision://resnet50, "
                "ResNet50_Weights.IMAGENET1K_V1 "
                "or timm:<name>",
            )
            s.add_argument(
                "--steps", type=positive_int_arg, default=None, help="default 200, or 12 epochs with --recipe"
            )
            s.add_argument(
                "--batch-size", type=positive_int_arg, default=None, help="default 8, or the recipe's images per GPU"
            )
            s.add_argument("--lr", type=positive_float_arg, default=2e-3)
            s.add_argument("--optimizer", choices=["sgd", "adamw"], default="adamw")
            s.add_argument("--warmup", type=int, default=20)
            add_trainer_args(s, checkpoint_every=50)
            s.add_argument("--no-flip", action="store_true", help="detectors: no random flips (the reference flips)")
            s.add_argument("--out", default="runs/tinydet")
        else:
            s.add_argument("--model", required=True, help="a directory written by save_pretrained")
            s.add_argument(
                "--protocol",
                choices=["aitod-r", "clean"],
                default="aitod-r",
                help="aitod-r: AI-TOD-R's loader + evaluator, quirks included; clean: difficult ignored, no quirks",
            )
            add_device(s)
    pr = sub.add_parser("predict", parents=[common])
    pr.add_argument("--model", required=True)
    pr.add_argument("--images", nargs="+", required=True)
    pr.add_argument("--out", default="runs/tinydet-predict")
    pr.add_argument("--score-thr", type=float, default=0.3)
    pr.add_argument(
        "--patch-size", type=nonnegative_int_arg, default=0, help="split large images into windows (DOTA: 1024)"
    )
    pr.add_argument("--gap", type=int, default=200, help="overlap of the --patch-size windows")
    add_compile(pr)
    pr.set_defaults(fn=cmd_predict)
    sp = sub.add_parser(
        "split", help="cut a DOTA-layout folder into window patches (mmrotate img_split)", parents=[common]
    )
    sp.add_argument("--data", required=True, help="a folder with images/ and labelTxt/")
    sp.add_argument("--out", required=True)
    sp.add_argument("--classes", choices=sorted(CLASS_SETS), default="dota")
    sp.add_argument("--size", type=int, default=1024)
    sp.add_argument("--gap", type=int, default=200)
    sp.add_argument("--iof-thr", type=float, default=0.7)
    sp.set_defaults(fn=cmd_split)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from labcore.rng import seed_everything

    seed_everything(args.seed)
    if getattr(args, "devices", None) not in (None, "auto"):
        args.devices = int(args.devices)
    args.fn(args)


if __name__ == "__main__":
    main()
