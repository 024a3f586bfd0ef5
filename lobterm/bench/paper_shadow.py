"""Paper fills against the sim's matching engine on the same session and the same quotes: a shadow desk.

One headless sim session (virtual clock) with the market maker trading in the sim's matching book. A
`PaperDesk` rides along as a shadow: every request the kernel sends the sim (submit, cancel, amend) goes
to the desk too, with the same order id at the same moment, and the desk is fed the session's market
data as a paper desk on a real venue sees it: the trades, and the book with our own lots taken out (the
others' book; a venue's public feed of a market our orders are not in). So both fill the same quotes
against the same flow, and the difference is the desk's fill rules alone (queue position from L2, how
a trade decomposes, fees, partial fills), not two markets that diverged.

One thing the session cannot say is what a market without our orders would have printed where a taker
met ours. `reprice=True` (default): the taker meets the next others' lots, so the trade prints at our
price if others are left there at the end of the update, else one tick beyond it (through our price).
`reprice=False`: it prints where it met ours; then the desk, whose queue estimate only learns of the
update's cancels after its trades (the sim publishes an update's trades before its levels, as a venue's
separate trade and depth streams do), keeps our order behind lots that were gone when the taker came:
seed 1 step 49, 139 lots ahead at our price were all cancelled and a taker sold 10 into our bid in the
same update; the matching engine filled us, the desk two steps later. No desk does better on such a
feed: on a real venue's feed a trade at our price met external lots, which time priority puts ahead of
a later order; the sim printed this one only because our order was there.

Both sets of fills are measured the same way against the same mid (the others' mid at the end of the
step before the fill; half ticks, exact integers): spread captured = side * (mid - price), adverse
selection = side * (mid `horizon_s` later - mid), net = side * (the session's last mid - price) -
fees, each times the lots; side = +1 for a buy. Net is the P&L of the fills marked to the end (for the
matched fills it equals the headless summary's net P&L to the last digit).

python -m lobterm.bench.paper_shadow [SECONDS] [SEEDS] ['{"cancel_model": "probabilistic"}']

prints, per seed and per reading (`reprice`), both runs' figures and the per-order matching
(`per_order`); `python -m lobterm.bench.paper_shadow closed SECONDS SEEDS [FAIR_SEED]` runs the two-run
comparison (`closed_loop`). A measurement, not a test (tests/integration/test_paper_vs_matching.py asserts on it).
The sim's own `--paper` mode is the other comparison (a separate run whose market never holds our
orders): `closed_loop`, and the README's paper section for why that one differs more.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from lobterm.engine.events import BUY, OUR_OWNER, SELL, BookDelta, BookSnapshot, Fill, Trade

__all__ = ["FillSet", "Shadow", "closed_loop", "main", "per_order", "shadow_session"]


@dataclass(slots=True)
class FillSet:
    """Our fills in one run, measured against the shared mid. P&L figures are half ticks times lots;
    fees are millionths of a tick times lots (the engine's `Fill.fee`)."""

    fills: int = 0
    lots: int = 0
    spread2: int = 0
    adverse2: int = 0
    net2: int = 0
    fees: int = 0
    #: (step, order id, side, price, size) of every fill, for per-fill matching.
    rows: list[tuple[int, int, int, int, int]] = field(default_factory=list)

    def as_dict(self, tick_lot: Decimal) -> dict[str, Any]:
        """Figures in quote currency (`tick_lot`: the value of one tick times one lot)."""
        fees = Decimal(self.fees) * tick_lot / 1_000_000
        q = Decimal("0.0001")
        return {
            "fills": self.fills,
            "lots": self.lots,
            "spread": str((Decimal(self.spread2) * tick_lot / 2).quantize(q)),
            "adverse": str((Decimal(self.adverse2) * tick_lot / 2).quantize(q)),
            "fees": str(fees.quantize(q)),
            "net": str((Decimal(self.net2) * tick_lot / 2 - fees).quantize(q)),
        }


@dataclass(slots=True)
class Shadow:
    """One session: the matching engine's fills of our quotes and the shadow paper desk's."""

    seed: int
    seconds: float
    matched: FillSet
    paper: FillSet
    fills_by_rule: dict[str, int]
    tick_lot: Decimal
    cpu_s: float = 0.0

    def net(self, which: FillSet) -> Decimal:
        return Decimal(which.net2) * self.tick_lot / 2 - Decimal(which.fees) * self.tick_lot / 1_000_000

    def as_dict(self) -> dict[str, Any]:
        m, p = self.matched, self.paper
        return {
            "seed": self.seed,
            "seconds": self.seconds,
            "matched": m.as_dict(self.tick_lot),
            "paper": p.as_dict(self.tick_lot),
            "fills_ratio": round(p.fills / m.fills, 3) if m.fills else None,
            "lots_ratio": round(p.lots / m.lots, 3) if m.lots else None,
            "paper_rules": dict(self.fills_by_rule),
            "cpu_s": round(self.cpu_s, 2),
        }


def _book_ours(book: Any, side: int, price: int) -> int:
    return sum(size for _oid, size, owner in book.orders_at(side, price) if owner == OUR_OWNER)


def shadow_session(
    seed: int,
    seconds: float,
    *,
    sim: dict[str, Any] | None = None,
    mm: dict[str, Any] | None = None,
    paper: dict[str, Any] | None = None,
    horizon_s: float = 5.0,
    reprice: bool = True,
) -> Shadow:
    """Run `seconds` of the sim (seed `seed`, [sim] overrides `sim`, [mm] overrides `mm`) with the market
    maker in the matching book and a shadow paper desk (PaperConfig overrides `paper`; fees and the cross
    rule from [sim] as `--paper` sets them) on the same quotes; `reprice`: how the trades that met our
    orders reach the desk (the module docstring)."""
    from lobterm.assemble import build
    from lobterm.bus import Bus
    from lobterm.config import load
    from lobterm.trading.paper import PaperConfig, PaperDesk

    overrides: dict[str, Any] = {"sim": {"seed": seed, **(sim or {})}}
    if mm:
        overrides["mm"] = mm
    config = load(use_defaults=False, overrides=overrides)
    asm = build(config, "headless", virtual=True)
    kernel, venue = asm.kernel, asm.sim
    assert venue is not None
    if venue.latency_ns:
        raise ValueError("the shadow desk mirrors requests as they are sent: run the sim without latency")
    scfg = venue.config
    pcfg: dict[str, Any] = {
        "maker_fee_ppm": scfg.maker_fee_ppm,
        "taker_fee_ppm": scfg.taker_fee_ppm,
        "cross_fills": scfg.paper_cross_fills,
    }
    pcfg.update(paper or {})
    desk = PaperDesk(venue.name, venue.instrument, PaperConfig(**pcfg))
    pbus = Bus()
    desk.attach(pbus, kernel.clock)
    book = venue.book
    matched, shadow = FillSet(), FillSet()
    pending: list[tuple[FillSet, int, Fill]] = []  # (which, step, fill): measured once the mids are known

    def on_paper_fill(ev: Fill) -> None:
        pending.append((shadow, venue.steps, ev))

    pbus.subscribe(Fill, on_paper_fill)

    # Requests: the desk first (it sees the book as it was when the request was sent), then the sim.
    sim_submit, sim_cancel, sim_amend = venue.submit, venue.cancel, venue.amend

    def submit(order_id: int, symbol: str, side: int, price: int, size: int, *a: Any, **k: Any) -> None:
        desk.submit(order_id, symbol, side, price, size, *a, **k)
        sim_submit(order_id, symbol, side, price, size, *a, **k)

    def cancel(order_id: int, symbol: str) -> None:
        desk.cancel(order_id, symbol)
        sim_cancel(order_id, symbol)

    def amend(order_id: int, symbol: str, price: int | None = None, size: int | None = None) -> None:
        desk.amend(order_id, symbol, price, size)
        sim_amend(order_id, symbol, price, size)

    # Market data: what the sim publishes, with our own lots taken out of the levels, in book order.
    sim_collect = venue._collect  # noqa: SLF001 - wrapped for this measurement only

    def collect(out: list[Any]) -> None:
        n = len(out)
        sim_collect(out)
        ours = {ev.trade_id for ev in out[n:] if type(ev) is Fill and ev.owner == OUR_OWNER and ev.is_maker}
        for ev in out[n:]:
            t = type(ev)
            if t is Trade:
                if reprice and ev.trade_id in ours:
                    # It met our order: without us the taker meets the next others' lots, at our price
                    # if any are left there at the end of the update, else beyond it.
                    side = 1 - ev.aggressor
                    if book.level_size(side, ev.price) <= _book_ours(book, side, ev.price):
                        step = -1 if side == BUY else 1
                        ev = Trade(
                            ev.ts, ev.venue, ev.symbol, ev.price + step, ev.size, ev.aggressor, ev.trade_id
                        )
                desk.on_event(ev)
            elif t is BookDelta:
                others = ev.size - _book_ours(book, ev.side, ev.price)
                desk.on_event(BookDelta(ev.ts, ev.venue, ev.symbol, ev.seq, ev.side, ev.price, others))
            elif t is Fill and ev.owner == OUR_OWNER:
                pending.append((matched, venue.steps, ev))

    sim_snapshot = venue.publish_snapshot

    def publish_snapshot() -> None:
        sim_snapshot()

        def depth(side: int) -> tuple[tuple[int, int], ...]:
            levels = ((px, size - _book_ours(book, side, px)) for px, size in book.depth(side))
            return tuple((px, size) for px, size in levels if size > 0)

        desk.on_event(BookSnapshot(book.now, venue.name, scfg.symbol, venue.seq, depth(BUY), depth(SELL)))

    venue.submit, venue.cancel, venue.amend = submit, cancel, amend  # type: ignore[method-assign]
    venue._collect = collect  # type: ignore[method-assign]  # noqa: SLF001
    venue.publish_snapshot = publish_snapshot  # type: ignore[method-assign]

    def others_mid2() -> int | None:
        bid = ask = None
        for px, size in book.depth(BUY):
            if size > _book_ours(book, BUY, px):
                bid = px
                break
        for px, size in book.depth(SELL):
            if size > _book_ours(book, SELL, px):
                ask = px
                break
        return None if bid is None or ask is None else bid + ask

    t0 = time.process_time()
    venue.open()
    mids: list[int | None] = [others_mid2()]  # mids[k]: the others' mid (half ticks) after k steps
    for mm_ in asm.market_makers:
        mm_.resume()
    steps = max(1, round(seconds * scfg.rate_hz))
    for _ in range(steps):
        venue.step()
        kernel.on_timer()
        mids.append(others_mid2())
    asyncio.run(kernel.shutdown(5.0, source="paper_shadow", stop=False))
    venue.state = "closed"
    cpu = time.process_time() - t0

    # Fill mids forward over steps with an empty side, then measure every fill.
    last = None
    filled: list[int] = []
    for m in mids:
        last = m if m is not None else last
        filled.append(last if last is not None else 0)
    horizon = round(horizon_s * scfg.rate_hz)
    end = filled[-1]
    for which, step, ev in pending:
        ref = filled[max(0, step - 1)]
        later = filled[min(len(filled) - 1, step - 1 + horizon)]
        sign = 1 if ev.side == BUY else -1
        which.fills += 1
        which.lots += ev.size
        which.spread2 += sign * (ref - 2 * ev.price) * ev.size
        which.adverse2 += sign * (later - ref) * ev.size
        which.net2 += sign * (end - 2 * ev.price) * ev.size
        which.fees += ev.fee
        which.rows.append((step, ev.order_id, ev.side, ev.price, ev.size))
    inst = venue.instrument
    return Shadow(
        seed, seconds, matched, shadow, dict(desk.fills_by_rule), inst.tick_size * inst.lot_size, cpu_s=cpu
    )


def per_order(r: Shadow) -> dict[str, dict[str, int]]:
    """Per-fill matching: each of our orders by how the desk filled it against the matching engine (same
    first step, price and lots: "same"; "later", "earlier", "other lots", "matched only", "paper only"),
    with its orders and the lots each run filled."""
    m: dict[int, list[tuple[int, int, int]]] = {}
    p: dict[int, list[tuple[int, int, int]]] = {}
    for rows, into in ((r.matched.rows, m), (r.paper.rows, p)):
        for step, oid, _side, price, size in rows:
            into.setdefault(oid, []).append((step, price, size))
    out: dict[str, dict[str, int]] = {}
    for oid in sorted(m.keys() | p.keys()):
        a, b = m.get(oid, []), p.get(oid, [])
        if a == b:
            kind = "same"
        elif not b:
            kind = "matched only"
        elif not a:
            kind = "paper only"
        elif b[0][0] > a[0][0]:
            kind = "later"
        elif b[0][0] < a[0][0]:
            kind = "earlier"
        else:
            kind = "other lots"
        row = out.setdefault(kind, {"orders": 0, "matched_lots": 0, "paper_lots": 0})
        row["orders"] += 1
        row["matched_lots"] += sum(x[2] for x in a)
        row["paper_lots"] += sum(x[2] for x in b)
    return out


def closed_loop(
    seed: int, seconds: float, *, fair_seed: int | None = None, paper: bool = False
) -> dict[str, Any]:
    """The other comparison: one run as `lobterm run --headless` (`paper=False`) or `--paper` does it, for
    a pair of runs on one seed. The paper run's sim never holds our orders, so its participants never
    react to them, and its random stream (fair price and participants alike) parts from the matched
    run's at the first difference. `fair_seed`: draw the fair price from its own stream instead (a
    `FairGroup` of one member at correlation 1: the same process, the same path in both runs), so that
    a pair differs by the participants' flow and the desk, not by the price path. Returns fills, lots
    and the headless P&L split (USDT strings)."""
    from lobterm.assemble import Assembly, attach_strategies, kernel_for, market_roles
    from lobterm.clock import VIRTUAL_EPOCH_NS, VirtualClock
    from lobterm.config import load, risk_limits
    from lobterm.trading.paper import PaperConfig, PaperVenue
    from lobterm.venues.sim import SimVenue
    from lobterm.venues.simgroup import FairGroup, GroupConfig

    config = load(use_defaults=False, overrides={"sim": {"seed": seed}})
    s = config.sim
    fair = None
    if fair_seed is not None:
        group = FairGroup(
            GroupConfig(correlation=1.0, seed=fair_seed),
            s.rate_hz,
            s.burst_per_min,
            s.burst_seconds,
            s.jump_per_min,
        )
        fair = group.member(0)
    venue = SimVenue(s, config.perp, fair=fair)
    traded: Any = venue
    if paper:
        pcfg = PaperConfig(
            maker_fee_ppm=s.maker_fee_ppm, taker_fee_ppm=s.taker_fee_ppm, cross_fills=s.paper_cross_fills
        )
        traded = PaperVenue(venue, pcfg)
    kernel = kernel_for(
        [traded], VirtualClock(VIRTUAL_EPOCH_NS), risk_limits=risk_limits(config), markouts=config.markouts
    )
    quote, hedge = market_roles(kernel, config)
    asm = attach_strategies(Assembly(kernel, "headless", venue, quote, hedge), config)
    venue.open()
    for mm_ in asm.market_makers:
        mm_.resume()
    for _ in range(max(1, round(seconds * s.rate_hz))):
        venue.step()
        kernel.on_timer()
    asyncio.run(kernel.shutdown(5.0, source="paper_shadow", stop=False))
    venue.state = "closed"
    inst = quote.instrument
    pos = kernel.inventory.position(quote.venue, quote.symbol)
    pnl = kernel.inventory.pnl(quote.venue, quote.symbol, quote.top()).in_quote(inst)
    engine = kernel.markouts.engine
    end = kernel.clock.now()
    engine.advance(end + 1)
    split = engine.summary(inst, pnl.net, end).get("pnl_split", {})
    return {
        "seed": seed,
        "fair_seed": fair_seed,
        "paper": paper,
        "fills": kernel.oms.fills,
        "lots": pos.bought + pos.sold,
        **(split if isinstance(split, dict) else {}),
    }


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "closed":  # python -m lobterm.bench.paper_shadow closed SECONDS SEEDS FAIR_SEED
        seconds = float(args[1])
        fair_seed = int(args[3]) if len(args) > 3 else None
        for seed in [int(x) for x in args[2].split(",")]:
            for paper_run in (False, True):
                print(
                    json.dumps(closed_loop(seed, seconds, fair_seed=fair_seed, paper=paper_run)), flush=True
                )
        return
    seconds = float(args[0]) if args else 300.0
    seeds = [int(x) for x in args[1].split(",")] if len(args) > 1 else [1, 2, 3]
    paper = json.loads(args[2]) if len(args) > 2 else None
    for seed in seeds:
        for reprice in (True, False):
            r = shadow_session(seed, seconds, paper=paper, reprice=reprice)
            print(json.dumps({"reprice": reprice, **r.as_dict(), "orders": per_order(r)}), flush=True)


if __name__ == "__main__":
    main()
