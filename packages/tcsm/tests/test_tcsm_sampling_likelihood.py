"""Sampler and ELBO against exact tiny-space quantities; denoiser save/load; distillation target."""

import pytest
import torch

from tcsm import TCSMConfig, TCSMDenoiser, masked_nelbo, sample
from tcsm.exact import ExactJoint
from tcsm.noise import MaskedProcess, UniformProcess
from tcsm.posttrain import preference_loss
from tcsm.targets import ARTeacher, ar_teacher_target


def _exact_denoiser(joint, process):
    return lambda xt, t: joint.marginal_logits(xt, t, process)


@pytest.mark.parametrize("process_cls", [MaskedProcess, UniformProcess])
def test_ancestral_sampler_with_exact_denoiser_matches_the_joint(tiny_joint, process_cls):
    proc = process_cls(4)
    g = torch.Generator().manual_seed(0)
    x = sample(_exact_denoiser(tiny_joint, proc), proc, 6000, 3, steps=100, generator=g)
    emp = torch.bincount(tiny_joint.index(x), minlength=64).double() / len(x)
    tv = 0.5 * (emp - tiny_joint.log_probs.exp()).abs().sum()
    assert tv < 0.06, f"total variation {tv:.3f}"


def test_masked_elbo_is_tight_for_the_exact_denoiser(tiny_joint):
    """With the exact conditionals the continuous-time masked NELBO equals −log p(x) (any-order AR identity)."""
    proc = MaskedProcess(4)
    x = tiny_joint.states[[0, 5, 17, 42, 63]]
    g = torch.Generator().manual_seed(0)
    nelbo = masked_nelbo(_exact_denoiser(tiny_joint, proc), proc, x, num_samples=3000, generator=g)
    nll = -tiny_joint.log_p1(x).float()
    assert torch.allclose(nelbo, nll, rtol=0.06), (nelbo, nll)  # Monte Carlo over t and masks
    assert abs(float(nelbo.mean() / nll.mean()) - 1) < 0.025


def test_denoiser_save_and_load_roundtrip(tmp_path):
    torch.manual_seed(0)
    cfg = TCSMConfig(
        vocab_size=5,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=8,
        process="uniform",
    )
    model = TCSMDenoiser(cfg).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    again = TCSMDenoiser.from_pretrained(tmp_path).eval()
    x, t = torch.randint(0, 5, (3, 8)), torch.rand(3)
    torch.testing.assert_close(model(x, t), again(x, t))
    assert again.config.time_conditioning and again.config.process == "uniform"
    with pytest.raises(ValueError, match="time-conditioned"):
        again(x)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        again(torch.zeros(1, 9, dtype=torch.long), torch.zeros(1))


def _tiny_gpt2(vocab):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(
        GPT2Config(vocab_size=vocab, n_positions=8, n_embd=16, n_layer=1, n_head=2, bos_token_id=0, eos_token_id=0)
    ).eval()


def test_ar_teacher_target_is_the_exact_teacher_posterior():
    """Distillation target conditionals == brute-force posterior of the teacher's full joint."""
    teacher, proc = _tiny_gpt2(3), MaskedProcess(3)
    log_p = ARTeacher(teacher, 3)
    exact = ExactJoint(torch.zeros(81), 3, 4)
    all_lp = log_p(exact.states)
    assert abs(float(all_lp.exp().sum()) - 1.0) < 1e-4  # the teacher's joint is normalised over V^L
    exact = ExactJoint(all_lp.exp().double(), 3, 4)
    g = torch.Generator().manual_seed(0)
    x1 = torch.randint(0, 3, (6, 4), generator=g)
    t = torch.rand(6, generator=g)
    xt = proc.sample(x1, t, g)
    got = ar_teacher_target(teacher, proc).log_conditionals(x1, xt, t)
    torch.testing.assert_close(got, exact.conditionals(x1, xt, t, proc), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="vocabulary"):
        ar_teacher_target(_tiny_gpt2(5), proc)


def test_preference_loss_prefers_the_chosen_sequences():
    torch.manual_seed(0)
    cfg = TCSMConfig(
        vocab_size=4, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=6
    )
    model, proc = TCSMDenoiser(cfg), MaskedProcess(4)
    ref = TCSMDenoiser(cfg).eval()
    ref.load_state_dict(model.state_dict())
    chosen, rejected = torch.zeros(16, 6, dtype=torch.long), torch.full((16, 6), 3)
    g = torch.Generator().manual_seed(0)
    assert abs(preference_loss(model, ref, proc, chosen, rejected, 0.5, g).item() - 0.6931) < 1e-4  # θ = ref → log 2
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        preference_loss(model, ref, proc, chosen, rejected, 0.5, g).backward()
        opt.step()
    xt = torch.full((1, 6), proc.mask_id)
    p = model(xt, torch.zeros(1)).softmax(-1)[0, :, [0, 3]]
    assert (p[:, 0] > p[:, 1]).all()


