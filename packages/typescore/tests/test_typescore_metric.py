import csv
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


def test_demo_seed_sets_every_renderer(tmp_path):
    from typescore.demo import renderer_seed, run
    from typescore.prompts import builtin_prompts

    assert [renderer_seed(0, k, 5) for k in range(5)] == [0, 1, 2, 3, 4]  # seed 0: the original renderings
    assert len({renderer_seed(s, k, 5) for s in range(40) for k in range(5)}) == 200  # no two renderers share one
    blind = CallableExtractor(lambda image: "")  # no OCR: the oracle scores carry the renderings
    rates = (0.05, 0.4)

    def oracles(seed):
        out = run(tmp_path / str(seed), rates=rates, n_prompts=4, report_rate=0.4, extractor=blind, seed=seed)
        return [out[f"oracle@{r:.2f}"] for r in rates]

    items = builtin_prompts()[:4]
    expected = []
    for k, rate in enumerate(rates):  # seed 0 = RenderModel(rate, seed=k), as before the demo took a seed
        model = RenderModel(rate, seed=k, width=384, height=128, font_size=28)
        model(prompt=[it.prompt for it in items])
        expected.append(round(TypeScore(blind).score_texts([it.text for it in items], model.rendered).score, 4))
    first, second = oracles(0), oracles(1)
    assert first == expected and oracles(0) == first
    assert all(a != b for a, b in zip(first, second))  # every renderer's noise follows the seed
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        run(tmp_path, seed=-1, extractor=blind)


