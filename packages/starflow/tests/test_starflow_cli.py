"""CLI: train (Lightning, resumable) → sample grid → evaluate, on digits at a tiny budget."""

import json

import pytest
import torch

from starflow.__main__ import main


def test_cli_train_sample_evaluate(tmp_path, capsys):
    out = tmp_path / "run"
    main(
        [
            "train",
            "--preset",
            "digits",
            "--data",
            "digits",
            "--steps",
            "2",
            "--batch-size",
            "16",
            "--out",
            str(out),
            "--checkpoint-every",
            "1",
        ]
    )
    assert (out / "model" / "model.safetensors").exists() and (out / "checkpoints" / "last.ckpt").exists()
    main(["train", "--preset", "digits", "--data", "digits", "--steps", "3", "--batch-size", "16", "--out", str(out)])
    main(
        [
            "sample",
            "--model",
            str(out / "model"),
            "--class-labels",
            "1",
            "7",
            "--guidance",
            "1.5",
            "--num",
            "2",
            "--out",
            str(tmp_path / "grid.png"),
            "--jacobi-block",
            "4",
        ]
    )
    assert (tmp_path / "grid.png").stat().st_size > 0
    with pytest.raises(SystemExit, match="--vae"):
        main(
            [
                "sample",
                "--model",
                str(out / "model"),
                "--finetuned-decoder",
                str(tmp_path),
                "--out",
                str(tmp_path / "x.png"),
            ]
        )
    capsys.readouterr()
    main(["evaluate", "--model", str(out / "model"), "--data", "digits", "--batch-size", "900"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["examples"] == 297 and result["bits_per_dim"] == result["bits_per_dim"]


def test_cli_text_to_image_training_on_caption_folder(tmp_path, t5_dir):
    import numpy as np
    from PIL import Image

    from starflow.autoencoder import tiny_autoencoder

    data = tmp_path / "captions"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i, cap in enumerate(["a red cat", "a blue dog", "a small bird", "a big table"]):
        Image.fromarray(rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)).save(data / f"{i}.png")
        (data / f"{i}.txt").write_text(cap)
    tiny_autoencoder().save_pretrained(tmp_path / "vae")
    cfg = {
        "channel_size": 4,
        "img_size": 4,
        "channels": 48,
        "head_dim": 24,
        "layers_per_block": [1, 1],
        "txt_size": 6,
        "txt_dim": 16,
    }
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    out = tmp_path / "run"
    main(
        [
            "train",
            "--config",
            str(tmp_path / "cfg.json"),
            "--data",
            f"captions:{data}",
            "--vae",
            str(tmp_path / "vae"),
            "--text-encoder",
            str(t5_dir),
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--out",
            str(out),
        ]
    )
    assert (out / "model" / "config.json").exists()
    loaded = json.loads((out / "model" / "config.json").read_text())
    assert loaded["txt_dim"] == 16 and loaded["layers_per_block"] == [1, 1]

    # sampling from prompts: our save_pretrained directory and the same weights as a reference .pth agree
    from starflow import StarFlow
    from starflow.official import deprecated_buffer_shapes

    model = StarFlow.from_pretrained(out / "model")
    state = {**model.state_dict(), **{k: torch.zeros(s) for k, s in deprecated_buffer_shapes(model.config).items()}}
    torch.save(state, tmp_path / "release.pth")
    common = [
        "--vae",
        str(tmp_path / "vae"),
        "--text-encoder",
        str(t5_dir),
        "--prompt",
        "a red cat",
        "a blue dog",
        "--guidance",
        "2",
        "--num",
        "2",
        "--seed",
        "3",
    ]
    main(["sample", "--model", str(out / "model"), *common, "--out", str(tmp_path / "ours.png")])
    main(
        [
            "sample",
            "--official-checkpoint",
            str(tmp_path / "release.pth"),
            "--config",
            str(tmp_path / "cfg.json"),
            *common,
            "--out",
            str(tmp_path / "release.png"),
        ]
    )
    ours, release = (np.asarray(Image.open(tmp_path / f)) for f in ("ours.png", "release.png"))
    assert ours.shape == release.shape and ours.std() > 0 and np.array_equal(ours, release)


def test_cli_class_folder_with_cached_latents(tmp_path):
    import numpy as np
    from PIL import Image

    from starflow.autoencoder import tiny_autoencoder

    rng = np.random.default_rng(0)
    for c in ("cats", "dogs"):
        (tmp_path / "data" / c).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp_path / "data" / c / f"{i}.png")
    tiny_autoencoder().save_pretrained(tmp_path / "vae")
    cfg = {
        "channel_size": 4,
        "img_size": 4,
        "channels": 48,
        "head_dim": 24,
        "layers_per_block": [1, 1],
        "num_classes": 2,
    }
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    out = tmp_path / "run"
    main(
        [
            "train",
            "--config",
            str(tmp_path / "cfg.json"),
            "--data",
            f"classes:{tmp_path / 'data'}",
            "--vae",
            str(tmp_path / "vae"),
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--out",
            str(out),
            "--cache-latents",
        ]
    )
    assert (out / "latents.safetensors").exists() and (out / "model" / "model.safetensors").exists()
    from safetensors.torch import load_file

    cached = load_file(str(out / "latents.safetensors"))  # one latent per image, labels in class-folder order
    assert cached["labels"].tolist() == [0, 0, 1, 1]
    assert cached["latents"].shape == (4, 4, 4, 4) and torch.isfinite(cached["latents"]).all()
    assert not list(out.glob("*.tmp")) and not list(out.glob(".latents.safetensors.*"))  # no temporary files left


def test_cli_device_reaches_the_model(tmp_path, stop_at_device):
    from starflow import create

    create("digits").save_pretrained(tmp_path / "m")
    for command in (["sample", "--class-labels", "1"], ["evaluate"]):
        with pytest.raises(stop_at_device, match="meta"):
            main([*command, "--model", str(tmp_path / "m"), "--device", "meta"])


def test_cli_refuses_compile_with_fsdp_before_loading_anything(tmp_path):
    missing = str(tmp_path / "no-vae")  # loading it would fail with another error: the refusal comes first
    with pytest.raises(ValueError, match="--compile with --strategy fsdp"):
        main(["train", "--compile", "--strategy", "fsdp", "--vae", missing, "--out", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists()
