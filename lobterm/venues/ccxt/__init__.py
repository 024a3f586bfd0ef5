"""A live venue through ccxt.pro: books, trades and (with keys) our orders, made safe to trade on.

Imported only when a ccxt venue is configured (ccxt.pro costs 0.6 s to import; see DESIGN.md). The
parts: `markets` (exchange and instruments), `streams` (market data and the watch loops), `orders`
(our orders and fills), `reconcile` (the venue as the truth about them), `venue` (the assembled
`CcxtVenue`), `errors` (what a failure means, and the `lobterm.venues` log).
"""

from lobterm.venues.ccxt.errors import VenueError, classify_error
from lobterm.venues.ccxt.markets import instrument_from_market
from lobterm.venues.ccxt.venue import CcxtVenue

__all__ = ["CcxtVenue", "VenueError", "classify_error", "instrument_from_market"]
