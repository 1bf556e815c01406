import itertools
import math

import pytest
import torch

from diffucoder.arness import global_arness, local_arness, order_from_history
from diffucoder.losses import forward_mask, masked_diffusion_loss
from diffucoder.modeling import DreamOutput


@pytest.mark.parametrize("k", [1, 2, 3])
def test_left_to_right_scores_one(k):
    order = torch.arange(6)[None]
    assert local_arness(order, k).item() == 1.0 and global_arness(order, k).item() == 1.0


@pytest.mark.parametrize("t", [1, 4, 7])
def test_right_to_left(t):
    order = torch.arange(t - 1, -1, -1)[None]
    assert local_arness(order, 1).item() == (1.0 if t == 1 else 0.0)
    assert global_arness(order, 1).item() == pytest.approx(1 / t)
    assert global_arness(order, 2).item() == pytest.approx(min(2, t) / t)


def test_hand_computed_order():
    order = torch.tensor([[1, 0, 2, 3]])
    assert local_arness(order, 1).item() == 0.25  # only 3 continues 2
    assert global_arness(order, 1).item() == 0.75  # 1 skips the masked 0 at step 1
    assert global_arness(order, 2).item() == 1.0


@pytest.mark.parametrize("k", [1, 2, 3])
def test_uniform_random_order_matches_analytic_expectation(k):
    t = 5
    perms = torch.tensor(list(itertools.permutations(range(t))))
    local = local_arness(perms, k).mean().item()
    glob = global_arness(perms, k).mean().item()
    # step n continues a streak of k iff the last min(n, k) reveals are fixed: (T − min(n,k))!/T!
    expect_local = sum(math.factorial(t - min(n, k)) for n in range(1, t + 1)) / math.factorial(t) / t
    expect_global = sum(min(k, r) / r for r in range(1, t + 1)) / t
    assert local == pytest.approx(expect_local) and glob == pytest.approx(expect_global)


def test_order_from_history_orders_by_step_then_position():
    m = 9
    prompt = torch.tensor([[5, 6]])
    states = [[m, 3, m, m], [m, 3, 1, 2], [4, 3, 1, 2]]
    history = [torch.cat([prompt, torch.tensor([s])], 1) for s in states]
    assert order_from_history(history, 2, m).tolist() == [[1, 2, 3, 0]]
    with pytest.raises(ValueError, match="masked"):
        order_from_history(history[:1], 2, m)
    with pytest.raises(ValueError, match="permutation"):
        local_arness(torch.tensor([[0, 0, 1]]))


class UnigramModel(torch.nn.Module):
    """Input-independent logits: the masked-diffusion ELBO then equals the per-token cross-entropy exactly."""

    def __init__(self, vocab: int, mask_id: int):
        super().__init__()
        self.config = type("C", (), {"mask_token_id": mask_id})()
        self.logits = torch.nn.Parameter(torch.randn(vocab, generator=torch.Generator().manual_seed(0)))

    def forward(self, ids, attention_mask=None, position_ids=None):
        return DreamOutput(logits=self.logits.expand(*ids.shape, -1))


def test_loss_at_t_one_is_shifted_cross_entropy(model):
    ids = torch.randint(0, 15, (2, 6))
    loss = masked_diffusion_loss(model, ids, t=torch.ones(2))
    logits = model(torch.full_like(ids, 15)).logits
    shifted = torch.cat([logits[:, :1], logits[:, :-1]], 1)
    ce = torch.nn.functional.cross_entropy(shifted.reshape(-1, 16), ids.reshape(-1))
    torch.testing.assert_close(loss, ce)


def test_loss_is_unbiased_for_the_elbo():
    model = UnigramModel(8, 7)
    ids = torch.randint(0, 7, (1, 10)).expand(20000, -1)
    prompt = torch.zeros_like(ids, dtype=torch.bool)
    prompt[:, :3] = True
    ce = -model.logits.log_softmax(-1)[ids[0, 3:]].mean()
    with torch.no_grad():
        loss = masked_diffusion_loss(model, ids, prompt, generator=torch.Generator().manual_seed(1))
    assert loss.item() == pytest.approx(ce.item(), rel=0.03)


def test_forward_mask_never_touches_prompt_and_rejects_masked_data(model):
    ids = torch.randint(0, 15, (64, 8))
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, :3] = False
    noisy, masked = forward_mask(ids, torch.full((64,), 0.9), maskable, 15)
    assert not masked[:, :3].any() and torch.equal(noisy[:, :3], ids[:, :3])
    assert torch.equal(noisy == 15, masked)
    with pytest.raises(ValueError, match="mask token"):
        masked_diffusion_loss(model, torch.full((1, 4), 15))
