"""GPU kernels with pure-PyTorch fallbacks, behind one dispatch.

A :class:`Kernel` holds a reference implementation (pure PyTorch, runs anywhere) and fast
implementations registered per device type with an availability check. Calling the kernel
picks the first fast path whose check passes for the inputs, else the reference.
``LABCORE_DISABLE_FAST_KERNELS=1`` forces the reference everywhere (for debugging and for the
agreement tests).
"""

from labcore.kernels.affine import affine_forward, affine_inverse
from labcore.kernels.dispatch import Kernel, fast_kernels_enabled, kernel

__all__ = ["Kernel", "kernel", "fast_kernels_enabled", "affine_forward", "affine_inverse"]
