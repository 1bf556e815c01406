"""Private third-party methods our classes override keep the signatures we wrote against (#19 item 2).

``labcore.hub.HubMixin._save_pretrained`` overrides huggingface_hub's ``ModelHubMixin._save_pretrained``; the
models of diffucoder, starflow, tarflow_lm and tcsm override transformers' ``PreTrainedModel._init_weights``.
Recorded from huggingface_hub 0.30.0 and 2.5.0, transformers 4.46.1 and 5.25.0 (the tested ranges).
"""

import inspect

import pytest


def _params(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_hub_mixin_save_pretrained_signature():
    from huggingface_hub import ModelHubMixin

    assert _params(ModelHubMixin._save_pretrained) == ["self", "save_directory"]


def test_pretrained_model_init_weights_signature():
    transformers = pytest.importorskip("transformers")
    assert _params(transformers.PreTrainedModel._init_weights) == ["self", "module"]
