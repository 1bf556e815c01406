"""Target Concrete Score Matching (Zhang et al., 2025, arXiv 2504.16431) for discrete diffusion."""

from tcsm.config import TCSMConfig
from tcsm.data import CharCorpus, CharVocab
from tcsm.likelihood import bits_per_char, masked_nelbo, nelbo, perplexity_bound, uniform_nelbo
from tcsm.model import TCSMDenoiser
from tcsm.noise import MaskedProcess, Schedule, UniformProcess, make_process
from tcsm.objective import TCSMObjective, factorised, joint
from tcsm.sampling import sample
from tcsm.targets import DenoiserTarget, JointTarget, TiltedTarget, ar_teacher_target

__all__ = [
    "CharCorpus",
    "CharVocab",
    "DenoiserTarget",
    "JointTarget",
    "MaskedProcess",
    "Schedule",
    "TCSMConfig",
    "TCSMDenoiser",
    "TCSMObjective",
    "TiltedTarget",
    "UniformProcess",
    "ar_teacher_target",
    "bits_per_char",
    "factorised",
    "joint",
    "make_process",
    "masked_nelbo",
    "nelbo",
    "perplexity_bound",
    "sample",
    "uniform_nelbo",
]
