"""Market mapping: the ccxt exchange object built from `[venues.NAME]`, markets loaded only for what is
configured, and each market's tick and lot as a lobterm `Instrument`.

A spot-only endpoint (a testnet, a proxy, a loopback) must work with `rest_url` / `ws_url` alone, so
the exchange is told to load only the market types the configured symbols need (ccxt's unified
symbols say it: `BTC/USDT` spot, `BTC/USDT:USDT` a linear swap, `BTC/USD:BTC` inverse, a `-YYMMDD`
suffix a future, `-STRIKE-C` an option) and never the currency list or the margin pairs, which
lobterm does not use (on Binance those are signed `sapi` calls a testnet or proxy does not serve).
The config's own `options` are merged last and win.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import ccxt.pro as ccxtpro

from lobterm.engine.instrument import Instrument, to_decimal
from lobterm.venues.ccxt.errors import VenueError
from lobterm.venues.settings import VenueConfig

__all__ = ["make_exchange", "market_kinds", "load_options", "instrument_from_market"]

# ccxt precision modes (ccxt.base.decimal_to_precision).
_DECIMAL_PLACES, _SIGNIFICANT_DIGITS, _TICK_SIZE = 2, 3, 4

# The names exchanges give a market type in `options.fetchMarkets.types` (Binance and Bybit say
# linear/inverse, OKX swap/future): every name that can hold a symbol of each kind.
_TYPE_NAMES = {
    "spot": {"spot"},
    "linear_swap": {"linear", "swap", "swaps", "perpetual"},
    "inverse_swap": {"inverse", "swap", "swaps", "perpetual"},
    "linear_future": {"linear", "future", "futures", "delivery"},
    "inverse_future": {"inverse", "future", "futures", "delivery"},
    "option": {"option", "options"},
}


def market_kinds(symbols: tuple[str, ...] | list[str]) -> set[str]:
    """The kinds of market the unified symbols name: spot, linear_swap, inverse_swap, linear_future,
    inverse_future, option."""
    kinds = set()
    for symbol in symbols:
        pair, _, rest = symbol.partition(":")
        if not rest:
            kinds.add("spot")
            continue
        settle, _, expiry = rest.partition("-")
        quote = pair.partition("/")[2]
        linear = "linear" if settle == quote else "inverse"
        if not expiry:
            kinds.add(f"{linear}_swap")
        elif expiry.count("-") >= 2:
            kinds.add("option")
        else:
            kinds.add(f"{linear}_future")
    return kinds


def load_options(default_options: dict, symbols: tuple[str, ...] | list[str]) -> dict:
    """ccxt options that load only the market types `symbols` need, no currencies and no margin pairs.
    `default_options` are the exchange's own (its `fetchMarkets.types` list names the types it knows)."""
    out: dict[str, Any] = {"fetchCurrencies": False, "fetchMargins": False}
    fetch_markets = default_options.get("fetchMarkets")
    types = fetch_markets.get("types") if isinstance(fetch_markets, dict) else None
    if isinstance(types, list) and types:
        names = set().union(*(_TYPE_NAMES[k] for k in market_kinds(symbols))) if symbols else set()
        wanted = [t for t in types if isinstance(t, str) and t in names]
        if wanted:
            out["fetchMarkets"] = {**fetch_markets, "types": wanted}
    return out


def make_exchange(cfg: VenueConfig) -> Any:
    """The ccxt.pro exchange of one venue: keys, timeouts, sandbox, the market-type options, the config's
    options (last, they win) and its URL overrides."""
    cls = getattr(ccxtpro, cfg.exchange_id, None)
    if cls is None or not isinstance(cls, type):
        raise VenueError("other", f"{cfg.name}: ccxt.pro has no exchange {cfg.exchange_id!r}")
    params: dict[str, Any] = {"enableRateLimit": True, "timeout": cfg.timeout_ms}
    if cfg.api_key:
        params["apiKey"] = cfg.api_key
    if cfg.secret:
        params["secret"] = cfg.secret
    if cfg.password:
        params["password"] = cfg.password
    ex = cls(params)
    if cfg.sandbox:
        ex.set_sandbox_mode(True)
    ex.options = ex.deep_extend(ex.options, load_options(ex.options, cfg.symbols))
    if cfg.options:
        ex.options = ex.deep_extend(ex.options, cfg.options)
    override_urls(ex.urls.get("api"), cfg.rest_url, cfg.ws_url)
    for dotted, url in cfg.urls.items():
        set_dotted(ex.urls, dotted, url)
    return ex


def instrument_from_market(venue: str, market: dict, precision_mode: int) -> Instrument:
    """Tick and lot from a ccxt market's precision (tick-size or decimal-places mode) and its minimum
    amount from the limits."""
    symbol = market["symbol"]
    prec = market.get("precision") or {}

    def step(value: Any, what: str) -> Decimal:
        if value is None:
            raise VenueError("other", f"{venue} {symbol}: the market has no {what} precision")
        if precision_mode == _TICK_SIZE:
            return to_decimal(value, symbol=symbol, what=what)
        if precision_mode == _DECIMAL_PLACES:
            return Decimal(1).scaleb(-int(value))
        raise VenueError(
            "other",
            f"{venue} {symbol}: precision mode {precision_mode} (significant digits) has no fixed grid",
        )

    tick = step(prec.get("price"), "price")
    lot = step(prec.get("amount"), "amount")
    min_amount = ((market.get("limits") or {}).get("amount") or {}).get("min")
    min_lots = 1
    if min_amount:
        min_lots = max(1, math.ceil(to_decimal(min_amount) / lot))
    return Instrument(
        symbol,
        tick_size=tick,
        lot_size=lot,
        min_lots=min_lots,
        base=market.get("base") or "",
        quote=market.get("quote") or "",
        venue=venue,
    )


def override_urls(api: Any, rest_url: str, ws_url: str) -> None:
    """Replace scheme://host[:port] of every REST (http) URL with `rest_url` and of every websocket URL
    with `ws_url`, keeping the paths."""
    if not isinstance(api, dict) or not (rest_url or ws_url):
        return

    def swap(url: str, base: str) -> str:
        parts = urlsplit(url)
        return base.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")

    for key, value in list(api.items()):
        if isinstance(value, dict):
            override_urls(value, rest_url, ws_url)
        elif isinstance(value, str):
            if value.startswith("http") and rest_url:
                api[key] = swap(value, rest_url)
            elif value.startswith("ws") and ws_url:
                api[key] = swap(value, ws_url)


def set_dotted(root: dict, dotted: str, value: str) -> None:
    parts = dotted.split(".")
    node = root
    for p in parts[:-1]:
        nxt = node.get(p)
        if not isinstance(nxt, dict):
            nxt = node[p] = {}
        node = nxt
    node[parts[-1]] = value
