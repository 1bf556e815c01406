"""CUDA fast path of :func:`labcore.rotated.rotated_iou_aligned`: one fused Triton kernel, forward only.

Each lane takes one box pair and evaluates the reference's exact formula (see
:mod:`labcore.rotated.iou`): in the frame of the second box, the intersection area is the sum
over the first box's 4 edges of the integral of ``clamp(y, -h/2, h/2) + h/2 dx`` over the edge's
part inside ``|x| ≤ w/2`` (Green's theorem), each integral exact by the midpoint rule on the
≤ 3 pieces between the crossings of ``y = ±h/2``; no vertex list, no sorting.

Precision: float32 arithmetic for float16/bfloat16/float32 boxes, float64 for float64 boxes;
the result has the input dtype, as the reference's. No autograd: the dispatch uses this path
only when no gradient is needed, so the rotated IoU loss keeps the differentiable reference.
"""

import torch

from labcore.rotated.iou import _check_pair, rotated_iou_aligned

_BLOCK = 128

# No ``from __future__ import annotations`` here: triton 3.0's interpreter (TRITON_INTERPRET=1) knows a
# constexpr parameter only by the object ``tl.constexpr``, not by the string postponed annotations leave.
try:  # Triton ships with CUDA builds of torch; without it the reference runs.
    import triton
    import triton.language as tl
except ImportError as e:  # pragma: no cover - not installed, or (triton 3.0.0) setuptools missing
    triton, _triton_error = None, e


def fast_path_available(boxes1: torch.Tensor, boxes2: torch.Tensor) -> bool:
    """The Triton kernel serves these inputs: Triton importable, one float dtype, no gradient needed."""
    needs_grad = torch.is_grad_enabled() and (boxes1.requires_grad or boxes2.requires_grad)
    return triton is not None and not needs_grad and boxes1.dtype == boxes2.dtype and boxes1.is_floating_point()


