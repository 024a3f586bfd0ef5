"""A linear swap (BTC/USDT:USDT) on a ccxt venue: the unmodified ccxt.pro.binanceusdm against a USD-M
REST loopback (tests/integration/fapi_loopback.py): the venue's terms, mark and position reach the
kernel's margin book, so the margin figures and the margin rule work on a live swap."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from fapi_loopback import FapiLoopback

from lobterm.assemble import kernel_for
from lobterm.clock import LiveClock
from lobterm.engine.events import BUY, MarkPrice, PerpInfo, PositionMismatch
from lobterm.trading.margin import liquidation_price
from lobterm.trading.risk import RiskLimits
from lobterm.venues.ccxt.perps import perp_terms, position_base
from lobterm.venues.ccxt.venue import CcxtVenue
from lobterm.venues.settings import venue_from_dict

KEY, SECRET = "lobKEY-perp-1", "lobSECRET-perp-2"
SYM = "BTC/USDT:USDT"


@pytest.fixture
async def srv():
    s = FapiLoopback(KEY)
    await s.start()
    yield s
    await s.stop()


async def test_positions_marks_and_terms_of_a_linear_swap_reach_the_margin_book(srv):
    cfg = venue_from_dict("usdm", {**srv.venue_options(), "symbols": [SYM], "api_key": KEY, "secret": SECRET})
    venue = CcxtVenue(cfg)
    await venue.load()
    try:
        inst = venue.instruments[SYM]
        assert (inst.tick_size, inst.lot_size) == (Decimal("0.1"), Decimal("0.001"))
        kernel = kernel_for([venue], LiveClock(), risk_limits=RiskLimits(leverage_from_market=True))
        seen: list = []
        kernel.bus.subscribe((PerpInfo, MarkPrice, PositionMismatch), seen.append)
        await venue.perps.poll()
        info = next(e for e in seen if type(e) is PerpInfo)
        # ccxt gives the leverage and the tier's maintenance rate (0.4% below 50000 notional) on the position
        assert (info.leverage, info.maintenance_rate, info.collateral) == ("10", "0.004", "10000")
        marks = [e for e in seen if type(e) is MarkPrice]
        assert [m.mark for m in marks] == [648_000]
        terms = kernel.margin.terms[("usdm", SYM)]
        assert terms.rules.leverage == 10 and terms.collateral == Decimal(10000)

        # Our position from our fills (here: booked by hand as the venue's fill would): the figures.
        pos = kernel.inventory.position("usdm", SYM)
        pos.lots, pos.holdings, pos.avg_cost = 500, Fraction(500), Fraction(650_000)
        st = kernel.margin.status("usdm", SYM)
        deposit = Fraction(10000) / (Fraction("0.1") * Fraction("0.001"))
        assert st.liquidation_price == liquidation_price(500, 650_000, deposit, Fraction(4, 1000))
        assert kernel.market("usdm", SYM).instrument.format_price(st.liquidation_tick) == "45180.8"
        # The margin rule on the live swap: 2 BTC would be 13.1x on 9900 of equity, above the venue's 10x.
        reason = kernel.risk.check_new("usdm", SYM, BUY, 648_000, 1500)
        assert reason == "margin: a position of 2.000 would be 13.1x leverage (max 10x)"
        assert kernel.risk.check_new("usdm", SYM, BUY, 648_000, 500) is None  # 1 BTC: 6.5x

        # The venue's position against ours: the first poll is the baseline; a change we did not
        # trade is reported (twice in a row), and again when it agrees.
        srv.position = Decimal("0.800")
        await venue.perps.poll()
        await venue.perps.poll()
        mism = [e for e in seen if type(e) is PositionMismatch]
        assert [(m.asset, m.ours, m.venue_has) for m in mism] == [(SYM, "0.5", "0.8")]
        srv.position = Decimal("0.500")
        await venue.perps.poll()
        assert [e for e in seen if type(e) is PositionMismatch][-1].venue_has == "0.5"
        assert "/fapi/v3/positionRisk" in srv.requests and "/fapi/v3/account" in srv.requests
    finally:
        await venue.release()


def test_terms_and_position_from_ccxt_structures():
    market = {"swap": True, "linear": True, "info": {"maintMarginPercent": "2.5000"}}
    assert perp_terms(market, None) == (Decimal(1), Decimal("0.025"))  # no position: 1x, the market's rate
    assert perp_terms(market, {"leverage": 20, "maintenanceMarginPercentage": 0.004}) == (
        Decimal(20),
        Decimal("0.004"),
    )
    assert perp_terms({"info": {}}, {"leverage": 5}) is None  # no maintenance rate anywhere
    assert position_base({"contracts": 3, "contractSize": 0.01, "side": "short"}) == Decimal("-0.03")
