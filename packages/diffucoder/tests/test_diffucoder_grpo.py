import itertools

import pytest
import torch

from diffucoder.coupled_grpo import (
    coupled_grpo_loss,
    coupled_noisy_inputs,
    coupled_per_token_logps,
    leave_one_out_advantages,
)
from diffucoder.rewards import code_format_reward, code_reward, extract_code, run_sandboxed


def test_masks_are_exact_complements_over_the_completion_only():
    ids = torch.randint(0, 15, (64, 40))
    noisy, m, t = coupled_noisy_inputs(ids, 33, seed=4, mask_token_id=15)
    masked = noisy == 15
    assert masked[0, :, 7:].all()  # pass 1: whole completion masked
    assert torch.equal(masked[1, :, 7:] ^ masked[2, :, 7:], torch.ones(64, 33, dtype=torch.bool))
    assert torch.equal(masked[1, :, 7:], m) and not masked[:, :, :7].any()  # prompt never masked
    assert 0.2 <= t.item() <= 0.8 and abs(m.float().mean().item() - t.item()) < 0.03


def test_masks_follow_rows_through_batch_shuffles():
    ids = torch.randint(0, 15, (6, 12))
    perm = torch.randperm(6)
    _, m, t = coupled_noisy_inputs(ids, 8, seed=9, mask_token_id=15)
    _, m_perm, t_perm = coupled_noisy_inputs(ids[perm], 8, seed=9, mask_token_id=15)
    assert torch.equal(m[perm], m_perm) and t == t_perm
    _, m_other, _ = coupled_noisy_inputs(ids, 8, seed=10, mask_token_id=15)
    assert not torch.equal(m, m_other)


def _logp(model, noisy, k, clean):
    logits = model(noisy).logits[:, -k - 1 : -1]  # shifted: row i − 1 predicts token i
    return logits.log_softmax(-1).gather(-1, clean[:, -k:, None])[..., 0]