def triton_rotated_iou_aligned(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """IoU of ``boxes1[i]`` with ``boxes2[i]`` (``(N, 5)`` each) by the Triton kernel; no autograd."""
    if triton is None:
        raise ImportError(
            f"the rotated IoU fast path needs triton, which did not import ({_triton_error}); install it "
            "(pip install triton; triton 3.0.0 also needs setuptools) or use the reference, which runs without it"
        )
    _check_pair(boxes1, boxes2)
    out = torch.empty(boxes1.shape[0], dtype=boxes1.dtype, device=boxes1.device)
    if out.numel():
        grid = (triton.cdiv(out.numel(), _BLOCK),)
        _iou_kernel[grid](
            boxes1.contiguous(),
            boxes2.contiguous(),
            out,
            out.numel(),
            COMPUTE=tl.float64 if boxes1.dtype == torch.float64 else tl.float32,
            BLOCK=_BLOCK,
        )
    return out


if triton is not None:

    @triton.jit
    def _height(t, y0, dy, hh):
        return tl.minimum(tl.maximum(y0 + t * dy, -hh), hh) + hh

    @triton.jit
    def _edge_term(x0, y0, x1, y1, hw, hh):
        """Signed ``∫ clamp(y, -hh, hh) + hh dx`` along one edge over ``|x| ≤ hw`` (as the reference's)."""
        dx = x1 - x0
        dy = y1 - y0
        # t window inside |x| ≤ hw; all or nothing for edges parallel to y
        vertical = tl.abs(dx) <= 1e-12 * tl.abs(dy)
        dx_safe = tl.where(vertical, 1.0, dx)
        ta = (-hw - x0) / dx_safe
        tb = (hw - x0) / dx_safe
        inside = tl.abs(x0 + 0.5 * dx) <= hw
        lo = tl.where(vertical, tl.where(inside, 0.0, 1.0), tl.minimum(tl.maximum(tl.minimum(ta, tb), 0.0), 1.0))
        hi = tl.where(vertical, 1.0, tl.minimum(tl.maximum(tl.maximum(ta, tb), 0.0), 1.0))
        hi = tl.maximum(hi, lo)
        # crossings of y = ±hh inside the window; none for edges parallel to x
        flat = tl.abs(dy) <= 1e-12 * tl.abs(dx)
        dy_safe = tl.where(flat, 1.0, dy)
        s1 = (-hh - y0) / dy_safe
        s2 = (hh - y0) / dy_safe
        first = tl.where(flat, lo, tl.minimum(tl.maximum(tl.minimum(s1, s2), lo), hi))
        second = tl.where(flat, lo, tl.minimum(tl.maximum(tl.maximum(s1, s2), lo), hi))
        pieces = (first - lo) * _height(0.5 * (lo + first), y0, dy, hh)
        pieces += (second - first) * _height(0.5 * (first + second), y0, dy, hh)
        pieces += (hi - second) * _height(0.5 * (second + hi), y0, dy, hh)
        return dx * pieces

    @triton.jit
    def _iou_kernel(b1_ptr, b2_ptr, out_ptr, n, COMPUTE: tl.constexpr, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        row = offs.to(tl.int64) * 5
        x1 = tl.load(b1_ptr + row, mask=mask, other=0.0).to(COMPUTE)
        y1 = tl.load(b1_ptr + row + 1, mask=mask, other=0.0).to(COMPUTE)
        w1 = tl.load(b1_ptr + row + 2, mask=mask, other=0.0).to(COMPUTE)
        h1 = tl.load(b1_ptr + row + 3, mask=mask, other=0.0).to(COMPUTE)
        a1 = tl.load(b1_ptr + row + 4, mask=mask, other=0.0).to(COMPUTE)
        x2 = tl.load(b2_ptr + row, mask=mask, other=0.0).to(COMPUTE)
        y2 = tl.load(b2_ptr + row + 1, mask=mask, other=0.0).to(COMPUTE)
        w2 = tl.load(b2_ptr + row + 2, mask=mask, other=0.0).to(COMPUTE)
        h2 = tl.load(b2_ptr + row + 3, mask=mask, other=0.0).to(COMPUTE)
        a2 = tl.load(b2_ptr + row + 4, mask=mask, other=0.0).to(COMPUTE)
        # box 1 in the frame of box 2: centre (cx, cy), width axis (c, s)
        c2 = tl.cos(a2)
        s2 = tl.sin(a2)
        cx = (x1 - x2) * c2 + (y1 - y2) * s2
        cy = (y1 - y2) * c2 - (x1 - x2) * s2
        c = tl.cos(a1 - a2)
        s = tl.sin(a1 - a2)
        ux = 0.5 * w1 * c
        uy = 0.5 * w1 * s
        vx = -0.5 * h1 * s
        vy = 0.5 * h1 * c
        # corners in obb_to_poly's order: (+u+v), (−u+v), (−u−v), (+u−v)
        px0 = cx + ux + vx
        py0 = cy + uy + vy
        px1 = cx - ux + vx
        py1 = cy - uy + vy
        px2 = cx - ux - vx
        py2 = cy - uy - vy
        px3 = cx + ux - vx
        py3 = cy + uy - vy
        hw = 0.5 * w2
        hh = 0.5 * h2
        inter = _edge_term(px0, py0, px1, py1, hw, hh)
        inter += _edge_term(px1, py1, px2, py2, hw, hh)
        inter += _edge_term(px2, py2, px3, py3, hw, hh)
        inter += _edge_term(px3, py3, px0, py0, hw, hh)
        inter = tl.abs(inter)
        # separating-axis test, as the reference's _separated: disjoint boxes get exactly 0
        ac = tl.abs(c)
        as_ = tl.abs(s)
        sep = tl.abs(cx) >= hw + 0.5 * w1 * ac + 0.5 * h1 * as_
        sep = sep | (tl.abs(cy) >= hh + 0.5 * w1 * as_ + 0.5 * h1 * ac)
        sep = sep | (tl.abs(cx * c + cy * s) >= 0.5 * w1 + hw * ac + hh * as_)
        sep = sep | (tl.abs(cy * c - cx * s) >= 0.5 * h1 + hw * as_ + hh * ac)
        inter = tl.where(sep, 0.0, inter)
        union = w1 * h1 + w2 * h2 - inter
        ok = union > 0.0
        iou = tl.where(ok, inter / tl.where(ok, union, 1.0), 0.0)
        iou = tl.minimum(tl.maximum(iou, 0.0), 1.0)
        tl.store(out_ptr + offs, iou.to(out_ptr.dtype.element_ty), mask=mask)

    rotated_iou_aligned.register("cuda", triton_rotated_iou_aligned, fast_path_available)
