"""Issue #23: 8-bit or 0-255 images are refused (they gave other detections, 3853 vs 1764); counts are validated."""

import math

import pytest
import torch

from tinydet.__main__ import main
from tinydet.detector import DetectorConfig, RotatedDetector
from tinydet.train import fit


@pytest.fixture(scope="module")
def detector():
    torch.manual_seed(0)
    return RotatedDetector(DetectorConfig.tiny(["a", "b"])).eval()


def test_predict_refuses_uint8_0_255_and_nan_images(detector):
    images = torch.rand(1, 3, 64, 64)
    assert len(detector.predict(images)) == 1
    with pytest.raises(ValueError, match=r"float in \[0, 1\], got torch.uint8.*/ 255"):
        detector.predict((images * 255).to(torch.uint8))
    with pytest.raises(ValueError, match=r"float in \[0, 1\].*got values in \[.*, 25\d\].*divide 0-255 images by 255"):
        detector.predict(images * 255)
    bad = images.clone()
    bad[0, 1, 5, 7] = math.nan
    with pytest.raises(ValueError, match=r"images contains 1 NaN/inf value\(s\) \(first at index \(0, 1, 5, 7\)\)"):
        detector.predict(bad)


def test_fit_refuses_steps_lightning_reads_as_unlimited(detector, tmp_path):
    with pytest.raises(ValueError, match="max_steps must be >= 1, got -1"):
        fit(detector, [], tmp_path / "ckpt", max_steps=-1)
    assert not (tmp_path / "ckpt").exists()


@pytest.mark.parametrize("argv", [["train", "--steps", "-1"], ["train", "--steps", "0"], ["demo", "--steps", "-1"],
                                  ["train", "--batch-size", "0"]])
def test_cli_refuses_zero_or_negative_steps(argv, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--out", str(tmp_path / "never")])
    assert exc.value.code == 2 and f"argument {argv[1]}: must be a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()
