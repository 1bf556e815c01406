"""Combinatorial targets, greedy repairs, AIS-Gibbs baseline and EBM training."""

import networkx as nx
import pytest
import torch

from dnfs.baselines import ais_gibbs, gibbs_sweep, site_groups
from dnfs.combinatorial import (
    MaxCut,
    MaxIndependentSet,
    anneal_train,
    best_solution,
    cut_size,
    graph_adjacency,
    greedy_fix_mis,
    greedy_maxcut,
    greedy_mis,
    is_independent,
    random_graph,
)
from dnfs.ebm import train_ising_ebm
from dnfs.exact import enumerate_states, exact_log_prob_table, exact_log_z
from dnfs.graph import LEGraphConfig, LocallyEquivariantGraphTransformer
from dnfs.kolmogorov import GeometricPath
from dnfs.metrics import effective_sample_size, log_partition
from dnfs.mlp import LEMLPConfig, LocallyEquivariantMLP
from dnfs.targets import CallableTarget, DiscreteTarget, LatticeIsing
from dnfs.train import DNFSTrainer, TrainConfig


@pytest.fixture
def triangle_plus_tail():
    g = nx.Graph([(0, 1), (1, 2), (0, 2), (2, 3)])
    g.add_node(4)  # isolated node
    return graph_adjacency(g)


def test_energies_by_hand(triangle_plus_tail):
    adj = triangle_plus_tail
    x = torch.tensor([[1, 1, 0, 1, 1], [1, 0, 0, 1, 1]])
    mis = MaxIndependentSet(adj, beta=2.0, penalty=1.5)
    assert torch.allclose(mis.energy(x), torch.tensor([-4 + 1.5, -3.0]))
    assert torch.allclose(mis.log_prob(x), -2.0 * mis.energy(x))
    assert torch.allclose(cut_size(x, adj), torch.tensor([3.0, 3.0]))  # {0,1,3,4}|{2}; {0,3,4}|{1,2}
    assert is_independent(x, adj).tolist() == [False, True]


