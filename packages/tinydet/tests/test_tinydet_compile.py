"""``predict --compile`` (labcore.compiling.maybe_compile): the compiled detector predicts the same boxes."""

import torch

from labcore.testing import compiled_vs_eager
from tinydet.detector import DetectorConfig, RotatedDetector


def test_compiled_predict_matches_eager(compile_backend):
    torch.manual_seed(0)
    detector = RotatedDetector(DetectorConfig.tiny(["a", "b"])).eval()
    images = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    run = lambda m: m.predict(images, score_thr=0.0)[0]  # noqa: E731
    eager, compiled = compiled_vs_eager(run, detector, compile_backend)
    assert len(eager["boxes"]) > 0
    for key in ("boxes", "scores", "labels"):
        torch.testing.assert_close(compiled[key], eager[key], rtol=1e-4, atol=1e-4)
