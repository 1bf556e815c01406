"""Targets ``p_{1|t}(x_1^i | x_1^{\\i}, x_t)`` of TCSM: data-free, parametric ones (paper §4.2, §5).

Every target exposes ``log_conditionals(x1, xt, t) → (B, L, V)``. A clean-space distribution
``p_1`` gives the target posterior ``p_{1|t}(x_1|x_t) ∝ p_1(x_1) p_{t|1}(x_t|x_1)``, whose 1-Hamming
conditionals need ``p_1`` only up to its normaliser, on the neighbours ``x_1^{i←v}``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from tcsm.concrete import hamming_neighbours
from tcsm.noise import MaskedProcess, UniformProcess

Process = MaskedProcess | UniformProcess


def _one_per_row(fn: Callable[[torch.Tensor], torch.Tensor], rows: torch.Tensor) -> torch.Tensor:
    """``fn(rows)``, checked to be one number per sequence (a reward or log-density of shape ``(N,)``)."""
    vals = fn(rows)
    if not isinstance(vals, torch.Tensor) or vals.shape != (rows.shape[0],):
        got = tuple(vals.shape) if isinstance(vals, torch.Tensor) else type(vals).__name__
        raise ValueError(
            f"the reward / log-density function must map (N, L) token ids to a tensor of shape (N,), "
            f"got {got} for N = {rows.shape[0]}: return one value per sequence"
        )
    return vals


def neighbour_values(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x1: torch.Tensor,
    vocab_size: int,
    positions: torch.Tensor | None = None,
    chunk: int = 8192,
) -> torch.Tensor:
    """``fn(x_1^{i←v})`` for every ``(i, v)`` where ``positions`` is set (zero elsewhere): ``(B, L, V)``."""
    b, n = x1.shape
    nb = hamming_neighbours(x1, vocab_size)  # (B, L, V, L)
    sel = torch.ones(b, n, dtype=torch.bool, device=x1.device) if positions is None else positions
    rows = nb[sel].reshape(-1, n)
    vals = (
        torch.cat([_one_per_row(fn, rows[i : i + chunk]) for i in range(0, rows.shape[0], chunk)])
        if rows.numel()
        else torch.zeros(0, device=x1.device)
    )
    out = torch.zeros(b, n, vocab_size, device=x1.device, dtype=vals.dtype if vals.numel() else torch.float32)
    out[sel] = vals.view(-1, vocab_size).to(out.dtype)
    return out


class JointTarget:
    """Target from an unnormalised clean-space log-density ``log_p1(x) → (N,)`` (data table, AR teacher…)."""

    def __init__(self, log_p1: Callable[[torch.Tensor], torch.Tensor], process: Process, chunk: int = 8192):
        self.log_p1, self.process, self.chunk = log_p1, process, chunk

    @torch.no_grad()
    def log_conditionals(self, x1: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        lp = neighbour_values(self.log_p1, x1, self.process.vocab_size, self.process.noised_positions(xt), self.chunk)
        return (lp.float() + self.process.log_likelihood_table(xt, t)).log_softmax(-1)


class DenoiserTarget:
    """A (frozen) factorised denoiser as target or reference: ``p_ref(v | x_t)`` with carry-over."""

    def __init__(self, denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], process: Process):
        self.denoiser, self.process = denoiser, process

    @torch.no_grad()
    def log_conditionals(self, x1: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.process.denoiser_log_probs(self.denoiser(xt, t), xt)


class TiltedTarget:
    """Reward-tilted target ``p_1 ∝ p_ref · exp(r/β)`` (paper §5.1).

    Its posterior is ``p_{1|t} ∝ p^ref_{1|t}(x_1|x_t) exp(r(x_1)/β)``, so its concrete score is the
    reference's times ``exp((r(x_1^{i←v}) − r(x_1))/β)``: conditionals ``∝ p_ref(v|·) e^{r(x_1^{i←v})/β}``.
    ``reward(x) → (N,)`` is evaluated on every neighbour of a noised position (batched).
    """

    def __init__(self, reference, reward: Callable[[torch.Tensor], torch.Tensor], beta: float, chunk: int = 8192):
        if not beta > 0:
            raise ValueError(f"beta must be positive (the KL-regularisation temperature), got {beta}")
        self.reference, self.reward, self.beta, self.chunk = reference, reward, float(beta), chunk

    def neighbour_rewards(self, x1: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        r = neighbour_values(self.reward, x1, self.reference.process.vocab_size, positions, self.chunk)
        if not torch.isfinite(r).all():
            raise ValueError(
                "the reward function returned NaN or inf on some sequences; make it finite "
                "for every sequence of the vocabulary (clip or add a default value)"
            )
        return r

    @torch.no_grad()
    def log_conditionals(self, x1: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ref = self.reference.log_conditionals(x1, xt, t)
        r = self.neighbour_rewards(x1, self.reference.process.noised_positions(xt))
        return (ref + r / self.beta).log_softmax(-1)


class ARTeacher(nn.Module):
    """Clean-space log-likelihood of an autoregressive teacher (any ``AutoModelForCausalLM``).

    ``log p_AR(x) = Σ_k log p(x^k | bos, x^{<k})``. The teacher must share the diffusion model's
    vocabulary (same ids); ``bos_token_id`` starts every sequence.
    """

    def __init__(self, teacher: nn.Module, vocab_size: int, bos_token_id: int | None = None):
        super().__init__()
        tv = getattr(teacher.config, "vocab_size", None)
        if tv != vocab_size:
            raise ValueError(
                f"the teacher's vocabulary has {tv} tokens but the diffusion model has {vocab_size}; "
                "distillation needs identical token ids: train/convert the teacher on the same vocabulary"
            )
        bos = teacher.config.bos_token_id if bos_token_id is None else bos_token_id
        if bos is None or not 0 <= int(bos) < vocab_size:
            raise ValueError(f"bos_token_id must be a token id in 0..{vocab_size - 1}, got {bos}")
        self.teacher, self.vocab_size, self.bos = teacher.eval(), vocab_size, int(bos)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inp = torch.cat([torch.full_like(x[:, :1], self.bos), x[:, :-1]], dim=1)
        logits = self.teacher(input_ids=inp).logits.float()
        return logits.log_softmax(-1).gather(-1, x[..., None])[..., 0].sum(-1)


def ar_teacher_target(
    teacher: nn.Module, process: Process, bos_token_id: int | None = None, chunk: int = 4096
) -> JointTarget:
    """Distillation target ``p_1 = p_AR`` (paper §5.3): exact 1-Hamming ratios from teacher likelihoods."""
    return JointTarget(ARTeacher(teacher, process.vocab_size, bos_token_id), process, chunk)


class ARTeacherTopK:
    """Distillation target for large vocabularies: the exact teacher ratios on a candidate set only.

    Candidates at position ``i`` are the teacher's top-``k`` next tokens given ``x_1^{<i}`` plus ``x_1^i``;
    the target conditional is the exact ``p_AR``-posterior conditional renormalised over them (``k·L``
    instead of ``V·L`` teacher evaluations per sequence; the tail outside the candidates is dropped).
    """

    def __init__(
        self, teacher: nn.Module, process: Process, k: int, bos_token_id: int | None = None, chunk: int = 4096
    ):
        if not 1 <= k <= process.vocab_size:
            raise ValueError(f"k must lie in 1..{process.vocab_size}, got {k}")
        self.ar = ARTeacher(teacher, process.vocab_size, bos_token_id)
        self.process, self.k, self.chunk = process, k, chunk

    @torch.no_grad()
    def log_conditionals(self, x1: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        b, n = x1.shape
        inp = torch.cat([torch.full_like(x1[:, :1], self.ar.bos), x1[:, :-1]], dim=1)
        top = self.ar.teacher(input_ids=inp).logits.topk(self.k, dim=-1).indices  # (B, L, k)
        cand = torch.cat([x1[..., None], top], -1)  # (B, L, k+1); x_1^i always a candidate
        sel = self.process.noised_positions(xt).nonzero()  # (M, 2) rows (b, i)
        c = cand[sel[:, 0], sel[:, 1]]  # (M, k+1)
        seqs = x1[sel[:, 0]][:, None, :].repeat(1, c.shape[1], 1)
        seqs.scatter_(2, sel[:, 1].view(-1, 1, 1).expand(-1, c.shape[1], 1), c[..., None])
        flat = seqs.view(-1, n)
        lp = (
            torch.cat([self.ar(flat[i : i + self.chunk]) for i in range(0, len(flat), self.chunk)]).view_as(c)
            if len(flat)
            else torch.zeros_like(c, dtype=torch.float32)
        )
        rows = torch.full((len(sel), self.process.vocab_size), -torch.inf, device=x1.device).scatter(1, c, lp)
        out = torch.zeros(b, n, self.process.vocab_size, device=x1.device)
        out[sel[:, 0], sel[:, 1]] = rows
        return (out + self.process.log_likelihood_table(xt, t)).log_softmax(-1)
