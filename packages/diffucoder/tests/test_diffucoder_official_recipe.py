"""recipe="official": apple/ml-diffucoder's DiffuGRPOTrainer semantics, one test per point."""

import inspect
import random

import pytest
import torch

from diffucoder.coupled_grpo import (
    completion_mask_to_stop,
    content_masks,
    coupled_logps_given_masks,
    coupled_per_token_logps,
    official_masks,
)
from diffucoder.recipes import recipe_settings


def _official_forward_process_masks(batch: int, width: int, k: int, seed: int, accumulation: int):
    """The official draw re-done with its global-seed calls (set_seed, random.uniform, torch.rand, tiling)."""
    random.seed(seed)
    torch.manual_seed(seed)
    t = random.uniform(0.2, 0.8)
    u = torch.rand((batch // accumulation, width))
    u = torch.cat([u] * accumulation)
    return u[:, width - k :] < t, t


def test_masks_follow_the_official_seeding_and_repeat_over_accumulation_chunks():
    b, width, k, seed = 10, 12, 7, 1234
    whole, t = official_masks((b, width), k, seed, micro_batch=5)  # the generation batch (old/ref log-probs)
    expected, t_ref = _official_forward_process_masks(b, width, k, seed, accumulation=2)
    assert t == t_ref and torch.equal(whole, expected)
    micro, t_micro = official_masks((5, width), k, seed)  # one micro-batch inside compute_loss
    assert t_micro == t and torch.equal(micro, whole[:5]) and torch.equal(micro, whole[5:])


def test_official_masks_are_per_row_not_per_content():
    ids = torch.randint(0, 15, (1, 20)).repeat(2, 1)  # two identical completions
    m_official, _ = official_masks(tuple(ids.shape), 12, 3)
    m_clean, _ = content_masks(ids, 12, 3)
    assert not torch.equal(m_official[0], m_official[1]) and torch.equal(m_clean[0], m_clean[1])


def test_official_likelihood_attends_to_pads(model):
    """No attention mask and positions 0..N-1 (official) vs pads hidden (clean): equal only without padding."""
    ids = torch.randint(0, 13, (2, 10))
    ids[0, :3] = 14  # left padding of row 0
    attn = torch.ones_like(ids)
    attn[0, :3] = 0
    m, t = official_masks(tuple(ids.shape), 6, 5)
    with torch.no_grad():
        official = coupled_logps_given_masks(model, ids, 6, m[None], [t], 15)
        hidden = coupled_logps_given_masks(model, ids, 6, m[None], [t], 15, attention_mask=attn)
        by_seed = coupled_per_token_logps(model, ids, 6, [5], 15)
        full = model(torch.where(torch.arange(10) >= 4, 15, ids)).logits  # pass 1 by hand, no mask
    torch.testing.assert_close(by_seed, official)
    torch.testing.assert_close(official[1], hidden[1])  # unpadded row: the same
    assert (official[0] - hidden[0]).abs().max() > 1e-3  # padded row: pads attended
    lp0 = full[:, 3:9].log_softmax(-1).gather(-1, ids[:, 4:, None])[..., 0]
    x1 = torch.where(torch.cat([torch.zeros(2, 4, dtype=torch.bool), m], 1), 15, ids)
    x2 = torch.where(torch.cat([torch.zeros(2, 4, dtype=torch.bool), ~m], 1), 15, ids)
    with torch.no_grad():
        lp1 = model(x1).logits[:, 3:9].log_softmax(-1).gather(-1, ids[:, 4:, None])[..., 0]
        lp2 = model(x2).logits[:, 3:9].log_softmax(-1).gather(-1, ids[:, 4:, None])[..., 0]
    torch.testing.assert_close(official[:, 0], (lp0 + torch.where(m, lp1 / t, lp2 / (1 - t))) / 2)


def test_completion_mask_keeps_the_tail_up_to_the_first_im_end():
    tokens = torch.tensor([[5, 7, 2, 9, 2], [1, 1, 1, 1, 1], [2, 0, 0, 0, 0]])
    expected = [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]
    assert completion_mask_to_stop(tokens, 2).tolist() == expected


def test_recipe_defaults_are_the_official_config():
    """recipes/config_coupled_code.yaml of apple/ml-diffucoder, values listed by hand."""
    from trl import GRPOConfig

    config, trainer = recipe_settings("official")
    assert trainer == {
        "recipe": "official",
        "diffusion_steps": 256,
        "generation_temperature": 1.0,
        "random_masking": True,
    }
    expected = {
        "learning_rate": 1e-6,
        "beta": 0.01,
        "epsilon": 0.5,
        "num_generations": 10,
        "num_iterations": 2,
        "per_device_train_batch_size": 5,
        "gradient_accumulation_steps": 2,
        "max_completion_length": 256,
        "sync_ref_model": True,
        "ref_model_sync_steps": 64,
        "max_grad_norm": 0.2,
        "weight_decay": 0.1,
        "adam_beta2": 0.99,
        "seed": 42,
        "reward_weights": [2.0, 0.5],
        "scale_rewards": "none",
    }
    assert {k: config[k] for k in expected} == expected
    args = GRPOConfig(output_dir="unused", use_cpu=True, report_to=[], **config)
    assert args.steps_per_generation == 2 and args.epsilon == 0.5
    assert args.ref_model_mixup_alpha == 0.6  # TRL's default, which the recipe keeps
    with pytest.raises(ValueError, match="recipe"):
        recipe_settings("paper")


# TRL's private methods CoupledGRPOTrainer overrides or relies on, each signature in full (parameters, defaults) as
# recorded from trl 1.16.0: any change of the installed TRL must fail here (the package pins trl>=1.16,<1.17).
_MM = ("pixel_values", "image_grid_thw", "num_images", "pixel_attention_mask", "spatial_shapes", "num_tiles")
PRIVATE_API = {
    "_prepare_inputs": ["self", "generation_batch"],
    "_generate_single_turn": [
        "self",
        "prompt_ids",
        "images",
        "multimodal_fields",
        "num_generations",
        "has_tool_images=False",
    ],
    "_generate_and_score_completions": ["self", "inputs"],
    "_get_per_token_logps_and_entropies": [
        "self",
        "model",
        "input_ids",
        "attention_mask",
        "logits_to_keep",
        "batch_size=None",
        "compute_entropy=False",
        "compute_aux_loss=False",
        *(f"{name}=None" for name in _MM),
        "image_sizes=None",
        "token_type_ids=None",
        "mm_token_type_ids=None",
        "image_position_ids=None",
    ],
    "_compute_loss": ["self", "model", "inputs"],
    "training_step": ["self", "model", "inputs", "num_items_in_batch"],
}


def _params(function) -> list[str]:
    return [
        p.name if p.default is inspect.Parameter.empty else f"{p.name}={p.default!r}"
        for p in inspect.signature(function).parameters.values()
    ]


def test_trl_private_api_is_the_one_overridden():
    from trl import GRPOTrainer

    for name, params in PRIVATE_API.items():
        got = _params(getattr(GRPOTrainer, name))
        assert got == params, f"GRPOTrainer.{name}{got} changed (recorded from trl 1.16.0)"
    # the official index (_step read after incrementing) relies on TRL incrementing _step after the loss
    assert "self._step += 1" in inspect.getsource(GRPOTrainer.training_step)
    assert "shuffle_sequence_dict" in inspect.getsource(GRPOTrainer._prepare_inputs)


def _tiny_trainer(make_grpo_trainer, recipe, **config):
    def reward(completion_ids, **kwargs):
        return [sum(t % 2 == 0 for t in ids) / len(ids) for ids in completion_ids]

    settings = dict(
        per_device_train_batch_size=2,
        gradient_accumulation_steps=2,
        num_generations=4,
        max_completion_length=6,
        max_steps=2,
        num_iterations=2,
        beta=0.01,
        scale_rewards="none",
        learning_rate=1e-2,
    )
    settings.update(config)
    rows, texts = [{"prompt": "def add(a, b):"}] * 8, ["def add(a, b):\n    return a + b\n"] * 4
    return make_grpo_trainer([reward], rows, texts, trainer_kwargs={"recipe": recipe, "diffusion_steps": 3}, **settings)


def test_official_mask_reuse_across_iterations_and_accumulation(make_grpo_trainer):
    """Accumulation 2, 2 iterations: micro-steps use seed indices 1, 0, 1, 0 (``_step % 2`` after the
    increment), so each micro-batch gets the same mask in both iterations; old/ref/current agree (KL 0, no
    clipping) on the first micro-step; completions keep the whole generated tail."""
    trainer = _tiny_trainer(make_grpo_trainer, "official")
    seen = []
    compute = trainer._compute_loss

    def spy(model, inputs):
        seen.append((trainer._step, trainer.iteration_index(), inputs["completion_ids"].clone()))
        return compute(model, inputs)

    trainer._compute_loss = spy
    trainer.train()
    assert [s for s, _, _ in seen] == [0, 1, 2, 3] and [i for _, i, _ in seen] == [1, 0, 1, 0]
    assert torch.equal(seen[0][2], seen[2][2]) and torch.equal(seen[1][2], seen[3][2])  # same chunk, same mask
    assert all(ids.shape[1] == 6 for _, _, ids in seen)  # full generated tail, never cut
    first = trainer.state.log_history[0]
    assert abs(first["coupled/kl"]) < 1e-10 and first["coupled/clip_ratio"] == 0.0


def test_official_reference_model_sync(make_grpo_trainer):
    """sync_ref_model: TRL's callback mixes the policy into the reference every ref_model_sync_steps."""
    from trl.trainer.callbacks import SyncRefModelCallback

    trainer = _tiny_trainer(
        make_grpo_trainer,
        "official",
        max_steps=1,
        sync_ref_model=True,
        ref_model_sync_steps=1,
        ref_model_mixup_alpha=1.0,
    )
    assert any(isinstance(c, SyncRefModelCallback) for c in trainer.callback_handler.callbacks)
    before = [p.detach().clone() for p in trainer.ref_model.parameters()]
    trainer.train()
    for ref, pol in zip(trainer.ref_model.parameters(), trainer.model.parameters()):
        torch.testing.assert_close(ref, pol)  # alpha 1: reference := policy
    assert any(not torch.equal(ref, old) for ref, old in zip(trainer.ref_model.parameters(), before))
