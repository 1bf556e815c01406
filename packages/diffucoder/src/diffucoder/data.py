"""Offline code data: short functions from the Python standard library (``labcore.corpora``), SFT-formatted.

Each example is a prompt (a function's signature line) and an answer (its body), laid out as
``prompt · answer · <|im_end|> · <|dlm_pad|>…`` to a fixed length; the prompt stays clean and the padding is
a training target, as in DiffuCoder's SFT.
"""

from __future__ import annotations

import ast

import torch
from transformers import PreTrainedTokenizerBase

from diffucoder.tokenizer import DLM_PAD, IM_END
from labcore.corpora import python_source


def function_snippets(max_chars: int = 400_000, max_lines: int = 8) -> list[tuple[str, str]]:
    """(signature line, body) of standard-library functions with at most ``max_lines`` body lines."""
    source = python_source(max_chars)
    snippets = []
    for chunk in source.split("\n\n\n"):
        try:
            tree = ast.parse(chunk)
        except SyntaxError:
            continue
        lines = chunk.splitlines()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.body and node.end_lineno - node.lineno <= max_lines:
                body_start = node.body[0].lineno - 1
                if body_start == node.lineno - 1:  # one-line "def f(): return x"
                    continue
                head = "\n".join(lines[node.lineno - 1 : body_start]).strip() + "\n"
                body = "\n".join(lines[body_start : node.end_lineno])
                indent = len(body) - len(body.lstrip())
                snippets.append(
                    (head, "\n".join(line[indent - 4 :] if indent >= 4 else line for line in body.splitlines()) + "\n")
                )
    if not snippets:
        raise RuntimeError("no functions found in the standard library sources")
    return snippets


def sft_tensors(
    tok: PreTrainedTokenizerBase, pairs: list[tuple[str, str]], length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, prompt_mask)`` of shape (N, length); pairs that do not fit are skipped."""
    end, pad = tok.convert_tokens_to_ids(IM_END), tok.convert_tokens_to_ids(DLM_PAD)
    rows, prompt_lens = [], []
    for prompt, answer in pairs:
        p = tok.encode(prompt, add_special_tokens=False)
        a = tok.encode(answer, add_special_tokens=False) + [end]
        if len(p) + len(a) > length:
            continue
        rows.append(p + a + [pad] * (length - len(p) - len(a)))
        prompt_lens.append(len(p))
    if not rows:
        raise ValueError(f"no prompt/answer pair fits in {length} tokens")
    ids = torch.tensor(rows)
    prompt_mask = torch.arange(length)[None] < torch.tensor(prompt_lens)[:, None]
    return ids, prompt_mask
