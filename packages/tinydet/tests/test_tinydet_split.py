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
