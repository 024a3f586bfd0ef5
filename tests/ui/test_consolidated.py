"""The consolidated ladder: one instrument on two sim venues on one static axis, traded on a target venue.

Real parts: the config loader on a TOML file with two [venues.NAME] kind = "sim" sections, the real
assembly, the real SimVenues (their matching books say where our orders rest), the real recorder and the
replay TUI. The sims are calm (no takers, a still fair price) so that what we rest keeps resting.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from frozen_app import wait_for

from lobterm import config
from lobterm.app import LobtermApp
from lobterm.assemble import build
from lobterm.engine.events import BUY, OUR_OWNER, SELL
from lobterm.engine.unified import LadderRow
from lobterm.headless import run_headless
from lobterm.recording.player import Player
from lobterm.replay_app import ReplayApp
from lobterm.widgets.consolidated import ConsolidatedLadder
from lobterm.widgets.consolidated_model import (
    K_VENUES,
    V_BEST,
    ConsolidatedMarket,
    GridError,
    consolidated_groups,
    grid_of,
    venue_labels,
)
from lobterm.widgets.heatmap_model import MARK_FILL, cell_parts
from lobterm.widgets.help import ConfirmOrderScreen
from lobterm.widgets.ladder import PriceLadder
from lobterm.widgets.ladder_model import BEST_ASK, BEST_BID

SIZE = (160, 44)
# depth_slope 0.12 (and simA's 150-lot touch): the book these screens were drawn on (btc-spot before
# session 5's recalibration).
CALM = "taker_per_s = 0\nvol_bps = 0\njump_per_min = 0\nburst_per_min = 0\ndepth_slope = 0.12\n"


def two_venues(tmp_path: Path, *, b_extra: str = "", ui: str = "consolidated = true\n") -> config.Config:
    text = f"""
[simgroup]
correlation = 0.9
seed = 7

[venues.simA]
kind = "sim"
role = "quote"
touch_lots = 150
{CALM}

[venues.simB]
kind = "sim"
role = "hedge"
touch_lots = 600
{CALM}{b_extra}

[ui]
flash_ms = 0
{ui}

[metrics]
enabled = false
"""
    path = tmp_path / "lobterm.toml"
    path.write_text(text, encoding="utf-8")
    return config.load(path, use_defaults=False)


def resting_on(app, venue: str) -> list[tuple[int, int, int]]:
    """Our orders resting in `venue`'s matching book, as (side, price, lots)."""
    sim = app.kernel.venues[venue]
    sim = getattr(sim, "data", sim)
    return [tuple(o[1:4]) for o in sim.book.resting_orders() if o[4] == OUR_OWNER]


async def consolidated_ready(pilot) -> ConsolidatedLadder:
    app = pilot.app
    await wait_for(
        pilot,
        lambda: (
            isinstance(app.ladder, ConsolidatedLadder)
            and app.ladder.top_price is not None
            and all(m.unified.best_bid() for m in app.ladder.consolidated.markets)
        ),
        what="the consolidated ladder with both venues' books",
    )
    return app.ladder


async def cursor_under_both_bids(pilot, rows: int = 3) -> int:
    """The cursor `rows` ticks under the lower of the two venues' best bids: a buy rests on either."""
    ladder = pilot.app.ladder
    await pilot.press("home")
    low = min(m.unified.best_bid()[0] for m in ladder.consolidated.markets)
    await pilot.press(*["down"] * (ladder.cursor_price - low + rows))
    assert ladder.cursor_price == low - rows
    return ladder.cursor_price


# ---- the grid, without Textual ------------------------------------------------------------------------
def test_venue_labels_tell_the_venues_apart_by_what_follows_their_common_prefix():
    assert venue_labels(["simA", "simB"]) == ["A", "B"]
    assert venue_labels(["binance", "okx"]) == ["bina", "okx"]
    assert venue_labels(["x1", "x1"]) == ["x11", "x12"]


