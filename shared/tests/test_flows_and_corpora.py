import math

import pytest
import torch

from labcore.corpora import TEXT8_ALPHABET, python_source, text8_like
from labcore.flows import patchify, score_denoise, unpatchify


def test_patchify_layout_and_inverse(seeded):
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    t = patchify(x, 2)
    assert t.shape == (2, 4, 12)
    # first token = top-left 2x2 patch, channel-major
    assert torch.equal(t[0, 0], torch.stack([x[0, c, :2, :2].flatten() for c in range(3)]).flatten())
    # second token = the patch to its right (raster order)
    assert torch.equal(t[0, 1, :4], x[0, 0, :2, 2:].flatten())
    assert torch.equal(unpatchify(t, 2, (4, 4)), x)
    with pytest.raises(ValueError, match="not divisible"):
        patchify(torch.zeros(1, 3, 5, 4), 2)


def test_score_denoise_is_tweedie_for_gaussians():
    # data ~ N(m, s^2); noisy ~ N(m, s^2 + sig^2); E[x0|x] = m + s^2/(s^2+sig^2) (x - m)
    m, s, sig = 0.7, 0.5, 0.3
    var = s**2 + sig**2
    x = torch.linspace(-2, 2, 9)[:, None]

    def log_prob(y):
        return (-(y - m) ** 2 / (2 * var) - 0.5 * math.log(2 * math.pi * var)).sum(-1)

    out = score_denoise(x, sig, log_prob)
    assert torch.allclose(out, m + s**2 / var * (x - m), atol=1e-6)


def test_corpora_offline():
    src = python_source(50_000)
    assert len(src) == 50_000 and "def " in src
    text = text8_like(20_000)
    assert len(text) == 20_000 and set(text) <= set(TEXT8_ALPHABET) and "  " not in text
