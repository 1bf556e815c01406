"""Lightning training resumes, the demo runs at a tiny budget, and the CLI chains train → predict → evaluate."""

import json

import numpy as np
import pytest
import torch

from tinydet.__main__ import main as cli
from tinydet.data import SYNTHETIC_CLASSES, SyntheticTinyObjects
from tinydet.demo import run
from tinydet.detector import DetectorConfig, RotatedDetector
from tinydet.train import fit


def test_fit_resumes_from_last_checkpoint(tmp_path):
    data = SyntheticTinyObjects(4, size=64, max_objects=5)
    torch.manual_seed(0)
    first = fit(
        RotatedDetector(DetectorConfig.tiny(SYNTHETIC_CLASSES)),
        data,
        tmp_path,
        max_steps=2,
        batch_size=2,
        optimizer="adamw",
        lr=1e-3,
        warmup=1,
        progress=False,
    )
    assert len(first.history) == 2 and (tmp_path / "last.ckpt").exists()
    after_first = torch.nn.utils.parameters_to_vector(first.detector.parameters()).detach().clone()
    torch.manual_seed(1)
    fresh = RotatedDetector(DetectorConfig.tiny(SYNTHETIC_CLASSES))
    fresh_init = torch.nn.utils.parameters_to_vector(fresh.parameters()).detach().clone()
    second = fit(
        fresh,
        data,
        tmp_path,
        max_steps=3,
        batch_size=2,
        optimizer="adamw",
        lr=1e-3,
        warmup=1,
        progress=False,
    )
    assert len(second.history) == 1  # steps 0–1 came from the checkpoint
    # resumed weights continue from the first run's, not from the fresh initialisation
    resumed = torch.nn.utils.parameters_to_vector(second.detector.parameters()).detach()
    assert (resumed - after_first).norm() < 0.1 * (resumed - fresh_init).norm()
    state = torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=False)
    assert state["global_step"] == 3


def test_demo_runs_at_a_tiny_budget(tmp_path):
    out = run(
        tmp_path,
        train_images=4,
        val_images=2,
        steps=2,
        batch_size=2,
        size=64,
        heads=("retina", "dcfl", "dcfl-rcnn"),
        seeds=(0, 1),
    )
    assert {"DCFL AP", "RetinaNet AP", "DCFL AP_vt", "RetinaNet AP_t", "DCFL mAP50", "DCFL-RCNN AP50"} <= set(out)
    assert out["seeds"] == "0 1" and len(out["DCFL AP_vt per seed"].split()) == 2
    assert all(-1.0 <= v <= 1.0 for v in out.values() if isinstance(v, float))
    assert (tmp_path / "detections.png").stat().st_size > 0 and (tmp_path / "loss.png").exists()
    assert RotatedDetector.from_pretrained(tmp_path / "dcfl_model").config.head == "dcfl"


def test_cli_train_predict_evaluate(tmp_path, capsys):
    from PIL import Image

    cli(["train", "--num-images", "2", "--size", "64", "--steps", "1", "--batch-size", "2", "--out", str(tmp_path)])
    model = tmp_path / "model"
    assert (model / "config.json").exists()
    img = tmp_path / "scene.png"
    pixels = SyntheticTinyObjects(1, size=64)[0]["image"].permute(1, 2, 0).numpy() * 255
    Image.fromarray(pixels.astype("uint8")).save(img)
    cli(["predict", "--model", str(model), "--images", str(img), "--out", str(tmp_path / "pred"), "--score-thr", "0.0"])
    lines = (tmp_path / "pred" / "scene.txt").read_text().splitlines()
    assert lines and len(lines[0].split()) == 10 and lines[0].split()[8] in SYNTHETIC_CLASSES
    wide = tmp_path / "wide.png"  # two scenes side by side, predicted in 64-px windows overlapping by 16
    Image.fromarray(np.concatenate([pixels, pixels], 1).astype("uint8")).save(wide)
    args = ["--images", str(wide), "--out", str(tmp_path / "pred"), "--score-thr", "0.0", "--patch-size", "64"]
    cli(["predict", "--model", str(model), *args, "--gap", "16"])
    xs = [float(v) for line in (tmp_path / "pred" / "wide.txt").read_text().splitlines() for v in line.split()[0:8:2]]
    assert min(xs) < 64 < max(xs) <= 128 + 64  # detections from windows on both halves, in image coordinates
    capsys.readouterr()
    cli(["evaluate", "--model", str(model), "--num-images", "2", "--size", "64"])
    metrics = json.loads(capsys.readouterr().out)
    assert {"AP", "AP50", "AP_vt", "AP_t", "mAP50"} <= set(metrics)


