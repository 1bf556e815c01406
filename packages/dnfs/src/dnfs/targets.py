"""Unnormalised target distributions ρ over {0..S-1}^D.

A target gives ``log_prob(x)`` (unnormalised, shape ``(B,)``) and ``neighbour_log_ratio(x)`` of shape
``(B, D, S)``: ``log ρ(swap(x, i, τ)) − log ρ(x)`` for every 1-Hamming neighbour (zero at ``τ = x_i``). The
default ratio evaluates ``log_prob`` on all ``D·(S−1)`` neighbours; the lattice models override it in closed form.
Any callable over integer tensors plugs in through :class:`CallableTarget`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def validate_states(x: torch.Tensor, num_states: int, dim: int | None = None) -> torch.Tensor:
    """Check that ``x`` is an integer ``(B, D)`` tensor with entries in ``[0, num_states)``; return it."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"states must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
        raise TypeError(f"states must be an integer tensor (torch.long), got {x.dtype}; use x.long()")
    if x.ndim != 2:
        raise ValueError(f"states must have shape (batch, dim), got {tuple(x.shape)}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"states have {x.shape[1]} coordinates but the target/model expects {dim}")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) >= num_states):
        raise ValueError(f"state values must lie in [0, {num_states - 1}], got range [{int(x.min())}, {int(x.max())}]")
    return x


def validate_times(t: torch.Tensor, batch: int) -> torch.Tensor:
    """Check that ``t`` is a finite float ``(batch,)`` tensor of path times; return it."""
    if not torch.is_tensor(t) or not t.is_floating_point() or t.shape != (batch,):
        shape = tuple(t.shape) if torch.is_tensor(t) else type(t).__name__
        raise ValueError(f"t must be a float tensor of shape ({batch},), got {shape}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError("t contains NaN or inf; path times lie in [0, 1]")
    return t


def check_finite(values: torch.Tensor, what: str) -> torch.Tensor:
    """Raise a clear error when a target returns NaN or ``+inf`` (``-inf`` is allowed: a forbidden state)."""
    bad = torch.isnan(values) | torch.isposinf(values)
    if bad.any():
        raise FloatingPointError(
            f"{what} returned NaN or +inf for {int(bad.sum())} entries; "
            "the unnormalised log-density must be a number (use -inf for forbidden states)"
        )
    return values


def all_neighbours(x: torch.Tensor, num_states: int) -> torch.Tensor:
    """Every ``swap(x, i, τ)`` as a ``(B, D, S, D)`` tensor (including ``τ = x_i``, i.e. ``x`` itself)."""
    b, d = x.shape
    y = x[:, None, None, :].expand(b, d, num_states, d).clone()
    idx = torch.arange(d, device=x.device)
    y[:, idx, :, idx] = torch.arange(num_states, device=x.device).expand(b, d, num_states).permute(1, 0, 2)
    return y


class DiscreteTarget(nn.Module):
    """Base class: an unnormalised log-density ``log ρ`` on ``{0..S-1}^D``."""

    def __init__(self, dim: int, num_states: int):
        super().__init__()
        if dim < 1 or num_states < 2:
            raise ValueError(f"need dim >= 1 and num_states >= 2, got dim={dim}, num_states={num_states}")
        self.dim, self.num_states = int(dim), int(num_states)

    def unnormalised_log_prob(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log ρ(x)`` up to a constant, shape ``(B,)``; validates ``x`` and the result."""
        validate_states(x, self.num_states, self.dim)
        return check_finite(self.unnormalised_log_prob(x), type(self).__name__ + ".log_prob")

    def neighbour_log_ratio(self, x: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
        """``log ρ(swap(x,i,τ)) − log ρ(x)`` as ``(B, D, S)`` by brute force over all neighbours."""
        validate_states(x, self.num_states, self.dim)
        b, d, s = x.shape[0], self.dim, self.num_states
        ys = all_neighbours(x, s).reshape(-1, d)
        vals = torch.cat([self.unnormalised_log_prob(c) for c in ys.split(chunk)]).reshape(b, d, s)
        check_finite(vals, type(self).__name__ + ".log_prob")
        own = vals.gather(-1, x[..., None])
        return (vals - own).scatter(-1, x[..., None], 0.0)


class CallableTarget(DiscreteTarget):
    """Wrap any callable ``f(x: LongTensor (B, D)) -> (B,)`` unnormalised log-density."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], dim: int, num_states: int):
        super().__init__(dim, num_states)
        self.fn = fn

    def unnormalised_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fn(x)
        if not isinstance(out, torch.Tensor) or out.shape != (x.shape[0],):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"the target callable must return a tensor of shape ({x.shape[0]},), got {shape}")
        return out.float() if not out.dtype.is_floating_point else out


def lattice_adjacency(side: int, lattice_dim: int = 2) -> torch.Tensor:
    """0/1 adjacency of the periodic (toroidal) ``side^lattice_dim`` lattice, row-major site order."""
    if side < 3:
        raise ValueError(f"periodic lattices need side >= 3 (side {side} would double-count neighbours)")
    n = side**lattice_dim
    coords = torch.stack(torch.meshgrid(*[torch.arange(side)] * lattice_dim, indexing="ij"), -1).reshape(n, -1)
    strides = side ** torch.arange(lattice_dim - 1, -1, -1)
    adj = torch.zeros(n, n)
    for axis in range(lattice_dim):
        shifted = coords.clone()
        shifted[:, axis] = (shifted[:, axis] + 1) % side
        j = (shifted * strides).sum(-1)
        adj[torch.arange(n), j] = 1.0
        adj[j, torch.arange(n)] = 1.0
    return adj


class LatticeIsing(DiscreteTarget):
    """Ising model ``log ρ(x) = sᵀ J s + bᵀ s`` with ``s = 2x − 1``, ``J = σ·A`` (periodic lattice).

    As in the authors' code, ``sᵀJs`` counts each edge twice, so the physical inverse temperature is
    ``β = 2σ`` (σ = 0.22305 is the critical point). ``sigma``/``bias`` can be learnable (EBM training).
    """

    def __init__(
        self,
        side: int,
        sigma: float = 0.1,
        bias: float = 0.0,
        lattice_dim: int = 2,
        learn_coupling: bool = False,
        learn_bias: bool = False,
        adjacency: torch.Tensor | None = None,
        dtype: torch.dtype = torch.float32,
    ):
        adj = (lattice_adjacency(side, lattice_dim) if adjacency is None else adjacency).to(dtype)
        super().__init__(adj.shape[0], 2)
        self.side = side
        self.register_buffer("adjacency", adj)
        self.sigma = float(sigma)
        self.coupling = nn.Parameter(adj * float(sigma), requires_grad=learn_coupling)
        self.bias = nn.Parameter(torch.full((self.dim,), float(bias), dtype=dtype), requires_grad=learn_bias)

    @property
    def beta(self) -> float:
        """Physical inverse temperature ``β = 2σ`` of ``exp(β Σ_edges s_i s_j)``."""
        return 2.0 * self.sigma

    def unnormalised_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        s = 2.0 * x.to(self.coupling.dtype) - 1.0
        return ((s @ self.coupling) * s).sum(-1) + s @ self.bias

    def neighbour_log_ratio(self, x: torch.Tensor, chunk: int = 0) -> torch.Tensor:
        validate_states(x, 2, self.dim)
        s = 2.0 * x.to(self.coupling.dtype) - 1.0
        j = self.coupling
        field = s @ (j + j.T) - 2.0 * torch.diagonal(j) * s + self.bias  # terms linear in s_i
        flip = -2.0 * s * field  # change of log ρ when s_i -> -s_i
        out = torch.zeros(*x.shape, 2, dtype=s.dtype, device=x.device)
        return out.scatter(-1, (1 - x)[..., None], flip[..., None])


class LatticePotts(DiscreteTarget):
    """q-state Potts model ``log ρ(x) = σ Σ_{i,j} A_ij [x_i = x_j] + Σ_i h[x_i]`` on a periodic lattice."""

    def __init__(
        self,
        side: int,
        num_states: int = 3,
        sigma: float = 0.1,
        field: torch.Tensor | None = None,
        lattice_dim: int = 2,
    ):
        adj = lattice_adjacency(side, lattice_dim)
        super().__init__(adj.shape[0], num_states)
        self.side, self.sigma = side, float(sigma)
        self.register_buffer("adjacency", adj)
        h = torch.zeros(num_states) if field is None else torch.as_tensor(field, dtype=torch.float32)
        if h.shape != (num_states,):
            raise ValueError(f"field must have shape ({num_states},), got {tuple(h.shape)}")
        self.register_buffer("field", h)

    def _counts(self, x: torch.Tensor) -> torch.Tensor:
        onehot = nn.functional.one_hot(x, self.num_states).to(self.adjacency.dtype)
        return torch.einsum("ij,bjs->bis", self.adjacency, onehot)  # neighbours of i in state s

    def unnormalised_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        same = self._counts(x).gather(-1, x[..., None])[..., 0]
        return self.sigma * same.sum(-1) + self.field[x].sum(-1)

    def neighbour_log_ratio(self, x: torch.Tensor, chunk: int = 0) -> torch.Tensor:
        validate_states(x, self.num_states, self.dim)
        counts = self._counts(x)  # edges counted twice in Σ_{i,j}, hence the factor 2
        score = 2.0 * self.sigma * counts + self.field
        return score - score.gather(-1, x[..., None])
