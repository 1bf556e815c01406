import math

import pytest
import torch

from energy_diffusion import EDMConfig, GaussianMixture, MLPEnergy, UNetEnergy, distill, grid, ring
from energy_diffusion.edm import preconditioning


def _mixture():
    return GaussianMixture(torch.tensor([[-1.0, 0.0], [1.0, 0.5]]), torch.tensor([0.3, 0.5]), torch.tensor([0.3, 0.7]))


def test_implied_denoiser_is_preconditioned_gradient_of_a_scalar(seeded):
    model = MLPEnergy(3, hidden=16, depth=2)
    x, sigma = torch.randn(4, 3), torch.tensor([0.1, 0.5, 2.0, 10.0])
    c_skip, c_out, c_in, c_noise = (c[:, None] for c in preconditioning(sigma, model.sigma_data))
    u = (c_in * x).requires_grad_(True)
    g = -0.5 * (u - model.features(u, c_noise[:, 0])).pow(2).sum(1)
    (grad_g,) = torch.autograd.grad(g.sum(), u)
    torch.testing.assert_close(model(x, sigma), c_skip * x + c_out * grad_g, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", ["mlp", "unet"])
def test_denoiser_jacobian_is_symmetric(make, seeded):
    # D = x − σ²∇E ⇒ ∂D/∂x = I − σ²∇²E is symmetric: the score field is conservative.
    if make == "mlp":
        model, x = MLPEnergy(4, hidden=16, depth=2).double(), torch.randn(1, 4, dtype=torch.float64)
    else:
        from diffusers import UNet2DModel

        unet = UNet2DModel(
            sample_size=4,
            in_channels=1,
            out_channels=1,
            block_out_channels=(8,),
            down_block_types=("DownBlock2D",),
            up_block_types=("UpBlock2D",),
            layers_per_block=1,
            norm_num_groups=4,
            act_fn="silu",
        ).double()
        model, x = UNetEnergy(unet).double(), torch.randn(1, 1, 4, 4, dtype=torch.float64)
    sigma = torch.tensor([0.7], dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda y: model(y, sigma, create_graph=True), x)
    jac = jac.reshape(x.numel(), x.numel())
    assert jac.abs().max() > 1e-3
    torch.testing.assert_close(jac, jac.T, rtol=1e-6, atol=1e-8)


def test_mixture_score_and_normalisers():
    gm = _mixture()
    x = torch.randn(6, 2, dtype=torch.float32).requires_grad_(True)
    sigma = torch.full((6,), 0.4)
    (auto,) = torch.autograd.grad(gm.log_prob(x, sigma).sum(), x)
    torch.testing.assert_close(gm.score(x.detach(), sigma), auto, rtol=1e-4, atol=1e-5)
    # exact ∫p·q and ∫p² against a fine grid quadrature
    ticks = torch.linspace(-5, 5, 801, dtype=torch.float64)
    xx, yy = torch.meshgrid(ticks, ticks, indexing="ij")
    pts = torch.stack([xx.flatten(), yy.flatten()], 1).float()
    cell = float((ticks[1] - ticks[0]) ** 2)
    p, q = gm.log_prob(pts).double().exp(), ring(4, 1.0, 0.4).log_prob(pts).double().exp()
    assert gm.product(ring(4, 1.0, 0.4))[1] == pytest.approx(math.log(float((p * q).sum()) * cell), abs=1e-4)
    assert gm.power(2)[1] == pytest.approx(math.log(float((p * p).sum()) * cell), abs=1e-4)
    prod, _ = gm.power(2)
    torch.testing.assert_close(prod.log_prob(pts).double().exp(), p * p / (p * p).sum() / cell, atol=1e-4, rtol=1e-3)


def test_distillation_recovers_the_true_energy_up_to_a_constant(seeded):
    gm = _mixture()
    data = gm.sample(20000, torch.Generator().manual_seed(0))
    energy = MLPEnergy(2, hidden=64, depth=3)
    distill(energy, gm, data, EDMConfig(sigma_max=10), steps=500, batch_size=256, lr=3e-3)
    for s in (0.3, 1.0, 3.0):
        x = data[:2000] + s * torch.randn(2000, 2)
        sig = torch.full((2000,), s)
        true = gm.energy(x, sig)
        diff = energy.energy(x, sig).detach() - true  # constant in x iff recovered
        assert diff.std() < 0.12 * true.std(), (s, diff.std(), true.std())


def test_distillation_drops_the_divergence_free_part_of_the_teacher(seeded):
    # Teacher score = exact Gaussian score + R x/(s² + σ²), R antisymmetric: a divergence-free field that is
    # L²(p_σ)-orthogonal to every gradient field for isotropic p_σ, so the conservative projection removes it.
    gm = GaussianMixture(torch.zeros(1, 2), 0.5)
    rot = torch.tensor([[0.0, 1.5], [-1.5, 0.0]])

    def teacher(x, sigma):
        return gm.denoise(x, sigma) + sigma[:, None] ** 2 * x @ rot.T / (0.25 + sigma[:, None] ** 2)

    data = gm.sample(20000, torch.Generator().manual_seed(0))
    energy = MLPEnergy(2, hidden=32, depth=2)
    distill(energy, teacher, data, EDMConfig(sigma_max=10), steps=400, batch_size=256, lr=3e-3)
    x = data[:2000] + 0.5 * torch.randn(2000, 2)
    sig = torch.full((2000,), 0.5)
    student_err = (energy.score(x, sig) - gm.score(x, sig)).pow(2).sum(1).mean()
    teacher_err = (x @ rot.T / (0.25 + 0.5**2)).pow(2).sum(1).mean()
    assert student_err < 0.05 * teacher_err, (student_err, teacher_err)


def test_toy_mixtures():
    assert ring(8).means.shape == (8, 2) and grid(3).means.shape == (9, 2)
    torch.testing.assert_close(ring(8).mean(), torch.zeros(2), atol=1e-6, rtol=0)
    with pytest.raises(ValueError):
        GaussianMixture(torch.zeros(2, 2), -1.0)
    with pytest.raises(ValueError, match="integer"):
        ring().power(1.5)


def test_incompatible_teacher_is_rejected():
    from energy_diffusion import distillation_loss

    with pytest.raises(ValueError, match="teacher returned shape"):
        distillation_loss(MLPEnergy(2, hidden=8, depth=2), lambda x, s: x[:, :1], torch.randn(4, 2), EDMConfig())
