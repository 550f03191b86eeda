"""muss_builder.core.overrides: KEY=VALUE pairs to the nested dict a config validates."""

from __future__ import annotations

import pytest

from muss_builder.core.overrides import dotted_overrides


def test_dotted_keys_nest_and_values_read_as_yaml() -> None:
    got = dotted_overrides(["optim.lr=0.001", "data.fps=8", "screen_max_side=null", "a.b.c=[1, 2]"])
    assert got == {
        "optim": {"lr": 0.001},
        "data": {"fps": 8},
        "screen_max_side": None,
        "a": {"b": {"c": [1, 2]}},
    }
    assert dotted_overrides(["subtitles=crop", "own_thread=false"]) == {
        "subtitles": "crop",
        "own_thread": False,
    }


@pytest.mark.parametrize("pair", ["nonsense", "=3", " =x"])
def test_a_pair_without_a_key_or_value_is_refused_by_name(pair: str) -> None:
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        dotted_overrides([pair])
