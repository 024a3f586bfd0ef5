"""The sim perpetual (`[sim] market = "perp"`) through the real kernel: funding at 8 h of virtual time,
liquidation at the computed price, the margin risk rule, and both surviving a recorded session."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from fractions import Fraction

from lobterm.assemble import build_sim_kernel
from lobterm.config import load
from lobterm.engine.events import (
    BUY,
    IOC,
    LIMIT,
    OUR_OWNER,
    SELL,
    Done,
    Funding,
    Liquidation,
    MarkPrice,
    PerpInfo,
    Rejected,
)
from lobterm.engine.instrument import FEE_SCALE
from lobterm.recording.reader import SessionReader
from lobterm.recording.verify import verify
from lobterm.services import start_recording
from lobterm.trading.margin import conservative_tick, distance_bps, liquidation_price

V, S = "sim", "BTC/USDT"
HOUR_NS = 3600 * 10**9
# A cheap market for long virtual runs: a step every 10 s, a thin book, little flow.
# touch_lots 150: the book deep enough to take 1 BTC within 5 levels (btc-spot's own touch is thinner).
CHEAP = {"rate_hz": 0.1, "depth_levels": 5, "churn_per_s": 0.5, "taker_per_s": 0.2, "touch_lots": 150}


def _perp(sim: dict | None = None, perp: dict | None = None, risk: dict | None = None):
    overrides = {"sim": {"seed": 5, "market": "perp", **(sim or {})}, "perp": perp or {}}
    if risk:
        overrides["risk"] = risk
    cfg = load(use_defaults=False, overrides=overrides)
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    return cfg, kernel, venue


def _take(kernel, side: int, lots: int) -> None:
    m = kernel.markets[(V, S)]
    px = m.l2.best_ask_price() + 50 if side == BUY else m.l2.best_bid_price() - 50
    kernel.oms.new_order(V, S, side, px, lots, IOC, tag="test")


def test_funding_is_paid_at_8_hours_of_virtual_time_by_a_long_with_the_rate_from_the_premium():
    _cfg, kernel, venue = _perp(CHEAP)
    seen: list = []
    kernel.bus.subscribe((Funding, PerpInfo, MarkPrice), seen.append)
    venue.open()
    t0 = kernel.clock.now()
    _take(kernel, BUY, 1000)  # 1.000 BTC long
    pos = kernel.inventory.position(V, S)
    assert pos.lots == 1000
    before = pos.realized
    funding = []
    while not funding:
        venue.step()
        funding = [e for e in seen if type(e) is Funding]
        assert kernel.clock.now() - t0 <= 8 * HOUR_NS + 10**10, "no funding by 8 h"
    ev = funding[0]
    assert ev.ts == t0 + 8 * HOUR_NS  # the step that reaches 8 h of sim time pays it
    assert ev.lots == 1000
    # The premium of a mark that tracks the index is tiny: the rate is the interest rate, 0.01%.
    assert ev.rate_ppb == 100_000
    assert ev.amount == ev.lots * ev.mark * ev.rate_ppb * FEE_SCALE // 10**9 > 0  # a long pays
    assert pos.funding == ev.amount
    assert pos.realized == before - Fraction(ev.amount, FEE_SCALE)
    paid = kernel.inventory.to_quote(V, S, Fraction(ev.amount, FEE_SCALE))
    assert paid == Decimal(ev.mark) / 10 * Decimal("0.0001")  # 1 BTC x mark x 0.01%, in USDT
    marks = [e for e in seen if type(e) is MarkPrice]
    assert marks and all(m.mark > 0 and m.index > 0 for m in marks)
    # P&L stays one number two ways: the cash books and the average-cost books, funding included.
    mark = Fraction(marks[-1].mark)
    assert pos.pnl(mark).net == pos.equity(mark)


def test_a_short_receives_a_positive_funding_rate():
    _cfg, kernel, venue = _perp(CHEAP, {"funding_interval_s": 60})
    got: list = []
    kernel.bus.subscribe(Funding, got.append)
    venue.open()
    _take(kernel, SELL, 500)
    for _ in range(7):
        venue.step()
    assert got and got[0].rate_ppb > 0 and got[0].lots == -500 and got[0].amount < 0
    assert kernel.inventory.position(V, S).funding == got[0].amount


def test_the_venue_liquidates_at_the_computed_price_and_the_session_keeps_it(tmp_path):
    # 200 USDT behind a 1 BTC long at 10x... the risk rule would refuse it: switched off here.
    cfg, kernel, venue = _perp(
        {"rate_hz": 5},
        {"collateral": "1000", "mark_smoothing_s": 1},
        {"max_leverage": "off", "min_liquidation_bps": "off"},
    )
    rec = start_recording(kernel, tmp_path, config=cfg, seed=cfg.sim.seed, checkpoint_every_s=5.0)
    liqs: list = []
    at_mark: list = []  # our position as each mark was published (before a liquidation in its batch)
    kernel.bus.subscribe(MarkPrice, lambda ev: at_mark.append(replace(kernel.inventory.position(V, S))))
    kernel.bus.subscribe(Liquidation, liqs.append)
    venue.open()
    for _ in range(10):
        venue.step()
        kernel.on_timer()
    _take(kernel, BUY, 1000)
    status = kernel.margin.status(V, S)
    assert status is not None and status.level != "liquidation"
    assert 0 < distance_bps(status) < 200  # 1000 USDT behind 65000: about 1% of room
    # Two resting orders the drop does not reach (the bid 4.5% down, inside the 5% price band): the
    # liquidation cancels them first.
    m = kernel.markets[(V, S)]
    resting = [
        kernel.oms.new_order(V, S, SELL, m.l2.best_ask_price() + 500, 1, LIMIT, tag="test"),
        kernel.oms.new_order(V, S, BUY, m.l2.best_bid_price() * 955 // 1000, 1, LIMIT, tag="test"),
    ]
    order_events: list = []
    kernel.bus.subscribe((Done, Liquidation), order_events.append)
    assert all(oid in kernel.oms.working for oid in resting)
    venue.shock(0.97)  # the fair price drops 3%: providers re-quote lower, the mark follows
    for _ in range(300):
        venue.step()
        kernel.on_timer()
        if liqs:
            break
    assert len(liqs) == 1, "no liquidation after a 3% drop"
    ev = liqs[0]
    before = at_mark[-1]  # the position the venue assessed (the mark in the same batch came first)
    deposit = Fraction(1000) / (Fraction("0.1") * Fraction("0.001"))
    collateral = deposit + before.realized - before.fees_value
    exact = liquidation_price(before.lots, before.avg_cost, collateral, Fraction(5, 1000))
    assert ev.price == conservative_tick(exact, before.lots)
    assert ev.side == SELL and ev.size == 1000 and ev.mark <= exact
    assert ev.fee == ev.price * ev.size * cfg.sim.taker_fee_ppm
    pos = kernel.inventory.position(V, S)
    assert pos.lots == 0 and pos.liquidations == 1
    assert venue.perp.books.position(V, S).lots == 0  # the venue's books agree
    assert not any(oid in kernel.oms.working for oid in resting)
    assert not [o for o in venue.book.resting_orders() if o[4] == OUR_OWNER]
    done = [e.order_id for e in order_events if type(e) is Done]
    assert sorted(done) == sorted(resting) and type(order_events[-1]) is Liquidation  # cancels first
    for _ in range(20):
        venue.step()
        kernel.on_timer()
    rec.close()
    with SessionReader(rec.path) as s:
        events = [ev for _, _, ev in s.events()]
    assert [e for e in events if type(e) is Liquidation] == [ev]
    assert any(type(e) is PerpInfo for e in events)
    notes = [e for e in events if getattr(e, "action", None) == "liquidation"]
    assert notes and notes[0].detail["price"] == str(kernel.markets[(V, S)].instrument.price(ev.price))
    result = verify(rec.path)  # a replay of the session reaches every checkpoint's hash
    assert result.ok and result.mismatch is None, result


def test_the_margin_rule_blocks_an_order_that_would_breach_max_leverage_in_the_sim():
    _cfg, kernel, venue = _perp(perp={"collateral": "20000"})
    rejected: list = []
    kernel.bus.subscribe(Rejected, rejected.append)
    venue.open()
    for _ in range(5):
        venue.step()
    _take(kernel, BUY, 2000)  # 2 BTC: 130000 notional on 20000, 6.5x
    assert kernel.inventory.position(V, S).lots == 2000 and not rejected
    _take(kernel, BUY, 1500)  # 3.5 BTC would be 11.4x: above the 10x default
    assert kernel.inventory.position(V, S).lots == 2000
    assert len(rejected) == 1
    reason = rejected[0].reason
    assert reason.startswith("risk: margin: a position of 3.500 would be 11.") and "(max 10x)" in reason
    assert "\n" not in reason
    _take(kernel, SELL, 500)  # reducing is never blocked
    assert kernel.inventory.position(V, S).lots == 1500
