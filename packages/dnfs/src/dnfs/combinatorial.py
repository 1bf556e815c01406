"""Combinatorial optimisation targets (DNFS experiments): maximum independent set and max-cut on networkx graphs.

``log ρ_β(x) = −β E(x)`` with an inverse temperature β annealed during training. MIS energy (DISCS convention):
``E(x) = −Σ_i x_i + λ Σ_{(i,j)∈E} x_i x_j`` (λ = 1.0001); samples are made feasible by a greedy fix that drops
conflicting nodes. Max-cut energy: ``E(x) = −Σ_{(i,j)∈E} [x_i ≠ x_j]``. Self-loops are rejected; isolated nodes
are allowed (an isolated node is free to join every independent set and never cuts an edge).
"""

from __future__ import annotations

import networkx as nx
import torch

from dnfs.targets import DiscreteTarget, validate_states


def graph_adjacency(graph: nx.Graph) -> torch.Tensor:
    """Dense 0/1 adjacency of an undirected simple graph (nodes relabelled 0..n-1 in sorted order)."""
    if nx.number_of_selfloops(graph):
        raise ValueError("the graph has self-loops; remove them with graph.remove_edges_from(nx.selfloop_edges(graph))")
    if graph.is_directed():
        raise ValueError("expected an undirected graph")
    n = graph.number_of_nodes()
    if n == 0:
        raise ValueError("the graph has no nodes")
    adj = nx.to_numpy_array(graph, nodelist=sorted(graph.nodes), weight=None)  # 1 per edge, symmetric
    return torch.from_numpy(adj > 0).float()


def random_graph(kind: str, num_nodes: int, seed: int = 0, p: float = 0.15, m: int = 4) -> nx.Graph:
    """Erdős–Rényi ``G(n, p)`` (``kind="er"``) or Barabási–Albert with ``m`` edges per new node (``"ba"``)."""
    if kind == "er":
        return nx.erdos_renyi_graph(num_nodes, p, seed=seed)
    if kind == "ba":
        return nx.barabasi_albert_graph(num_nodes, m, seed=seed)
    raise ValueError(f"unknown graph kind {kind!r}; use 'er' or 'ba'")


