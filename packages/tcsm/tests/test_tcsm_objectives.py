"""TCSM objectives: special cases and exact convergence on a 3-position × 4-symbol space."""

import itertools

import pytest
import torch

from tcsm import TCSMConfig, TCSMDenoiser, TCSMObjective, factorised, joint
from tcsm.concrete import log_concrete_score
from tcsm.losses import masked_diffusion_ce
from tcsm.noise import MaskedProcess, UniformProcess
from tcsm.targets import JointTarget, TiltedTarget


def test_clean_space_concrete_score_is_a_ratio_of_conditionals(tiny_joint):
    """1-Hamming ratios p(x^{i←v}|x_t)/p(x|x_t) equal p(v|x^{\\i},x_t)/p(x^i|x^{\\i},x_t) (brute force)."""
    proc = MaskedProcess(4)
    g = torch.Generator().manual_seed(1)
    x1 = torch.randint(0, 4, (16, 3), generator=g)
    t = torch.rand(16, generator=g)
    xt = proc.sample(x1, t, g)
    post = tiny_joint.log_posterior(xt, t, proc)
    cond = JointTarget(tiny_joint.log_p1, proc).log_conditionals(x1, xt, t)
    torch.testing.assert_close(cond, tiny_joint.conditionals(x1, xt, t, proc), atol=1e-5, rtol=0)
    score = log_concrete_score(cond, x1)
    for b, i, v in itertools.product(range(16), range(3), range(4)):
        y = x1[b].clone()
        y[i] = v
        brute = post[b, tiny_joint.index(y)] - post[b, tiny_joint.index(x1[b])]
        if torch.isfinite(brute):
            assert abs(float(score[b, i, v]) - float(brute)) < 1e-4
        else:
            assert score[b, i, v] == -torch.inf


def _tiny_denoiser(process="masked"):
    torch.manual_seed(0)
    return TCSMDenoiser(
        TCSMConfig(
            vocab_size=7,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=16,
            process=process,
        )
    )


def test_forward_kl_factorised_equals_masked_diffusion_cross_entropy():
    """Distribution-based TCSM, forward KL, factorised denoiser == MDLM's weighted CE (values and gradients)."""
    model, proc = _tiny_denoiser(), MaskedProcess(7)
    g = torch.Generator().manual_seed(0)
    x1 = torch.randint(0, 7, (8, 12), generator=g)
    obj = TCSMObjective(proc, "distribution", "kl", weighting="elbo")
    t = obj.sample_t(8, generator=g)
    xt = proc.sample(x1, t, g)
    tcsm = obj.per_sequence(factorised(model, proc), x1, xt, t)
    ref = masked_diffusion_ce(model(xt, t), x1, xt, proc.mask_id, proc.schedule.elbo_weight(t))
    torch.testing.assert_close(tcsm, ref, rtol=1e-5, atol=1e-5)
    g1 = torch.autograd.grad(tcsm.sum(), model.head.weight)[0]
    g2 = torch.autograd.grad(ref.sum(), model.head.weight)[0]
    torch.testing.assert_close(g1, g2, rtol=1e-4, atol=1e-6)

    # the generic (joint, L·V-neighbour) route on the factorised log-joint gives the same loss
    def log_joint(x, ctx, tt):
        return proc.denoiser_log_probs(model(ctx, tt), ctx).gather(-1, x[..., None])[..., 0].sum(-1)

    via_joint = obj.per_sequence(joint(log_joint, 7), x1, xt, t)
    torch.testing.assert_close(via_joint, ref, rtol=1e-4, atol=1e-4)