def test_a_coarser_tick_venue_sets_the_grid_and_the_finer_ones_sum_onto_its_rows(tmp_path):
    cfg = two_venues(tmp_path, b_extra='tick_size = "0.5"\nlot_size = "0.01"\n')
    asm = build(cfg, "headless", virtual=True, strategies=False)
    for s in asm.sims:
        s.open()
    for _ in range(40):
        for s in asm.sims:
            s.step()
    a, b = asm.kernel.markets[("simA", "BTC/USDT")], asm.kernel.markets[("simB", "BTC/USDT")]
    c = ConsolidatedMarket([a, b])
    assert (c.tick_ratios, c.lot_ratios) == ([5, 1], [1, 10])  # grid: simB's 0.5 tick, simA's 0.001 lot
    assert str(c.instrument.tick_size) == "0.5" and str(c.instrument.lot_size) == "0.001"
    bb_a, ba_a = a.unified.best_bid()[0], a.unified.best_ask()[0]
    assert c.venue_best(0, BUY) == bb_a // 5  # the grid row holding it (its lowest tick), as a zoomed row
    assert c.venue_best(0, SELL) == ba_a // 5
    # the merged levels and the best levels agree: the grid row's sizes summed over both venues
    assert next(c.iter_levels(BUY)) == c.best_bid() and next(c.iter_levels(SELL)) == c.best_ask()
    assert c.depth(BUY, 3) == list(c.iter_levels(BUY))[:3]
    assert [p for p, _ in c.depth(SELL, 3)] == sorted(p for p, _ in c.depth(SELL, 3))
    top = c.center_price() + 10
    rows = c.ladder_rows(top, 21)
    for row in rows:
        g = row.price
        want_bid = sum(s for p, s in a.l2.levels_between(BUY, g * 5, g * 5 + 4)) + 10 * sum(
            s for p, s in b.l2.levels_between(BUY, g, g)
        )
        want_ask = sum(s for p, s in a.l2.levels_between(SELL, g * 5, g * 5 + 4)) + 10 * sum(
            s for p, s in b.l2.levels_between(SELL, g, g)
        )
        assert (row.bid_others, row.ask_others) == (want_bid, want_ask), g
    assert [v.rows[0].price for v in c.venue_rows] == [top, top]
    assert isinstance(rows[0], LadderRow) and len(c.venue_rows) == 2


def test_venues_whose_ticks_do_not_fit_one_grid_are_refused_with_the_reason(tmp_path):
    cfg = two_venues(tmp_path, b_extra='tick_size = "0.25"\n')
    asm = build(cfg, "headless", virtual=True, strategies=False)
    with pytest.raises(GridError, match="simA BTC/USDT: tick 0.1"):
        grid_of(list(asm.kernel.markets.values()))
    assert consolidated_groups(list(asm.kernel.markets.values())) == []  # a ladder per venue instead


