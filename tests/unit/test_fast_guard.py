"""The fast path's guard (lobterm/backtest/fast.py): every field of QuoteParams, PaperConfig and
LatencyModel is either honoured by the fast path (an allow-list) or sends the backtest to the reference
path, saying which field; a field added to one of those dataclasses fails here until it is placed."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from lobterm.backtest.fast import (
    FAST_LATENCY_FIELDS,
    FAST_PAPER_FIELDS,
    FAST_QUOTE_FIELDS,
    OTHER_MODE_FIELDS,
    fast_path_refusal,
)
from lobterm.backtest.models import LatencyModel
from lobterm.trading.market_maker import QuoteParams
from lobterm.trading.paper import PaperConfig

# QuoteParams fields neither the kernel reads nor another mode owns: they send the run to the reference
# path when set (with the value that sends it there).
REFERENCE_ONLY = {"stale_after_ms": 500, "fair_value": "consolidated_microprice"}
# PaperConfig fields the kernel does not honour (it always applies the "book crosses our price" rule).
PAPER_REFERENCE_ONLY = {"cross_fills": False}


def test_every_field_is_classified_so_a_new_one_cannot_be_missed() -> None:
    quote = {f.name for f in fields(QuoteParams)}
    placed = FAST_QUOTE_FIELDS | OTHER_MODE_FIELDS | set(REFERENCE_ONLY)
    assert quote == placed, (
        f"QuoteParams fields not placed: {sorted(quote - placed)}; placed but gone: {sorted(placed - quote)}. "
        "Add each new field to FAST_QUOTE_FIELDS (the kernel reads it), OTHER_MODE_FIELDS (only another "
        "mode reads it) or REFERENCE_ONLY here (the fast path refuses it)"
    )
    assert not FAST_QUOTE_FIELDS & OTHER_MODE_FIELDS
    assert {f.name for f in fields(PaperConfig)} == FAST_PAPER_FIELDS | set(PAPER_REFERENCE_ONLY)
    assert not FAST_PAPER_FIELDS & set(PAPER_REFERENCE_ONLY)
    assert {f.name for f in fields(LatencyModel)} == FAST_LATENCY_FIELDS


def test_defaults_run_on_the_fast_path() -> None:
    assert fast_path_refusal(QuoteParams(), paper=PaperConfig(), latency=LatencyModel()) is None


@pytest.mark.parametrize("name", sorted(REFERENCE_ONLY))
def test_a_field_the_kernel_does_not_read_sends_the_run_to_the_reference_path_by_name(name: str) -> None:
    why = fast_path_refusal(replace(QuoteParams(), **{name: REFERENCE_ONLY[name]}))
    assert why is not None and f"QuoteParams.{name}" in why and "reference path" in why


def test_other_modes_go_to_the_reference_path_and_their_fields_do_not_matter_in_ladder_mode() -> None:
    why = fast_path_refusal(QuoteParams(mode="avellaneda_stoikov"))
    assert why is not None and "ladder mode only" in why
    assert fast_path_refusal(QuoteParams(gamma=0.5, k=3.0, estimate_k=True)) is None


def test_queue_and_latency_models_run_on_the_fast_path() -> None:
    paper = PaperConfig(cancel_model="power3:2", new_latency_ns=5, latency_jitter_ns=3, latency_seed=9)
    assert fast_path_refusal(QuoteParams(), paper=paper, latency=LatencyModel(5, 2, 3, 4, 7)) is None


@pytest.mark.parametrize("name", sorted(PAPER_REFERENCE_ONLY))
def test_a_paper_setting_the_kernel_does_not_model_sends_the_run_to_the_reference_path(name: str) -> None:
    why = fast_path_refusal(QuoteParams(), paper=replace(PaperConfig(), **{name: PAPER_REFERENCE_ONLY[name]}))
    assert why is not None and f"PaperConfig.{name}" in why and "reference path" in why
