import json

import pytest
import torch

from diffucoder.data import function_snippets, sft_tensors
from diffucoder.humaneval import evaluate, load_problems, truncate
from diffucoder.tokenizer import DLM_PAD, IM_END, train_tiny_tokenizer
from diffucoder.train import fit


@pytest.fixture(scope="module")
def tok():
    return train_tiny_tokenizer(["def f(x):\n    return x + 1\n" * 20], vocab_size=300)


def test_sft_layout_prompt_answer_end_pad(tok):
    ids, prompt_mask = sft_tensors(tok, [("def f(x):\n", "    return x\n"), ("def g():\n", "    pass\n" * 50)], 24)
    assert ids.shape == (1, 24)  # the too-long pair is skipped
    p = len(tok.encode("def f(x):\n"))
    a = len(tok.encode("    return x\n"))
    assert prompt_mask[0].sum().item() == p and not prompt_mask[0, p:].any()
    assert ids[0, p + a].item() == tok.convert_tokens_to_ids(IM_END)
    assert (ids[0, p + a + 1 :] == tok.convert_tokens_to_ids(DLM_PAD)).all()
    assert tok.decode(ids[0, : p + a]) == "def f(x):\n    return x\n"
    with pytest.raises(ValueError, match="fits"):
        sft_tensors(tok, [("def g():\n", "    pass\n" * 50)], 8)


def test_function_snippets_parse():
    pairs = function_snippets(100_000)
    assert len(pairs) > 10
    head, body = pairs[0]
    assert head.startswith("def ") and body.startswith("    ")


def test_fit_reduces_loss_and_resumes(tmp_path, make_model, tok):
    from diffucoder.losses import masked_diffusion_loss

    model = make_model(0, vocab_size=len(tok), mask_token_id=tok.mask_token_id, pad_token_id=tok.pad_token_id)
    ids, prompt_mask = sft_tensors(tok, [("def f(x):\n", "    return x + 1\n")] * 32, 16)

    def held_out_loss():
        with torch.no_grad():
            t = torch.full((32,), 0.5)
            return masked_diffusion_loss(
                model.eval(), ids, prompt_mask, t=t, generator=torch.Generator().manual_seed(0)
            )

    before = held_out_loss()
    losses = fit(model, ids, prompt_mask, tmp_path, max_steps=40, batch_size=16, lr=3e-3)
    assert len(losses) == 40 and torch.isfinite(torch.tensor(losses)).all()
    assert held_out_loss() < 0.5 * before  # memorises the one function
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    more = fit(model, ids, prompt_mask, tmp_path, max_steps=44, batch_size=16, lr=3e-3)
    assert len(more) == 44 and more[:40] == losses  # resumed at step 40; the curve comes with the checkpoint


def test_humaneval_problems_and_pass_at_k():
    problems = load_problems()
    assert len(problems) == 164
    few = problems[:3]
    wrong = "    raise NotImplementedError\n"
    completions = [[p["canonical_solution"], wrong, wrong] for p in few]
    scores = evaluate(few, completions, ks=(1, 2))
    assert scores["pass@1"] == pytest.approx(1 / 3)
    assert scores["pass@2"] == pytest.approx(1 - 1 / 3)  # 1 − C(2,2)/C(3,2)
    assert scores["per_problem"] == pytest.approx([1 / 3] * 3)
    # unequal sample counts: outcomes are grouped back to their own problem
    ragged = [[p["canonical_solution"]] + [wrong] * i for i, p in enumerate(few)]
    assert evaluate(few, ragged)["per_problem"] == pytest.approx([1, 1 / 2, 1 / 3])
    assert truncate("    return 1\ndef other():\n    pass") == "    return 1"


