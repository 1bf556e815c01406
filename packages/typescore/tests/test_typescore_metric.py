import json

import numpy as np
import pytest
import torch
from PIL import Image

from typescore import (
    CallableExtractor,
    PromptItem,
    RenderModel,
    TypeScore,
    bootstrap_ci,
    corrupt_text,
    generate_images,
    match_images,
    reading_order,
    render_text,
)
from typescore.extract import to_rgb_array


def test_score_texts_hand_computed():
    result = TypeScore().score_texts(["Fresh Bread!", "OPEN", "kitten"], ["fresh bread", "", "sitting"])
    per = [s.ensemble for s in result.samples]
    assert per[0] == 1.0  # equal after case/punctuation normalisation
    assert per[1] == 0.0  # nothing read
    assert per[2] == pytest.approx((4 / 7 + 4 / 7 + 7 / 12) / 3)
    assert result.score == pytest.approx(sum(per) / 3)
    assert result.ci[0] <= result.score <= result.ci[1]
    assert result.means()["ned"] == pytest.approx((1 + 0 + 4 / 7) / 3)


def test_bootstrap_ci_properties():
    assert bootstrap_ci([0.7] * 10) == (0.7, 0.7)
    x = np.random.default_rng(0).uniform(size=200)
    lo, hi = bootstrap_ci(x)
    lo50, hi50 = bootstrap_ci(x, confidence=0.5)
    assert lo < lo50 < x.mean() < hi50 < hi
    # The 95 % interval of a mean of 200 uniforms has half-width ≈ 1.96 · sqrt(1/12 / 200) ≈ 0.040.
    assert (hi - lo) / 2 == pytest.approx(1.96 * np.sqrt(1 / 12 / 200), rel=0.2)
    with pytest.raises(ValueError):
        bootstrap_ci([])
    with pytest.raises(ValueError):
        bootstrap_ci([1.0], confidence=1.5)


def test_batch_api_with_callable_extractor_and_save(tmp_path):
    lookup = {}

    def fake_ocr(image):
        return lookup[to_rgb_array(image).tobytes()]

    prompts = ['A sign "OPEN NOW"', 'A mug "Best Dad"']
    images = [render_text("OPEN NOW", 64, 32, 10), render_text("Best Dad", 64, 32, 10)]
    for im, text in zip(images, ["OPEN NOW", "Best Bad"]):
        lookup[to_rgb_array(im).tobytes()] = text
    result = TypeScore(CallableExtractor(fake_ocr))(images, prompts)
    assert [s.instructed for s in result.samples] == ["OPEN NOW", "Best Dad"]
    assert result.samples[0].ensemble == 1.0 > result.samples[1].ensemble
    paths = result.save(tmp_path)
    saved = json.loads(paths["json"].read_text())
    assert saved["summary"]["typescore"] == pytest.approx(result.score)
    assert len(paths["csv"].read_text().splitlines()) == 3


def test_metric_bad_input():
    ts = TypeScore(CallableExtractor(lambda im: "x"))
    with pytest.raises(ValueError, match="2 images but 1 prompts"):
        ts([render_text("a", 8, 8, 4)] * 2, ['"a"'])
    with pytest.raises(ValueError, match="empty after normalisation"):
        ts.score_texts(["!!!"], ["x"])
    with pytest.raises(ValueError, match="1 prompt items for 2 texts"):  # not silently truncated to one sample
        ts.score_texts(["a", "b"], ["a", "b"], [PromptItem("p", '"a"', "a")])
    with pytest.raises(ValueError, match="no quoted text"):
        ts([render_text("a", 8, 8, 4)], ["unquoted prompt"])
    with pytest.raises(ValueError, match="no extractor"):
        TypeScore()([render_text("a", 8, 8, 4)], ['"a"'])
    with pytest.raises(TypeError):
        TypeScore(CallableExtractor(lambda im: None))([render_text("a", 8, 8, 4)], ['"a"'])


def test_to_rgb_array_inputs_and_errors(tmp_path):
    pil = Image.new("L", (5, 4), 128)
    assert to_rgb_array(pil).shape == (4, 5, 3)
    assert to_rgb_array(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    assert to_rgb_array(np.ones((4, 5, 4), np.float32))[0, 0].tolist() == [255, 255, 255]
    assert to_rgb_array(torch.zeros(3, 4, 5)).shape == (4, 5, 3)
    pil.save(tmp_path / "a.png")
    assert to_rgb_array(tmp_path / "a.png").shape == (4, 5, 3)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot read image"):
        to_rgb_array(tmp_path / "bad.png")
    with pytest.raises(FileNotFoundError):
        to_rgb_array(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="NaN"):
        to_rgb_array(np.full((2, 2, 3), np.nan))
    with pytest.raises(ValueError, match="empty"):
        to_rgb_array(np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="dtype"):
        to_rgb_array(np.zeros((2, 2), np.int64))


def test_reading_order():
    def box(x, y, w=30, h=10):
        return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]

    # Second line listed first, words of the first line out of order, a slight baseline wobble.
    found = [(box(0, 40), "daily"), (box(50, 2), "bread"), (box(0, 0), "fresh"), (box(40, 41), "!")]
    assert reading_order(found) == "fresh bread daily !"
    assert reading_order([]) == ""


def test_corrupt_text_rate_and_determinism():
    text = "ABCDEFGHIJ" * 100
    bad = corrupt_text(text, 0.1, seed=3)
    errors = sum(a != b for a, b in zip(text, bad))
    assert len(bad) == len(text) and 60 <= errors <= 140  # Binomial(1000, 0.1): ±4 sd
    assert bad == corrupt_text(text, 0.1, seed=3)
    assert corrupt_text("a b-c!", 1.0, seed=0)[1::2] == " -!"  # only alphanumerics change
    assert corrupt_text(text, 0.0) == text
    exact = corrupt_text("ABCDEFGHIJ KLMNOPQRST", 0.1, seed=5, exact=True)
    assert sum(a != b for a, b in zip("ABCDEFGHIJ KLMNOPQRST", exact)) == 2  # round(0.1 · 20)
    assert sum(a != b for a, b in zip("OPEN", corrupt_text("OPEN", 0.1, seed=0, exact=True))) == 1  # at least one
    with pytest.raises(ValueError):
        corrupt_text(text, 1.5)


def test_generate_images_with_pipeline_double_and_match(tmp_path):
    calls = []

    class Pipe:  # diffusers-like: keyword prompt list, generator, returns .images
        def __call__(self, prompt, generator=None, num_inference_steps=1):
            calls.append((list(prompt), generator.initial_seed(), num_inference_steps))
            return RenderModel(0.0, width=32, height=16, font_size=8)(prompt)

    items = [PromptItem.from_prompt(f"p{i}", f'sign "T{i}"') for i in range(5)]
    images = generate_images(Pipe(), items, batch_size=2, seed=7, out_dir=tmp_path, num_inference_steps=3)
    assert len(images) == 5 and all(im.size == (32, 16) for im in images)
    assert [len(c[0]) for c in calls] == [2, 2, 1] and [c[1] for c in calls] == [7, 9, 11]
    assert all(c[2] == 3 for c in calls)
    assert [p.name for p in match_images(tmp_path, items)] == [f"p{i}.png" for i in range(5)]
    with pytest.raises(ValueError, match="returned 1 images for 2"):
        generate_images(lambda prompt, **kw: [images[0]], items[:2], batch_size=2)
    with pytest.raises(ValueError, match="prompt ids"):
        match_images(tmp_path, [PromptItem.from_prompt(f"q{i}", '"x"') for i in range(3)])
