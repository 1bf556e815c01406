import pytest
import torch

from labcore.testing import enable as pytest_configure  # noqa: F401  (opt in to the gpu/slow markers and fixtures)
from r2l_lm.arithmetic import make_digit_tokenizer
from r2l_lm.training import tiny_llama

TEXT = (
    "The quick brown fox jumps over the lazy dog. Which answer is correct? The answer is a dog, not a cat. "
    "Questions and answers: the capital of France is Paris; water boils at one hundred degrees. "
)


@pytest.fixture(scope="session")
def bpe_tokenizer():
    """A small byte-level BPE tokenizer trained offline (BPE merges make joint tokenization matter)."""
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


def _model(tok, seed):
    torch.manual_seed(seed)
    model = tiny_llama(
        len(tok),
        hidden=32,
        layers=2,
        heads=2,
        max_len=256,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    with torch.no_grad():  # larger logits than the default init so log-probs differ clearly between options
        model.lm_head.weight.mul_(20)
    return model.eval()


@pytest.fixture(scope="session")
def bpe_model(bpe_tokenizer):
    return _model(bpe_tokenizer, 0)


@pytest.fixture(scope="session")
def digit_tokenizer():
    return make_digit_tokenizer()


@pytest.fixture(scope="session")
def digit_model(digit_tokenizer):
    return _model(digit_tokenizer, 1)
