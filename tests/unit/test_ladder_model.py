"""The ladder's view model, without an app: the axis, the cursor, the columns a width holds, the market line,
the cumulative-depth and P&L-at-price columns. A real kernel over the real sim venue on a virtual clock."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from lobterm.assemble import build_sim_kernel
from lobterm.config import Config
from lobterm.engine import analytics
from lobterm.engine.events import BUY, SELL
from lobterm.widgets.ladder_model import (
    CORE_COLUMNS,
    HEADER_LINES,
    K_CUM,
    K_ENTRY,
    K_PNL,
    K_PRICE,
    LADDER_COLUMNS,
    LadderModel,
    columns_width,
    fit_columns,
    fraction_price,
)


def sim_model(width: int = 120, height: int = 43, optional: tuple[str, ...] = (), steps: int = 40):
    cfg = Config()
    cfg.sim.seed = 4
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    venue.open()
    for _ in range(steps):
        venue.step()
    market = next(iter(kernel.markets.values()))
    model = LadderModel(
        market,
        queue_ahead=lambda oid: kernel.queue_ahead(market, oid),
        position=lambda: kernel.inventory.positions.get((market.venue, market.symbol)),
        optional=optional,
        flash_s=0,
    )
    model.resize(width, height)
    assert model.place_axis()
    return kernel, venue, market, model


def title() -> tuple:
    return ("title", "", "SIM", "", "", "", False)


# ---- columns ----------------------------------------------------------------------------------------
@given(st.integers(min_value=1, max_value=400))
def test_every_width_keeps_the_five_trading_columns(width):
    cols = fit_columns(LADDER_COLUMNS, width)
    assert [c.key for c in cols if c.key in CORE_COLUMNS] == list(CORE_COLUMNS)
    assert columns_width(cols) <= width or all(c.width <= 10 for c in cols if c.key in CORE_COLUMNS)


def test_a_wide_ladder_shows_every_default_column_and_a_narrow_one_drops_volume_then_last():
    full = fit_columns(LADDER_COLUMNS, 400)
    assert {c.key for c in full} >= {"volume", "last", "cum", "pnl"}
    mid = fit_columns(LADDER_COLUMNS, columns_width(full) - 5)
    assert "volume" not in {c.key for c in mid} and "last" in {c.key for c in mid}


def test_optional_columns_are_off_until_switched_on_and_outlive_volume_and_last():
    *_, model = sim_model(width=90)
    assert not {"cum", "pnl"} & {c.key for c in model.columns}
    model.set_optional("cum", True)
    model.set_optional("pnl", True)
    keys = [c.key for c in model.columns]
    assert "cum" in keys and "pnl" in keys and "volume" not in keys


def test_fit_widths_go_from_comfortable_to_just_readable():
    *_, model = sim_model()
    widths = model.fit_widths()
    assert widths == sorted(widths, reverse=True) and widths[0] == model.full_width
    assert 50 <= widths[-1] <= 60


def test_a_line_and_a_cell_map_back_to_their_price_and_column():
    *_, model = sim_model()
    for y in range(HEADER_LINES, HEADER_LINES + model.price_rows):
        assert model.row_of(model.price_at(y)) == y
    assert model.price_at(0) is None and model.price_at(HEADER_LINES - 1) is None
    for col in model.columns:
        x = model.column_x(col.key)
        assert model.column_at(x) == col.key and model.column_at(x + col.width - 1) == col.key


# ---- the axis -----------------------------------------------------------------------------------------
def test_the_wheel_moves_the_axis_and_the_cursor_keeps_its_price_while_it_is_on_screen():
    *_, model = sim_model()
    cursor, top = model.cursor_price, model.top_price
    model.scroll(3)
    assert model.top_price == top + 3 and model.cursor_price == cursor
    model.scroll(-model.price_rows * 3)  # far down: the cursor would leave by the top row
    assert model.cursor_price == model.top_price and model.row_of(model.cursor_price) == HEADER_LINES


def test_the_market_moving_never_moves_the_cursor_price():
    _kernel, venue, _market, model = sim_model()
    cursor = model.cursor_price
    for _ in range(300):
        venue.step()
        model.follow_market()
        assert model.cursor_price == cursor and model.row_of(cursor) is not None


# ---- the market line ------------------------------------------------------------------------------------
def test_the_market_line_shows_spread_imbalance_and_microprice_from_the_analytics():
    _kernel, _venue, market, model = sim_model()
    book = market.unified
    text = model.stats_text()
    spread, bps = analytics.spread_ticks(book), analytics.spread_bps(book)
    assert f"spread {spread}t {float(bps):.2f}bps" in text
    assert f"imb {float(analytics.imbalance(book)):+.2f}" in text
    assert f"micro {fraction_price(market.instrument, analytics.microprice(book))}" in text


def test_fraction_prices_are_exact_to_a_tenth_of_a_tick():
    from decimal import Decimal
    from fractions import Fraction

    from lobterm.engine.instrument import Instrument

    inst = Instrument("X/Y", tick_size=Decimal("0.1"), lot_size=Decimal("0.001"))
    assert fraction_price(inst, Fraction(650003)) == "65000.3"
    assert fraction_price(inst, Fraction(6500035, 10)) == "65000.35"
    # 650003.55 ticks: 6500035.5 tenths, rounded half-even to 6500036
    assert fraction_price(inst, Fraction(13000071, 20)) == "65000.36"


# ---- our position: entry mark, P&L column, cumulative depth ----------------------------------------------
def _buy_at_the_offer(kernel, venue, market) -> None:
    ask = market.unified.best_ask()[0]
    kernel.place(market, BUY, ask, 10, source="test")
    for _ in range(5):
        venue.step()
    assert kernel.inventory.positions[(market.venue, market.symbol)].lots > 0


def test_the_price_of_our_average_entry_is_marked_and_the_pnl_column_values_our_position_there():
    kernel, venue, market, model = sim_model(width=160, optional=("pnl",))
    _buy_at_the_offer(kernel, venue, market)
    pos = kernel.inventory.positions[(market.venue, market.symbol)]
    model.set_cursor(int(pos.avg_cost))  # the entry on screen (the market may have moved away since)
    keys = [k for k in model.line_keys(0.0, title())[HEADER_LINES:] if k]
    entry_rows = [k[K_PRICE] for k in keys if k[K_ENTRY]]
    assert entry_rows == [int(pos.avg_cost)]
    for k in keys:
        want = pos.pnl(k[K_PRICE]).in_quote(market.instrument, 2).net
        assert k[K_PNL] == f"{want:+,.2f}"
    assert "◆entry" in model.stats_text()
    runs = model.row_runs(next(k for k in keys if k[K_ENTRY]))
    marked = [(text, names) for text, names in runs if "◆" in text]
    assert len(marked) == 1 and marked[0][0].lstrip().startswith("◆") and "entry" in marked[0][1]


def test_cumulative_depth_adds_the_book_from_the_inside_market_outwards():
    _kernel, _venue, market, model = sim_model(width=160, optional=("cum",))
    keys = {k[K_PRICE]: k for k in model.line_keys(0.0, title())[HEADER_LINES:] if k}
    book = market.unified
    bid, ask = book.best_bid()[0], book.best_ask()[0]
    visible = [p for p in keys if p <= bid]
    for p in visible:
        want = sum(size for price, size in book.depth(BUY, 1000) if p <= price <= bid)
        assert keys[p][K_CUM] == -want
    for p in [p for p in keys if p >= ask]:
        want = sum(size for price, size in book.depth(SELL, 1000) if ask <= price <= p)
        assert keys[p][K_CUM] == want


def test_the_view_model_does_not_import_textual():
    code = "import sys, lobterm.widgets.ladder_model; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_ui_ladder_columns_and_side_panels_are_checked_when_the_config_is_read(tmp_path):
    import pytest

    from lobterm.config import ConfigError, load

    good = tmp_path / "good.toml"
    good.write_text('[ui]\nladder_columns = ["pnl", "cum"]\nmouse_trading = false\nside_panels = "hidden"\n')
    cfg = load(good, use_defaults=False)
    assert (
        cfg.ui.ladder_columns == ("pnl", "cum")
        and not cfg.ui.mouse_trading
        and cfg.ui.side_panels == "hidden"
    )
    for bad, words in (
        ('ladder_columns = ["depth"]', "unknown column"),
        ('ladder_columns = ["cum", "cum"]', "twice"),
        ('ladder_columns = "cum"', "must be a list"),
        ('side_panels = "left"', "must be one of"),
    ):
        path = tmp_path / "bad.toml"
        path.write_text(f"[ui]\n{bad}\n")
        with pytest.raises(ConfigError, match=words):
            load(path, use_defaults=False)
