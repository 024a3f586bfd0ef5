"""`[ui] ticks_per_row`: "auto" (the default) or a whole number of ticks in 1..1000, anything else refused in
one line naming the key (fuzzed through the real loader); and the auto zoom's pick from a typical move."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lobterm.config import Config, ConfigError, load
from lobterm.widgets.auto_zoom import pick_ticks_per_row, typical_move_ticks
from lobterm.widgets.ladder_model import ZOOMS
from tests.unit.test_config_fuzz import toml_value


def test_auto_is_the_default_and_a_number_keeps_its_meaning(tmp_path):
    assert Config().ui.ticks_per_row == "auto"
    for text, want in (('"auto"', "auto"), ("1", 1), ("5", 5), ("3", 3), ("1000", 1000)):
        path = tmp_path / "ui.toml"
        path.write_text(f"[ui]\nticks_per_row = {text}\n")
        assert load(path, use_defaults=False).ui.ticks_per_row == want


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.sampled_from([0, 1, 1000, 1001, -1]),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
        st.text(max_size=10),
        st.sampled_from(["auto", "AUTO", " auto", "5", ""]),
        st.lists(st.integers(0, 10), max_size=3),
    )
)
def test_any_value_is_taken_or_refused_in_one_line_naming_the_key(tmp_path_factory, value):
    path = tmp_path_factory.getbasetemp() / "tpr.toml"
    path.write_text(f"[ui]\nticks_per_row = {toml_value(value)}\n")
    good = value == "auto" or (type(value) is int and 1 <= value <= 1000)
    if good:
        assert load(path, use_defaults=False).ui.ticks_per_row == value
        return
    with pytest.raises(ConfigError) as err:
        load(path, use_defaults=False)
    message = str(err.value)
    assert "ui.ticks_per_row" in message and '"auto" or a whole number in 1..1000' in message
    assert "\n" not in message


def test_the_pick_puts_the_typical_move_on_about_a_third_of_the_rows():
    # 59 ticks per sqrt(s) (the default sim's BTC, 51% a year): a 30 s move of ~323 ticks.
    move = typical_move_ticks(59.0**2)
    assert move == pytest.approx(59.0 * math.sqrt(30))
    assert pick_ticks_per_row(move, 42, ZOOMS) == 20  # 16 of 42 rows
    assert pick_ticks_per_row(move, 17, ZOOMS) == 50  # 6.5 of 17 rows
    assert pick_ticks_per_row(0.0, 42, ZOOMS) == 1
    assert pick_ticks_per_row(1e9, 42, ZOOMS) == ZOOMS[-1]


@given(move=st.floats(min_value=0, max_value=1e7), rows=st.integers(1, 500))
def test_the_pick_is_in_the_series_and_within_its_step_of_a_third(move, rows):
    tpr = pick_ticks_per_row(move, rows, ZOOMS)
    assert tpr in ZOOMS
    want = move / max(1.0, rows / 3)
    if ZOOMS[0] < want < ZOOMS[-1]:
        assert tpr / 2.5 <= want <= tpr * 2.5
