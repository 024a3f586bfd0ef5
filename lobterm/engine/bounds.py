"""Every in-memory history's bound, in one place (issue 16: a desk runs for days).

Named constants rather than a config section: these bound memory, they are not trading knobs, and the
engine layer (importable by every other layer) is the one place all structures can read them from.
What is older than a bound lives in the session file, not in RAM.
"""

from __future__ import annotations

#: Market.volume_at_price: prices kept; past this, the prices furthest from the last trade are dropped
#: (a quarter of them at once, so that pruning costs O(1) amortized per trade).
VOLUME_PRICES = 2000

#: OrderManager.recent: finished orders kept for the blotter (and the lookup index, at most this many).
DONE_ORDERS = 1000
#: OrderManager: a finished order leaves the lookup index (`order(id)`) after this much kernel time;
#: a late venue event for it is then counted in `forgotten_events`, nothing else changes.
DONE_ORDER_GRACE_S = 60.0

#: Market.tape: the latest venue trades per market (the trade tape shows them, newest first).
TAPE = 200
#: OurFills (widgets/tape.py): our latest fills per market, and their trade ids (to mark the tape).
OUR_FILLS = 200
#: Hedger.recent: the latest hedge orders (the hedge panel lists them).
HEDGE_ORDERS = 100
#: Inventory.series: P&L snapshots (one per `snapshot()`, about one a second: an hour).
PNL_SNAPSHOTS = 3600
#: InventoryPanel: samples kept per sparkline (P&L, position, mid: ten minutes at one a second).
SPARKLINE = 600
#: Metrics: distinct reject/cancel/status reasons per family before the rest count as "other".
METRIC_REASONS = 32
#: Last errors/rejects kept as text: Bus.last_errors, OrderManager.recent_rejects.
RECENT_ERRORS = 20

#: The TUI: rejection notes on screen at once (more are counted into the next one; the status bar
#: always shows the last reject).
REJECT_NOTES = 5

#: MarkoutEngine.recent_toxic: our latest toxic fills (and their trade ids, to mark the tape).
TOXIC_FILLS = 200

#: MarkoutEngine.loss_hist: markouts (half-tick*lots) under 2**LOSS_HIST_BITS in size are counted exactly;
#: a bigger one shares a bucket with the values that have the same top LOSS_HIST_BITS bits. At most
#: 2**LOSS_HIST_BITS + 2**(LOSS_HIST_BITS-1) * (b - LOSS_HIST_BITS) buckets for losses under 2**b; the
#: worst-decile share is exact while every loss is under 2**LOSS_HIST_BITS, else within 1/512 of itself.
LOSS_HIST_BITS = 10


def add_volume(volume_at_price: dict[int, int], price: int, size: int, keep: int = VOLUME_PRICES) -> None:
    """Add `size` lots traded at `price`; keep at most `keep` prices, the nearest to `price`."""
    volume_at_price[price] = volume_at_price.get(price, 0) + size
    if len(volume_at_price) > keep:
        nearest = sorted(volume_at_price, key=lambda p: abs(p - price))[: max(1, keep * 3 // 4)]
        kept = {p: volume_at_price[p] for p in nearest}
        volume_at_price.clear()
        volume_at_price.update(kept)
