import pytest

from labcore.schedules import warmup_cosine


def test_warmup_cosine_schedule():
    f = warmup_cosine(4, 20, floor=0.1)
    assert [f(s) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert f(12) == pytest.approx(0.55)  # halfway through the decay
    assert f(20) == pytest.approx(0.1) and f(99) == pytest.approx(0.1)


def test_warmup_from_a_floor_and_plain_cosine():
    f = warmup_cosine(2, 6, floor=0.2, warmup_from=0.2)
    assert [f(0), f(1)] == pytest.approx([0.6, 1.0])
    assert f(4) == pytest.approx(0.6) and f(6) == pytest.approx(0.2)
    g = warmup_cosine(0, 8)  # no warm-up, decay to 0: 0.5·(1 + cos(π·step/8))
    assert [g(0), g(2), g(4), g(8)] == pytest.approx([1.0, 0.5 + 0.5 * 2**-0.5, 0.5, 0.0])