def test_score_gkl_data_estimator_is_unbiased_for_the_divergence(tiny_joint):
    """E_{x_1~p_{1|t}}[data estimator] equals E[GKL(c_target, c_θ)] up to a θ-free constant: gradients agree."""
    proc = MaskedProcess(4)
    xt = torch.tensor([[4, 4, 2], [4, 1, 4], [4, 4, 4]])
    t = torch.full((3,), 0.3)
    post = tiny_joint.log_posterior(xt, t, proc).exp().float()  # (3, 64)
    x1 = tiny_joint.states.repeat(3, 1)
    xts, ts = xt.repeat_interleave(64, 0), t.repeat_interleave(64)
    w = post.reshape(-1)
    theta = torch.randn(3, 3, 4, requires_grad=True)
    model = lambda a, b, c: theta.repeat_interleave(64, 0).log_softmax(-1)  # noqa: E731
    target = JointTarget(tiny_joint.log_p1, proc)
    for div in ("gkl", "l2"):
        obj = TCSMObjective(proc, "score", div, weighting="constant")
        data = (w * obj.per_sequence(model, x1, xts, ts)).sum()
        exact = (w * obj.per_sequence(model, x1, xts, ts, target)).sum()
        gd, ge = torch.autograd.grad(data, theta)[0], torch.autograd.grad(exact, theta)[0]
        torch.testing.assert_close(gd, ge, rtol=1e-3, atol=1e-4)


CASES = [
    ("score", "gkl", False),
    ("score", "l2", False),
    ("distribution", "kl", False),
    ("score", "gkl", True),
    ("score", "l2", True),
    ("distribution", "kl", True),
    ("distribution", "rkl", True),
    ("distribution", "js", True),
]


@pytest.mark.parametrize(("family", "divergence", "explicit"), CASES)
def test_objectives_recover_exact_conditionals(tiny_joint, tabular_cls, family, divergence, explicit):
    """Exact-expectation TCSM (all x_1, all masks) drives a tabular joint model to the true conditionals."""
    torch.manual_seed(0)
    proc = MaskedProcess(4)
    masks = torch.tensor(list(itertools.product([0, 1], repeat=3)), dtype=torch.bool)[1:]  # ≥ 1 masked
    x1 = tiny_joint.states.repeat_interleave(len(masks), 0)
    m = masks.repeat(64, 1)
    xt = torch.where(m, proc.mask_id, x1)
    t = torch.full((len(x1),), 0.5)
    w = tiny_joint.log_p1(x1).exp().float()
    model = tabular_cls(tiny_joint, 5)
    obj = TCSMObjective(proc, family, divergence, weighting="constant")
    target = JointTarget(tiny_joint.log_p1, proc) if explicit else None
    target_lc = tiny_joint.conditionals(x1, xt, t, proc)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    lc = joint(model, 4)
    for _ in range(150):
        opt.zero_grad()
        (w * obj.per_sequence(lc, x1, xt, t, target)).sum().backward()
        opt.step()
    with torch.no_grad():
        got = lc(x1, xt, t).exp()
    err = (got - target_lc.exp()).abs()[m].max()
    assert err < 0.02, f"{family}/{divergence}: max conditional error {err:.4f}"


def test_reward_tilted_ratios_equal_reference_ratios_times_exp_reward_difference(tiny_joint):
    """Tilted target p_ref·e^{r/β}: brute-force posterior ratios == reference ratios × exp(Δr/β)."""
    from tcsm.exact import ExactJoint

    g = torch.Generator().manual_seed(3)
    reward_table = torch.randn(64, generator=g, dtype=torch.float64)
    beta = 0.7
    tilted = ExactJoint(tiny_joint.log_probs.exp() * torch.exp(reward_table / beta), 4, 3)
    reward = lambda x: reward_table[tiny_joint.index(x)].float()  # noqa: E731
    for proc in (MaskedProcess(4), UniformProcess(4)):
        x1 = torch.randint(0, 4, (32, 3), generator=g)
        t = torch.rand(32, generator=g)
        xt = proc.sample(x1, t, g)
        ref = JointTarget(tiny_joint.log_p1, proc)
        target = TiltedTarget(ref, reward, beta)
        brute = tilted.conditionals(x1, xt, t, proc)
        torch.testing.assert_close(target.log_conditionals(x1, xt, t), brute, atol=1e-4, rtol=0)
        nb_r = target.neighbour_rewards(x1, torch.ones_like(x1, dtype=torch.bool))
        delta = nb_r - reward(x1)[:, None, None]
        expect = log_concrete_score(ref.log_conditionals(x1, xt, t), x1) + delta / beta
        got = log_concrete_score(brute, x1)
        finite = torch.isfinite(got)
        torch.testing.assert_close(got[finite], expect[finite], atol=1e-4, rtol=0)
        assert torch.equal(finite, torch.isfinite(expect))