@pytest.mark.parametrize("cls", [MaxIndependentSet, MaxCut])
def test_graph_neighbour_ratios_match_brute_force(cls):
    adj = graph_adjacency(random_graph("ba", 12, seed=2, m=2))
    target = cls(adj, beta=1.7)
    x = torch.randint(0, 2, (4, 12), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(target.neighbour_log_ratio(x), DiscreteTarget.neighbour_log_ratio(target, x), atol=1e-5)


@pytest.mark.parametrize("kind", ["er", "ba"])
def test_ground_states_are_maximum_independent_sets_and_maximum_cuts(kind):
    """By enumeration of all 2^10 states: the MIS energy (penalty > 1) is minimised exactly by the maximum
    independent sets and the max-cut energy by the maximum cuts, so annealing β → ∞ targets the optimum."""
    graph = random_graph(kind, 10, seed=1, p=0.3, m=2)
    adj = graph_adjacency(graph)
    xs = enumerate_states(10, 2)
    independent = is_independent(xs, adj)
    best_is = int(xs[independent].sum(-1).max())
    assert best_is == max(len(c) for c in nx.find_cliques(nx.complement(graph)))  # independent set = clique of G^c
    e_mis = MaxIndependentSet(adj).energy(xs)
    ground = e_mis == e_mis.min()
    assert torch.all(independent[ground]) and torch.all(xs[ground].sum(-1) == best_is)
    assert int(ground.sum()) == int((independent & (xs.sum(-1) == best_is)).sum())
    e_cut = MaxCut(adj).energy(xs)
    cuts = cut_size(xs, adj)
    assert torch.equal(e_cut == e_cut.min(), cuts == cuts.max())
    # the annealed max-cut target p_β concentrates on the optimum as β grows (integer energy gaps); for MIS the
    # penalty 1.0001 leaves near-degenerate infeasible states, which is why samples get the greedy repair
    top = cuts == cuts.max()
    mass = [float(torch.softmax(MaxCut(adj, beta=b).log_prob(xs), 0)[top].sum()) for b in (1, 4, 16)]
    assert mass[0] < mass[1] < mass[2] and mass[2] > 0.99


def test_greedy_fix_and_baselines(triangle_plus_tail):
    adj = triangle_plus_tail
    x = torch.ones(3, 5, dtype=torch.long)
    fixed = greedy_fix_mis(x, adj)
    assert is_independent(fixed, adj).all() and torch.all(fixed <= x) and torch.all(fixed[:, 4] == 1)
    best = greedy_mis(adj)
    assert is_independent(best[None], adj).all() and int(best.sum()) == 3  # e.g. {0 or 1, 3, 4}
    cut = greedy_maxcut(adj)
    assert float(cut_size(cut[None], adj)) == 3.0  # a triangle + pendant edge: max cut is 3


@pytest.mark.parametrize("kind", ["er", "ba"])
def test_parallel_greedy_fix_equals_the_sequential_visit(kind):
    adj = graph_adjacency(random_graph(kind, 30, seed=3, p=0.2, m=3))
    x = torch.randint(0, 2, (64, 30), generator=torch.Generator().manual_seed(0))
    x[0] = 1  # every node selected
    expected = torch.zeros_like(x)
    for b in range(x.shape[0]):  # the definition: selected nodes by ascending degree, skip those with a kept neighbour
        for i in torch.argsort(adj.sum(1), stable=True).tolist():
            if x[b, i] and not (expected[b].float() @ adj[:, i]) > 0:
                expected[b, i] = 1
    assert torch.equal(greedy_fix_mis(x, adj), expected)
    assert is_independent(expected, adj).all() and torch.equal(greedy_fix_mis(expected, adj), expected)


def test_graph_validation():
    g = nx.Graph([(0, 1), (1, 1)])
    with pytest.raises(ValueError, match="self-loops"):
        graph_adjacency(g)
    with pytest.raises(ValueError, match="symmetric"):
        MaxCut(torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="er"):
        random_graph("grid", 5)


def test_annealed_mis_training_runs_and_repairs_samples():
    graph = random_graph("er", 10, seed=0, p=0.3)
    adj = graph_adjacency(graph)
    torch.manual_seed(0)
    model = LocallyEquivariantGraphTransformer(
        LEGraphConfig(10, hidden_dim=16, head_dim=8, structural_layers=1, hollow_layers=1), adj
    )
    trainer = DNFSTrainer(
        model,
        GeometricPath(MaxIndependentSet(adj)),
        TrainConfig(num_times=9, num_trajectories=16, batch_size=16, steps_per_epoch=3),
    )
    anneal_train(trainer, [1.0, 2.0])
    assert trainer.path.target.beta == 2.0
    out = best_solution(trainer, 32)
    assert is_independent(out["solution"][None], adj).all() and out["best"] >= 1
    # the reported best is the repaired solution's size, no larger than the independence number
    assert out["best"] == float(out["solution"].sum()) and out["mean"] <= out["best"]
    assert out["best"] <= max(len(c) for c in nx.find_cliques(nx.complement(graph)))


def test_gibbs_sweep_preserves_the_target_and_ais_estimates_log_z(ising3):
    path = GeometricPath(ising3)
    exact = torch.softmax(exact_log_prob_table(ising3), 0)
    # exact Gibbs invariance: start from p, one sweep, the histogram stays p
    g = torch.Generator().manual_seed(0)
    x = enumerate_states(9, 2)[torch.multinomial(exact.float(), 20000, replacement=True, generator=g)]
    y = gibbs_sweep(path, x, 1.0, g)
    hist = torch.bincount((y * 2 ** torch.arange(8, -1, -1)).sum(-1), minlength=512).double() / 20000
    assert 0.5 * (hist - exact).abs().sum() < 0.06
    res = ais_gibbs(path, 2000, torch.linspace(0, 1, 21), generator=g)
    assert 0.2 < effective_sample_size(res.log_weights) <= 1
    assert log_partition(res.log_weights)["log_mean_exp"] == pytest.approx(exact_log_z(ising3), abs=0.08)


@pytest.mark.parametrize("side", [3, 4])
def test_gibbs_site_groups_are_independent_sets_covering_every_site(side):
    target = LatticeIsing(side)
    groups = site_groups(target)
    assert len(groups) == (2 if side % 2 == 0 else 3)  # an even torus is bipartite, an odd one needs 3 colours
    assert sorted(torch.cat(groups).tolist()) == list(range(side * side))
    for g in groups:
        assert target.adjacency[g][:, g].sum() == 0
    # a coupling outside the lattice edges joins its sites into one interaction; a generic target: one site each
    target.coupling.data[0, 2] = 0.3
    assert not any({0, 2} <= set(g.tolist()) for g in site_groups(target))
    assert [g.tolist() for g in site_groups(CallableTarget(lambda x: x.sum(-1).float(), 4, 3))] == [[0], [1], [2], [3]]


def test_gibbs_sweep_on_a_generic_target_keeps_and_reaches_p_t(random_target):
    """Sequential fallback (no interaction graph) on {0,1,2}^3: p_t is invariant and reached from uniform."""
    path = GeometricPath(random_target)
    p_t = torch.softmax(0.7 * exact_log_prob_table(random_target), 0)  # the sweep targets p_t ∝ ρ^0.7

    def tv(x):
        hist = torch.bincount((x * torch.tensor([9, 3, 1])).sum(-1), minlength=27).double() / x.shape[0]
        return float(0.5 * (hist - p_t).abs().sum())

    g = torch.Generator().manual_seed(0)
    x = enumerate_states(3, 3)[torch.multinomial(p_t.float(), 20000, replacement=True, generator=g)]
    assert tv(gibbs_sweep(path, x, 0.7, g)) < 0.03
    y = path.sample_initial(20000, generator=g)
    assert tv(y) > 0.2
    for _ in range(8):
        y = gibbs_sweep(path, y, 0.7, g)
    assert tv(y) < 0.03


def test_ebm_training_recovers_ising_couplings():
    torch.manual_seed(0)
    truth = LatticeIsing(3, sigma=0.25)
    p = torch.softmax(exact_log_prob_table(truth), 0).float()
    data = enumerate_states(9, 2)[torch.multinomial(p, 2000, replacement=True)]
    ebm = LatticeIsing(3, sigma=0.0, learn_coupling=True)
    trainer = DNFSTrainer(
        LocallyEquivariantMLP(LEMLPConfig(9, 2, hidden_dim=32)),
        GeometricPath(ebm),
        TrainConfig(num_times=17, num_trajectories=64, batch_size=64, steps_per_epoch=10, lr=3e-3),
    )

    def rmse():
        return float(((ebm.coupling.detach() - truth.coupling) ** 2).sum().div(truth.adjacency.sum()).sqrt())

    start = rmse()
    train_ising_ebm(ebm, trainer, data, rounds=8, lr=0.03)
    assert rmse() < 0.3 * start
    assert torch.allclose(ebm.coupling, ebm.coupling.T) and torch.all(ebm.coupling[truth.adjacency == 0] == 0)
