"""Every package's presets (labcore.presets): each builds on the meta device, the paper's sizes match the paper,
a tiny copy of each trains (every trainable parameter gets a finite gradient), unknown names raise one error type."""

import importlib

import pytest
import torch

from labcore.presets import UnknownPresetError

PACKAGES = ("tarflow", "starflow", "tarflow_lm", "diffucoder", "tcsm", "dnfs", "energy_diffusion", "r2l_lm", "tinydet")
CASES = [(pkg, name) for pkg in PACKAGES for name in importlib.import_module(pkg).PRESETS.names()]

# (parameters the paper states, relative tolerance, where): the tolerance covers the paper's rounding
PAPER = {
    # "XL 1.4B" / "XXL 3.8B" (§4, Table 1): two significant figures, and the paper does not say whether the
    # label embedding and output projections are counted
    ("starflow", "XL"): (1.4e9, 0.02, "STARFlow §4 / Table 1"),
    ("starflow", "XXL"): (3.8e9, 0.02, "STARFlow §4 / Table 1"),
    ("starflow", "3B-t2i-256"): (3.8e9, 0.02, "STARFlow Figure 1: 'our 3.8B STARFlow model' (text-to-image)"),
    # "a 7B dLLM" adapted from Qwen2.5-Coder-7B, whose 7.61B (embeddings included) the name rounds down
    ("diffucoder", "diffucoder-7b"): (7.61e9, 0.005, "DiffuCoder abstract; Qwen2.5-Coder-7B model card: 7.61B"),
    # "2B" of the official simulation builder llama3_2b: one significant figure
    ("r2l_lm", "llama3-2b"): (2e9, 0.25, "R2L abstract (2B-8B models); simulation/model.py llama3_2b"),
}

# field overrides that shrink a big preset to a CPU-sized copy of the same layout (presets under SMALL run as they are)
SMALL = 2_000_000
SHRINK = {
    "tarflow": lambda c: dict(img_size=2 * c.patch_size, channels=64, head_dim=32, num_blocks=2, layers_per_block=1),
    "starflow": lambda c: dict(
        img_size=4, channels=48, head_dim=24, layers_per_block=[1, 1, 2], **({"txt_size": 3} if c.txt_size > 1 else {})
    ),
    "tarflow_lm": lambda c: dict(hidden_size=32, num_heads=2, layers_per_block=1, latent_dim=4, max_seq_len=8),
    "diffucoder": lambda c: dict(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        mask_token_id=63,
        pad_token_id=62,
        bos_token_id=61,
        eos_token_id=61,
    ),
    "tcsm": lambda c: dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=16),
    "dnfs": lambda c: dict(data_dim=9, hidden_dim=16),
    "r2l_lm": lambda c: dict(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        bos_token_id=1,
        eos_token_id=2,
    ),
    "tinydet": lambda c: (
        dict(backbone="tiny", fpn_channels=32)
        | ({"fc_channels": 64, "rpn_feat_channels": 32} if hasattr(c, "fc_channels") else {"feat_channels": 32})
        | ({"mil_channels": 64} if hasattr(c, "mil_channels") else {})
        | ({"stacked_convs": 2} if hasattr(c, "stacked_convs") else {})
    ),
}


def _loss(package: str, model: torch.nn.Module) -> torch.Tensor:
    """A scalar training loss of ``model`` on a tiny random batch."""
    c, g = getattr(model, "config", None), torch.Generator().manual_seed(0)
    if package in ("tarflow", "starflow"):
        shape = (c.in_channels if package == "tarflow" else c.channel_size, c.img_size, c.img_size)
        x = torch.randn(2, *shape, generator=g).clamp(-1, 1)
        if package == "tarflow":
            y = torch.tensor([0, 1]) if c.num_classes else None
            z, logdet, _ = model(x, y)
            return model.get_loss(z, logdet)
        y = torch.randn(2, c.txt_size, c.txt_dim, generator=g) if c.txt_size else None
        if c.num_classes:
            y = torch.nn.functional.one_hot(torch.tensor([0, 1]), c.txt_dim).float()[:, None]
        return model.loss(x, y)["loss"]
    if package in ("tarflow_lm", "diffucoder", "tcsm", "r2l_lm"):
        ids = torch.randint(0, c.vocab_size - 2, (2, 8), generator=g)
        if package == "tarflow_lm":
            return model(ids).loss
        if package == "tcsm":
            return model(ids, torch.rand(2, generator=g)).logsumexp(-1).mean()
        if package == "r2l_lm":
            return model(input_ids=ids, labels=ids).loss
        return model(ids).logits.logsumexp(-1).mean()
    if package == "dnfs":
        x = torch.randint(0, c.vocab_size, (3, c.data_dim), generator=g)
        return model(x, torch.rand(3, generator=g)).square().mean()
    if package == "energy_diffusion":
        return model.energy(torch.randn(4, model.dim, generator=g), torch.rand(4, generator=g) + 0.1).square().mean()
    from tinydet.data import PointLabels, SyntheticTinyObjects, collate

    data = SyntheticTinyObjects(2, size=128)  # the largest stride of the reference FPNs
    if hasattr(model, "teacher"):
        data = PointLabels(data)
    return sum(model.training_loss(collate([data[0], data[1]])).values())


@pytest.mark.parametrize(("package", "name"), CASES, ids=[f"{p}:{n}" for p, n in CASES])
def test_preset_builds_and_matches_the_paper(package, name):
    presets = importlib.import_module(package).PRESETS
    with torch.device("meta"):
        model = presets.create(name)
    count = sum(p.numel() for p in model.parameters())
    assert count > 0
    if (package, name) in PAPER:
        figure, tol, where = PAPER[package, name]
        assert abs(count / figure - 1) <= tol, f"{count:,} parameters, {where} says {figure:.3g}"


@pytest.mark.parametrize(("package", "name"), CASES, ids=[f"{p}:{n}" for p, n in CASES])
def test_preset_trains_every_parameter(package, name):
    presets = importlib.import_module(package).PRESETS
    config = presets[name]()
    with torch.device("meta"):
        size = sum(p.numel() for p in presets.build(config).parameters())
    torch.manual_seed(0)
    model = presets.create(name, **(SHRINK[package](config) if size > SMALL else {})).train()
    _loss(package, model).backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable
    missing = [n for n, p in trainable if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"no finite gradient for {missing}"


@pytest.mark.parametrize("package", PACKAGES)
def test_unknown_preset_raises_the_one_error_everywhere(package):
    mod = importlib.import_module(package)
    name = mod.PRESETS.names()[0]
    for call in (lambda n: mod.PRESETS[n], mod.create):
        with pytest.raises(UnknownPresetError, match=f"did you mean {name!r}") as err:
            call(name + "x")
        assert isinstance(err.value, KeyError) and all(n in str(err.value) for n in mod.PRESETS.names())
    assert sorted(mod.PRESETS) == mod.PRESETS.names()


@pytest.mark.parametrize(
    ("package", "typo"), [("tarflow", "digits-tinyy"), ("starflow", "digit"), ("tarflow_lm", "tiny8")]
)
def test_cli_preset_typo_exits_with_the_close_matches(package, typo, tmp_path):
    main = importlib.import_module(f"{package}.__main__").main
    data = [] if package == "tarflow_lm" else ["--data", "digits"]
    with pytest.raises(SystemExit, match=f"{package} has no preset {typo!r}; did you mean"):
        main(["train", "--preset", typo, *data, "--out", str(tmp_path)])
