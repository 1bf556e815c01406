"""labcore.presets: factories take overrides, create builds, unknown names raise one KeyError with the choices."""

from dataclasses import dataclass
from functools import partial

import pytest

from labcore.presets import Presets, UnknownPresetError


@dataclass
class Small:
    width: int = 4


@dataclass
class Other:
    depth: int = 1


def test_factories_take_overrides_and_create_builds_by_config_type():
    presets = Presets(
        "demo",
        {Small: lambda c: ("small", c.width), Other: lambda c: ("other", c.depth)},
        {"small-8": partial(Small, width=8), "other": Other},
    )
    assert presets["small-8"](width=16) == Small(16) and presets["small-8"]() == Small(8)  # a fresh config each call
    assert presets.create("small-8", width=2) == ("small", 2) and presets.create("other") == ("other", 1)
    assert presets.names() == sorted(presets) == ["other", "small-8"] and len(presets) == 2
    with pytest.raises(TypeError, match="demo builds models from Small, Other, not int"):
        presets.build(3)


def test_unknown_name_lists_close_matches_and_every_name():
    presets = Presets("demo", Small, {"imagenet64-cond": Small, "imagenet128-cond": Small, "afhq-256": Small})
    with pytest.raises(UnknownPresetError) as err:
        presets.create("imagenet-64-cond")
    assert isinstance(err.value, KeyError)
    assert str(err.value) == (
        "demo has no preset 'imagenet-64-cond'; did you mean 'imagenet64-cond' or "
        "'imagenet128-cond'? presets: afhq-256, imagenet128-cond, imagenet64-cond"
    )
    with pytest.raises(UnknownPresetError, match=r"no preset \['x'\]; presets: afhq-256"):  # unhashable: same error
        presets[["x"]]
    with pytest.raises(ValueError, match="at least one preset"):
        Presets("demo", Small, {})


def test_configs_of_one_preset_share_no_mutable_argument():
    presets = Presets("demo", Small, {"listy": partial(Other, depth=[1, 2])})
    a, b = presets["listy"](), presets["listy"]()
    a.depth.append(3)
    assert b.depth == [1, 2] and presets["listy"]().depth == [1, 2]


def test_cli_config_exits_with_the_message():
    presets = Presets("demo", Small, {"small-8": partial(Small, width=8)})
    assert presets.cli_config("small-8", width=3) == Small(3)
    with pytest.raises(SystemExit, match="did you mean 'small-8'"):
        presets.cli_config("small8")
