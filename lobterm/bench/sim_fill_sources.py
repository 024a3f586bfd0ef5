"""Where a market maker's fills in the sim come from: our maker fills split by the kind of taker that
hit them (informed, noise market order, noise marketable IOC), with each kind's edge against the sim's
fair price at the fill, capture against the mid before the step, and the mid's move 5 s later (ticks,
lot-weighted, signed so that positive is good for us), beside the headless P&L split.

python -m lobterm.bench.sim_fill_sources SEED '{"spread_ticks": 20, ...}' ['{"vol_bps": 0.5}'] [SECONDS]

A diagnosis, not a test: it wraps the sim's matching book to see which participant sent each order.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from typing import Any

from lobterm.engine.events import BUY, MARKET, OUR_OWNER, Event, Fill
from lobterm.venues import sim as simmod

__all__ = ["fill_sources", "main"]


def fill_sources(seed: int, mm: dict[str, Any], sim: dict[str, Any], seconds: float) -> dict[str, Any]:
    """Run headless (virtual clock) and return the P&L split and the per-kind figures of our fills."""
    from lobterm.config import load
    from lobterm.headless import run_headless

    records: list[tuple[int, str, int, int, int, float]] = []
    mids: list[float] = []
    base_book: Any = getattr(simmod, "MatchingBook")  # noqa: B009 - wrapped for this diagnosis only
    base_init = simmod.SimVenue.__init__

    class _Book(base_book):
        kind = "none"
        sim: Any = None

        def submit(self, oid: int, side: int, price: int, size: int, otype: int, owner: int, stp: int) -> Any:
            v = self.sim
            if v is not None and owner == simmod.TAKER_OWNER:
                if v.informed_trades != getattr(self, "_informed", 0):
                    self._informed = v.informed_trades
                    self.kind = "informed"
                else:
                    self.kind = "noise market" if otype == MARKET else "noise ioc"
            return base_book.submit(self, oid, side, price, size, otype, owner, stp)

        def drain(self) -> list[Event]:
            evs: list[Event] = base_book.drain(self)
            v = self.sim
            for ev in evs:
                if v is not None and type(ev) is Fill and ev.owner == OUR_OWNER and ev.is_maker:
                    records.append((v.steps, self.kind, ev.side, ev.price, ev.size, v.fair))
            return evs

    def init(self: simmod.SimVenue, *a: Any, **k: Any) -> None:
        base_init(self, *a, **k)
        self.book.sim = self  # type: ignore[attr-defined]
        publish = self._publish

        def recorded() -> None:
            publish()
            bb, ba = self.book.best_bid(), self.book.best_ask()
            if bb is not None and ba is not None:
                while len(mids) <= self.steps:
                    mids.append((bb + ba) / 2.0)
                mids[self.steps] = (bb + ba) / 2.0

        self._publish = recorded  # type: ignore[method-assign]

    setattr(simmod, "MatchingBook", _Book)  # noqa: B010
    simmod.SimVenue.__init__ = init  # type: ignore[method-assign]
    try:
        cfg = load(use_defaults=False, overrides={"sim": {"seed": seed, **sim}, "mm": mm})
        res = run_headless(cfg, seconds)
    finally:
        setattr(simmod, "MatchingBook", base_book)  # noqa: B010
        simmod.SimVenue.__init__ = base_init  # type: ignore[method-assign]
    horizon = round(5.0 * cfg.sim.rate_hz)
    agg: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0, 0.0, 0.0])
    for step, kind, side, px, size, fair in records:
        if step < 1 or step + horizon >= len(mids):
            continue
        sign = 1 if side == BUY else -1
        a = agg[kind]
        a[0] += 1
        a[1] += size
        a[2] += sign * (fair - px) * size
        a[3] += sign * (mids[step - 1] - px) * size
        a[4] += sign * (mids[step + horizon] - mids[step - 1]) * size
    kinds = {
        k: {
            "fills": int(n),
            "lots": int(lots),
            "edge_vs_fair_ticks": e / lots,
            "capture_ticks": c / lots,
            "move_5s_ticks": m / lots,
        }
        for k, (n, lots, e, c, m) in sorted(agg.items())
    }
    markouts = res.markouts or {}
    split = {k: v for k, v in markouts.get("pnl_split", {}).items() if k != "horizon_s"}
    return {"fills": res.our_fills, "split": split, "kinds": kinds}


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    seed = int(args[0]) if args else 1
    mm = json.loads(args[1]) if len(args) > 1 else {}
    sim = json.loads(args[2]) if len(args) > 2 else {}
    seconds = float(args[3]) if len(args) > 3 else 600.0
    out = fill_sources(seed, mm, sim, seconds)
    print(f"fills {out['fills']}  " + "  ".join(f"{k} {v}" for k, v in out["split"].items()))
    for k, d in out["kinds"].items():
        print(
            f"  {k:13} fills {d['fills']:5} lots {d['lots']:6}  edge/fair {d['edge_vs_fair_ticks']:+7.2f}t"
            f"  capture {d['capture_ticks']:+7.2f}t  5s move {d['move_5s_ticks']:+7.2f}t"
        )


if __name__ == "__main__":
    main()
