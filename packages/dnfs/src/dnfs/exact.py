"""Exact references: enumeration on tiny spaces, exact Kolmogorov rates, Ferdinand–Fisher Ising thermodynamics."""

from __future__ import annotations

import math

import torch
from torch import nn

from dnfs.kolmogorov import GeometricPath
from dnfs.targets import DiscreteTarget, all_neighbours, validate_states


def enumerate_states(dim: int, num_states: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """All ``S^D`` states as a ``(S^D, D)`` long tensor in lexicographic order (row r = base-S digits of r)."""
    if num_states**dim > 2**26:
        raise ValueError(f"{num_states}^{dim} states are too many to enumerate")
    r = torch.arange(num_states**dim, device=device)
    powers = num_states ** torch.arange(dim - 1, -1, -1, device=device)
    return (r[:, None] // powers) % num_states


def state_index(x: torch.Tensor, num_states: int) -> torch.Tensor:
    """Inverse of :func:`enumerate_states`: the row index of each state."""
    powers = num_states ** torch.arange(x.shape[1] - 1, -1, -1, device=x.device)
    return (x * powers).sum(-1)


@torch.no_grad()
def exact_log_prob_table(target: DiscreteTarget, chunk: int = 1 << 16) -> torch.Tensor:
    """``log ρ`` of every state (float64), in :func:`enumerate_states` order."""
    xs = enumerate_states(target.dim, target.num_states)
    return torch.cat([target.log_prob(c).double() for c in xs.split(chunk)])


def exact_log_z(target: DiscreteTarget) -> float:
    """``log Σ_x ρ(x)`` by enumeration."""
    return float(torch.logsumexp(exact_log_prob_table(target), 0))


def exact_marginals(target: DiscreteTarget) -> torch.Tensor:
    """``P(x_i = s)`` as ``(D, S)`` by enumeration."""
    lp = exact_log_prob_table(target)
    p = torch.softmax(lp, 0)
    onehot = nn.functional.one_hot(enumerate_states(target.dim, target.num_states), target.num_states).double()
    return torch.einsum("n,nds->ds", p, onehot)


class ExactRates(nn.Module):
    """A locally equivariant ``G_t`` that solves the Kolmogorov equation exactly on a tiny space.

    At time t, the flux ``F(x→y) = φ(x) − φ(y)`` along Hamming edges with ``Lφ = −∂_t p_t`` (L the graph Laplacian)
    has outflow ``−∂_t p_t``; ``G(y|x) = F(x→y)/p_t(source)`` (source: the endpoint the flux leaves) gives
    ``[G]_+ = R(x→y)``, ``[−G]_+ = R(y→x)`` and ``G(x|y) = −G(y|x)``. Used to test the residual, sampler and weights.
    """

    def __init__(self, path: GeometricPath):
        super().__init__()
        self.path = path
        d, s = path.dim, path.num_states
        self.states = enumerate_states(d, s)
        self.log_rho = exact_log_prob_table(path.target)
        self.a = self.log_rho - path.log_eta  # ∂_t log p̃_t
        self.neighbours = state_index(all_neighbours(self.states, s).reshape(-1, d), s).reshape(-1, d, s)
        n = self.states.shape[0]
        adj = torch.zeros(n, n, dtype=torch.float64)
        adj[torch.arange(n)[:, None, None].expand_as(self.neighbours), self.neighbours] = 1.0
        adj.fill_diagonal_(0.0)
        self.laplacian_pinv = torch.linalg.pinv(torch.diag(adj.sum(1)) - adj)

    def table(self, t: float) -> torch.Tensor:
        """``G_t(τ, i | x)`` for every enumerated x, ``(S^D, D, S)`` float64."""
        logp = t * self.a
        p = torch.softmax(logp, 0)
        dp = p * (self.a - (p * self.a).sum())
        phi = -self.laplacian_pinv @ dp
        flux = phi[:, None, None] - phi[self.neighbours]  # F(x→y)
        p_src = torch.where(flux > 0, p[:, None, None], p[self.neighbours])
        return flux / p_src

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        validate_states(x, self.path.num_states, self.path.dim)
        out = torch.empty(*x.shape, self.path.num_states, dtype=torch.float64)
        rows = state_index(x.cpu(), self.path.num_states)
        t = t.cpu()
        for tv in t.unique():
            sel = t == tv
            out[sel] = self.table(float(tv))[rows[sel]]
        return out.to(device=x.device, dtype=torch.get_default_dtype())


def _ff_log_z(beta: torch.Tensor, side: int) -> torch.Tensor:
    """Kaufman / Ferdinand–Fisher ``log Z`` of the periodic ``side×side`` Ising model ``exp(β Σ_edges s_i s_j)``."""
    L = side
    r = torch.arange(2 * L, dtype=torch.float64)
    c = torch.cosh(2 * beta) / torch.tanh(2 * beta) - torch.cos(math.pi * r / L)
    gamma = torch.acosh(c.clamp(min=1.0))
    gamma = torch.cat([(2 * beta + torch.log(torch.tanh(beta))).reshape(1), gamma[1:]])
    half = L * gamma / 2
    odd, even = half[1::2], half[0::2]

    def log_prod_cosh(h):
        return (h.abs() + torch.log1p(torch.exp(-2 * h.abs()))).sum()

    def signed_log_prod_sinh(h):
        mag = (h.abs() + torch.log1p(-torch.exp(-2 * h.abs()))).sum()
        return mag, torch.prod(torch.sign(h))

    # 2cosh(h) = e^{|h|}(1 + e^{-2|h|}); 2sinh(h) = sign(h) e^{|h|}(1 − e^{-2|h|})
    log_sinh_odd, sign_odd = signed_log_prod_sinh(odd)
    log_sinh_even, sign_even = signed_log_prod_sinh(even)
    logs = torch.stack([log_prod_cosh(odd), log_sinh_odd, log_prod_cosh(even), log_sinh_even])
    one = torch.ones((), dtype=torch.float64)
    signs = torch.stack([one, sign_odd, one, sign_even])
    m = logs.max()
    total = (signs * torch.exp(logs - m)).sum()
    return math.log(0.5) + (L * L / 2) * torch.log(2 * torch.sinh(2 * beta)) + m + torch.log(total)


def ferdinand_fisher(beta: float, side: int) -> dict[str, float]:
    """Exact finite-lattice ``F/D``, ``U/D`` (energy ``−Σ_edges s_i s_j``) and ``S/D`` (Ferdinand & Fisher 1969).

    ``U`` is ``−∂ log Z/∂β`` by autograd through the closed form. With the package's Ising convention β = 2σ.
    """
    if beta <= 0 or side < 2:
        raise ValueError("need beta > 0 and side >= 2")
    b = torch.tensor(float(beta), dtype=torch.float64, requires_grad=True)
    log_z = _ff_log_z(b, side)
    (dlogz,) = torch.autograd.grad(log_z, b)
    n = side * side
    log_z = float(log_z.detach())
    free = -log_z / beta / n
    internal = -float(dlogz) / n
    return {"log_z": log_z, "free_energy": free, "internal_energy": internal, "entropy": beta * (internal - free)}


def _transfer_log_z(sigma: torch.Tensor, bias: torch.Tensor, side: int) -> torch.Tensor:
    """``log Z`` of ``exp(sᵀJs + b Σ s)`` (J = σA, periodic side×side) as ``log Tr T^side`` over row states."""
    rows = 2.0 * enumerate_states(side, 2).double() - 1.0  # (2^side, side)
    horizontal = (rows * rows.roll(1, -1)).sum(-1)  # periodic in-row edges
    within = 2 * sigma * horizontal + bias * rows.sum(-1)  # sᵀJs counts each edge twice
    between = 2 * sigma * rows @ rows.T
    transfer = torch.exp(between + (within[:, None] + within[None, :]) / 2)
    eig = torch.linalg.eigvalsh(transfer)
    top = eig.abs().max()
    return side * torch.log(top) + torch.log((eig / top).pow(side).sum())


def transfer_matrix_ising(sigma: float, bias: float, side: int) -> dict[str, float]:
    """Exact ``log Z`` and magnetisation per site of :class:`~dnfs.targets.LatticeIsing` (any field) by the
    row transfer matrix (``2^side`` states; fine up to side ≈ 12). ``U/D`` is the coupling energy
    ``−E[Σ_edges s_i s_j]/D`` (so it matches :func:`ferdinand_fisher` at zero field)."""
    if side < 3 or side > 14:
        raise ValueError("transfer_matrix_ising supports 3 <= side <= 14")
    s = torch.tensor(float(sigma), dtype=torch.float64, requires_grad=True)
    b = torch.tensor(float(bias), dtype=torch.float64, requires_grad=True)
    log_z = _transfer_log_z(s, b, side)
    ds, db = torch.autograd.grad(log_z, (s, b))
    n = side * side
    # ∂ log Z/∂σ = 2 E[Σ_edges s_i s_j]
    return {"log_z": float(log_z.detach()), "magnetisation": float(db) / n, "internal_energy": -float(ds) / 2 / n}
