"""Market mapping: the ccxt exchange object built from `[venues.NAME]`, markets loaded only for what is
configured, and each market's tick and lot as a lobterm `Instrument`.

A spot-only endpoint (a testnet, a proxy, a loopback) must work with `rest_url` / `ws_url` alone, so
the exchange is told to load only the market types the configured symbols need (ccxt's unified
symbols say it: `BTC/USDT` spot, `BTC/USDT:USDT` a linear swap, `BTC/USD:BTC` inverse, a `-YYMMDD`
suffix a future, `-STRIKE-C` an option) and never the currency list or the margin pairs, which
lobterm does not use (on Binance those are signed `sapi` calls a testnet or proxy does not serve).
The config's own `options` are merged last and win.

Contract markets: ccxt quotes a swap's or future's amounts (orders, fills, order reports, positions,
books) in contracts of `contractSize` base units each (Binance USD-M: 1; OKX's BTC-USDT-SWAP: 0.01
BTC; Binance COIN-M: 100 USD). lobterm's engine counts base units, so the `Instrument`'s lot is the
venue's amount step (in contracts) times the contract size, and `Contracts` converts exactly, with
Decimals, both ways: `to_venue` (our base quantity -> contracts, refused with one line when it is not
a whole number of the venue's amount steps) and `to_base` (the venue's contracts -> base units). Only
linear contracts (settled in the quote currency) are traded: an inverse market (settled in the base
currency, its contracts worth a fixed amount of quote) is refused when the markets load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Context, Decimal, DivisionByZero, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import ccxt.pro as ccxtpro

from lobterm.engine.instrument import Instrument, InstrumentError, to_decimal
from lobterm.venues.ccxt.errors import VenueError
from lobterm.venues.settings import VenueConfig

__all__ = [
    "make_exchange",
    "market_kinds",
    "load_options",
    "instrument_from_market",
    "Contracts",
    "ContractError",
    "contracts_of",
    "inverse_refusal",
]

_EXACT = Context(prec=80, Emax=999_999, Emin=-999_999)

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


def load_options(default_options: dict[str, Any], symbols: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """ccxt options that load only the market types `symbols` need, no currencies and no margin pairs.
    `default_options` are the exchange's own (its `fetchMarkets.types` list names the types it knows)."""
    out: dict[str, Any] = {"fetchCurrencies": False, "fetchMargins": False}
    fetch_markets = default_options.get("fetchMarkets")
    types = fetch_markets.get("types") if isinstance(fetch_markets, dict) else None
    if isinstance(types, list) and types and isinstance(fetch_markets, dict):
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
    # ccxt's close() sleeps 250 ms after closing its sessions (for aiohttp's SSL transports to finish on
    # a loop about to end). lobterm closes an exchange only when it is done with it, and a trader waits
    # for the close at every exit: the TLS close is best effort either way.
    ex.timeout_on_exit = 0
    if cfg.sandbox:
        ex.set_sandbox_mode(True)
    ex.options = ex.deep_extend(ex.options, load_options(ex.options, cfg.symbols))
    if cfg.options:
        ex.options = ex.deep_extend(ex.options, cfg.options)
    override_urls(ex.urls.get("api"), cfg.rest_url, cfg.ws_url)
    for dotted, url in cfg.urls.items():
        set_dotted(ex.urls, dotted, url)
    return ex


class ContractError(ValueError):
    """A quantity that is not a whole number of the venue's contracts (the message is one line)."""