def test_cli_sample_and_arness(tmp_path, make_config, tok, capsys):
    from diffucoder import DreamModel
    from diffucoder.__main__ import main
    from diffucoder.tokenizer import dream_config_kwargs

    DreamModel(make_config(**dream_config_kwargs(tok))).save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    main(["sample", "--model", str(tmp_path / "m"), "--prompt", "def f(x):\n", "--max-new-tokens", "8"])
    assert capsys.readouterr().out.startswith("def f(x):\n")
    cached = ["sample", "--model", str(tmp_path / "m"), "--prompt", "def f(x):\n", "--max-new-tokens", "8", "--cached"]
    main([*cached, "--block-length", "4", "--num", "2", "--top-k", "3", "--dual-cache"])
    assert capsys.readouterr().out.count("-" * 40) == 2  # --num honoured
    main([*cached, "--block-length", "4", "--steps", "4", "--alg", "topk_margin", "--alg-temp", "0.5"])
    with pytest.raises(SystemExit, match="alg"):  # the threshold path ranks by probability: refuse, not ignore
        main([*cached, "--block-length", "4", "--alg", "entropy"])
    main(
        [
            "arness",
            "--model",
            str(tmp_path / "m"),
            "--prompt",
            "def f(x):\n",
            "--max-new-tokens",
            "6",
            "--temperatures",
            "0.5",
            "1.0",
            "--out",
            str(tmp_path / "ar.png"),
        ]
    )
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(res) == {"0.5", "1.0"} and (tmp_path / "ar.png").exists()
    with pytest.raises(SystemExit, match="config.json"):
        main(["sample", "--model", str(tmp_path / "missing"), "--prompt", "x"])


def test_cli_device_reaches_the_model(tmp_path, make_config, tok, stop_at_device):
    from diffucoder import DreamModel
    from diffucoder.__main__ import main
    from diffucoder.tokenizer import dream_config_kwargs

    DreamModel(make_config(**dream_config_kwargs(tok))).save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    for command in (["sample", "--prompt", "x"], ["arness", "--prompt", "x"], ["evaluate", "--limit", "1"]):
        with pytest.raises(stop_at_device, match="meta"):
            main([*command, "--model", str(tmp_path / "m"), "--device", "meta"])


@pytest.mark.slow
def test_demo_runs(tmp_path):
    from diffucoder.demo import main

    res = main(tmp_path, train_steps=30)
    assert res["train_steps"] == 30  # a step budget, not a wall-clock one
    assert res["final_loss"] < res["first_loss"]
    assert (tmp_path / "loss.png").exists() and (tmp_path / "arness_vs_temperature.png").exists()
    assert res["claim"]["baseline_name"].startswith("same model at T=")  # a labcore.claims row


def test_cli_grpo_on_humaneval_prompts(tmp_path, make_config, tok):
    from diffucoder import DreamModel
    from diffucoder.__main__ import main
    from diffucoder.tokenizer import dream_config_kwargs

    cfg = make_config(**dream_config_kwargs(tok), max_position_embeddings=2048, num_hidden_layers=1)
    DreamModel(cfg).save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    main(
        [
            "grpo",
            "--model",
            str(tmp_path / "m"),
            "--out",
            str(tmp_path / "out"),
            "--steps",
            "1",
            "--limit",
            "1",
            "--generations",
            "2",
            "--max-new-tokens",
            "4",
            "--diffusion-steps",
            "2",
        ]
    )
    assert (tmp_path / "out" / "model" / "config.json").exists()
    assert DreamModel.from_pretrained(tmp_path / "out" / "model").config.model_type == "Dream"


@pytest.mark.parametrize("functions", [0, 10_000])
def test_train_model_refuses_a_subset_it_cannot_take(tmp_path, functions):
    from diffucoder.demo import train_model

    with pytest.raises(ValueError, match="functions="):
        train_model(tmp_path, train_steps=1, functions=functions)
    assert not (tmp_path / "run").exists()  # refused before any training


def test_demo_training_seed(tmp_path):
    """The demo's ``seed`` is the training seed (README table over seeds 0-2); seed 0 stays the default, so the
    quick start's numbers are unchanged, and is reproducible; another seed trains a different model."""
    import inspect

    from diffucoder.demo import main, train_model

    assert inspect.signature(main).parameters["seed"].default == 0
    run = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        model, *_, losses = train_model(tmp_path / name, train_steps=2, seed=seed, functions=32)
        run[name] = (losses, next(model.parameters()).detach().clone())
    assert run["a"][0] == run["b"][0] and torch.equal(run["a"][1], run["b"][1])
    assert run["a"][0] != run["c"][0] and not torch.equal(run["a"][1], run["c"][1])
