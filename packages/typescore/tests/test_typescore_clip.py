import numpy as np
import pytest
import torch

from typescore import paired_difference_ci, render_text
from typescore.clipscore import clip_scores, load_clip_score


def test_clip_score_matches_clip_forward(tiny_clip):
    from transformers import CLIPModel, CLIPProcessor

    images = [render_text("OPEN", 64, 64, 16), render_text("SALE", 64, 64, 16)]
    texts = ['a sign "open"', "best dad"]
    got = clip_scores(load_clip_score(tiny_clip), images, texts)
    model, processor = CLIPModel.from_pretrained(tiny_clip).eval(), CLIPProcessor.from_pretrained(tiny_clip)
    with torch.no_grad():
        inputs = processor(text=texts, images=images, return_tensors="pt", padding=True)
        out = model(**inputs)
    cos = torch.nn.functional.cosine_similarity(out.image_embeds, out.text_embeds, dim=-1)
    np.testing.assert_allclose(got, (100 * cos).clamp(min=0).numpy(), rtol=1e-4, atol=1e-3)


def test_clip_score_bad_input(tiny_clip, tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved CLIP"):
        load_clip_score(tmp_path / "nothing")
    with pytest.raises(ValueError, match="2 images but 1 texts"):
        clip_scores(load_clip_score(tiny_clip), [render_text("a", 8, 8, 4)] * 2, ["a"])


def test_paired_difference_ci():
    a = np.linspace(0.5, 1.0, 50)
    mean, lo, hi = paired_difference_ci(a, a - 0.1)
    assert mean == pytest.approx(0.1) and lo == pytest.approx(0.1) and hi == pytest.approx(0.1)
    noise = np.random.default_rng(0).normal(0, 0.05, 50)
    mean, lo, hi = paired_difference_ci(a, a + noise)
    assert lo < 0 < hi  # zero-mean noise: not resolved
    with pytest.raises(ValueError):
        paired_difference_ci([1.0, 2.0], [1.0])