class GraphTarget(DiscreteTarget):
    """Binary target on the nodes of a graph with an adjustable inverse temperature ``beta``."""

    def __init__(self, adjacency: torch.Tensor, beta: float = 1.0):
        adjacency = torch.as_tensor(adjacency).float()
        if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
            raise ValueError(f"adjacency must be square, got {tuple(adjacency.shape)}")
        if torch.diagonal(adjacency).any():
            raise ValueError("the graph has self-loops (non-zero adjacency diagonal); remove them")
        if not torch.equal(adjacency, adjacency.T):
            raise ValueError("adjacency must be symmetric (undirected graph)")
        super().__init__(adjacency.shape[0], 2)
        self.register_buffer("adjacency", (adjacency > 0).float())
        self.beta = float(beta)

    def energy(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def unnormalised_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return -self.beta * self.energy(x)


class MaxIndependentSet(GraphTarget):
    def __init__(self, adjacency: torch.Tensor, beta: float = 1.0, penalty: float = 1.0001):
        super().__init__(adjacency, beta)
        self.penalty = float(penalty)

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return -xf.sum(-1) + self.penalty * 0.5 * ((xf @ self.adjacency) * xf).sum(-1)

    def neighbour_log_ratio(self, x: torch.Tensor, chunk: int = 0) -> torch.Tensor:
        validate_states(x, 2, self.dim)
        xf = x.float()
        gain = 1.0 - self.penalty * (xf @ self.adjacency)  # −ΔE of switching node i on
        delta = self.beta * gain * (1.0 - 2.0 * xf)  # on→off reverses the sign
        return torch.zeros(*x.shape, 2, device=x.device).scatter(-1, (1 - x)[..., None], delta[..., None])


class MaxCut(GraphTarget):
    def energy(self, x: torch.Tensor) -> torch.Tensor:
        return -cut_size(x, self.adjacency)

    def neighbour_log_ratio(self, x: torch.Tensor, chunk: int = 0) -> torch.Tensor:
        validate_states(x, 2, self.dim)
        s = 2.0 * x.float() - 1.0
        gain = s * (s @ self.adjacency)  # same-side neighbours − cut neighbours = cut gain of flipping i
        return torch.zeros(*x.shape, 2, device=x.device).scatter(-1, (1 - x)[..., None], (self.beta * gain)[..., None])


def cut_size(x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
    """Number of edges between the two sides, ``(B,)``."""
    s = 2.0 * x.float() - 1.0
    return 0.25 * (adjacency.sum() - ((s @ adjacency) * s).sum(-1))


def is_independent(x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
    xf = x.float()
    return ((xf @ adjacency) * xf).sum(-1) == 0


@torch.no_grad()
def greedy_fix_mis(x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
    """Make every sample an independent set: visit selected nodes by ascending degree, drop those with a kept
    neighbour.

    Computed in parallel rounds with the same result as the sequential visit: a selected node is decided once
    its earlier selected neighbours are: dropped if one of them is kept, kept if none is. Each round decides at
    least the earliest undecided node of every sample, usually many more.
    """
    adj = adjacency > 0
    rank = torch.empty(adj.shape[0], dtype=torch.long, device=adj.device)
    rank[torch.argsort(adj.sum(1), stable=True)] = torch.arange(adj.shape[0], device=adj.device)
    earlier = (adj & (rank[None, :] < rank[:, None])).to(torch.float32).T  # earlier[j, i]: j precedes neighbour i
    undecided, kept = x.bool().clone(), torch.zeros_like(x, dtype=torch.bool)
    while undecided.any():
        blocked = ((undecided | kept).to(torch.float32) @ earlier) > 0  # an earlier neighbour is open or kept
        kept |= undecided & ~blocked
        undecided &= blocked & ~((kept.to(torch.float32) @ earlier) > 0)
    return kept.to(x.dtype)


@torch.no_grad()
def greedy_mis(adjacency: torch.Tensor) -> torch.Tensor:
    """Minimum-degree greedy independent set (the classical baseline), as a 0/1 vector."""
    alive = torch.ones(adjacency.shape[0], dtype=torch.bool)
    chosen = torch.zeros(adjacency.shape[0], dtype=torch.long)
    while alive.any():
        deg = (adjacency[alive][:, alive]).sum(1)
        i = torch.nonzero(alive).flatten()[int(torch.argmin(deg))]
        chosen[i] = 1
        alive &= ~(adjacency[i] > 0)
        alive[i] = False
    return chosen


@torch.no_grad()
def greedy_maxcut(adjacency: torch.Tensor, restarts: int = 16, seed: int = 0) -> torch.Tensor:
    """Best of ``restarts`` greedy local searches (flip the best improving node until none improves)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 2, (restarts, adjacency.shape[0]), generator=g)
    while True:
        s = 2.0 * x.float() - 1.0
        gain = s * (s @ adjacency)
        best, idx = gain.max(-1)
        improve = best > 0
        if not improve.any():
            break
        rows = torch.nonzero(improve).flatten()
        x[rows, idx[rows]] = 1 - x[rows, idx[rows]]
    return x[int(torch.argmax(cut_size(x, adjacency)))]


def anneal_train(trainer, betas: list[float], callback=None, **trainer_options) -> None:
    """One coordinate-descent epoch per inverse temperature in ``betas``, in one ``trainer.fit`` (the target's β is
    set in place before each epoch simulates its trajectories); ``callback(k, beta, mean loss)`` after epoch ``k``."""
    if len(betas) == 0:
        raise ValueError("betas is empty: give at least one inverse temperature")
    target = trainer.path.target
    target.beta = float(betas[0])

    def next_beta(epoch: int, info: dict) -> None:
        if callback is not None:
            callback(epoch - 1, betas[epoch - 1], info["loss"])
        if epoch < len(betas):
            target.beta = float(betas[epoch])

    trainer.fit(len(betas) * trainer.config.steps_per_epoch, callback=next_beta, **trainer_options)


@torch.no_grad()
def best_solution(trainer, num_samples: int = 256, generator: torch.Generator | None = None) -> dict:
    """Sample the trained CTMC, repair MIS samples greedily, and report the best and mean objective."""
    from dnfs.sampler import simulate

    target = trainer.path.target
    res = simulate(trainer.model, trainer.path, num_samples, trainer.times, with_weights=False, generator=generator)
    x = res.samples
    if isinstance(target, MaxIndependentSet):
        x = greedy_fix_mis(x, target.adjacency)
        score = x.sum(-1).float()
    else:
        score = cut_size(x, target.adjacency)
    best = int(torch.argmax(score))
    return {"best": float(score[best]), "mean": float(score.mean()), "solution": x[best]}
