"""Discrete Neural Flow Samplers (Ou, Zhang & Li, arXiv 2505.17741): learn CTMC rates that transport a uniform
distribution to an unnormalised discrete target along ``p_t ∝ ρ^t η^{1−t}``."""

from dnfs.exact import ExactRates, exact_log_z, exact_marginals, ferdinand_fisher, transfer_matrix_ising
from dnfs.graph import LEGraphConfig, LocallyEquivariantGraphTransformer
from dnfs.io import load_rate_model, save_rate_model
from dnfs.kolmogorov import GeometricPath, kolmogorov_residual, stein_term, xi
from dnfs.metrics import effective_sample_size, ising_thermodynamics, log_partition, weighted_mean
from dnfs.mlp import LEMLPConfig, LocallyEquivariantMLP
from dnfs.sampler import SampleResult, default_times, simulate
from dnfs.targets import CallableTarget, DiscreteTarget, LatticeIsing, LatticePotts
from dnfs.train import DNFSTrainer, TrainConfig
from dnfs.transformer import LETransformerConfig, LocallyEquivariantTransformer, load_official_state_dict

__all__ = [
    "CallableTarget",
    "DNFSTrainer",
    "DiscreteTarget",
    "ExactRates",
    "GeometricPath",
    "LEGraphConfig",
    "LEMLPConfig",
    "LETransformerConfig",
    "LatticeIsing",
    "LatticePotts",
    "LocallyEquivariantGraphTransformer",
    "LocallyEquivariantMLP",
    "LocallyEquivariantTransformer",
    "SampleResult",
    "TrainConfig",
    "default_times",
    "effective_sample_size",
    "exact_log_z",
    "exact_marginals",
    "ferdinand_fisher",
    "ising_thermodynamics",
    "kolmogorov_residual",
    "load_official_state_dict",
    "load_rate_model",
    "log_partition",
    "save_rate_model",
    "simulate",
    "stein_term",
    "transfer_matrix_ising",
    "weighted_mean",
    "xi",
]
__version__ = "0.1.0"