@torch.no_grad()
def test_estimator_equals_formula_with_separate_forwards(model):
    ids, k, seed = torch.randint(0, 15, (3, 9)), 5, 11
    est = coupled_per_token_logps(model, ids, k, [seed, seed + 1], 15, recipe="clean")
    assert est.shape == (3, 2, k)
    for j, s in enumerate([seed, seed + 1]):
        noisy, m, t = coupled_noisy_inputs(ids, k, s, 15)
        full, x1, x2 = noisy
        expected = (
            _logp(model, full, k, ids)
            + torch.where(m, _logp(model, x1, k, ids) / t, _logp(model, x2, k, ids) / (1 - t))
        ) / 2
        torch.testing.assert_close(est[:, j], expected, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_estimator_unbiased_and_lower_variance_than_independent_masks(model):
    """Fixed t: exact expectation by enumerating masks; Monte Carlo mean and variance vs independent masks."""
    ids, k, t = torch.randint(0, 15, (1, 6)), 3, 0.4
    masks = [torch.tensor(bits, dtype=torch.bool)[None] for bits in itertools.product([0, 1], repeat=k)]

    def term(mask, weight):  # Σ_i 1{i ∈ mask} log p(o_i | x_mask) · weight
        x = ids.clone()
        x[:, -k:] = torch.where(mask, 15, ids[:, -k:])
        return (_logp(model, x, k, ids) * mask).sum().item() * weight

    prob = {tuple(m[0].tolist()): t ** m.sum().item() * (1 - t) ** (k - m.sum().item()) for m in masks}
    a = {key: term(torch.tensor(key)[None], 1 / t) for key in prob}
    b = {key: term(torch.tensor(key)[None], 1 / (1 - t)) for key in prob}
    exact = sum(p * (a[m] + b[tuple(not v for v in m)]) for m, p in prob.items())
    n = 3000
    coupled = coupled_per_token_logps(model, ids, k, list(range(n)), 15, t_range=(t, t))[0]  # one seed per draw
    full = ids.clone()
    full[:, -k:] = 15
    coupled_seq = 2 * coupled.sum(-1) - _logp(model, full, k, ids).sum()  # remove the fully-masked pass
    assert coupled_seq.mean().item() == pytest.approx(exact, rel=0.05)
    g = torch.Generator().manual_seed(3)
    keys = list(prob)
    p1 = torch.tensor([prob[m] for m in keys])
    p2 = torch.tensor([prob[tuple(not v for v in m)] for m in keys])  # masks with ratio 1 − t
    i1 = torch.multinomial(p1, n, replacement=True, generator=g)
    i2 = torch.multinomial(p2, n, replacement=True, generator=g)
    independent = torch.tensor([a[keys[i]] + b[keys[j]] for i, j in zip(i1.tolist(), i2.tolist())])
    assert independent.mean().item() == pytest.approx(exact, rel=0.05)
    assert coupled_seq.var().item() < independent.var().item()


def test_leave_one_out_advantage():
    r = torch.tensor([1.0, 0.0, 0.5, 2.0, 3.0, 3.0, 3.0, 7.0])
    adv = leave_one_out_advantages(r, 4)
    g = r.view(2, 4)
    torch.testing.assert_close(adv.view(2, 4), 4 / 3 * (g - g.mean(1, keepdim=True)))
    assert adv[0].item() == pytest.approx(1.0 - (0.0 + 0.5 + 2.0) / 3)
    with pytest.raises(ValueError):
        leave_one_out_advantages(r, 3)


def test_grpo_loss_on_policy_is_minus_mean_advantage():
    logps = torch.randn(4, 5, requires_grad=True)
    adv = torch.tensor([1.0, -1.0, 0.5, 0.0])
    mask = torch.ones(4, 5)
    mask[0, 3:] = 0
    loss, stats = coupled_grpo_loss(logps, logps.detach(), adv, mask, logps.detach(), beta=0.1)
    expected = -(adv[:, None] * mask).sum() / mask.sum()
    torch.testing.assert_close(loss, expected)
    assert stats["kl"] == 0.0 and stats["clip_ratio"] == 0.0
    loss.backward()  # gradient of the ratio at 1 is the advantage
    torch.testing.assert_close(logps.grad, -(adv[:, None] * mask) / mask.sum())
    loss, stats = coupled_grpo_loss(logps.detach() + 1.0, logps.detach(), adv, mask, beta=0.0)
    assert stats["clip_ratio"] > 0  # ratio e > 1.5 gets clipped for positive advantages


GOOD = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\n"


def test_format_reward_values():
    bad_syntax = "```python\ndef add(a, b)\n    return a + b\n```\n"
    two_blocks = GOOD + "```python\nx = 1\n```\n"
    chat = [{"role": "assistant", "content": GOOD}]
    assert code_format_reward([GOOD, bad_syntax, "def add(a, b): return a + b", two_blocks, chat]) == [
        1.0,
        0.5,
        0.0,
        0.0,
        1.0,
    ]
    assert extract_code(GOOD) == "def add(a, b):\n    return a + b\n"


def test_code_reward_runs_tests_sandboxed_with_timeout():
    wrong = GOOD.replace("a + b", "a - b")
    loop = "```python\ndef add(a, b):\n    while True:\n        pass\n```\n"
    tests = ["assert add(1, 2) == 3", "assert add(2, 2) == 4", "assert add(0, 0) == 0"]
    rewards = code_reward([GOOD, wrong, loop, "no code"], [tests, tests, tests[:1], tests], timeout=1.0)
    assert rewards == [1.0, pytest.approx(1 / 3), 0.0, 0.0]  # a − b passes only add(0, 0)
    result = run_sandboxed("import os; print(os.getcwd())", timeout=5)
    assert result.passed and "diffucoder-run-" in result.stdout
    assert run_sandboxed("while True: pass", timeout=0.5).returncode is None


def test_coupled_grpo_trainer_runs_with_trl(make_grpo_trainer):
    rows = [{"prompt": "Write add:", "test_cases": ["assert add(1, 2) == 3"]}] * 4
    trainer = make_grpo_trainer(
        [code_reward, code_format_reward],
        rows,
        [GOOD] * 4,
        trainer_kwargs={"diffusion_steps": 4},
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        max_steps=2,
        num_iterations=2,
        beta=0.01,
        scale_rewards="none",
    )
    trainer.train()
    logs = trainer.state.log_history
    assert trainer.state.global_step == 2
    assert logs[0]["coupled/kl"] == 0.0  # same masks for policy and reference before any update


@pytest.mark.parametrize("recipe", ["clean", "official"])
def test_coupled_grpo_increases_a_simple_reward(make_grpo_trainer, recipe):
    """Reward = fraction of even (control: odd) token ids in the completion. From the same model and seed,
    training on the even reward must end with far more even tokens than training on the odd one. An absolute goal
    (last-3 reward > 0.8) was met or missed by the luck of the rollouts: over seeds 0-4 and 42 it ranged 0.73-0.88
    (torch.multinomial draws differently on torch 2.6 and 2.14). Zeroed advantages: difference 0."""

    def fraction_even(completion_ids):
        return [sum(t % 2 == 0 for t in ids) / max(1, len(ids)) for ids in completion_ids]

    def even_tokens(completions, completion_ids, **kwargs):
        return fraction_even(completion_ids)

    def odd_tokens(completions, completion_ids, **kwargs):
        return [1 - r for r in fraction_even(completion_ids)]

    final = {}
    for reward in (even_tokens, odd_tokens):
        trainer = make_grpo_trainer(
            [reward],
            [{"prompt": "x"}] * 64,
            ["abc def ghi\n"] * 10,
            hidden=32,
            trainer_kwargs={"diffusion_steps": 6, "generation_temperature": 1.0, "recipe": recipe},
            per_device_train_batch_size=8,
            num_generations=8,
            max_completion_length=6,
            max_steps=40,
            num_iterations=2,
            beta=0.0,
            scale_rewards="none",
            learning_rate=1e-2,
            gradient_checkpointing=False,
        )
        trainer.train()
        last = [log["reward"] for log in trainer.state.log_history if "reward" in log][-5:]
        final[reward.__name__] = sum(last) / len(last)  # the rewarded fraction over the last 10 steps
    # broken signal: both runs stay near 0.5 even tokens (difference ~0 ± 0.06); trained apart by ~0.5-0.6
    assert final["even_tokens"] - (1 - final["odd_tokens"]) > 0.3, final


def test_completions_cut_after_first_stop_token():
    from diffucoder.coupled_grpo import cut_at_stop

    tokens = torch.tensor([[5, 7, 2, 9, 2], [1, 1, 1, 1, 1], [3, 8, 4, 4, 4], [2, 0, 0, 0, 0]])
    assert cut_at_stop(tokens, {2, 3}) == [[5, 7, 2], [1, 1, 1, 1, 1], [3], [2]]
