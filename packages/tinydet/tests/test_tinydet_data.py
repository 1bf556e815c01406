"""Readers (DOTA / AI-TOD-R), synthetic scenes and point labels."""

import math

import pytest
import torch

from labcore.rotated import obb_to_poly, regularize_boxes
from tinydet.data import (
    AITOD_CLASSES,
    DOTAStyleDataset,
    boxes_to_points,
    collate,
    read_aitodr_txt,
    read_dota_txt,
    synthetic_scene,
)


def test_dota_reader_round_trips_polygons(tmp_path):
    boxes = regularize_boxes(
        torch.tensor([[20.0, 30.0, 8.0, 3.0, 0.4], [50.0, 10.0, 5.0, 5.0, 1.2]], dtype=torch.float64), "le135"
    )
    polys = obb_to_poly(boxes).reshape(-1, 8).tolist()
    text = "imagesource:GoogleEarth\ngsd:0.2\n" + "".join(
        " ".join(f"{v:.6f}" for v in p) + f" {c} {d}\n" for p, c, d in zip(polys, ["vehicle", "ship"], [0, 1])
    )
    path = tmp_path / "a.txt"
    path.write_text(text)
    ann = read_aitodr_txt(path)
    assert ann["labels"].tolist() == [AITOD_CLASSES.index("vehicle"), AITOD_CLASSES.index("ship")]
    assert ann["difficult"].tolist() == [False, True]
    assert torch.allclose(ann["boxes"].double(), boxes, atol=1e-4)


def test_reader_errors_and_empty_files(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    ann = read_dota_txt(empty)
    assert ann["boxes"].shape == (0, 5) and ann["labels"].shape == (0,)
    bad = tmp_path / "bad.txt"
    bad.write_text("0 0 1 0 1 1 0 1 spaceship 0\n")
    with pytest.raises(ValueError, match="unknown class 'spaceship'.*known classes"):
        read_dota_txt(bad)
    short = tmp_path / "short.txt"
    short.write_text("0 0 1 0 vehicle\n")
    with pytest.raises(ValueError, match="short.txt:1"):
        read_aitodr_txt(short)
    with pytest.raises(FileNotFoundError, match="labelTxt"):
        DOTAStyleDataset(tmp_path)


def test_dataset_folder(tmp_path):
    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "labelTxt").mkdir()
    Image.new("RGB", (40, 30), (10, 20, 30)).save(tmp_path / "images" / "p1.png")
    (tmp_path / "labelTxt" / "p1.txt").write_text("1 1 5 1 5 3 1 3 person 0\n")
    item = DOTAStyleDataset(tmp_path)[0]
    assert item["image"].shape == (3, 30, 40) and item["labels"].tolist() == [AITOD_CLASSES.index("person")]
    assert torch.allclose(item["boxes"][0, :4], torch.tensor([3.0, 2.0, 4.0, 2.0]))


def test_synthetic_scenes_are_deterministic_and_well_formed():
    a, b = synthetic_scene(7), synthetic_scene(7)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["boxes"], b["boxes"])
    boxes = a["boxes"]
    assert boxes.shape[0] >= 1 and a["image"].shape == (3, 128, 128)
    assert (boxes[:, 2] >= boxes[:, 3]).all()  # le135: width is the long side
    assert ((boxes[:, 4] >= -math.pi / 4) & (boxes[:, 4] < 3 * math.pi / 4)).all()
    assert (boxes[:, :2] > 0).all() and (boxes[:, :2] < 128).all()
    # objects are drawn: pixels at object centres differ from the scene without them more than noise
    batch = collate([a, synthetic_scene(8)])
    assert batch["image"].shape == (2, 3, 128, 128) and len(batch["boxes"]) == 2


def test_random_points_fall_inside_their_boxes():
    g = torch.Generator().manual_seed(0)
    boxes = torch.tensor([[10.0, 10.0, 8.0, 2.0, 0.7]]).repeat(500, 1)
    pts = boxes_to_points(boxes, "random", g)
    d = pts - boxes[:, :2]
    c, s = math.cos(0.7), math.sin(0.7)
    u, v = d[:, 0] * c + d[:, 1] * s, -d[:, 0] * s + d[:, 1] * c
    assert (u.abs() <= 4 + 1e-5).all() and (v.abs() <= 1 + 1e-5).all()
    assert u.std() > 1.5  # spread over the box, not collapsed at the centre
    assert torch.equal(boxes_to_points(boxes, "centre"), boxes[:, :2])
    with pytest.raises(ValueError, match="point mode"):
        boxes_to_points(boxes, "corner")


@pytest.mark.parametrize("direction", ["horizontal", "vertical", "diagonal"])
def test_flipped_boxes_paint_the_flipped_image(direction):
    """Painting the mirrored boxes gives the mirrored painting (supersampled coverage is symmetric), for rotated
    boxes of every angle; the result stays in the angle version's range."""
    from tinydet.data import _paint, flip_boxes, flip_image

    g = torch.Generator().manual_seed(0)
    n = 12
    boxes = torch.cat(
        [
            torch.rand(n, 2, generator=g) * torch.tensor([100.0, 70.0]) + 14,
            torch.rand(n, 2, generator=g) * 10 + 2,
            (torch.rand(n, 1, generator=g) - 0.5) * 3.1,
        ],
        1,
    )
    flipped = flip_boxes(boxes, (96, 128), direction, "le90")
    assert (flipped[:, 4] >= -math.pi / 2).all() and (flipped[:, 4] < math.pi / 2).all()
    painted = _paint(boxes, torch.ones(n, 3), 96, 128)[1]
    torch.testing.assert_close(
        _paint(flipped, torch.ones(n, 3), 96, 128)[1], flip_image(painted, direction), atol=1e-5, rtol=0
    )
    with pytest.raises(ValueError, match="flip direction"):
        flip_boxes(boxes, (96, 128), "sideways")


def test_random_flip_draws_each_direction_a_quarter_of_the_time_and_moves_points():
    from tinydet.data import PointLabels, RandomFlip, SyntheticTinyObjects, flip_boxes, flip_image

    base = PointLabels(SyntheticTinyObjects(1, 64))
    item = base[0]
    expected = {d: flip_image(item["image"], d) for d in ("horizontal", "vertical", "diagonal")}
    torch.manual_seed(0)
    counts = {"none": 0, "horizontal": 0, "vertical": 0, "diagonal": 0}
    ds = RandomFlip(base)
    for _ in range(400):
        got = ds[0]
        d = next((d for d, im in expected.items() if torch.equal(got["image"], im)), "none")
        counts[d] += 1
        if d != "none":
            torch.testing.assert_close(got["boxes"], flip_boxes(item["boxes"], (64, 64), d))
            torch.testing.assert_close(got["points"], got["boxes"][:, :2])  # centre points follow their boxes
    assert all(70 <= c <= 130 for c in counts.values()), counts
    assert torch.equal(RandomFlip(base, ratio=0.0)[0]["image"], item["image"])
    with pytest.raises(ValueError, match="3 directions"):
        RandomFlip(base, ratio=0.5)
