"""The Triton rotated-IoU kernel against the float64 reference, hand-computed values and shapely.

On CPU the kernel runs under Triton's interpreter. ``TRITON_INTERPRET=1`` must be set before
triton is imported, so the comparison runs this file as a script in a fresh interpreter and the
test checks the errors it reports. The ``gpu`` tests check the dispatch and NMS on CUDA.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest
import torch

from labcore.rotated import rotated_iou, rotated_iou_aligned, rotated_nms
from labcore.rotated.triton_iou import fast_path_available

try:  # as labcore's own import: triton 3.0.0 (torch 2.4's) fails here without setuptools, which it does not declare
    import triton  # noqa: F401

    HAS_TRITON, NO_TRITON = True, ""
except ImportError as e:
    HAS_TRITON, NO_TRITON = False, f"triton does not import ({e}); labcore runs the reference"


def _cases(generator: torch.Generator) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """Named box-pair sets ``(boxes1, boxes2, expected IoU or None)`` in float64."""

    def rand(n, *shape):
        return torch.rand(n, *shape, generator=generator, dtype=torch.float64)

    def randn(n, *shape):
        return torch.randn(n, *shape, generator=generator, dtype=torch.float64)

    def boxes(n, extent=12.0, size=10.0):
        return torch.cat([rand(n, 2) * extent, rand(n, 2) * size, (rand(n, 1) - 0.5) * 2 * math.pi], 1)

    def moved(b, du, dv):  # shifted by (du, dv) in the box's own frame
        c, s = torch.cos(b[:, 4]), torch.sin(b[:, 4])
        out = b.clone()
        out[:, 0] += du * c - dv * s
        out[:, 1] += du * s + dv * c
        return out

    n = 400
    b = boxes(n, size=9.0) + torch.tensor([0.0, 0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    w, h = b[:, 2], b[:, 3]
    small = b * torch.tensor([1, 1, 0.4, 0.5, 1], dtype=torch.float64)
    inner = b.clone()  # a square inside the inscribed circle of b, at any angle, anywhere inside
    inner[:, 2:4] = (torch.minimum(w, h) / 2 * rand(n))[:, None]
    room = torch.minimum(w, h)[:, None] / 2 - inner[:, 2:3] / math.sqrt(2)
    inner = moved(inner, *((rand(n, 2) - 0.5) * 2 * room / math.sqrt(2)).T)
    inner[:, 4] = rand(n) * math.pi
    square = b.clone()
    square[:, 3] = w
    turned = square.clone()
    turned[:, 4] += math.pi / 2
    perpendicular = b.clone()
    perpendicular[:, 4] += math.pi / 2
    m = torch.minimum(w, h) ** 2
    zero = torch.zeros(n, dtype=torch.float64)
    b1, b2 = boxes(3000), boxes(3000)
    b1[:300, 2] = 0  # zero width
    b2[300:600, 3] = 0  # zero height
    b1[600:700, 2:4] = 0  # zero-size
    clusters = torch.cat([rand(300, 2) * 800, 2 + rand(300, 2) * 14, rand(300, 1) * math.pi], 1)
    jitter = torch.cat([randn(300, 2), 1 + 0.1 * randn(300, 2), 0.1 * randn(300, 1)], 1)
    tiny = torch.cat(
        [clusters[:, :2] + jitter[:, :2], clusters[:, 2:4] * jitter[:, 2:4].abs(), clusters[:, 4:] + jitter[:, 4:]], 1
    )
    return {
        "random": (b1, b2, None),
        "tiny objects at 800 px": (clusters, tiny, None),
        "identical": (b, b.clone(), torch.ones_like(zero)),
        "nested, same centre and angle": (b, small, torch.full_like(zero, 0.2)),
        "nested, any angle": (b, inner, inner[:, 2] ** 2 / (w * h)),
        "square turned by π/2": (square, turned, torch.ones_like(zero)),
        "perpendicular, same centre": (b, perpendicular, m / (2 * w * h - m)),
        "touching edge": (b, moved(b, w, 0 * w), zero),
        "touching corner": (b, moved(b, w, h), zero),
        "far apart": (b, moved(b, 3 * w, 3 * h), zero),
    }


def _interpreter_report() -> dict:
    """Run in a process with ``TRITON_INTERPRET=1``: errors of the kernel per case and dtype."""
    from labcore.rotated import obb_to_poly, triton_rotated_iou_aligned
    from labcore.rotated.iou import _separated

    cases = _cases(torch.Generator().manual_seed(0))
    report = {}
    for name, (b1, b2, expected) in cases.items():
        ref = rotated_iou_aligned.reference(b1.float(), b2.float()).double()
        fast = triton_rotated_iou_aligned(b1.float(), b2.float()).double()
        row = {"n": len(b1), "overlapping": int((ref > 0).sum()), "vs_reference": (fast - ref).abs().max().item()}
        if expected is not None:
            row["vs_hand"] = (fast - expected).abs().max().item()
        for dtype in (torch.float64, torch.float16, torch.bfloat16):
            x1, x2 = b1.to(dtype), b2.to(dtype)
            out = triton_rotated_iou_aligned(x1, x2)
            assert out.dtype == dtype
            row[f"vs_reference_{dtype}"] = (
                (out.double() - rotated_iou_aligned.reference(x1, x2).double()).abs().max().item()
            )
            if dtype == torch.float64 and expected is not None:
                row["vs_hand_float64"] = (out - expected).abs().max().item()
            if dtype == torch.float64:  # disjoint pairs (the reference's separating-axis test): exactly 0
                row["on_disjoint_float64"] = float(out[_separated(x1, x2)].abs().sum())
        try:
            import shapely
        except ImportError:
            pass
        else:
            pa, pb = (shapely.polygons(obb_to_poly(b.float().double()).numpy()) for b in (b1, b2))
            inter = shapely.area(shapely.intersection(pa, pb))
            union = shapely.area(pa) + shapely.area(pb) - inter
            ref_shapely = torch.from_numpy(inter / (union + (union == 0))).clamp(0, 1)
            row["vs_shapely"] = (fast - ref_shapely).abs().max().item()
        report[name] = row
    report["empty"] = list(triton_rotated_iou_aligned(torch.zeros(0, 5), torch.zeros(0, 5)).shape)
    return report


@pytest.mark.skipif(not HAS_TRITON, reason=NO_TRITON)
def test_kernel_under_triton_interpreter_matches_reference_hand_values_and_shapely():
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report.pop("empty") == [0]
    assert report["random"]["overlapping"] > 1000 and report["tiny objects at 800 px"]["overlapping"] > 250
    for name, row in report.items():
        assert row["vs_reference"] < 1e-4, (name, row)
        assert row["vs_reference_torch.float64"] < 1e-12, (name, row)
        assert row["vs_reference_torch.float16"] < 1e-3, (name, row)  # one float16 rounding of the result
        assert row["vs_reference_torch.bfloat16"] < 8e-3, (name, row)  # one bfloat16 rounding
        assert row.get("vs_hand", 0) < 1e-4, (name, row)
        assert row.get("vs_hand_float64", 0) < 1e-12, (name, row)
        assert row["on_disjoint_float64"] == 0, (name, row)
        assert row.get("vs_shapely", 0) < 1e-4, (name, row)
    assert "vs_shapely" in report["random"] or importlib.util.find_spec("shapely") is None


def test_fast_path_serves_only_float_inputs_without_autograd():
    b = torch.rand(4, 5)
    assert fast_path_available(b, b) == HAS_TRITON
    assert not fast_path_available(b.double(), b)
    assert not fast_path_available(b.long(), b.long())
    grad = b.clone().requires_grad_()
    assert not fast_path_available(grad, b)
    with torch.no_grad():
        assert fast_path_available(grad, b) == HAS_TRITON
    assert rotated_iou_aligned.select(b, b) is rotated_iou_aligned.reference  # CPU tensors: reference


@pytest.mark.gpu
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.float64, 1e-9), (torch.bfloat16, 8e-3)])
def test_dispatch_picks_triton_on_cuda_and_matches_reference(dtype, tol):
    for name, (b1, b2, _) in _cases(torch.Generator().manual_seed(1)).items():
        x1, x2 = b1.to("cuda", dtype), b2.to("cuda", dtype)
        assert rotated_iou_aligned.select(x1, x2) is not rotated_iou_aligned.reference
        fast = rotated_iou_aligned(x1, x2)
        torch.testing.assert_close(
            fast.double(), rotated_iou_aligned.reference(x1, x2).double(), rtol=0, atol=tol, msg=name
        )
    grad = x1.float().requires_grad_()
    assert rotated_iou_aligned.select(grad, x2.float()) is rotated_iou_aligned.reference  # the loss keeps autograd


@pytest.mark.gpu
def test_pairwise_iou_and_nms_on_cuda_agree_with_the_reference_path(monkeypatch):
    g = torch.Generator().manual_seed(2)
    base, jittered, _ = _cases(g)["tiny objects at 800 px"]
    boxes = torch.cat([base, jittered]).float().cuda()
    scores = torch.rand(len(boxes), generator=g).cuda()
    fast_iou, fast_keep = rotated_iou(boxes[:200], boxes), rotated_nms(boxes, scores, 0.4)
    monkeypatch.setenv("LABCORE_DISABLE_FAST_KERNELS", "1")
    torch.testing.assert_close(fast_iou, rotated_iou(boxes[:200], boxes), rtol=0, atol=1e-4)
    assert torch.equal(fast_keep.sort().values, rotated_nms(boxes, scores, 0.4).sort().values)


if __name__ == "__main__":  # the interpreter run of the test above
    print(json.dumps(_interpreter_report()))
