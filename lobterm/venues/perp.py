"""Perpetual-swap mechanics for the sim venue (`[sim] market = "perp"`): mark price, funding, liquidation.

The sim's matching book and price process are the same as for spot; this module adds what a linear,
USDT-margined perpetual venue does around them, on our account only:

- **Index and mark.** The index is the sim's fair price (the "spot" the perpetual tracks), shifted by
  `basis_bps` if set; the mark is an exponential average of the book's mid with time constant
  `mark_smoothing_s` (so one print through a thin book does not liquidate anyone). Both are published
  as `MarkPrice` (integer ticks) every `mark_every_s` of sim time, with the funding rate that would
  apply now.
- **Funding** every `funding_interval_s` (8 h) of sim time from the venue's opening: the rate is the
  average premium (mark - index) / index over the interval plus clamp(interest - premium, +-
  `premium_clamp`), capped at +-`funding_cap` (Binance's formula). Our position pays lots * mark * rate
  (a long pays a positive rate, a short receives it), published as `Funding` (exact, millionths of a
  tick*lot) and booked by the venue and, from the bus, by the kernel's inventory.
- **Margin and liquidation.** Our collateral (`collateral`, quote currency) is cross margin over this
  one market, plus realized P&L and funding, minus fees. At initial rate 1 / `leverage` and maintenance
  rate `maintenance_rate`, the venue assesses our position at every mark with
  `lobterm.trading.margin.MarginMonitor` (the same arithmetic the kernel shows); when the margin ratio
  reaches 1 it closes the whole position at the liquidation price (the exact price rounded toward
  danger on the tick grid) with the taker fee, and publishes `Liquidation`. Our resting orders are
  cancelled first, as a venue's liquidation engine does (Cancelled + Done, before the Liquidation):
  none is left to reopen the position the venue just closed.

Everything that leaves this module is integer ticks, lots and millionths; the mark's average and the
premium's are floats inside, as the sim's fair price is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from lobterm.engine.errors import ParameterError
from lobterm.engine.events import (
    BUY,
    OUR_OWNER,
    SELL,
    Event,
    Fill,
    Funding,
    Liquidation,
    MarkPrice,
    PerpInfo,
)
from lobterm.engine.instrument import FEE_SCALE
from lobterm.trading.inventory import Inventory
from lobterm.trading.margin import (
    LEVEL_LIQUIDATION,
    MarginMonitor,
    MarginRules,
    MarginStatus,
    collateral_units,
)

MARKET_SPOT = "spot"
MARKET_PERP = "perp"
MARKETS = (MARKET_SPOT, MARKET_PERP)
_NS = 1_000_000_000


class PerpConfigError(ParameterError):
    """A [perp] setting that cannot work: `name`, the `value` given and the `rule` it broke."""

    area = "perp"


# (lowest, highest) of each setting.
PERP_BOUNDS: dict[str, tuple[Decimal | float | int, Decimal | float | int]] = {
    "leverage": (Decimal(1), Decimal(125)),
    "maintenance_rate": (Decimal("0.0001"), Decimal("0.5")),
    "collateral": (Decimal(0), Decimal("1e15")),
    "funding_interval_s": (60, 7 * 86_400),
    "interest_rate": (Decimal("-0.01"), Decimal("0.01")),
    "premium_clamp": (Decimal(0), Decimal("0.01")),
    "funding_cap": (Decimal(0), Decimal("0.05")),
    "mark_smoothing_s": (0.0, 3600.0),
    "mark_every_s": (0.01, 3600.0),
    "basis_bps": (-1000.0, 1000.0),
}


@dataclass(slots=True)
class PerpConfig:
    """[perp]: the sim perpetual's terms (used when `[sim] market = "perp"`)."""

    leverage: Decimal = Decimal(10)  # initial margin rate = 1 / leverage
    maintenance_rate: Decimal = Decimal("0.005")  # 0.5%, Binance's BTCUSDT first tier is 0.4%
    collateral: Decimal = Decimal(50_000)  # quote currency deposited for this market
    funding_interval_s: int = 8 * 3600
    interest_rate: Decimal = Decimal("0.0001")  # per interval (0.01% / 8 h)
    premium_clamp: Decimal = Decimal("0.0005")  # clamp on (interest - premium)
    funding_cap: Decimal = Decimal("0.0075")  # the funding rate's cap, either way
    mark_smoothing_s: float = 5.0  # the mark is an EMA of the mid over this time (0: the mid itself)
    mark_every_s: float = 1.0  # how often MarkPrice is published (and liquidation checked)
    basis_bps: float = 0.0  # index = fair price * (1 - basis): a premium the perpetual trades at

    def validate(self) -> None:
        for name, (lo, hi) in PERP_BOUNDS.items():
            v = getattr(self, name)
            kind = type(lo)
            if kind is Decimal and (type(v) is not Decimal or not v.is_finite()):
                raise PerpConfigError(name, v, "must be a decimal number")
            if kind is int and type(v) is not int:
                raise PerpConfigError(name, v, "must be a whole number")
            if kind is float and (type(v) not in (int, float) or not math.isfinite(v)):
                raise PerpConfigError(name, v, "must be a finite number")
            if not lo <= v <= hi:
                raise PerpConfigError(name, v, f"must be in {lo}..{hi}")
        if self.maintenance_rate >= 1 / self.leverage:
            raise PerpConfigError(
                "maintenance_rate",
                self.maintenance_rate,
                f"must be below the initial margin rate 1/leverage = {1 / self.leverage:.6g}",
            )

    def rules(self) -> MarginRules:
        return MarginRules.from_leverage(self.leverage, self.maintenance_rate)


