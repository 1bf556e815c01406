"""Write the golden fixtures of ``test_r2l_lm_golden.py`` with the official reversed evaluation of
apple/ml-reversal-blessing (``simulation/run_evaluate.py``'s ``_EvalWrapperReversed``).

    python packages/r2l_lm/tests/golden/make_golden.py /path/to/ml-reversal-blessing   # needs lm-eval

A tiny GPT-2 (every weight, LayerNorms and biases included, seeded random and rounded to float16 so it is
stored exactly) and a small byte-level BPE tokenizer trained offline are scored by the official wrapper's
``loglikelihood`` on multiple-choice requests ``(question, " " + option)``: it reverses the option (after
BOS) and scores the reversed question, ``log p_R2L(q | a)`` (paradigm 3), plus whether greedy decoding
reproduces it. The wrapper is run as it is; only what it needs from outside is supplied: the torchtune
imports it never calls here are stand-ins, only the file's definitions are executed (not the
evaluation script that runs at its import), the model/tokenizer are given in torchtune's call convention
(``model(ids) -> logits``, ``tokenizer.encode(text, add_bos, add_eos)``), the harness's HFLM
initialisation (which would download ``gpt2``) is skipped and its few attributes are set, and
``pad_and_concat`` is taken from where lm-eval 0.4.13 moved it. Only outputs are written.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import types
from pathlib import Path

import torch
from safetensors.torch import save_file

from labcore.golden import write_golden_meta

HERE = Path(__file__).parent
TEXT = (
    "The quick brown fox jumps over the lazy dog. Which answer is correct? The answer is a dog, not a cat. "
    "Questions and answers: the capital of France is Paris; water boils at one hundred degrees. "
)
QUESTIONS = [
    "Question: Which animal is lazy?\nAnswer:",
    "Where does water boil?",
    "Question: The capital of France is\nAnswer:",
    "The quick brown fox jumps over the",
]
OPTIONS = [
    ["the dog", "the quick brown fox", "a cat"],
    ["at one hundred degrees", "Paris"],
    ["Paris", "water", "dog"],
    ["lazy dog.", "cat", "answer is correct", "fox"],
]
# continuations given as they are (no delimiter): BPE merges across the boundary and a trailing space that
# the harness moves from the question to the option
QUESTIONS_NODELIM = ["The quick brown fo", "The capital of France is ", "the capital of Fra", "water bo"]
OPTIONS_NODELIM = [["x jumps", "xes"], ["Paris", "Lyon"], ["nce is", "nce was"], ["ils at one", "iling"]]


def tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320, special_tokens=["<pad>", "<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator([TEXT] * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def official_wrapper_class(root: Path):
    """``_EvalWrapperReversed`` with the torchtune names it imports but does not call replaced by stand-ins."""
    import lm_eval.models.utils
    import lm_eval.models.utils_hf

    lm_eval.models.utils.pad_and_concat = lm_eval.models.utils_hf.pad_and_concat
    names = {
        "torchtune": ["config", "training", "utils"],
        "torchtune.modules": ["TransformerDecoder"],
        "torchtune.modules.tokenizers": ["ModelTokenizer"],
        "torchtune.recipe_interfaces": ["EvalRecipeInterface"],
        "torchtune.data": ["left_pad_sequence"],
        "torchtune.generation": ["generate"],
        "simulation.evaluation": ["evaluate"],
    }
    for module, attrs in names.items():
        stub = types.ModuleType(module)
        for a in attrs:
            setattr(stub, a, type(a, (), {}))
        sys.modules[module] = stub
    sys.path.insert(0, str(root))
    # the file runs its evaluation script at import (argparse, checkpoints): execute its definitions only
    source = (root / "simulation" / "run_evaluate.py").read_text()
    namespace = {"__name__": "simulation.run_evaluate"}
    exec(compile(source[: source.index("\nparser = argparse.ArgumentParser(")], "run_evaluate.py", "exec"), namespace)
    return namespace["_EvalWrapperReversed"]


class TorchtuneStyleTokenizer:
    def __init__(self, tok):
        self.tok, self.bos_id, self.eos_id, self.pad_id = tok, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id

    def encode(self, text, add_bos=True, add_eos=False):
        ids = self.tok(text, add_special_tokens=False)["input_ids"]
        return [self.bos_id] * add_bos + ids + [self.eos_id] * add_eos


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("official", type=Path, help="checkout of apple/ml-reversal-blessing")
    args = ap.parse_args()
    import transformers
    from lm_eval.api.instance import Instance
    from lm_eval.api.model import CacheHook

    tok = tokenizer()
    tok.save_pretrained(HERE / "tokenizer")
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=len(tok),
        n_positions=64,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g)
            value = (name.endswith(".weight") and "ln" in name) + 0.2 * r if "ln" in name else 0.3 * r
            p.copy_(value.half().float())
    model.save_pretrained(HERE / "gpt2", safe_serialization=True)
    state = {k: v.half().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}  # tied
    save_file(state, HERE / "gpt2" / "model.safetensors", metadata={"format": "pt"})

    wrapper_class = official_wrapper_class(args.official)
    wrapper = wrapper_class.__new__(wrapper_class)
    wrapper._model = lambda ids: model(ids).logits
    wrapper._tokenizer = TorchtuneStyleTokenizer(tok)
    wrapper._max_seq_length, wrapper._batch_size, wrapper._device = 64, 4, torch.device("cpu")
    wrapper._rank, wrapper._world_size, wrapper.cache_hook = 0, 1, CacheHook(None)
    wrapper.AUTO_MODEL_CLASS, wrapper.logits_cache, wrapper.backend = transformers.AutoModelForCausalLM, True, "causal"
    out = {}
    for key, questions, options, delimiter in [
        ("", QUESTIONS, OPTIONS, " "),
        ("_nodelim", QUESTIONS_NODELIM, OPTIONS_NODELIM, ""),
    ]:
        requests = [
            Instance("loglikelihood", {}, (q, delimiter + a), idx=i)
            for q, opts in zip(questions, options)
            for i, a in enumerate(opts)
        ]
        with torch.no_grad():
            answers = wrapper.loglikelihood(requests, disable_tqdm=True)
        out["r2l3_score" + key] = torch.tensor([a[1] for a in answers], dtype=torch.float64)
        out["is_greedy" + key] = torch.tensor([a[2] for a in answers])
    save_file(out, HERE / "r2l_lm_golden.safetensors")
    write_golden_meta(
        HERE / "r2l_lm_golden.json",
        "https://github.com/apple/ml-reversal-blessing",
        args.official,
        "python packages/r2l_lm/tests/golden/make_golden.py <checkout of apple/ml-reversal-blessing>",
        official_function="simulation/run_evaluate.py:_EvalWrapperReversed.loglikelihood",
        transformers=transformers.__version__,
        lm_eval=importlib.import_module("lm_eval").__version__,
        questions=QUESTIONS,
        options=OPTIONS,
        questions_nodelim=QUESTIONS_NODELIM,
        options_nodelim=OPTIONS_NODELIM,
    )


if __name__ == "__main__":
    main()
