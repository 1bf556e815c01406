"""Rotated IoU against shapely's exact polygon clipping, and the IoU loss's gradients."""

import math

import pytest
import torch

from labcore.rotated import obb_to_poly, rotated_iou, rotated_iou_aligned, rotated_iou_loss

shapely = pytest.importorskip("shapely")
from shapely.geometry import Polygon  # noqa: E402


def _shapely_iou(b1: torch.Tensor, b2: torch.Tensor) -> list[float]:
    out = []
    for p, q in zip(obb_to_poly(b1.double()).tolist(), obb_to_poly(b2.double()).tolist()):
        pp, qq = Polygon(p), Polygon(q)
        union = pp.area + qq.area - pp.intersection(qq).area
        out.append(pp.intersection(qq).area / union if union > 0 else 0.0)
    return out


def _random_pairs(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    def boxes():
        xy = torch.rand(n, 2, generator=generator) * 12
        wh = torch.rand(n, 2, generator=generator) * 10
        a = (torch.rand(n, 1, generator=generator) - 0.5) * 2 * math.pi
        return torch.cat([xy, wh, a], 1)

    b1, b2 = boxes(), boxes()
    k = n // 8
    b2[:k] = b1[:k]  # identical
    b2[k : 2 * k] = b1[k : 2 * k] * torch.tensor([1, 1, 0.4, 0.5, 1])  # nested (same centre and angle)
    b1[2 * k : 3 * k, 2] = 0  # zero width
    b2[3 * k : 4 * k, 3] = 0  # zero height
    b2[4 * k : 5 * k, 4] = b1[4 * k : 5 * k, 4] + math.pi / 2  # perpendicular, same centre
    return b1, b2


def test_iou_matches_shapely_on_random_and_degenerate_pairs():
    g = torch.Generator().manual_seed(0)
    b1, b2 = _random_pairs(3000, g)
    ours = rotated_iou_aligned(b1, b2)
    ref = torch.tensor(_shapely_iou(b1, b2), dtype=ours.dtype)
    assert (ours - ref).abs().max() < 1e-4
    assert torch.allclose(ours[:375], torch.ones(375))  # identical boxes
    assert (ref > 0).sum() > 1000  # the test exercises real overlaps


def test_touching_and_nested_axis_aligned_boxes():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0, 0.0]] * 3)
    b = torch.tensor([[2.0, 0.0, 2.0, 2.0, 0.0],  # shares an edge
                      [2.0, 2.0, 2.0, 2.0, 0.0],  # shares a corner
                      [0.5, 0.0, 1.0, 1.0, 0.0]])  # nested: area 1 inside area 4
    iou = rotated_iou_aligned(a, b)
    assert torch.allclose(iou, torch.tensor([0.0, 0.0, 0.25]), atol=1e-6)


def test_disjoint_boxes_have_iou_exactly_zero():
    # hulls that meet while the boxes do not: the edge sum alone cancelled only to ~1e-17
    g = torch.Generator().manual_seed(0)
    b1, b2 = _random_pairs(4000, g)
    b1, b2 = b1.double()[5 * 500 :], b2.double()[5 * 500 :]
    b1[:, 2:4] += 0.5
    b2[:, 2:4] += 0.5
    disjoint = torch.tensor([Polygon(p).distance(Polygon(q)) > 1e-9 for p, q in
                             zip(obb_to_poly(b1).tolist(), obb_to_poly(b2).tolist())])
    assert disjoint.sum() > 200
    for dtype in (torch.float64, torch.float32):
        assert rotated_iou_aligned(b1[disjoint].to(dtype), b2[disjoint].to(dtype)).abs().max() == 0


def test_pairwise_equals_aligned_and_is_symmetric():
    g = torch.Generator().manual_seed(1)
    b1, _ = _random_pairs(40, g)
    b2, _ = _random_pairs(30, g)
    m = rotated_iou(b1, b2)
    i, j = torch.meshgrid(torch.arange(40), torch.arange(30), indexing="ij")
    assert torch.allclose(m, rotated_iou_aligned(b1[i.flatten()], b2[j.flatten()]).reshape(40, 30), atol=1e-6)
    assert torch.allclose(m, rotated_iou(b2, b1).T, atol=1e-6)