# ---- the consolidated ladder in the TUI ------------------------------------------------------------
async def test_each_venues_size_and_best_prices_show_in_its_own_column_on_one_axis(tmp_path):
    app = LobtermApp(two_venues(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        ladder = await consolidated_ready(pilot)
        assert len(app.desk.ladders) == 1  # one ladder for both venues
        await app.kernel.stop()  # freeze the books: what we read is what was drawn
        ladder.pull()
        title = ladder.rendered_lines()[0]
        assert "A simA quote" in title and "B simB hedge" in title and "→ A simA" in title
        header = ladder.rendered_lines()[2]
        assert header.index("BID A") < header.index("BID B") < header.index("PRICE") < header.index("ASK A")
        a, b = ladder.consolidated.markets
        fmt = a.instrument.format_size
        shown = 0
        for price in range(ladder.top_price - ladder.price_rows + 1, ladder.top_price + 1):
            for col, m, side in (
                ("bids:0", a, BUY),
                ("bids:1", b, BUY),
                ("asks:0", a, SELL),
                ("asks:1", b, SELL),
            ):
                size = m.unified.others_size(side, price)
                text = ladder.cell_text(price, col)
                best = (m.unified.best_bid() if side == BUY else m.unified.best_ask())[0] == price
                if size:
                    assert text == fmt(size), (price, col)
                    shown += 1
                elif not best:
                    assert text == "", (price, col)
        assert shown > 20
        for i, m in enumerate((a, b)):
            bid, ask = m.unified.best_bid()[0], m.unified.best_ask()[0]
            assert ladder.row_key(bid)[K_VENUES][1][i][V_BEST] & BEST_BID
            assert ladder.row_key(ask)[K_VENUES][1][i][V_BEST] & BEST_ASK
            # the other venue's best is marked in its own column only
            other = 1 - i
            if (b if i == 0 else a).unified.best_bid()[0] != bid:
                assert not ladder.row_key(bid)[K_VENUES][1][other][V_BEST] & BEST_BID


async def test_order_keys_place_and_cancel_on_the_target_venue_and_v_moves_the_target(tmp_path):
    app = LobtermApp(two_venues(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        ladder = await consolidated_ready(pilot)
        price = await cursor_under_both_bids(pilot)
        await pilot.press("b")
        await wait_for(pilot, lambda: resting_on(app, "simA") == [(BUY, price, 10)], what="our bid on simA")
        assert resting_on(app, "simB") == []
        await wait_for(
            pilot, lambda: ladder.cell_text(price, "our_bids") == "A0.010", what="A0.010 in OUR BIDS"
        )
        await pilot.press("v")
        assert ladder.market.venue == "simB"
        await wait_for(
            pilot, lambda: "→ B simB" in ladder.rendered_lines()[0], what="the target in the title"
        )
        await wait_for(pilot, lambda: "simB" in str(app.status.render()), what="the status bar on simB")
        await pilot.press("b")
        await wait_for(pilot, lambda: resting_on(app, "simB") == [(BUY, price, 10)], what="our bid on simB")
        assert resting_on(app, "simA") == [(BUY, price, 10)]
        await wait_for(
            pilot, lambda: ladder.cell_text(price, "our_bids") == "A0.010 B0.010", what="both in OUR BIDS"
        )
        await pilot.press("x")  # cancel at the cursor: the target venue's only
        await wait_for(pilot, lambda: resting_on(app, "simB") == [], what="simB's bid cancelled")
        assert resting_on(app, "simA") == [(BUY, price, 10)]
        await pilot.press("k")  # join the offer: simB's best ask
        best_ask_b = ladder.market.unified.best_ask()[0]
        await wait_for(
            pilot, lambda: (SELL, best_ask_b, 10) in resting_on(app, "simB"), what="joined on simB"
        )
        await pilot.press("V")
        assert ladder.market.venue == "simA"
        await pilot.press("c")  # cancel all: on simA
        await wait_for(pilot, lambda: resting_on(app, "simA") == [], what="simA's orders cancelled")
        assert (SELL, best_ask_b, 10) in resting_on(app, "simB")


def _cell(ladder, price: int, column: str) -> tuple[int, int]:
    """The cell offset (x, y) of `column` on the row of `price`."""
    x, y = ladder.model.column_x(column), ladder.row_of(price)
    assert x is not None and y is not None, f"{column} at {price} is on screen"
    return x + 1, y


async def test_a_click_on_a_venues_size_column_trades_on_that_venue_whatever_the_target(tmp_path):
    app = LobtermApp(two_venues(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        ladder = await consolidated_ready(pilot)
        a, b = ladder.consolidated.markets
        bid = min(m.unified.best_bid()[0] for m in (a, b)) - 3
        ask = max(m.unified.best_ask()[0] for m in (a, b)) + 3
        assert ladder.market.venue == "simA"  # the target: the quote venue
        await pilot.click(ladder, offset=_cell(ladder, bid, "bids:1"))  # BID B
        await wait_for(pilot, lambda: resting_on(app, "simB") == [(BUY, bid, 10)], what="a bid on simB")
        assert resting_on(app, "simA") == []
        assert ladder.market.venue == "simA"  # the target the trader chose is unchanged
        await pilot.click(ladder, offset=_cell(ladder, ask, "asks:0"))  # ASK A
        await wait_for(pilot, lambda: resting_on(app, "simA") == [(SELL, ask, 10)], what="an ask on simA")
        await pilot.press("v")  # target simB: a click on A's column still goes to simA
        assert ladder.market.venue == "simB"
        await pilot.click(ladder, offset=_cell(ladder, bid - 1, "bids:0"))  # BID A
        await wait_for(
            pilot, lambda: (BUY, bid - 1, 10) in resting_on(app, "simA"), what="a bid on simA with target B"
        )
        await pilot.click(ladder, offset=_cell(ladder, ask + 1, "asks:1"))  # ASK B
        await wait_for(pilot, lambda: (SELL, ask + 1, 10) in resting_on(app, "simB"), what="an ask on simB")
        assert sorted(resting_on(app, "simA")) == sorted([(SELL, ask, 10), (BUY, bid - 1, 10)])
        assert sorted(resting_on(app, "simB")) == sorted([(BUY, bid, 10), (SELL, ask + 1, 10)])
        assert ladder.market.venue == "simB"
        # The kernel verb: every order went through the OMS as a mouse order, on the venue clicked.
        placed = sorted((o.venue, o.side, o.price) for o in app.kernel.oms.working.values())
        assert placed == sorted(
            [("simB", BUY, bid), ("simA", SELL, ask), ("simA", BUY, bid - 1), ("simB", SELL, ask + 1)]
        )


async def test_a_large_click_on_the_other_venue_asks_first_naming_that_venue(tmp_path):
    cfg = two_venues(tmp_path, ui='consolidated = true\nconfirm_above_qty = "0.005"\n')
    app = LobtermApp(cfg)
    async with app.run_test(size=SIZE) as pilot:
        ladder = await consolidated_ready(pilot)
        bid = min(m.unified.best_bid()[0] for m in ladder.consolidated.markets) - 3
        await pilot.click(ladder, offset=_cell(ladder, bid, "bids:1"))
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmOrderScreen), what="the question")
        assert "on simB BTC/USDT" in app.screen.summary
        assert ladder.market.venue == "simA"
        await pilot.press("y")
        await wait_for(pilot, lambda: resting_on(app, "simB") == [(BUY, bid, 10)], what="the order on simB")
        assert resting_on(app, "simA") == []


async def test_a_large_order_asks_first_naming_the_target_venue(tmp_path):
    cfg = two_venues(tmp_path, ui='consolidated = true\nconfirm_above_qty = "0.005"\n')
    app = LobtermApp(cfg)
    async with app.run_test(size=SIZE) as pilot:
        await consolidated_ready(pilot)
        price = await cursor_under_both_bids(pilot)
        await pilot.press("v", "b")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmOrderScreen), what="the question")
        assert "on simB BTC/USDT" in app.screen.summary
        assert resting_on(app, "simB") == []
        await pilot.press("y")
        await wait_for(pilot, lambda: resting_on(app, "simB") == [(BUY, price, 10)], what="the order on simB")
        assert resting_on(app, "simA") == []


async def test_L_switches_to_a_ladder_per_venue_and_back_with_the_cursor_on_its_price(tmp_path):
    app = LobtermApp(two_venues(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        ladder = await consolidated_ready(pilot)
        price = await cursor_under_both_bids(pilot)
        await pilot.press("v")  # target simB: the per-venue view opens on simB's ladder
        await pilot.press("L")
        assert [type(x) for x in app.desk.ladders] == [PriceLadder, PriceLadder]
        assert app.ladder.market.venue == "simB" and app.ladder.has_focus
        assert app.ladder.cursor_price == price and not ladder.display
        await pilot.press("up")
        await pilot.press("L")
        assert app.ladder is ladder and ladder.market.venue == "simB" and ladder.display
        assert ladder.cursor_price == price + 1


async def test_without_the_setting_the_desk_shows_a_ladder_per_venue_and_L_consolidates(tmp_path):
    app = LobtermApp(two_venues(tmp_path, ui=""))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.ladder.top_price is not None, what="the first ladder")
        assert [type(x) for x in app.desk.ladders] == [PriceLadder, PriceLadder]
        await pilot.press("L")
        await consolidated_ready(pilot)


# ---- replay: a recorded demo-xvenue session on the consolidated ladder ----------------------------------
@pytest.fixture(scope="module")
def xvenue_session(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("xvenue-replay")
    cfg = config.load("demo-xvenue", use_defaults=False, overrides={"metrics": {"enabled": False}})
    run_headless(cfg, 12.0, record_to=out)  # the real recorder; the market maker quotes on simA
    (path,) = list(out.glob("*.lobterm.sqlite"))
    return path


async def test_replay_shows_both_venues_and_our_recorded_orders_by_venue(xvenue_session):
    player = Player(str(xvenue_session))
    player.pause()
    cfg = config.Config()
    cfg.ui.consolidated = True
    cfg.ui.ticks_per_row = 1  # rows of one tick: each venue's best on its own row
    app = ReplayApp(cfg, player)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        seq = next(s for s in range(player.last_seq // 2, player.last_seq) if _quoting(player, s))
        player.seek_seq(seq)
        ladder = await consolidated_ready(pilot)
        await pilot.press("home")
        ladder.pull()
        a, b = ladder.consolidated.markets
        assert (a.venue, b.venue) == ("simA", "simB")
        for i, m in enumerate((a, b)):
            bid = m.unified.best_bid()
            assert ladder.row_key(bid[0])[K_VENUES][1][i][V_BEST] & BEST_BID
        ours = [(side, price) for _oid, side, price, _size in a.unified.own_orders()]
        assert ours, "the recorded market maker's quotes on simA"
        side, price = ours[0]
        ladder.model.set_cursor(price)  # the axis follows the cursor to our recorded quote
        ladder._view_changed()
        text = ladder.cell_text(price, "our_bids" if side == BUY else "our_asks")
        assert text is not None and text.startswith("A0."), text  # simA's label
        # The keys act on the target venue in a replay too (paper orders on the replayed book).
        await pilot.press("v")
        assert ladder.market.venue == "simB"
        bid_b = b.unified.best_bid()[0]
        ladder.model.set_cursor(bid_b - 3)
        ladder._view_changed()
        sent = set(app.kernel.oms.working)
        await pilot.press("b")
        await wait_for(
            pilot,
            lambda: any(
                o.venue == "simB" and o.price == bid_b - 3
                for oid, o in app.kernel.oms.working.items()
                if oid not in sent
            ),
            what="our paper bid on simB",
        )


def _quoting(player: Player, seq: int) -> bool:
    """Whether our orders rest on simA at `seq` (the replay is moved there to look)."""
    player.seek_seq(seq)
    return bool(player.kernel.markets[("simA", "BTC/USDT")].unified.own_orders())


async def test_the_quote_panel_shows_the_consolidated_fair_value_the_market_maker_centres_on(tmp_path):
    ui = 'consolidated = true\n\n[mm]\nfair_value = "consolidated_microprice"\nlevels = 1\n'
    app = LobtermApp(two_venues(tmp_path, ui=ui))
    async with app.run_test(size=SIZE) as pilot:
        await consolidated_ready(pilot)
        panel = app.desk.quote_panel
        await wait_for(pilot, lambda: "fair: consolidated micro -" in str(panel.content), what="no fair yet")
        (mm,) = app.kernel.market_makers
        await pilot.press("m")
        await wait_for(pilot, lambda: mm.fair is not None, what="a fair value")
        await app.kernel.stop()  # freeze the books: what we read is what was drawn
        mm.requote()
        fv = mm.fair
        assert fv is not None and fv.venues == ("simA", "simB")
        text = f"fair: consolidated micro {fv.price(app.market.instrument):f} (A+B)"
        await wait_for(pilot, lambda: text in str(panel.content), what=text)
        assert mm.ladder is not None and mm.ladder.reservation == fv.half_ticks / 2


# ---- our fills on the consolidated heatmap, with their venue -------------------------------------------
def _fill_marks(heatmap) -> set[tuple[int, int]]:
    """(grid price, mark) of every fill mark the heatmap's buffer holds."""
    kinds, pxs = heatmap.model.mark_kind, heatmap.model.mark_px
    return {(int(pxs[i, j]), int(kinds[i, j])) for i, j in zip(*(kinds >= MARK_FILL).nonzero(), strict=True)}


async def test_our_fills_on_each_venue_are_marked_on_the_consolidated_heatmap_with_the_venue(tmp_path):
    app = LobtermApp(two_venues(tmp_path, ui="consolidated = true\nheatmap = true\nheatmap_minutes = 0.5\n"))
    async with app.run_test(size=SIZE) as pilot:
        ladder = await consolidated_ready(pilot)
        (heatmap,) = app.desk.heatmaps
        assert heatmap.fill_glyphs == ["A", "B"]
        await wait_for(pilot, lambda: heatmap.display and heatmap.frames > 0, what="the heatmap drawn")
        a, b = ladder.consolidated.markets
        # The known sequence: the calm books (no takers) and a buy of 10 lots above simB's best ask, then
        # one above simA's: each fills at that venue's best ask (600 and 150 lots rest there).
        for i, m, column in ((1, b, "bids:1"), (0, a, "bids:0")):
            ask = m.unified.best_ask()[0]
            await pilot.click(ladder, offset=_cell(ladder, ask + 2, column))
            await wait_for(
                pilot,
                lambda m=m: app.kernel.inventory.position(m.venue, m.symbol).lots == 10,
                what=f"our fill on {m.venue}",
            )
            prices = {f.price for f in app.desk.fills.by_market[m.key]}  # one fill per resting order hit
            assert ask in prices and prices <= {ask, ask + 1, ask + 2}
            y = ladder.row_of(ask)
            await wait_for(
                pilot,
                lambda y=y, i=i: (
                    heatmap._keys[y] is not None
                    and any(cell_parts(c)[2] == MARK_FILL + i for c in heatmap._keys[y])
                ),
                what=f"the fill on {m.venue} marked at its row",
            )
            await pilot.pause(0.1)
            line = heatmap.rendered_lines()[y]
            assert "AB"[i] in line, line  # the venue's letter in place of the '◆'
            # A cell is two time steps of k samples and shows one mark: when both venues' asks share a row,
            # the next fill must land in a later cell to be seen apart (a real limit of the drawing).
            step, k = heatmap.model.step, heatmap.model.samples_per_step(heatmap.size.width)
            await wait_for(pilot, lambda s=step, k=k: heatmap.model.step >= s + 2 * k + 1, what="a new cell")
        fills = app.desk.fills.by_market
        expected = {(f.price, MARK_FILL + 1) for f in fills[b.key]} | {
            (f.price, MARK_FILL) for f in fills[a.key]
        }
        assert _fill_marks(heatmap) == expected


async def test_replay_marks_our_recorded_fills_on_the_consolidated_heatmap_by_venue(xvenue_session):
    player = Player(str(xvenue_session))
    player.pause()
    cfg = config.Config()
    cfg.ui.consolidated = True
    cfg.ui.heatmap = True
    app = ReplayApp(cfg, player)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        ns = 0
        while not player.at_end:  # played straight, in steps that do not line up with the sample times
            ns += 37_000_000
            player.run_to_ts(player.first_ts + ns)
        ladder = await consolidated_ready(pilot)
        (heatmap,) = app.desk.heatmaps
        c = ladder.consolidated
        expected = {
            (f.price // r, MARK_FILL + i)
            for i, (m, r) in enumerate(zip(c.markets, c.tick_ratios, strict=True))
            for f in app.desk.fills.by_market.get(m.key, ())
        }
        marks = _fill_marks(heatmap)
        assert {k for _p, k in marks} == {MARK_FILL, MARK_FILL + 1}, "fills on both venues: quoted and hedged"
        assert marks <= expected
        assert len(marks) >= len(expected) // 2  # a sample keeps 4 marks: a burst of fills may share one


async def test_the_editor_switches_the_fair_value_live_and_the_panel_follows(tmp_path):
    from lobterm.widgets.mm_editor import MarketMakerEditor
    from tests.helpers.ui import open_editor

    app = LobtermApp(two_venues(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await consolidated_ready(pilot)
        (mm,) = app.kernel.market_makers
        panel = app.desk.quote_panel
        assert "fair:" not in str(panel.content)  # the mid: nothing to say
        editor = await open_editor(pilot)
        assert str(editor.query_one("#fair_value").render()).strip("◂▸ ") == "mid"
        editor.query_one("#fair_value").focus()
        await pilot.press("right", "right")  # mid -> micro -> consolidated
        await wait_for(
            pilot, lambda: "fair value consolidated" in str(editor.query_one("#mm-edit-summary").render())
        )
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, MarketMakerEditor), what="the editor closed")
        assert mm.params.fair_value == "consolidated_microprice"
        await pilot.press("m")
        await wait_for(
            pilot,
            lambda: "fair: consolidated micro" in str(panel.content) and "(A+B)" in str(panel.content),
            what="the fair line",
        )
