"""Elementwise affine flow step of autoregressive flows (TarFlow eq. 3 and its inverse).

``affine_forward``: ``z = (x − b)·exp(−a)``; ``affine_inverse``: ``x = z·exp(a) + b``.
The CUDA fast path is one fused Triton kernel (inference only: it has no autograd).
"""

import torch

from labcore.kernels.dispatch import kernel


def _wide(t: torch.Tensor) -> torch.dtype:
    return torch.promote_types(t.dtype, torch.float32)


def _check(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    if x.shape != a.shape or x.shape != b.shape:
        raise ValueError(f"x, a, b must have one shape, got {tuple(x.shape)}, {tuple(a.shape)}, {tuple(b.shape)}")


@kernel
def affine_forward(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(x − b)·exp(−a)``, computed in float32 (float64 for float64 inputs) and cast back to ``x.dtype``."""
    _check(x, a, b)
    w = _wide(x)
    return ((x.to(w) - b.to(w)) * torch.exp(-a.to(w))).to(x.dtype)


@kernel
def affine_inverse(z: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``z·exp(a) + b``, computed in float32 (float64 for float64 inputs) and cast back to ``z.dtype``."""
    _check(z, a, b)
    w = _wide(z)
    return (z.to(w) * torch.exp(a.to(w)) + b.to(w)).to(z.dtype)


def _no_grad_contiguous(*tensors: torch.Tensor) -> bool:
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    return not needs_grad and all(t.is_contiguous() for t in tensors) and len({t.shape for t in tensors}) == 1


# No ``from __future__ import annotations`` here: see labcore.rotated.triton_iou (triton 3.0's interpreter).
try:  # Triton ships with CUDA builds of torch; without it the reference runs.
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the install
    triton = None

if triton is not None:

    @triton.jit
    def _affine_kernel(x_ptr, a_ptr, b_ptr, out_ptr, n, INVERSE: tl.constexpr, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        x = tl.load(x_ptr + offs, mask=mask).to(tl.float32)
        a = tl.load(a_ptr + offs, mask=mask).to(tl.float32)
        b = tl.load(b_ptr + offs, mask=mask).to(tl.float32)
        y = x * tl.exp(a) + b if INVERSE else (x - b) * tl.exp(-a)
        tl.store(out_ptr + offs, y.to(out_ptr.dtype.element_ty), mask=mask)

    def _launch(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, inverse: bool) -> torch.Tensor:
        out = torch.empty_like(x)
        n = x.numel()
        block = 1024
        _affine_kernel[(triton.cdiv(n, block),)](x, a, b, out, n, INVERSE=inverse, BLOCK=block)
        return out

    affine_forward.register("cuda", lambda x, a, b: _launch(x, a, b, False), _no_grad_contiguous)
    affine_inverse.register("cuda", lambda z, a, b: _launch(z, a, b, True), _no_grad_contiguous)
