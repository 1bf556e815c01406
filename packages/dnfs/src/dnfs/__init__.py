"""Discrete Neural Flow Samplers (Ou, Zhang & Li, arXiv 2505.17741): learn CTMC rates that transport a uniform
distribution to an unnormalised discrete target along ``p_t ∝ ρ^t η^{1−t}``."""

from labcore.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".exact": ("ExactRates", "exact_log_z", "exact_marginals", "ferdinand_fisher", "transfer_matrix_ising"),
        ".graph": ("LEGraphConfig", "LocallyEquivariantGraphTransformer"),
        ".io": ("load_rate_model", "save_rate_model"),
        ".kolmogorov": ("GeometricPath", "kolmogorov_residual", "stein_term", "xi"),
        ".metrics": ("effective_sample_size", "ising_thermodynamics", "log_partition", "weighted_mean"),
        ".mlp": ("LEMLPConfig", "LocallyEquivariantMLP"),
        ".presets": ("PRESETS", "create"),
        ".sampler": ("SampleResult", "default_times", "simulate"),
        ".targets": ("CallableTarget", "DiscreteTarget", "LatticeIsing", "LatticePotts"),
        ".train": ("DNFSTrainer", "TrainConfig"),
        ".transformer": ("LETransformerConfig", "LocallyEquivariantTransformer", "load_official_state_dict"),
    },
)
__version__ = "0.1.0"