class PerpEngine:
    """The perpetual's venue-side book of our account; `SimVenue` calls `open` and `after`."""

    def __init__(self, venue: Any, config: PerpConfig | None = None) -> None:
        # `venue` is the SimVenue (not imported: sim.py imports this module): its name, config,
        # instrument, matching `book` and fair price `fair` are read.
        self.config = cfg = config or PerpConfig()
        cfg.validate()
        self.venue = venue
        self.rules = cfg.rules()
        self.monitor = MarginMonitor(self.rules)
        inst = venue.instrument
        self.key = (venue.name, venue.config.symbol)
        self.books = Inventory({self.key: inst})  # the venue's books of our account
        self.deposit = collateral_units(inst, cfg.collateral)
        self.taker_fee_ppm = venue.config.taker_fee_ppm
        self.mark_f: float | None = None  # the EMA of the mid, ticks
        self.mark: int | None = None
        self.index: int | None = None
        self._last_mid_ns: int | None = None
        self._next_mark_ns: int | None = None
        self._next_funding_ns: int | None = None
        self._premium_sum = 0.0
        self._premium_n = 0
        self.fundings = 0
        self.liquidations = 0

    # ---- the venue's hooks ---------------------------------------------------------------------------
    def open(self, now: int) -> list[Event]:
        """The market's terms and first mark, when the venue opens."""
        cfg = self.config
        self._next_funding_ns = now + cfg.funding_interval_s * _NS
        self._next_mark_ns = now
        info = PerpInfo(
            now,
            self.key[0],
            self.key[1],
            str(cfg.leverage),
            str(cfg.maintenance_rate),
            str(cfg.collateral),
            cfg.funding_interval_s,
        )
        return [info, *self.after(now, [])]

    def after(self, now: int, published: Sequence[Event]) -> list[Event]:
        """Book our fills among `published`, move the mark, and at their times publish the mark, pay
        funding and liquidate. Returns the events to publish after `published`."""
        for ev in published:
            if type(ev) is Fill and ev.owner == OUR_OWNER:
                self.books.on_fill(ev)
        self._update_mark(now)
        out: list[Event] = []
        if self._next_mark_ns is None or now < self._next_mark_ns or self.mark is None:
            return out
        cfg = self.config
        self._next_mark_ns = now + round(cfg.mark_every_s * _NS)
        mark, index = self.mark, self.index or self.mark
        premium = (mark - index) / index
        self._premium_sum += premium
        self._premium_n += 1
        rate_ppb = self.rate_ppb()
        out.append(MarkPrice(now, self.key[0], self.key[1], mark, index, rate_ppb))
        nf = self._next_funding_ns
        if nf is not None and now >= nf:
            self._next_funding_ns = nf + cfg.funding_interval_s * _NS
            self._premium_sum = 0.0
            self._premium_n = 0
            lots = self.books.position(*self.key).lots
            if lots:
                amount = round(Fraction(lots * mark * rate_ppb * FEE_SCALE, 1_000_000_000))
                ev = Funding(now, self.key[0], self.key[1], rate_ppb, mark, lots, amount)
                self.books.on_funding(ev)
                self.fundings += 1
                out.append(ev)
        liq = self._liquidation(now)
        if liq is not None:
            out.append(liq)
        return out

    # ---- the parts -----------------------------------------------------------------------------------
    def rate_ppb(self) -> int:
        """The funding rate from the premium averaged since the last funding, parts per billion."""
        cfg = self.config
        premium = self._premium_sum / self._premium_n if self._premium_n else 0.0
        interest = float(cfg.interest_rate)
        clamp = float(cfg.premium_clamp)
        cap = float(cfg.funding_cap)
        rate = premium + min(clamp, max(-clamp, interest - premium))
        rate = min(cap, max(-cap, rate))
        return round(rate * 1e9)

    def _update_mark(self, now: int) -> None:
        book = self.venue.book
        bb, ba = book.best_bid(), book.best_ask()
        fair = self.venue.fair
        self.index = max(1, round(fair * (1.0 - self.config.basis_bps * 1e-4)))
        if bb is None or ba is None or bb >= ba:
            return
        mid = (bb + ba) / 2.0
        tau = self.config.mark_smoothing_s
        last = self._last_mid_ns
        if self.mark_f is None or last is None or tau <= 0:
            self.mark_f = mid
        else:
            alpha = 1.0 - math.exp(-max(0, now - last) / (tau * _NS))
            self.mark_f += alpha * (mid - self.mark_f)
        self._last_mid_ns = now
        self.mark = max(1, round(self.mark_f))

    def status(self) -> MarginStatus | None:
        """Our margin status at the current mark (None before the first mark)."""
        if self.mark is None:
            return None
        pos = self.books.position(*self.key)
        return self.monitor.assess_position(pos, self.mark, self.deposit)

    def _liquidation(self, now: int) -> Liquidation | None:
        pos = self.books.position(*self.key)
        if pos.lots == 0 or self.mark is None:
            return None
        st = self.monitor.assess_position(pos, self.mark, self.deposit)
        if st.level != LEVEL_LIQUIDATION:
            return None
        book = self.venue.book
        for oid, _side, _px, _size, owner in list(book.resting_orders()):
            if owner == OUR_OWNER:
                book.cancel(oid)  # published by the venue before the Liquidation (SimVenue._publish)
        price = st.liquidation_tick if st.liquidation_tick is not None else self.mark
        price = max(1, price)
        size = abs(pos.lots)
        side = SELL if pos.lots > 0 else BUY
        fee = price * size * self.taker_fee_ppm
        ev = Liquidation(now, self.key[0], self.key[1], side, price, size, self.mark, fee)
        self.books.on_liquidation(ev)
        self.liquidations += 1
        return ev


__all__ = [
    "PerpConfig",
    "PerpConfigError",
    "PerpEngine",
    "PERP_BOUNDS",
    "MARKET_SPOT",
    "MARKET_PERP",
    "MARKETS",
]
