"""Bad inputs give clear errors (issue #23): NaN/inf images, NaN guidance, renamed or wrapped reference files."""

import math

import pytest
import torch

from tarflow import TarFlow, TarFlowConfig
from tarflow.__main__ import main as cli


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_nan_or_inf_images_are_refused_by_every_density_entry_point(tiny_model, bad):
    x = torch.zeros(2, 2, 4, 4)
    x[1, 0, 2, 3] = bad
    for call in (tiny_model, tiny_model.log_prob, tiny_model.nll, tiny_model.bits_per_dim):
        with pytest.raises(ValueError, match=r"images x contains 1 NaN/inf.*\(1, 0, 2, 3\)"):
            call(x)
    with pytest.raises(ValueError, match="latents z"):
        tiny_model.inverse(torch.full((1, 16, 2), math.nan))


@pytest.mark.parametrize("guidance", [math.nan, math.inf, -0.5])
def test_guidance_must_be_a_finite_nonnegative_number(tiny_model, guidance):
    with pytest.raises(ValueError, match="guidance"):
        tiny_model.sample(2, torch.tensor([0, 1]), guidance=guidance)
    with pytest.raises(ValueError, match="guidance"):
        tiny_model.inverse(torch.randn(2, 16, 2), torch.tensor([0, 1]), guidance=guidance)


def test_sampling_still_redraws_nan_samples_and_denoises_the_rest(tiny_model, monkeypatch):
    calls = []
    inverse = TarFlow.inverse

    def flaky(self, z, *args):  # the first draw of row 0 is NaN
        out = inverse(self, z, *args)
        if not calls:
            out[0] = math.nan
        calls.append(len(z))
        return out

    monkeypatch.setattr(TarFlow, "inverse", flaky)
    x = tiny_model.sample(3, torch.tensor([0, 1, 2]), denoise=True)
    assert calls == [3, 1] and torch.isfinite(x).all()


def _state(in_channels, img_size, patch_size, channels, blocks, layers):
    """A state dict in the reference layout (TarFlow's names and shapes are the reference's)."""
    return TarFlow(TarFlowConfig(in_channels, img_size, patch_size, channels, blocks, layers)).state_dict()


def _reference_file(tmp_path, name, state):
    path = tmp_path / name
    torch.save(state, path)
    return path


def test_reference_checkpoint_renamed_to_another_patch_size_is_refused(tmp_path):
    state = _state(3, 16, 4, 64, 3, 2)  # 3-channel, patch 4
    assert TarFlow.from_reference_checkpoint(_reference_file(tmp_path, "x_model_4_64_3_2_0.05.pth", state))
    for name in ("imagenet64_model_2_64_3_2_0.05.pth", "m_2_64_3_2_0.05.pth"):  # read as 12 channels of 2x2
        with pytest.raises(ValueError, match=r"patch_size=2 .*12-channel.*renamed.*\[4\]"):
            TarFlow.from_reference_checkpoint(_reference_file(tmp_path, name, state))
    # a model that really takes 12-channel images loads when told so
    model = TarFlow.from_reference_checkpoint(tmp_path / "m_2_64_3_2_0.05.pth", in_channels=12)
    assert (model.config.in_channels, model.config.patch_size) == (12, 2)


@pytest.mark.parametrize("key", ["model", "state_dict", "ema"])
def test_wrapped_reference_state_dict_is_unwrapped(tmp_path, key):
    state = _state(3, 16, 4, 64, 2, 2)
    path = _reference_file(tmp_path, "imagenet64_model_4_64_2_2_0.05.pth", {key: state, "step": 7})
    model = TarFlow.from_reference_checkpoint(path)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_unreadable_reference_state_dicts_say_what_they_hold(tmp_path):
    state = _state(3, 16, 4, 64, 2, 2)
    for content, match in [({"model": state, "ema": state}, "several wrappers"),
                           ({"weights": [1, 2]}, "none of the wrappers"), ([state], "list")]:
        with pytest.raises(ValueError, match=match):
            TarFlow.from_reference_checkpoint(_reference_file(tmp_path, "imagenet64_model_4_64_2_2_0.05.pth", content))


@pytest.mark.parametrize("argv", [["train", "--steps", "0"], ["train", "--steps", "-1"], ["sample", "--num", "0"],
                                  ["sample", "--cfg", "nan"], ["evaluate", "--batch-size", "0"]])
def test_cli_refuses_zero_negative_and_nan_arguments_before_any_work(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli([*argv, "--out" if argv[0] != "evaluate" else "--data", str(tmp_path / "never")])
    assert exc.value.code == 2
    assert f"argument {argv[1]}: must be" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_fit_refuses_zero_steps(tmp_path):
    from tarflow import PRESETS
    from tarflow.training import fit

    with pytest.raises(ValueError, match="steps must be >= 1"):
        fit(PRESETS["digits-tiny"](), None, tmp_path / "run", steps=0)
    assert not (tmp_path / "run").exists()