@dataclass(frozen=True, slots=True)
class Contracts:
    """How one market counts amounts: `size` base units per contract (1 for spot) and the venue's
    amount step `step` in contracts. Exact both ways (see the module docstring)."""

    symbol: str
    size: Decimal
    step: Decimal
    base: str = ""

    @property
    def lot(self) -> Decimal:
        """The smallest amount the venue takes, in base units: the engine's lot."""
        return _plain(_EXACT.multiply(self.step, self.size))

    @property
    def is_unit(self) -> bool:
        return self.size == 1

    def to_venue(self, qty: Decimal) -> Decimal:
        """Base units -> contracts, exact. Raises ContractError when `qty` is not a whole number of
        the venue's amount steps (or is not a finite number above zero)."""
        if not isinstance(qty, Decimal) or not qty.is_finite() or qty <= 0:
            raise ContractError(f"{self.symbol}: {qty!s} {self.base} is not a quantity above zero")
        if self.is_unit:
            contracts = qty
        else:
            contracts = _EXACT.divide(qty, self.size)
        try:
            _q, r = _EXACT.divmod(contracts, self.step)
        except (InvalidOperation, DivisionByZero):
            r = Decimal(1)
        if r:
            each = f"{self.size.normalize():f} {self.base}".strip()
            raise ContractError(
                f"{self.symbol}: {qty.normalize():f} {self.base} is not a whole number of contracts "
                f"(1 contract = {each}, steps of {self.step.normalize():f})"
            )
        return contracts

    def venue_amount(self, qty: Decimal) -> str:
        """`to_venue` as the plain decimal string ccxt is given."""
        return f"{self.to_venue(qty).normalize():f}"

    def to_base(self, amount: Any) -> Decimal:
        """The venue's amount (contracts; a ccxt number or string) -> base units, exact. Raises
        InstrumentError for what is not a finite number."""
        d = to_decimal(amount, symbol=self.symbol, what="amount")
        return d if self.is_unit else _EXACT.multiply(d, self.size)


def _plain(d: Decimal) -> Decimal:
    """`d` without trailing zeros and without an exponent above zero (0.0010 -> 0.001, 1E+1 -> 10)."""
    n = d.normalize(_EXACT)
    exponent = n.as_tuple().exponent
    return n if not isinstance(exponent, int) or exponent <= 0 else n.quantize(Decimal(1), context=_EXACT)


def _contract_size(venue: str, market: dict[str, Any]) -> Decimal:
    symbol = market.get("symbol", "?")
    if not market.get("contract"):
        return Decimal(1)
    raw = market.get("contractSize")
    if raw is None:
        return Decimal(1)
    try:
        size = to_decimal(raw, symbol=symbol, what="contract size")
    except InstrumentError as exc:
        raise VenueError("other", f"{venue} {symbol}: {exc}") from None
    if not size.is_finite() or size <= 0:
        raise VenueError("other", f"{venue} {symbol}: contract size {raw!r} must be above zero")
    return size


def inverse_refusal(venue: str, market: dict[str, Any]) -> str | None:
    """Why lobterm does not trade `market` (an inverse contract), or None."""
    if market.get("contract") and market.get("inverse"):
        symbol = market.get("symbol", "?")
        settle = market.get("settle") or market.get("base") or "the base currency"
        return (
            f"{venue} {symbol}: an inverse contract (settled in {settle}): lobterm trades linear swaps "
            f"only; configure the linear market (e.g. BTC/USDT:USDT) in venues.{venue}.symbols"
        )
    return None


def contracts_of(venue: str, market: dict[str, Any], precision_mode: int) -> Contracts:
    """The market's contract size and amount step (see `Contracts`)."""
    symbol = market["symbol"]
    step = _step(venue, symbol, (market.get("precision") or {}).get("amount"), "amount", precision_mode)
    return Contracts(symbol, _contract_size(venue, market), step, market.get("base") or "")


def _step(venue: str, symbol: str, value: Any, what: str, precision_mode: int) -> Decimal:
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


def instrument_from_market(venue: str, market: dict[str, Any], precision_mode: int) -> Instrument:
    """Tick and lot from a ccxt market's precision (tick-size or decimal-places mode) and its minimum
    amount from the limits. A contract market's lot is its amount step times its contract size (base
    units; see `Contracts`)."""
    symbol = market["symbol"]
    prec = market.get("precision") or {}

    tick = _step(venue, symbol, prec.get("price"), "price", precision_mode)
    contracts = contracts_of(venue, market, precision_mode)
    lot = contracts.lot
    min_amount = ((market.get("limits") or {}).get("amount") or {}).get("min")
    min_lots = 1
    if min_amount:
        min_lots = max(1, math.ceil(contracts.to_base(min_amount) / lot))
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


def set_dotted(root: dict[str, Any], dotted: str, value: str) -> None:
    parts = dotted.split(".")
    node = root
    for p in parts[:-1]:
        nxt = node.get(p)
        if not isinstance(nxt, dict):
            nxt = node[p] = {}
        node = nxt
    node[parts[-1]] = value