def test_bad_inputs_raise_clear_errors():
    model, proc = _tiny_denoiser(), MaskedProcess(7)
    with pytest.raises(ValueError, match="token ids must lie"):
        model(torch.tensor([[0, 9]]), torch.zeros(1))
    obj = TCSMObjective(proc)
    with pytest.raises(ValueError, match="clean token ids"):
        obj(factorised(model, proc), torch.tensor([[0, 7]]))
    with pytest.raises(ValueError, match="needs the target"):
        TCSMObjective(proc, "distribution", "rkl")(factorised(model, proc), torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match="supports divergences"):
        TCSMObjective(proc, "score", "kl")
    flat = JointTarget(lambda x: torch.zeros(len(x)), proc)
    nan_reward = TiltedTarget(flat, lambda x: torch.full((len(x),), float("nan")), 1.0)
    with pytest.raises(ValueError, match="NaN"):
        nan_reward.log_conditionals(torch.tensor([[0, 1]]), torch.tensor([[7, 1]]), torch.zeros(1))
    per_token_reward = TiltedTarget(flat, lambda x: (x == 0).float(), 1.0)  # (N, L): forgot to sum over positions
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        per_token_reward.log_conditionals(torch.tensor([[0, 1]]), torch.tensor([[7, 1]]), torch.zeros(1))


@pytest.mark.parametrize(("family", "divergence"), [("score", "gkl"), ("distribution", "kl")])
def test_uniform_process_data_objectives_recover_exact_conditionals(tiny_joint, tabular_cls, family, divergence):
    """Same convergence under the uniform process (every position noised), exact expectation over (x_1, x_t)."""
    torch.manual_seed(0)
    proc = UniformProcess(4)
    x1 = tiny_joint.states.repeat_interleave(64, 0)
    xt = tiny_joint.states.repeat(64, 1)
    t = torch.full((len(x1),), 0.5)
    ll = proc.log_likelihood_table(xt, t).gather(-1, x1[..., None])[..., 0].sum(-1)
    w = (tiny_joint.log_p1(x1).float() + ll).exp()
    model = tabular_cls(tiny_joint, 4)
    obj = TCSMObjective(proc, family, divergence, weighting="constant")
    opt = torch.optim.Adam(model.parameters(), lr=0.3)
    lc = joint(model, 4)
    for _ in range(150):
        opt.zero_grad()
        (w * obj.per_sequence(lc, x1, xt, t)).sum().backward()
        opt.step()
    with torch.no_grad():
        err = (lc(x1, xt, t).exp() - tiny_joint.conditionals(x1, xt, t, proc).exp()).abs().amax((1, 2))
    err = err[w > 1e-4].max()  # pairs (x_1, x_t) the expectation actually weighs (mean weight 2.4e-4)
    assert err < 0.03, f"{family}/{divergence}: max conditional error {err:.4f}"


def test_forward_kl_factorised_uniform_process_equals_flow_matching_cross_entropy():
    """Uniform process: every position is noised, so forward-KL/factorised TCSM with constant weighting is the
    discrete-flow-matching cross-entropy Σ_i −log p_θ(x_1^i | x_t) over all positions (Gat et al., 2024)."""
    model, proc = _tiny_denoiser("uniform"), UniformProcess(7)
    g = torch.Generator().manual_seed(1)
    x1 = torch.randint(0, 7, (8, 12), generator=g)
    obj = TCSMObjective(proc, "distribution", "kl", weighting="constant")
    t = obj.sample_t(8, generator=g)
    xt = proc.sample(x1, t, g)
    ref = torch.nn.functional.cross_entropy(model(xt, t).transpose(1, 2), x1, reduction="none").sum(-1)
    torch.testing.assert_close(obj.per_sequence(factorised(model, proc), x1, xt, t), ref, rtol=1e-5, atol=1e-5)
    assert (xt != x1).any() and (xt == x1).any()  # both kept and resampled tokens enter the loss
