"""The blotter and the inventory rows as a trader reads them: one row per order, human words for states,
who sent each order, finished orders under their own heading, and columns that never run together at any
terminal width. Real app, real kernel, real sim venue (stepped by hand)."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from frozen_app import frozen_app, frozen_config, wait_for
from textual.geometry import Region

from lobterm.engine.events import BUY, IOC

SIZES = [(80, 24), (100, 30), (160, 48)]
_ROW = re.compile(
    r"^(#\d+ )?(BUY|SELL|B|S) +(\d+\.\d+) (?:@ )?(\d+\.\d+)( +(LMT|IOC|MKT|FOK|POST))? +(.+?)( +(\S+))?$"
)


def _drawn_lines(widget) -> list[str]:
    """The widget's lines as drawn on the screen (after any wrapping or clipping), padding stripped."""
    w, h = widget.region.size
    strips = widget.render_lines(Region(0, 0, w, h))
    return [s.text.strip() for s in strips if s.text.strip().strip("─")]  # no border


def _orders(app):
    """Five orders in five states, from four sources."""
    k = app.kernel
    m = app.market
    bid, ask = m.l2.best_bid_price(), m.l2.best_ask_price()
    k.buy(m, bid - 5, 12, tag="manual")  # working
    k.sell(m, ask + 7, 4, tag="touch_quoter")  # working, a strategy's order
    k.oms.new_order(m.venue, m.symbol, BUY, ask, 10, IOC, tag="hedge")  # filled (or part-filled and done)
    cancel_me = k.sell(m, ask + 20, 3, tag="mm")
    k.oms.cancel(cancel_me)  # cancelled
    # A limit buy at the ask bigger than what rests there: part-filled, the rest working.
    new_ask = m.l2.best_ask_price()
    part = k.buy(m, new_ask, m.unified.best_ask()[1] + 7, tag="manual")
    return part


@pytest.mark.parametrize("size", SIZES)
async def test_blotter_rows_are_one_per_order_in_human_words_and_never_run_together(size):
    cfg = frozen_config()
    cfg.ui.side_panels = "shown"
    cfg.risk.max_order_qty = "off"
    cfg.risk.max_order_value = "off"
    cfg.risk.max_position_qty = "off"
    cfg.risk.price_band_bps = "off"
    cfg.risk.duplicate_window_ms = 0
    app = frozen_app(cfg)
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.ladder.cursor_price is not None, what="the first ladder")
        part_id = _orders(app)
        blotter = app.query_one("Blotter")
        k = app.kernel
        part = k.oms.order(part_id)
        assert part is not None and part.state == "partially_filled", part
        await wait_for(pilot, lambda: "part" in blotter.text, what="the part-filled row")
        await pilot.pause(0.1)
        text = blotter.text
        assert "filled filled" not in text
        assert "_" not in text.replace("touch_quoter", ""), (
            text
        )  # no raw enum (partially_filled, pending_new)
        inst = app.market.instrument
        if size[0] == 100:  # a 37-column panel: short words
            assert f"part {inst.format_size(part.filled)}/{inst.format_size(part.size)}" in text
        elif size[0] > 100:
            assert f"part-filled {inst.format_size(part.filled)}/{inst.format_size(part.size)}" in text
        else:  # a 21-column panel: short words
            assert "\nB 0.150 65003.0 part" in text, text
        working_part, _, done_part = text.partition("\ndone (")
        assert done_part, "finished orders are under their own heading"
        cxl = "cancelled" if size[0] > 100 else "cxl"
        assert cxl not in working_part and cxl in done_part
        done_word = " filled" if size[0] > 100 else " fill"
        assert done_word in done_part and "fill" not in working_part.replace("part-fill", "")
        lines = _drawn_lines(blotter)
        width = blotter.content_size.width
        assert width > 0
        # No wrapping: what is drawn is the first lines of the text, each whole.
        assert lines == [line.strip() for line in text.splitlines()][: len(lines)], (lines, text)
        rows = [line for line in lines if line.startswith(("#", "B", "S"))]
        assert len(rows) >= 3
        for line in text.splitlines():
            assert len(line) <= width, (line, width)
        for line in rows:
            match = _ROW.match(line)
            assert match, f"{line!r} at {size}: the columns ran together or wrapped"
            Decimal(match.group(3)), Decimal(match.group(4))  # whole numbers, not glued to a neighbour
        sources = " ".join(rows)
        if size[0] > 100:
            for source in ("manual", "touch_quoter", "hedge", "mm"):
                assert source in sources, (source, lines)


@pytest.mark.parametrize("size", SIZES)
async def test_inventory_row_keeps_position_and_average_entry_apart(size):
    cfg = frozen_config()
    cfg.ui.side_panels = "shown"
    cfg.risk.max_order_qty = "off"
    cfg.risk.max_order_value = "off"
    cfg.risk.max_position_qty = "off"
    cfg.risk.price_band_bps = "off"
    cfg.risk.duplicate_window_ms = 0
    app = frozen_app(cfg)
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.ladder.cursor_price is not None, what="the first ladder")
        k, m = app.kernel, app.market
        # Two fills at different prices: an average entry with more digits than a price has; a position
        # above 10 BTC: the widest numbers the old fixed columns could not hold apart.
        k.oms.new_order(m.venue, m.symbol, BUY, m.l2.best_ask_price() + 50, 10_001, IOC, tag="manual")
        k.oms.new_order(m.venue, m.symbol, BUY, m.l2.best_ask_price() + 50, 2_003, IOC, tag="manual")
        pos = k.inventory.position(m.venue, m.symbol)
        assert pos.lots > 10_000
        panel = app.query_one("InventoryPanel")
        name = f"{m.venue} {m.symbol}"
        await wait_for(pilot, lambda: inst_text(panel, m.instrument.format_size(pos.lots)), what="the row")
        lines = _drawn_lines(panel)
        row = next(line for line in lines if line.split()[-1:] and m.instrument.format_size(pos.lots) in line)
        tokens = row.replace(name, "").split()
        assert tokens[0] == m.instrument.format_size(pos.lots), (row, lines)
        avg = Decimal(tokens[1])  # parses alone: not glued to the position
        assert Decimal(m.instrument.format_price(m.l2.best_bid_price())) / 2 < avg
        assert all(len(line) <= panel.content_size.width for line in lines)


def inst_text(panel, text: str) -> bool:
    return text in str(panel.content)


def test_inventory_rows_of_several_markets_keep_a_name_that_tells_them_apart():
    from lobterm.widgets.inventory import _market_labels

    assert _market_labels([("simA", "BTC/USDT"), ("simB", "BTC/USDT")]) == ["simA", "simB"]
    assert _market_labels([("sim", "BTC/USDT"), ("sim", "ETH/USDT")]) == ["BTC", "ETH"]
    assert _market_labels([("sim", "BTC/USDT"), ("sim", "BTC/USDC")]) == ["sim BTC/USDT", "sim BTC/USDC"]
    assert _market_labels([("a", "BTC/USDT"), ("b", "ETH/USDT")]) == ["a BTC/USDT", "b ETH/USDT"]
