"""Large images in patches: DOTA-style sliding windows, window annotations by IoF, merged detections."""

import math

import pytest
import torch

from tinydet.split import crop_windows, predict_large, sliding_windows, window_targets


def test_sliding_windows_step_and_last_window_at_the_border():
    """2000×1500 with 1024/200 (step 824): x starts 0, 824, then 1648 moved back to 976; y 0, then 824 → 476."""
    win = sliding_windows(1500, 2000, 1024, 200)
    assert sorted({tuple(w[:2].tolist()) for w in win}) == [(x, y) for x in (0, 824, 976) for y in (0, 476)]
    assert ((win[:, 2:] - win[:, :2]) == 1024).all() and win[:, 2].max() == 2000 and win[:, 3].max() == 1500
    assert sliding_windows(800, 600, 1024, 200).tolist() == [[0, 0, 1024, 1024]]
    with pytest.raises(ValueError, match="gap < size"):
        sliding_windows(100, 100, 64, 64)


def test_window_targets_keep_boxes_mostly_inside_in_window_coordinates():
    windows = torch.tensor([[0, 0, 100, 100], [60, 0, 160, 100]])
    boxes = torch.tensor(
        [
            [50.0, 50.0, 10.0, 10.0, 0.0],  # inside the first only
            [96.0, 50.0, 10.0, 10.0, 0.0],  # 9/10 inside the first, wholly inside the second
            [99.0, 20.0, 10.0, 10.0, 0.0],  # half inside the first: dropped there
            [130.0, 70.0, 8.0, 4.0, math.pi / 4],  # rotated, inside the second
        ]
    )
    first, second = window_targets(boxes, torch.tensor([0, 1, 2, 3]), windows)
    assert first["labels"].tolist() == [0, 1] and first["truncated"].tolist() == [False, True]
    torch.testing.assert_close(first["boxes"], boxes[:2])
    assert second["labels"].tolist() == [1, 2, 3] and not second["truncated"].any()
    torch.testing.assert_close(second["boxes"][:, :2], boxes[1:, :2] - torch.tensor([60.0, 0.0]))
    empty = window_targets(torch.zeros(0, 5), torch.zeros(0, dtype=torch.long), windows)
    assert len(empty) == 2 and empty[0]["boxes"].shape == (0, 5)


class _MarkerDetector:
    """Detects every pixel above 0.5 of a patch as a 4×4 box on it (score = the pixel value)."""

    class config:
        angle_version = "le90"

    def predict(self, images, score_thr=None):
        out = []
        for im in images:
            ys, xs = torch.nonzero(im[0] > 0.5, as_tuple=True)
            boxes = torch.stack([xs + 0.5, ys + 0.5, torch.full_like(xs, 4), torch.full_like(xs, 4), xs * 0], 1)
            out.append({"boxes": boxes.float(), "scores": im[0, ys, xs], "labels": torch.zeros_like(xs)})
        return out


def test_predict_large_finds_each_marker_once_in_image_coordinates():
    """Markers seen by up to four overlapping windows come back once each, where they are in the whole image
    (the last windows moved back to the border); an image smaller than one window is padded."""
    g = torch.Generator().manual_seed(0)
    image = torch.zeros(3, 250, 300)
    cells = torch.randperm(41 * 50, generator=g)[:40]  # 40 cells of a 6-px lattice: markers' boxes never touch
    ys, xs = cells // 50 * 6 + 1, cells % 50 * 6 + 1
    image[:, ys, xs] = 0.9
    windows = sliding_windows(250, 300, 128, 32)
    assert len(windows) == 9 and crop_windows(image, windows).shape == (9, 3, 128, 128)
    det = predict_large(_MarkerDetector(), image, size=128, gap=32, batch_size=5)
    got = sorted(map(tuple, det["boxes"][:, :2].tolist()))
    want = sorted({(x + 0.5, y + 0.5) for x, y in zip(xs.tolist(), ys.tolist())})
    assert got == want
    det = predict_large(_MarkerDetector(), image[:, :100, :90], size=128, gap=32)  # smaller than one window
    assert len(det["boxes"]) == int((image[0, :100, :90] > 0.5).sum())
    with pytest.raises(ValueError, match="one \\(3, H, W\\) image"):
        predict_large(_MarkerDetector(), image[None])


def test_split_cli_writes_patches_that_read_back_as_the_windows(tmp_path):
    """``python -m tinydet split``: each patch file is the window's crop (bit-exact through 8-bit PNG), its
    annotation file reads back as the window's boxes, labels, and difficulty 2 where the window cuts a box."""
    from PIL import Image

    from labcore.rotated import obb_to_poly
    from tinydet.__main__ import main as cli
    from tinydet.data import SYNTHETIC_CLASSES, DOTAStyleDataset, synthetic_scene

    scene = synthetic_scene(5, 160, 30)
    (tmp_path / "src" / "images").mkdir(parents=True)
    (tmp_path / "src" / "labelTxt").mkdir()
    pixels = (scene["image"].permute(1, 2, 0) * 255).round().byte().numpy()
    Image.fromarray(pixels).save(tmp_path / "src" / "images" / "scene.png")
    lines = [
        " ".join(f"{v:.4f}" for v in poly) + f" {SYNTHETIC_CLASSES[lab]} 0"
        for poly, lab in zip(obb_to_poly(scene["boxes"]).reshape(-1, 8).tolist(), scene["labels"].tolist())
    ]
    (tmp_path / "src" / "labelTxt" / "scene.txt").write_text("\n".join(lines) + "\n")
    args = ["--data", str(tmp_path / "src"), "--out", str(tmp_path / "dst"), "--classes", "synthetic"]
    cli(["split", *args, "--size", "96", "--gap", "32"])
    src = DOTAStyleDataset(tmp_path / "src", SYNTHETIC_CLASSES)[0]
    windows = sliding_windows(160, 160, 96, 32)
    targets = window_targets(src["boxes"], src["labels"], windows)
    patches = {p["name"]: p for p in DOTAStyleDataset(tmp_path / "dst", SYNTHETIC_CLASSES)}
    assert len(patches) == len(windows) == 4
    for (x0, y0, _, _), crop, want in zip(windows.tolist(), crop_windows(src["image"], windows), targets):
        got = patches[f"scene__96__{x0}___{y0}"]
        assert torch.equal(got["image"], crop)
        assert torch.equal(got["labels"], want["labels"]) and torch.equal(got["difficult"], want["truncated"])
        torch.testing.assert_close(got["boxes"][:, :4], want["boxes"][:, :4], atol=2e-3, rtol=0)
    assert sum(len(t["labels"]) for t in targets) > len(src["labels"])  # objects in the overlaps appear twice
    assert any(t["truncated"].any() for t in targets)