def test_generate_images_seeds_per_prompt_and_match(tmp_path):
    from typescore.generate import prompt_seed

    calls = []

    class Pipe:  # diffusers-like: keyword prompt list, one generator per prompt, returns .images
        def __call__(self, prompt, generator=None, num_inference_steps=1):
            calls.append((list(prompt), [g.initial_seed() for g in generator], num_inference_steps))
            noise = [int(torch.randint(0, 9, (1,), generator=g)) for g in generator]  # depends on its generator only
            texts = [f'"{p[-3:-1]}{n}"' for p, n in zip(prompt, noise)]
            return RenderModel(0.0, width=32, height=16, font_size=8)(texts)

    items = [PromptItem.from_prompt(f"p{i}", f'sign "T{i}"') for i in range(5)]
    images = generate_images(Pipe(), items, batch_size=2, seed=7, out_dir=tmp_path, num_inference_steps=3)
    assert len(images) == 5 and all(im.size == (32, 16) for im in images)
    assert [len(c[0]) for c in calls] == [2, 2, 1] and all(c[2] == 3 for c in calls)
    assert [s for c in calls for s in c[1]] == [prompt_seed(7, f"p{i}") for i in range(5)]
    # the same image for a prompt whatever the batching or the other prompts
    again = generate_images(Pipe(), items[::-1], batch_size=3, seed=7)[::-1]
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(images, again))
    assert prompt_seed(7, "p0") != prompt_seed(8, "p0") and prompt_seed(7, "p0") != prompt_seed(7, "p1")
    assert [p.name for p in match_images(tmp_path, items)] == [f"p{i}.png" for i in range(5)]
    with pytest.raises(ValueError, match="returned 1 images for 2"):
        generate_images(lambda prompt, **kw: [images[0]], items[:2], batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        generate_images(Pipe(), items, batch_size=0)


def test_match_images_is_strict_by_id(tmp_path):
    # issue #22: img_1 ... img_12 used to be paired with prompts 0000 ... 0011 in sorted order (11 of 12 wrong)
    for i in range(1, 13):
        render_text(str(i), 16, 16, 8).save(tmp_path / f"img_{i}.png")
    items = [PromptItem.from_prompt(f"{i:04d}", f'"{i + 1}"') for i in range(12)]
    with pytest.raises(ValueError, match=r"12 prompt\(s\) have no image: 0000, 0001.*12 image\(s\) match no prompt id"):
        match_images(tmp_path, items)
    by_order = match_images(tmp_path, items, pair_by_order=True)
    assert [p.name for p in by_order][:3] == ["img_1.png", "img_10.png", "img_11.png"]  # sorted names: as asked
    with pytest.raises(ValueError, match="pair_by_order: .* 12 images for 11 prompts"):
        match_images(tmp_path, items[:11], pair_by_order=True)
    named = [PromptItem.from_prompt(f"img_{i}", f'"{i}"') for i in range(1, 13)]
    with pytest.raises(ValueError, match=r"1 image\(s\) match no prompt id: img_9.png"):
        match_images(tmp_path, named[:8] + named[9:])  # img_9 has no prompt (and no prompt lacks an image)


def test_every_image_mode_reads_as_black_text_on_white():
    ink = np.zeros((12, 20), dtype=bool)
    ink[4:8, 5:15] = True
    rgba = np.zeros((12, 20, 4), dtype=np.uint8)
    rgba[ink] = (0, 0, 0, 255)  # black text, transparent background
    grey16 = np.where(ink, 0, 50000).astype(np.uint16)  # 16-bit greyscale, non-black background
    cases = {
        "RGBA": Image.fromarray(rgba, "RGBA"),
        "LA": Image.fromarray(rgba, "RGBA").convert("LA"),
        "I;16": Image.fromarray(grey16),
        "I": Image.fromarray(grey16.astype(np.int32)),
        "rgba array": rgba,
        "uint16 array": grey16,
    }
    for name, image in cases.items():
        arr = to_rgb_array(image)
        assert arr.shape == (12, 20, 3) and arr.dtype == np.uint8, name
        assert (arr[ink] == 0).all(), name  # the text stays black
        background = 255 if name in ("RGBA", "LA", "rgba array") else round(50000 * 255 / 65535)
        assert (np.abs(arr[~ink].astype(int) - background) <= 1).all(), name  # not black, not clipped to white
    half = rgba.copy()
    half[..., 3] = 128  # half-transparent black over white is mid grey
    assert abs(int(to_rgb_array(half)[0, 0, 0]) - 127) <= 1
    with pytest.raises(ValueError, match="dtype int64"):
        to_rgb_array(np.zeros((4, 4), dtype=np.int64))


def test_span_mode_reports_scene_text_apart():
    ts = TypeScore(mode="span")
    result = ts.score_texts(
        ["FRESH BREAD DAILY", "FRESH BREAD DAILY", "FRESH BREAD DAILY"],
        ["Fresh Bread Daily baked every morning since 1920", "FRESH BRAED DAILY", "nothing"],
    )
    subtitle, typo, wrong = result.samples
    assert subtitle.span == "fresh bread daily" and subtitle.span_ensemble == 1.0
    assert subtitle.extra_text == "baked every morning since 1920" and subtitle.ensemble < 0.8  # whole: penalised
    assert typo.extra_text == "" and typo.span_ensemble == typo.ensemble < 1.0  # a misspelling costs in both modes
    assert subtitle.span_ensemble > typo.span_ensemble > wrong.span_ensemble
    summary = result.summary()
    assert summary["mode"] == "span" and summary["typescore"] == summary["typescore_span"]
    assert summary["typescore_whole"] == pytest.approx(np.mean([s.ensemble for s in result.samples]))
    assert summary["mean_extra_chars"] == pytest.approx(np.mean([len(s.extra_text) for s in result.samples]))
    with pytest.raises(ValueError, match="mode"):
        TypeScore(mode="best")


def test_single_sample_has_no_interval_and_outputs_carry_provenance(tmp_path):
    one = TypeScore().score_texts(["OPEN"], ["OPEN"])
    assert one.ci is None and one.summary()["ci_low"] is None
    with pytest.raises(ValueError, match="at least 2 scores"):
        bootstrap_ci([0.5])
    items = [
        PromptItem.from_prompt("a", '"ONE"', style="neon", category="sign"),
        PromptItem.from_prompt("b", '"TWO THREE"', style="neon", category="mug"),
        PromptItem.from_prompt("c", '"FOUR FIVE SIX SEVEN"', style="chalk", category="sign"),
    ]
    result = TypeScore().score_texts([it.text for it in items], ["ONE", "TWO", "FOUR FIVE SIX SEVEN"], items)
    by_style = result.breakdown("style")
    neon = np.mean([result.samples[0].ensemble, result.samples[1].ensemble])
    assert by_style["neon"]["n"] == 2 and by_style["neon"]["typescore"] == pytest.approx(neon)
    assert by_style["chalk"] == {"n": 1, "typescore": 1.0, "ci_low": None, "ci_high": None}
    assert set(result.breakdown("length")) == {"1", "2-3", "4-7"}
    assert set(result.breakdowns()) == {"length", "category", "style"}
    paths = result.save(tmp_path)
    saved = json.loads(paths["json"].read_text())
    assert saved["provenance"]["normalizer"]["casefold"] is True and saved["provenance"]["mode"] == "whole"
    assert saved["provenance"]["typescore"] is not None
    assert saved["breakdowns"]["category"]["sign"]["n"] == 2
    with open(paths["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["style"] for r in rows] == ["neon", "neon", "chalk"] and rows[1]["category"] == "mug"


def test_reading_order_reads_columns_one_after_the_other():
    def box(x, y, w=40, h=10):
        return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]

    found = [(box(0, 0, 200, 16), "TITLE")]
    for i in range(3):  # two columns of three lines, each line two words; word gaps 5 px, gutter 35 px
        found += [(box(0, 30 + 14 * i), f"L{i}a"), (box(45, 30 + 14 * i), f"L{i}b")]
        found += [(box(120, 30 + 14 * i), f"R{i}a"), (box(165, 30 + 14 * i), f"R{i}b")]
    left = " ".join(f"L{i}a L{i}b" for i in range(3))
    right = " ".join(f"R{i}a R{i}b" for i in range(3))
    assert reading_order(found[::-1]) == f"TITLE {left} {right}"
    assert reading_order(found[1:]) == f"{left} {right}"
    assert reading_order(found[1:], gutter=4.0) == " ".join(f"L{i}a L{i}b R{i}a R{i}b" for i in range(3))


def test_validation_scenes_are_deterministic_with_a_known_oracle():
    from typescore.validation import DISTRACTORS, validation_set

    first, again = validation_set("all", seed=3, n=4), validation_set("all", seed=3, n=4)
    assert all(np.array_equal(np.asarray(a.image), np.asarray(b.image)) for a, b in zip(first, again))
    assert not np.array_equal(np.asarray(first[0].image), np.asarray(validation_set("all", seed=4, n=4)[0].image))
    for scene in first:
        extra = scene.drawn.replace(scene.target, "").strip()
        assert scene.target in scene.drawn and extra in DISTRACTORS  # drawn = target + one distractor line
        assert len(scene.target) == len(scene.item.text)  # character errors substitute, never insert or delete
    oracle = TypeScore().score_texts([s.item.text for s in first], [s.drawn for s in first])
    assert np.mean(oracle.per_sample("span")) > np.mean(oracle.per_sample("whole"))  # distractors cost whole-text
    clean = validation_set("clean", seed=3, n=4, rate=0.0)
    assert all(s.drawn == " ".join(s.item.text.split()) for s in clean)
    with pytest.raises(ValueError, match="unknown condition"):
        validation_set("fog", seed=0)
    with pytest.raises(ValueError, match="n must lie"):
        validation_set("clean", seed=0, n=0)