def test_top_k_teacher_target_is_the_exact_target_renormalised_on_the_candidates():
    from tcsm.targets import ARTeacherTopK

    teacher, proc = _tiny_gpt2(5), MaskedProcess(5)
    g = torch.Generator().manual_seed(0)
    x1 = torch.randint(0, 5, (6, 4), generator=g)
    t = torch.rand(6, generator=g)
    xt = proc.sample(x1, t, g)
    exact = ar_teacher_target(teacher, proc).log_conditionals(x1, xt, t)
    torch.testing.assert_close(ARTeacherTopK(teacher, proc, 5).log_conditionals(x1, xt, t), exact, atol=1e-5, rtol=0)
    top2 = ARTeacherTopK(teacher, proc, 2).log_conditionals(x1, xt, t)
    support = torch.isfinite(top2)
    assert (support.sum(-1) <= 3).all() and support.gather(-1, x1[..., None]).all()
    renorm = exact.masked_fill(~support, -torch.inf).log_softmax(-1)
    torch.testing.assert_close(top2[support], renorm[support], atol=1e-5, rtol=0)


def test_distillation_objective_recovers_the_teacher_conditionals(tabular_cls):
    """Exact-expectation TCSM toward p_1 = p_AR drives a flexible student to the teacher's conditionals."""
    import itertools

    from tcsm import TCSMObjective, joint
    from tcsm.posttrain import distill

    teacher, proc = _tiny_gpt2(3), MaskedProcess(3)
    with torch.no_grad():
        teacher.lm_head.weight.mul_(10.0)  # a peaked teacher (tied embeddings)
    states = ExactJoint(torch.ones(81), 3, 4)
    masks = torch.tensor(list(itertools.product([0, 1], repeat=4)), dtype=torch.bool)[1:]
    x1 = states.states.repeat_interleave(len(masks), 0)
    m = masks.repeat(81, 1)
    xt = torch.where(m, proc.mask_id, x1)
    t = torch.full((len(x1),), 0.5)
    w = ARTeacher(teacher, 3)(x1).exp()
    fixed = ar_teacher_target(teacher, proc).log_conditionals(x1, xt, t)

    class Fixed:
        def log_conditionals(self, *_):
            return fixed

    torch.manual_seed(0)
    student = tabular_cls(states, 4)
    obj = TCSMObjective(proc, "distribution", "kl", weighting="constant")
    opt = torch.optim.Adam(student.parameters(), lr=0.3)
    lc = joint(student, 3)
    for _ in range(300):
        opt.zero_grad()
        (w * obj.per_sequence(lc, x1, xt, t, Fixed())).sum().backward()
        opt.step()
    with torch.no_grad():
        err = (lc(x1, xt, t).exp() - fixed.exp()).abs().amax(-1)[m & (w > 1e-3)[:, None]].max()
    assert err < 0.03, f"max conditional error {err:.4f}"
    # the training entry point runs end to end on a denoiser
    student = TCSMDenoiser(
        TCSMConfig(vocab_size=3, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=4)
    )
    hist = distill(student, teacher, proc, lambda s: torch.randint(0, 3, (4, 4)), 3, log_every=0, top_k=2)
    assert len(hist["loss"]) == 3 and all(torch.isfinite(torch.tensor(hist["loss"])))


def test_uniform_elbo_is_tight_for_independent_data_and_bounds_a_flat_model():
    """Product data + exact denoiser: the reverse chain is exact, so E[NELBO] = −log p(x) for any step count.
    A flat denoiser samples the uniform distribution, so its bound can never beat L·log V."""
    from tcsm.likelihood import nelbo, uniform_nelbo

    g = torch.Generator().manual_seed(0)
    marg = torch.softmax(2 * torch.randn(3, 4, generator=g, dtype=torch.float64), -1)  # per-position laws
    probs = (marg[0][:, None, None] * marg[1][None, :, None] * marg[2][None, None, :]).flatten()
    joint = ExactJoint(probs, vocab_size=4, length=3)
    proc = UniformProcess(4)
    x = joint.states[[0, 21, 42, 63, 27]].repeat_interleave(1500, 0)
    bound = uniform_nelbo(_exact_denoiser(joint, proc), proc, x, steps=6, generator=g).view(5, -1).mean(1)
    nll = -joint.log_p1(joint.states[[0, 21, 42, 63, 27]]).float()
    torch.testing.assert_close(bound, nll, rtol=0.03, atol=0.03)
    flat = nelbo(lambda xt, t: torch.zeros(*xt.shape, 4), proc, x[:1500], num_samples=6, generator=g)
    assert flat.mean() >= 3 * torch.log(torch.tensor(4.0)) - 0.05
    with pytest.raises(TypeError, match="MaskedProcess"):
        masked_nelbo(_exact_denoiser(joint, proc), proc, x[:2])


def test_perplexity_bound_hand_computed():
    """``exp(mean NELBO / L)``: NELBOs of ``L ln 3`` and ``L ln 5`` nats give ``exp((ln 3 + ln 5) / 2) = √15``."""
    from tcsm import bits_per_char, perplexity_bound

    nelbo = 8 * torch.log(torch.tensor([3.0, 5.0], dtype=torch.float64))
    assert perplexity_bound(nelbo, 8) == pytest.approx(15**0.5, rel=1e-12)
    assert bits_per_char(nelbo, 8) == pytest.approx(0.5 * (torch.log2(torch.tensor(15.0)).item()), rel=1e-6)
    with pytest.raises(ValueError, match="positive"):
        perplexity_bound(nelbo, 0)
