import numpy as np
import torch
from PIL import Image

from labcore import demo, quickstart
from labcore.figures import image_grid, save_image_grid, save_line_plot
from labcore.rng import get_rng_state, seed_everything, set_rng_state


def test_image_grid_layout_and_values():
    imgs = torch.stack([torch.full((1, 2, 2), -1.0), torch.full((1, 2, 2), 1.0)])
    grid = image_grid(imgs, nrow=2, padding=1)
    assert grid.shape == (4, 7, 3)
    assert (grid[1:3, 1:3] == 0).all() and (grid[1:3, 4:6] == 255).all()


def test_saved_pngs(tmp_path):
    p = save_image_grid(torch.rand(5, 3, 4, 4), tmp_path / "g.png", value_range=(0, 1), scale=2)
    assert Image.open(p).size == (2 * (3 * 6 + 2), 2 * (2 * 6 + 2))
    q = save_line_plot({"a": [1, 2, 3], "b": ([0, 2], [1.0, 0.5])}, tmp_path / "l.png")
    assert np.asarray(Image.open(q)).std() > 0


def test_rng_state_round_trip():
    seed_everything(3)
    state = get_rng_state()
    a = (torch.rand(2), np.random.rand())
    set_rng_state(state)
    b = (torch.rand(2), np.random.rand())
    assert torch.equal(a[0], b[0]) and a[1] == b[1]


def test_labcore_demo_reaches_closed_form(tmp_path):
    metrics = demo.main(tmp_path)
    assert abs(metrics["final bits/dim"] - metrics["exact entropy bits/dim"]) < 0.02
    assert (tmp_path / "bits_per_dim.png").exists()


def test_quickstart_report_and_same_numbers_twice(tmp_path):
    assert "labcore" in quickstart.discover()
    assert quickstart.main(["--out", str(tmp_path / "a"), "--only", "labcore", "--jobs", "1"]) == 0
    report = (tmp_path / "a" / "REPORT.md").read_text()
    assert "## labcore" in report and "bits_per_dim.png" in report and "**supports**" in report
    assert (tmp_path / "a" / "REPORT.html").exists()
    first = tmp_path / "a" / "report.json"  # a second run in fresh processes: identical numbers
    assert quickstart.main(["--out", str(tmp_path / "b"), "--only", "labcore", "--compare", str(first)]) == 0
