"""A checkpoint's state: the full book and trading state of a kernel, as msgpack-able plain data.

Layout (format v1), every price in ticks, size in lots, fee in millionths of a tick*lot, Fractions
as [numerator, denominator] (a part beyond 64 bits as a decimal string):

    {"ts": kernel clock ns,
     "markets": [{"venue", "symbol", "seq", "valid", "bids": [[price, size], ...] best first, "asks": ...,
                  "last_trade": [ts, price, size, aggressor, trade_id] | None, "trades", "traded_lots",
                  "own_orders": [[order_id, side, price, size], ...]}],   # as the unified book has them
     "oms_working": [{"order_id", "venue", "symbol", "side", "price", "size", "leaves", "filled",
                      "order_type", "state", "tag"}],                      # the OMS's view (informational)
     "positions": [{"venue", "symbol", "lots", "cash", "fees", "bought", "sold", "fills", "holdings",
                    "avg_cost" (None when flat), "realized", "fees_base_lots", "fees_in_base",
                    "avg_rounding", "last_fill_price"}]}                   # positions with fills only

`hash` in the checkpoints table is `Kernel.state_hash()` taken at the same moment; `restore_state`
puts the books, resting orders and positions back into a fresh kernel (seek).
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

from lobterm.engine.events import BookSnapshot, Trade

if TYPE_CHECKING:
    from lobterm.kernel import Kernel

__all__ = ["StateError", "capture_state", "restore_state", "validate_state"]

_FRACTION_FIELDS = ("holdings", "avg_cost", "realized", "fees_base_lots", "avg_rounding")
_INT_FIELDS = ("lots", "cash", "fees", "bought", "sold", "fills", "fees_in_base", "last_fill_price")
# Perpetuals only, and absent from checkpoints written before them (read as 0).
_OPTIONAL_INT_FIELDS = ("funding", "liquidations")


_MSGPACK_INT = 2**63 - 1


def _int(n: int) -> int | str:
    # msgpack carries 64-bit ints; an average cost that never went flat can outgrow them (its
    # denominator is bounded by the inventory, its numerator is not): such a part travels as text.
    return n if -_MSGPACK_INT <= n <= _MSGPACK_INT else str(n)


def _frac(x: Fraction | None) -> list[int | str] | None:
    return None if x is None else [_int(x.numerator), _int(x.denominator)]


class StateError(ValueError):
    """A checkpoint state that does not have the layout above: `where` names the part, e.g.
    "markets[0].bids[3]"."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")


def _need(cond: bool, where: str, problem: str) -> None:
    if not cond:
        raise StateError(where, problem)


def _is_int(x: Any) -> bool:
    return x.__class__ is int


def _is_bigint(x: Any) -> bool:
    """An int, or an int beyond 64 bits written as decimal text (see `_int`)."""
    if _is_int(x):
        return True
    if isinstance(x, str):
        try:
            int(x)
        except ValueError:
            return False
        return True
    return False


def _levels(value: Any, where: str) -> None:
    _need(isinstance(value, list), where, "must be a list of [price, size]")
    for i, level in enumerate(value):
        _need(
            isinstance(level, list) and len(level) == 2 and all(_is_int(x) and x >= 0 for x in level),
            f"{where}[{i}]",
            f"{level!r} must be [price, size] in ticks and lots",
        )


def validate_state(state: Any) -> dict[str, Any]:
    """`state` if it has the layout `restore_state` and the player rely on; StateError naming the first
    part that does not (a decoded blob can be any msgpack value: never trust it)."""
    _need(isinstance(state, dict), "state", f"must be a map, not {type(state).__name__}")
    _need(_is_int(state.get("ts")), "ts", f"{state.get('ts')!r} must be an int (ns)")
    for key in ("markets", "oms_working", "positions"):
        _need(isinstance(state.get(key), list), key, "missing or not a list")
    for i, md in enumerate(state["markets"]):
        w = f"markets[{i}]"
        _need(isinstance(md, dict), w, "must be a map")
        for key in ("venue", "symbol"):
            _need(isinstance(md.get(key), str), f"{w}.{key}", "missing or not text")
        for key in ("seq", "trades", "traded_lots"):
            _need(_is_int(md.get(key)), f"{w}.{key}", f"{md.get(key)!r} must be an int")
        _levels(md.get("bids"), f"{w}.bids")
        _levels(md.get("asks"), f"{w}.asks")
        lt = md.get("last_trade")
        _need(
            lt is None or (isinstance(lt, list) and len(lt) == 5 and all(_is_int(x) for x in lt[:4])),
            f"{w}.last_trade",
            f"{lt!r} must be [ts, price, size, aggressor, trade_id] or nil",
        )
        own = md.get("own_orders")
        _need(isinstance(own, list), f"{w}.own_orders", "missing or not a list")
        for j, o in enumerate(own):
            _need(
                isinstance(o, list) and len(o) == 4 and all(_is_int(x) for x in o) and o[1] in (0, 1),
                f"{w}.own_orders[{j}]",
                f"{o!r} must be [order_id, side 0|1, price, size]",
            )
    for i, od in enumerate(state["oms_working"]):
        _need(isinstance(od, dict), f"oms_working[{i}]", "must be a map")
    for i, pd in enumerate(state["positions"]):
        w = f"positions[{i}]"
        _need(isinstance(pd, dict), w, "must be a map")
        for key in ("venue", "symbol"):
            _need(isinstance(pd.get(key), str), f"{w}.{key}", "missing or not text")
        for key in _INT_FIELDS:
            v = pd.get(key)
            ok = _is_int(v) or (v is None and key == "last_fill_price")
            _need(ok, f"{w}.{key}", f"{v!r} must be an int")
        for key in _OPTIONAL_INT_FIELDS:
            v = pd.get(key, 0)
            _need(_is_int(v), f"{w}.{key}", f"{v!r} must be an int")
        for key in _FRACTION_FIELDS:
            v = pd.get(key)
            _need(
                v is None
                or (isinstance(v, list) and len(v) == 2 and all(_is_bigint(x) for x in v) and int(v[1]) != 0),
                f"{w}.{key}",
                f"{v!r} must be [numerator, denominator] or nil",
            )
    return state


