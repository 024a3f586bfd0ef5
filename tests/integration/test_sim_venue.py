"""The embedded sim venue through the real kernel: a believable market, our orders matched for real."""

from __future__ import annotations

import json
import subprocess
import sys

from lobterm.assemble import build_sim_kernel
from lobterm.config import load
from lobterm.engine.events import BUY, SELL, BookDelta, BookGap, Fill, Rejected
from lobterm.headless import run_headless


def _kernel(seed: int = 11):
    cfg = load(use_defaults=False, overrides={"sim": {"seed": seed}})
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    venue.open()
    return kernel, venue, kernel.default_market


def test_same_seed_gives_same_events_and_state_hash() -> None:
    cfg = load(use_defaults=False, overrides={"sim": {"seed": 42}})
    a = run_headless(cfg, 20)
    b = run_headless(cfg, 20)
    assert a.state_hash == b.state_hash
    assert (a.events, a.venue_trades) == (b.events, b.venue_trades)
    c = run_headless(load(use_defaults=False, overrides={"sim": {"seed": 43}}), 20)
    assert c.state_hash != a.state_hash


def test_published_l2_book_mirrors_the_matching_book_every_step() -> None:
    kernel, venue, m = _kernel()
    for _ in range(400):
        venue.step()
        assert m.l2.valid
        assert m.l2.depth(BUY, 1000) == venue.book.depth(BUY)
        assert m.l2.depth(SELL, 1000) == venue.book.depth(SELL)
    assert m.trades > 0, "noise takers should have traded in 20 simulated seconds"
    assert kernel.bus.errors == 0


def test_market_has_a_tight_two_sided_book_most_of_the_time() -> None:
    kernel, venue, m = _kernel(seed=5)
    two_sided = tight = 0
    for _ in range(2000):
        venue.step()
        bb, ba = m.l2.best_bid(), m.l2.best_ask()
        if bb and ba:
            two_sided += 1
            assert bb[0] < ba[0], "the venue's book is never crossed at rest"
            tight += ba[0] - bb[0] <= 3
    assert two_sided > 1900
    assert tight > 0.8 * two_sided
    assert m.l2.level_count(BUY) >= 15 and m.l2.level_count(SELL) >= 15


def test_our_resting_order_is_in_the_venue_book_and_marked_as_ours() -> None:
    kernel, venue, m = _kernel()
    bid = m.l2.best_bid()[0]
    before = m.l2.level_size(BUY, bid)
    oid = kernel.buy(m, bid, 7)
    assert venue.book.order(oid)[:3] == (BUY, bid, 7)
    assert venue.book.queue_position(oid) == before
    assert m.l2.level_size(BUY, bid) == before + 7
    assert m.unified.our_size(BUY, bid) == 7
    assert kernel.oms.working[oid].state == "working"
    kernel.cancel_at(m, bid)
    assert oid not in venue.book and oid not in kernel.oms.working
    assert m.unified.our_size(BUY, bid) == 0
    assert m.l2.level_size(BUY, bid) == before


def test_our_marketable_order_gets_real_fills_from_the_matching_engine() -> None:
    kernel, venue, m = _kernel()
    fills = []
    kernel.bus.subscribe(Fill, lambda e: fills.append(e) if e.owner == 1 else None)
    ask, ask_size = m.l2.best_ask()
    kernel.buy(m, ask, ask_size + 5)  # takes the whole best ask level, the rest rests or goes deeper
    ours = [f for f in fills if not f.is_maker]
    assert sum(f.size for f in ours) >= ask_size
    assert all(f.price >= ask for f in ours)
    pos = kernel.inventory.position(m.venue, m.symbol)
    assert pos.lots == sum(f.size for f in fills)
    assert pos.cash == -sum(f.price * f.size for f in fills)
    assert pos.fees == sum(f.fee for f in fills) > 0  # taker fee


def test_resting_order_is_eventually_filled_by_noise_takers() -> None:
    kernel, venue, m = _kernel(seed=3)
    oid = kernel.buy(m, m.l2.best_bid()[0], 3)
    for _ in range(20 * 120):
        venue.step()
        if oid not in kernel.oms.working:
            break
    assert kernel.oms.fills >= 1
    assert kernel.inventory.position(m.venue, m.symbol).lots == 3


def test_bad_request_is_rejected_and_changes_nothing() -> None:
    kernel, venue, m = _kernel()
    rejects = []
    kernel.bus.subscribe(Rejected, rejects.append)
    state = venue.book.state()
    kernel.buy(m, m.l2.best_bid()[0], -5)
    kernel.buy(m, 0, 5)
    assert len(rejects) == 2
    assert "size" in rejects[0].reason and "price" in rejects[1].reason
    assert venue.book.state() == state
    assert kernel.oms.working == {}
    assert kernel.oms.rejects == 2


def test_sequence_gap_is_reported_and_the_book_resyncs_from_a_snapshot() -> None:
    kernel, venue, m = _kernel()
    gaps = []
    kernel.bus.subscribe(BookGap, gaps.append)
    venue.seq += 5  # the venue "loses" five deltas
    kernel.bus.publish(BookDelta(0, m.venue, m.symbol, venue.seq, BUY, 1, 1))
    assert len(gaps) == 1 and kernel.gaps == 1
    assert m.l2.valid, "the kernel asked the sim venue for a snapshot and applied it"
    venue.step()
    assert m.l2.depth(BUY, 1000) == venue.book.depth(BUY)


def test_headless_cli_without_market_maker_prints_one_json_summary() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "lobterm",
            "--no-default-config",
            "run",
            "--headless",
            "--duration",
            "5",
            "--seed",
            "9",
            "--json",
            "--no-mm",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["seed"] == 9 and summary["events"] > 0 and summary["venue_trades"] >= 0
    assert summary["our_orders"] == 0 and summary["position"] == "0.000 BTC"
    assert summary["best_bid"] < summary["best_ask"]


def test_headless_cli_rejects_a_bad_duration_with_a_message() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "lobterm", "--no-default-config", "run", "--headless", "--duration", "nan"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "duration" in out.stderr and "Traceback" not in out.stderr


def test_headless_run_with_market_maker_reconciles_fills_position_and_pnl() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "lobterm",
            "--no-default-config",
            "run",
            "--headless",
            "--duration",
            "60",
            "--seed",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    assert s["market_maker"] and s["our_orders"] > 50 and s["our_fills"] > 20
    assert s["reconciled"] and s["reconcile_problems"] == []
    from decimal import Decimal

    net = Decimal(s["realized_pnl"]) + Decimal(s["unrealized_pnl"]) - Decimal(s["fees"])
    assert net == Decimal(s["net_pnl"])


def test_headless_paper_run_keeps_our_orders_out_of_the_sim_matching_book() -> None:
    cfg = load(use_defaults=False, overrides={"sim": {"seed": 4}})
    s = run_headless(cfg, 30, paper=True)
    assert s.mode == "PAPER"
    assert s.our_fills > 0 and s.reconciled
    kernel, venue = build_sim_kernel(cfg, virtual=True, paper=True)
    venue.open()
    m = kernel.default_market
    oid = kernel.buy(m, m.l2.best_bid()[0], 5)
    assert oid in kernel.oms.working and oid not in venue.book  # virtual: only the paper desk holds it
    assert m.unified.our_size(BUY, m.l2.best_bid()[0]) == 5