def test_iou_is_invariant_to_rigid_motion_and_angle_period():
    g = torch.Generator().manual_seed(2)
    b1, b2 = _random_pairs(200, g)
    theta, shift = 0.7, torch.tensor([5.0, -3.0])
    c, s = math.cos(theta), math.sin(theta)
    rot = torch.tensor([[c, -s], [s, c]])

    def move(b):
        return torch.cat([b[:, :2] @ rot.T + shift, b[:, 2:4], b[:, 4:] + theta], 1)

    assert torch.allclose(rotated_iou_aligned(b1, b2), rotated_iou_aligned(move(b1), move(b2)), atol=1e-5)
    flipped = b2.clone()
    flipped[:, 4] += math.pi
    assert torch.allclose(rotated_iou_aligned(b1, b2), rotated_iou_aligned(b1, flipped), atol=1e-5)


def test_iou_loss_gradients_match_finite_differences():
    g = torch.Generator().manual_seed(3)
    target = torch.tensor([[5.0, 5.0, 6.0, 3.0, 0.3], [0.0, 0.0, 4.0, 4.0, 0.0], [1.0, 2.0, 5.0, 2.0, -1.0]],
                          dtype=torch.float64)
    pred = target + torch.randn(3, 5, generator=g, dtype=torch.float64) * torch.tensor([0.8, 0.8, 0.5, 0.5, 0.2],
                                                                                      dtype=torch.float64)
    pred.requires_grad_(True)
    for mode in ("log", "linear"):
        assert torch.autograd.gradcheck(lambda p, m=mode: rotated_iou_loss(p, target, mode=m).sum(), (pred,),
                                        eps=1e-6, atol=1e-5)


def test_iou_gradients_with_edges_parallel_to_the_other_box():
    # equal angles, a right angle, a sliver: edges parallel to an axis of the other box
    target = torch.tensor([[1.0, 0.5, 2, 2, 0], [3, 1, 4, 2, 0.3], [0, 0, 4, 2, 0], [1, 1, 3, 1, 0.3]],
                          dtype=torch.float64)
    pred = torch.tensor([[0.0, 0, 2, 2, 0], [2, 1.5, 2, 3, 0.3], [0.5, 0.2, 2, 4, math.pi / 2], [1, 1, 1e-3, 1, 0.3]],
                        dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p: rotated_iou_aligned(p, target).sum(), (pred,), eps=1e-7, atol=1e-5)
    assert torch.autograd.gradcheck(lambda t: rotated_iou_aligned(pred.detach(), t).sum(),
                                    (target.clone().requires_grad_(),), eps=1e-7, atol=1e-5)


def test_iou_loss_decreases_under_gradient_descent():
    target = torch.tensor([[10.0, 10.0, 8.0, 3.0, 0.5]])
    pred = torch.tensor([[11.5, 9.0, 5.0, 4.0, 0.1]], requires_grad=True)
    opt = torch.optim.Adam([pred], lr=0.05)
    first = None
    for _ in range(200):
        opt.zero_grad()
        loss = rotated_iou_loss(pred, target).sum()
        first = first if first is not None else loss.item()
        loss.backward()
        opt.step()
    assert rotated_iou_aligned(pred.detach(), target).item() > 0.95 > math.exp(-first)


def test_bad_boxes_raise_clear_errors():
    good = torch.tensor([[0.0, 0.0, 1.0, 1.0, 0.0]])
    with pytest.raises(ValueError, match="NaN"):
        rotated_iou(good, torch.tensor([[0.0, 0.0, 1.0, 1.0, float("nan")]]))
    with pytest.raises(ValueError, match="negative"):
        rotated_iou(good, torch.tensor([[0.0, 0.0, -1.0, 1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"\(\.\.\., 5\)"):
        rotated_iou(good, torch.zeros(2, 4))
    assert rotated_iou(good, torch.zeros(0, 5)).shape == (1, 0)