def capture_state(kernel: Kernel) -> dict[str, Any]:
    markets = []
    for key in sorted(kernel.markets):
        m = kernel.markets[key]
        l2 = m.l2
        t = m.last_trade
        markets.append(
            {
                "venue": m.venue,
                "symbol": m.symbol,
                "seq": l2.seq,
                "valid": l2.valid,
                "bids": [[p, s] for p, s in sorted(l2.bids.items(), reverse=True)],
                "asks": [[p, s] for p, s in sorted(l2.asks.items())],
                "last_trade": None if t is None else [t.ts, t.price, t.size, t.aggressor, t.trade_id],
                "trades": m.trades,
                "traded_lots": m.traded_lots,
                "own_orders": [list(o) for o in m.unified.own_orders()],
            }
        )
    working = [
        {
            "order_id": o.order_id,
            "venue": o.venue,
            "symbol": o.symbol,
            "side": o.side,
            "price": o.price,
            "size": o.size,
            "leaves": o.leaves,
            "filled": o.filled,
            "order_type": o.order_type,
            "state": o.state,
            "tag": o.tag,
        }
        for _, o in sorted(kernel.oms.working.items())
    ]
    positions = []
    for key in sorted(kernel.inventory.positions):
        p = kernel.inventory.positions[key]
        if not p.fills:
            continue
        d: dict[str, Any] = {"venue": p.venue, "symbol": p.symbol}
        for f in _INT_FIELDS:
            d[f] = getattr(p, f)
        for f in _FRACTION_FIELDS:
            d[f] = _frac(getattr(p, f))
        for f in _OPTIONAL_INT_FIELDS:
            if getattr(p, f):
                d[f] = getattr(p, f)
        positions.append(d)
    return {"ts": kernel.clock.now(), "markets": markets, "oms_working": working, "positions": positions}


def restore_state(kernel: Kernel, state: dict[str, Any]) -> None:
    """Put a checkpoint's books, resting orders, trade counters and positions into `kernel` (a kernel
    built on the session's instruments that has seen no events). The OMS is not restored: orders in a
    replay belong to the recording, not to this kernel."""
    for md in state["markets"]:
        m = kernel.markets.get((md["venue"], md["symbol"]))
        if m is None:
            continue
        snap = BookSnapshot(
            state["ts"],
            md["venue"],
            md["symbol"],
            md["seq"],
            tuple((p, s) for p, s in md["bids"]),
            tuple((p, s) for p, s in md["asks"]),
        )
        m.l2.apply_snapshot(snap)
        if not md.get("valid", True):
            m.l2.valid = False
        lt = md["last_trade"]
        m.last_trade = (
            None if lt is None else Trade(lt[0], md["venue"], md["symbol"], lt[1], lt[2], lt[3], lt[4])
        )
        m.trades = md["trades"]
        m.traded_lots = md["traded_lots"]
        m.trade_version += 1
        m.unified.clear_own()
        for oid, side, price, size in md["own_orders"]:
            m.unified.add_own(oid, side, price, size)
    inv = kernel.inventory
    inv.positions.clear()
    for pd in state["positions"]:
        p = inv.position(pd["venue"], pd["symbol"])
        for f in _INT_FIELDS:
            setattr(p, f, pd[f])
        for f in _FRACTION_FIELDS:
            v = pd[f]
            setattr(p, f, None if v is None else Fraction(int(v[0]), int(v[1])))
        for f in _OPTIONAL_INT_FIELDS:
            setattr(p, f, pd.get(f, 0))
        p.version += 1
