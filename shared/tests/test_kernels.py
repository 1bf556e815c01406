import pytest
import torch

from labcore.kernels import Kernel, affine_forward, affine_inverse, kernel


def test_affine_reference_is_inverse_pair(seeded):
    x, a, b = torch.randn(3, 4, 5), torch.randn(3, 4, 5), torch.randn(3, 4, 5)
    z = affine_forward(x, a, b)
    assert torch.allclose(z, (x - b) * torch.exp(-a), atol=1e-6)
    assert torch.allclose(affine_inverse(z, a, b), x, atol=1e-5)
    with pytest.raises(ValueError, match="one shape"):
        affine_forward(x, a[:1], b)


def test_dispatch_picks_fast_path_by_device_and_availability(monkeypatch):
    @kernel
    def double(x):
        return 2 * x

    calls = []
    double.register("cpu", lambda x: calls.append("fast") or 2 * x, lambda x: x.numel() > 2)
    assert isinstance(double, Kernel)
    double(torch.ones(1))
    assert calls == []  # availability check failed: reference
    double(torch.ones(3))
    assert calls == ["fast"]
    monkeypatch.setenv("LABCORE_DISABLE_FAST_KERNELS", "1")
    assert double.select(torch.ones(3)) is double.reference


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_affine_fast_path_matches_reference_on_cuda(dtype, seeded):
    x, a, b = (torch.randn(4, 257, 33, device="cuda", dtype=dtype) for _ in range(3))
    with torch.no_grad():
        assert affine_forward.select(x, a, b) is not affine_forward.reference
        for k in (affine_forward, affine_inverse):
            fast, ref = k(x, a, b), k.reference(x, a, b)
            torch.testing.assert_close(fast, ref, rtol=1e-5 if dtype == torch.float32 else 1e-2, atol=1e-5)
