"""Code rewards for coupled-GRPO, run locally in a sandboxed subprocess (no cloud sandbox).

* :func:`code_format_reward` (the reference ``code_format``): 1 for a completion that is exactly one
  fenced ```` ```python ```` block (optionally preceded by prose) whose code parses, 0.5 if it does not parse,
  0 if the format does not match.
* :func:`code_reward` (the reference ``code``): for well-formatted completions, the fraction of test cases
  (``assert`` snippets) that run without error when appended to the code; 0 otherwise. Each case runs in a
  fresh ``python -I`` process in an empty temporary directory with CPU-time, address-space, file-size and
  wall-clock limits; a timeout counts as a failure.

The recipe weights them 2.0 (``code``) and 0.5 (``code_format``).
"""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

_FORMAT = re.compile(r"^(?:(?!```)[\s\S])*?```python\n(?:(?!```)[\s\S])*?```\n$", re.DOTALL)
_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class RunResult:
    returncode: int | None  # None: killed on timeout
    stdout: str
    stderr: str

    @property
    def passed(self) -> bool:
        return self.returncode == 0


def _limits(cpu_s: int, memory_mb: int):
    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def run_sandboxed(source: str, timeout: float = 5.0, memory_mb: int = 1024) -> RunResult:
    """Run Python ``source`` in an isolated child process with resource limits; kill its group on timeout."""
    with tempfile.TemporaryDirectory(prefix="diffucoder-run-") as cwd:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONHASHSEED": "0", "HOME": cwd}
        proc = subprocess.Popen(
            [sys.executable, "-I", "-c", source],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=_limits(int(timeout) + 1, memory_mb) if os.name == "posix" else None,
        )
        try:
            out, err = proc.communicate(timeout=timeout)
            return RunResult(proc.returncode, out[-10_000:], err[-10_000:])
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return RunResult(None, "", "timeout")


def completion_text(completion) -> str:
    """A completion as plain text (TRL passes strings, or chat turns ``[{"role", "content"}]``)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return completion[-1]["content"]
    raise TypeError(f"unsupported completion type {type(completion).__name__}")


def extract_code(text: str) -> str:
    """The first ```` ```python ```` block of ``text`` ('' if none)."""
    blocks = _BLOCK.findall(text)
    return blocks[0] if blocks else ""


def format_score(text: str) -> float:
    if not _FORMAT.fullmatch(text):
        return 0.0
    try:
        ast.parse(extract_code(text).strip())
    except SyntaxError:
        return 0.5
    return 1.0


def code_format_reward(completions, **kwargs) -> list[float]:
    """1 / 0.5 / 0: well-formed and parsable / well-formed but a syntax error / not one python block."""
    return [format_score(completion_text(c)) for c in completions]


def pass_rate(code: str, test_cases: list[str], timeout: float = 5.0, memory_mb: int = 1024) -> float:
    """Fraction of ``test_cases`` that exit cleanly when appended to ``code`` (each in its own sandbox)."""
    if not test_cases:
        raise ValueError("no test cases given")
    return sum(run_sandboxed(f"{code}\n{case}", timeout, memory_mb).passed for case in test_cases) / len(test_cases)


def code_reward(
    completions, test_cases: list[list[str]], timeout: float = 5.0, num_workers: int = 2, **kwargs
) -> list[float]:
    """Test pass rate of each well-formatted completion (0 for badly formatted ones); ``test_cases`` per row."""
    texts = [completion_text(c) for c in completions]
    if len(test_cases) != len(texts):
        raise ValueError(f"{len(texts)} completions but {len(test_cases)} test-case lists")
    jobs = [(i, extract_code(t), test_cases[i]) for i, t in enumerate(texts) if format_score(t) == 1.0]
    rewards = [0.0] * len(texts)
    with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
        for (i, _, _), rate in zip(jobs, pool.map(lambda j: pass_rate(j[1], j[2], timeout), jobs)):
            rewards[i] = rate
    return rewards