def test_point_teacher_cli_and_demo_at_a_tiny_budget(tmp_path, capsys):
    from tinydet.demo import run_point_teacher
    from tinydet.point_teacher import PointTeacher

    cli(
        [
            "train",
            "--head",
            "point-teacher",
            "--num-images",
            "2",
            "--size",
            "64",
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--out",
            str(tmp_path),
        ]
    )
    model = PointTeacher.from_pretrained(tmp_path / "model")
    assert int(model.step) == 2 and model.config.burn_in_steps == 1
    capsys.readouterr()
    cli(["evaluate", "--model", str(tmp_path / "model"), "--num-images", "2", "--size", "64"])
    assert "AP50" in json.loads(capsys.readouterr().out)
    out = run_point_teacher(tmp_path / "demo", train_images=2, val_images=2, steps=2, burn_in_steps=1, size=64)
    assert 0 <= out["PointTeacher pseudo IoU refined"] <= 1 and 0 < out["point-only 8x8 box IoU"] <= 1
    assert (tmp_path / "demo" / "point_teacher_pseudo_boxes.png").exists()


@pytest.mark.parametrize(("head", "rpn"), [("dcfl-rcnn", "dcfl"), ("oriented-rcnn", "oriented")])
def test_cli_trains_and_evaluates_the_two_stage_detector(tmp_path, capsys, head, rpn):
    from tinydet.two_stage import TwoStageConfig, TwoStageDetector

    args = ["--num-images", "2", "--size", "64", "--steps", "1", "--batch-size", "2", "--out", str(tmp_path)]
    cli(["train", "--head", head, *args])
    model = TwoStageDetector.from_pretrained(tmp_path / "model")
    assert model.config.rpn == rpn and model.config.roi_size == 7
    assert model.config == TwoStageConfig.tiny(SYNTHETIC_CLASSES, rpn)  # that RPN's reference preset, on the CPU
    capsys.readouterr()
    cli(["evaluate", "--model", str(tmp_path / "model"), "--num-images", "2", "--size", "64"])
    metrics = json.loads(capsys.readouterr().out)
    assert {"AP", "AP50", "mAP50"} <= set(metrics) and all(0 <= metrics[k] <= 1 for k in ("AP", "AP50", "mAP50"))


def test_demo_main_states_the_claim_with_its_baseline(tmp_path, monkeypatch):
    import tinydet.demo as demo
    from labcore.claims import SUPPORTS, claim_from

    fake = {"seeds": "0 1 2", "training": "100 steps of 2 images", "DCFL AP_t": 0.08, "RetinaNet AP_t": 0.006}
    monkeypatch.setattr(demo, "run", lambda out: dict(fake))
    claim = claim_from(demo.main(tmp_path))
    assert claim.ours == 0.08 and claim.baseline == 0.006 and claim.verdict == SUPPORTS
    assert "100 steps of 2 images" in claim.measure
    monkeypatch.setattr(demo, "run", lambda out: {**fake, "DCFL AP_t": 0.001})
    assert claim_from(demo.main(tmp_path)).verdict != SUPPORTS


def test_cli_evaluate_device_reaches_the_model(tmp_path, stop_at_device):
    RotatedDetector(DetectorConfig.tiny(SYNTHETIC_CLASSES)).save_pretrained(tmp_path)
    with pytest.raises(stop_at_device, match="meta"):
        cli(["evaluate", "--model", str(tmp_path), "--num-images", "1", "--size", "64", "--device", "meta"])


def test_cli_refuses_compile_with_fsdp_before_building_anything(tmp_path):
    missing = str(tmp_path / "no-data")  # reading it would fail with another error: the refusal comes first
    with pytest.raises(ValueError, match="--compile with --strategy fsdp"):
        cli(["train", "--compile", "--strategy", "fsdp", "--data", missing, "--out", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists()
