"""Box conversions (angle conventions, polygons) and Gaussian divergences against numerical integrals."""

import math

import pytest
import torch

from labcore.rotated import (
    gaussian_bhattacharyya,
    gaussian_kld,
    hbb_to_obb,
    norm_angle,
    obb_to_gaussian,
    obb_to_hbb,
    obb_to_poly,
    poly_to_obb,
    regularize_boxes,
    rotated_iou_aligned,
)


def _random_boxes(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.cat([torch.rand(n, 2, generator=g) * 50, 1 + torch.rand(n, 2, generator=g) * 9,
                      (torch.rand(n, 1, generator=g) - 0.5) * 4 * math.pi], 1).double()


@pytest.mark.parametrize("version,lo,hi", [("le90", -math.pi / 2, math.pi / 2),
                                           ("le135", -math.pi / 4, 3 * math.pi / 4),
                                           ("oc", 0.0, math.pi / 2 + 1e-12)])
def test_regularize_keeps_the_rectangle_and_lands_in_range(version, lo, hi):
    b = _random_boxes(500, 0)
    r = regularize_boxes(b, version)
    assert (r[:, 4] >= lo - 1e-12).all() and (r[:, 4] < hi).all()
    if version != "oc":
        assert (r[:, 2] >= r[:, 3]).all()
    else:
        assert (r[:, 4] > 0).all()
    assert torch.allclose(rotated_iou_aligned(b, r), torch.ones(500, dtype=b.dtype), atol=1e-9)
    assert torch.allclose(regularize_boxes(r, version), r, atol=1e-9)  # idempotent


def test_poly_round_trip():
    b = regularize_boxes(_random_boxes(300, 1), "le90")
    poly = obb_to_poly(b)
    assert torch.allclose(poly_to_obb(poly, "le90"), b, atol=1e-9)
    assert torch.allclose(poly_to_obb(poly.reshape(300, 8), "le90"), b, atol=1e-9)
    # a corner list starting elsewhere describes the same rectangle
    assert torch.allclose(poly_to_obb(poly.roll(1, dims=1), "le90"), b, atol=1e-9)


def test_norm_angle_is_modulo_pi():
    a = torch.linspace(-10, 10, 101, dtype=torch.float64)
    for v in ("le90", "le135", "oc"):
        d = (norm_angle(a, v) - a) / math.pi
        assert torch.allclose(d, d.round(), atol=1e-9)


def _grid_density(boxes, xs, ys):
    mu, sigma = obb_to_gaussian(boxes)
    pts = torch.stack(torch.meshgrid(xs, ys, indexing="ij"), -1).reshape(-1, 2)
    dist = torch.distributions.MultivariateNormal(mu, covariance_matrix=sigma)
    return dist.log_prob(pts[:, None]).T  # (n_boxes, n_points)


def test_kld_and_bhattacharyya_match_numerical_integration():
    p = torch.tensor([[0.0, 0.0, 4.0, 2.0, 0.4], [1.0, -0.5, 3.0, 3.0, 0.0]], dtype=torch.float64)
    q = torch.tensor([[0.7, 0.3, 3.0, 2.5, -0.3], [0.0, 0.0, 5.0, 2.0, 1.0]], dtype=torch.float64)
    xs = torch.linspace(-9, 9, 601, dtype=torch.float64)
    cell = (xs[1] - xs[0]) ** 2
    lp, lq = _grid_density(p, xs, xs), _grid_density(q, xs, xs)
    kld_num = (lp.exp() * (lp - lq)).sum(1) * cell
    assert torch.allclose(gaussian_kld(p, q), kld_num, rtol=1e-3)
    for alpha in (0.5, 0.3):
        bd_num = -torch.log((((1 - alpha) * lp + alpha * lq).exp()).sum(1) * cell)
        assert torch.allclose(gaussian_bhattacharyya(p, q, alpha), bd_num, rtol=1e-3, atol=1e-6)


def test_divergences_vanish_on_identical_boxes_and_broadcast_pairwise():
    b = _random_boxes(20, 3)
    assert gaussian_kld(b, b).abs().max() < 1e-9
    assert gaussian_bhattacharyya(b, b).abs().max() < 1e-9
    pair = gaussian_bhattacharyya(b[:, None], b[None])
    assert pair.shape == (20, 20) and torch.allclose(pair, pair.T, atol=1e-9)  # symmetric at α = ½
    assert (pair >= -1e-9).all()


def test_hull_is_the_corners_extent_and_round_trips_axis_aligned_boxes():
    boxes = _random_boxes(500, seed=3)
    corners = obb_to_poly(boxes)
    hull = obb_to_hbb(boxes)
    torch.testing.assert_close(hull, torch.cat([corners.amin(1), corners.amax(1)], 1), atol=1e-9, rtol=0)
    upright = torch.tensor([[10.0, 20.0, 8.0, 2.0, 0.0], [0.0, 0.0, 3.0, 5.0, 0.0]])
    torch.testing.assert_close(hbb_to_obb(obb_to_hbb(upright)), upright)
    turned = torch.tensor([[10.0, 20.0, 8.0, 2.0, math.pi / 2]])  # hull of a box turned by 90°: w and h swap
    torch.testing.assert_close(obb_to_hbb(turned), torch.tensor([[9.0, 16.0, 11.0, 24.0]]))
