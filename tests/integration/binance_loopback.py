"""A Binance spot venue on 127.0.0.1 that speaks the real wire protocol, for the unmodified ccxt.pro.binance.

What ccxt needs, as Binance spot serves it (ccxt 4.5.90):
- REST: GET /api/v3/exchangeInfo (PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE, NOTIONAL filters and
  orderTypes), GET /api/v3/depth (lastUpdateId, bids, asks), POST/DELETE /api/v3/order and
  GET /api/v3/account, signed with HMAC-SHA256 over the query string, key in X-MBX-APIKEY. Errors are
  `{"code": -NNNN, "msg": "..."}` with HTTP 400 (429 for too many requests).
- Public websocket at /stream/N (ccxt tells spot from futures by "/stream" in the URL and appends the
  stream index): SUBSCRIBE answered with `{"result": null, "id": ...}`; diff depth events
  `depthUpdate` with U/u (U == previous u + 1) and `trade` events.
- The WS-API at /ws-api/v3: `userDataStream.subscribe.signature` (HMAC over the sorted params) answered
  with `{"id", "status": 200, "result": {"subscriptionId": 0}}`; user events (executionReport,
  outboundAccountPosition) wrapped as `{"subscriptionId": 0, "event": {...}}`.

Orders really match: the book is lobterm's own MatchingBook (integer ticks and lots inside, Binance's
decimal strings at the edge). Other participants' liquidity is added by the test (`add_liquidity`).

Fault hooks: `drop_connections()`, `skip_update_ids(n)`, `send_garbage()`, `send_book_frame(text)`,
`silent = True`, `http_faults` (a list of HTTP statuses to answer the next REST requests with: 429,
5xx), `order_faults` (the next order requests answered with a given Binance error).

Order state, for reconciliation tests: `restart(keep_orders=...)` (every connection dropped; the
venue keeps our open orders or forgets them and their trades, as a venue restarted from an empty
store would), `drop_user_stream()` (only the order stream closes), `user_stream_down = True` (new
order-stream connections are refused meanwhile, so a fill then reaches us only by reconciliation),
`add_orphan(client_id, ...)` (an order a previous run left working). The signed REST queries ccxt's
reconciliation needs are served: GET /api/v3/openOrders, /api/v3/order, /api/v3/allOrders and
/api/v3/myTrades. `refused` lists every request answered with an error (method, path, Binance code).

The websocket paths are served both where the tests' `urls` entries point (/stream/N, /ws-api/v3) and
where `ws_url` alone puts ccxt's defaults (`ws_url` + /ws/N and + /ws-api/v3): a config with only
`rest_url` and `ws_url = "ws://127.0.0.1:PORT/stream"` works as it would for a spot testnet.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from decimal import Decimal
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from lobterm.engine.events import BUY, IOC, LIMIT, MARKET, POST_ONLY, SELL, STP_NONE, Cancelled, Done, Fill
from lobterm.engine.instrument import Instrument
from lobterm.engine.matching import MatchingBook

API_OWNER = 1
OTHERS = 2


class BinanceLoopback:
    def __init__(
        self,
        *,
        base: str = "BTC",
        quote: str = "USDT",
        tick: str = "0.01",
        lot: str = "0.00001",
        api_key: str = "",
        secret: str = "",
        balances: dict[str, str] | None = None,
        max_qty: str = "100",
        publish_every_s: float = 0.02,
    ) -> None:
        self.base, self.quote = base, quote
        self.market_id = base + quote
        self.inst = Instrument(f"{base}/{quote}", tick_size=Decimal(tick), lot_size=Decimal(lot))
        self.max_qty = Decimal(max_qty)
        self.api_key, self.secret = api_key, secret
        self.book = MatchingBook(
            "loop", self.market_id, maker_fee_ppm=0, taker_fee_ppm=1000, track_levels=True
        )
        self.update_id = 1000
        self.balances = {k: Decimal(v) for k, v in (balances or {base: "10", quote: "1000000"}).items()}
        self.publish_every_s = publish_every_s
        self.contract_size = Decimal(1)  # base units per unit of quantity on the wire (futures: see below)
        self.check_balances = True
        self.futures = False  # depth updates carry `pu` (the previous update's u), as USD-M futures send
        # Market data event times (depth `E`, trade `E` and `T`) are stamped this many ms before the
        # venue's clock: a feed delay the adapter measures (negative: a venue clock ahead of ours).
        self.event_time_lag_ms = 0
        # Faults.
        self.silent = False
        self.http_faults: list[int] = []
        self.order_faults: list[tuple[int, str]] = []
        self._skip = 0
        # Connections.
        self._public: list[tuple[web.WebSocketResponse, set[str]]] = []
        self._user: list[web.WebSocketResponse] = []
        self._ws_all: set[web.WebSocketResponse] = set()
        self._trades: list[dict] = []
        self._next_oid = 5000
        self._next_trade = 90000
        self._next_other = 1 << 40
        self._orders: dict[int, dict] = {}  # venue order id -> order facts
        self.requests: list[str] = []  # method + path of every REST request (no query: it holds a signature)
        self.refused: list[tuple[str, int]] = []  # (method + path, Binance code) of every error answer
        self.user_stream_down = False
        self.user_subscribed_at: list[float] = []  # monotonic times of order-stream subscriptions
        self._my_trades: list[dict] = []  # our trades, as GET /api/v3/myTrades lists them
        self.signatures_checked = 0
        self._runner: web.AppRunner | None = None
        self._task: asyncio.Task | None = None
        self.port = 0

    # ---- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> int:
        app = web.Application()
        self._add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self._task = asyncio.get_running_loop().create_task(self._publisher())
        return self.port

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        app.router.add_get("/api/v3/depth", self._depth)
        app.router.add_post("/api/v3/order", self._new_order)
        app.router.add_delete("/api/v3/order", self._cancel_order)
        app.router.add_get("/api/v3/account", self._account)
        app.router.add_get("/api/v3/openOrders", self._open_orders)
        app.router.add_get("/api/v3/order", self._query_order)
        app.router.add_get("/api/v3/allOrders", self._all_orders)
        app.router.add_get("/api/v3/myTrades", self._my_trades_rest)
        app.router.add_get("/stream/{n}", self._public_ws)
        app.router.add_get("/stream/ws/{n}", self._public_ws)
        app.router.add_get("/ws-api/v3", self._ws_api)
        app.router.add_get("/stream/ws-api/v3", self._ws_api)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for ws in list(self._ws_all):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def venue_options(self) -> dict:
        """What lobterm's [venues.binance] needs to point the unmodified ccxt.pro.binance here."""
        base = f"http://127.0.0.1:{self.port}"
        return {
            "exchange": "binance",
            "rest_url": base,
            "urls": {
                "api.ws.spot": f"ws://127.0.0.1:{self.port}/stream",
                "api.ws.ws-api.spot": f"ws://127.0.0.1:{self.port}/ws-api/v3",
            },
            "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False},
        }

    # ---- the market ---------------------------------------------------------------------------------
    def add_liquidity(self, side: int, price: str, qty: str) -> int:
        """Another participant's resting limit order (or a taker order when it crosses)."""
        self._next_other += 1
        self.book.submit(
            self._next_other, side, self.inst.ticks(price), self.inst.lots(qty), LIMIT, OTHERS, STP_NONE
        )
        self._after_match()
        return self._next_other

    def take(self, side: int, qty: str) -> None:
        """Another participant's market order."""
        self._next_other += 1
        self.book.submit(self._next_other, side, 0, self.inst.lots(qty), MARKET, OTHERS, STP_NONE)
        self._after_match()

    def levels(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        return self.book.depth(BUY), self.book.depth(SELL)

    def skip_update_ids(self, n: int = 1) -> None:
        self._skip += n

    async def drop_connections(self) -> None:
        for ws in list(self._ws_all):
            await ws.close()

    async def drop_user_stream(self) -> None:
        """Close only the order (user data) stream's connections; market data goes on."""
        for ws in list(self._user):
            await ws.close()

    async def restart(self, *, keep_orders: bool) -> None:
        """The venue restarts: every connection drops; with `keep_orders=False` it comes back from an
        empty store (our open orders gone from its book without a report, their trades forgotten)."""
        if not keep_orders:
            for oid in list(self._orders):
                if self.book.order(oid):
                    self.book.cancel(oid, API_OWNER)
            self.book.drain()  # no execution reports: the venue has no memory of these orders
            self._orders.clear()
            self._my_trades.clear()
        await self.drop_connections()

    def add_orphan(self, client_id: str, side: int, price: str, qty: str) -> int:
        """An order of ours that a previous run left working (no report: nobody was listening)."""
        self._next_oid += 1
        oid = self._next_oid
        o = self._new_order_facts(
            oid, client_id, side, self.inst.ticks(price), self.inst.lots(qty), "LIMIT", "GTC"
        )
        self._orders[oid] = o
        self.book.submit(oid, side, o["price"], o["size"], LIMIT, API_OWNER, STP_NONE)
        self._after_match()
        return oid

    def open_orders(self) -> list[dict]:
        """Our orders the venue holds open (its own view, for the tests' assertions)."""
        return [o for o in self._orders.values() if not o["done"] and self.book.order(o["id"])]

    def position(self) -> Decimal:
        """Base currency bought minus sold by our orders (from the venue's trades)."""
        return sum(
            (Decimal(t["qty"]) if t["isBuyer"] else -Decimal(t["qty"]) for t in self._my_trades), Decimal(0)
        )

    async def send_book_frame(self, text: str) -> None:
        """Send `text` as is to every public connection subscribed to the depth stream."""
        await self._broadcast(text, "@depth")

    async def send_garbage(self) -> None:
        for ws, _streams in list(self._public):
            await ws.send_str('{"e":"depthUpdate","E":1,"s":' + "\x00garbage")

    def _after_match(self) -> None:
        now = int(time.time() * 1000)
        for ev in self.book.drain():
            if type(ev) is Fill and not ev.is_maker:
                self._next_trade += 1
                self._trades.append(
                    {
                        "e": "trade",
                        "E": now - self.event_time_lag_ms,
                        "s": self.market_id,
                        "t": self._next_trade,
                        "p": self._px(ev.price),
                        "q": self._qty(ev.size),
                        "T": now - self.event_time_lag_ms,
                        "m": ev.side == SELL,
                        "M": True,
                    }
                )
            if ev.owner == API_OWNER:
                self._user_event(ev, now)

    def _user_event(self, ev, now: int) -> None:
        o = self._orders.get(ev.order_id)
        if o is None:
            return
        if type(ev) is Fill:
            o["filled"] += ev.size
            o["quote"] += ev.price * ev.size
            px, qty = self.inst.price(ev.price), self.inst.size(ev.size)
            fee = (
                (px * qty * self.contract_size * Decimal("0.001")).quantize(Decimal("0.00000001"))
                if not ev.is_maker
                else Decimal(0)
            )
            sign = 1 if o["side"] == BUY else -1
            self.balances[self.base] = self.balances.get(self.base, Decimal(0)) + sign * qty
            self.balances[self.quote] = self.balances.get(self.quote, Decimal(0)) - sign * px * qty - fee
            o["status"] = "FILLED" if o["filled"] >= o["size"] else "PARTIALLY_FILLED"
            self._next_trade += 1
            self._my_trades.append(
                {
                    "symbol": self.market_id,
                    "id": self._next_trade,
                    "orderId": o["id"],
                    "orderListId": -1,
                    "price": f"{px:f}",
                    "qty": f"{qty:f}",
                    "quoteQty": f"{px * qty:f}",
                    "commission": f"{fee:f}",
                    "commissionAsset": self.quote,
                    "time": now,
                    "isBuyer": o["side"] == BUY,
                    "isMaker": ev.is_maker,
                    "isBestMatch": True,
                }
            )
            self._push_report(
                o,
                "TRADE",
                now,
                last_qty=qty,
                last_px=px,
                fee=fee,
                trade_id=self._next_trade,
                maker=ev.is_maker,
            )
        elif type(ev) is Cancelled:
            o["status"] = "EXPIRED" if ev.reason != "cancelled" else "CANCELED"
            self._push_report(o, "CANCELED" if o["status"] == "CANCELED" else "EXPIRED", now)
        elif type(ev) is Done:
            o["done"] = True

    def _push_report(
        self,
        o: dict,
        exec_type: str,
        now: int,
        *,
        last_qty=Decimal(0),
        last_px=Decimal(0),
        fee=Decimal(0),
        trade_id=-1,
        maker=False,
    ) -> None:
        cancel_cid = o.get("cancel_cid") if exec_type == "CANCELED" else None
        ev = {
            "e": "executionReport",
            "E": now,
            "s": self.market_id,
            "c": cancel_cid or o["cid"],
            "S": "BUY" if o["side"] == BUY else "SELL",
            "o": o["type"],
            "f": o["tif"],
            "q": self._qty(o["size"]),
            "p": self._px(o["price"]) if o["price"] else "0.00000000",
            "P": "0.00000000",
            "F": "0.00000000",
            "g": -1,
            "C": o["cid"] if cancel_cid else "",
            "x": exec_type,
            "X": o["status"],
            "r": "NONE",
            "i": o["id"],
            "l": f"{last_qty:f}",
            "z": self._qty(o["filled"]),
            "L": f"{last_px:f}",
            "n": f"{fee:f}",
            "N": self.quote if fee else None,
            "T": now,
            "t": trade_id,
            "I": 1,
            "w": o["status"] in ("NEW", "PARTIALLY_FILLED"),
            "m": maker,
            "M": False,
            "O": o["created"],
            "Z": f"{self.inst.notional(o['quote']):f}",
            "Y": f"{last_px * last_qty:f}",
            "Q": "0.00000000",
        }
        msg = json.dumps({"subscriptionId": 0, "event": ev})
        for ws in list(self._user):
            asyncio.get_running_loop().create_task(_send(ws, msg))

    async def _publisher(self) -> None:
        last_batch: list = []
        while True:
            await asyncio.sleep(self.publish_every_s)
            if self.silent:
                continue
            touched = self.book.touched
            if touched:
                changes = {}
                for side, px in touched:
                    changes[(side, px)] = self.book.level_size(side, px)
                touched.clear()
                first = self.update_id + 1 + self._skip
                self._skip = 0
                self.update_id = first + len(changes) - 1
                now = int(time.time() * 1000) - self.event_time_lag_ms
                bids = [[self._px(p), self._qty(s)] for (side, p), s in changes.items() if side == BUY]
                asks = [[self._px(p), self._qty(s)] for (side, p), s in changes.items() if side == SELL]
                last_batch = [
                    json.dumps(
                        {
                            "e": "depthUpdate",
                            "E": now,
                            "s": self.market_id,
                            "U": first,
                            "u": self.update_id,
                            **({"pu": first - 1} if self.futures else {}),
                            "b": bids,
                            "a": asks,
                        }
                    ),
                    "depth",
                ]
                await self._broadcast(last_batch[0], "@depth")
            trades, self._trades = self._trades, []
            for t in trades:
                await self._broadcast(json.dumps(t), "@trade")

    async def _broadcast(self, msg: str, kind: str) -> None:
        for ws, streams in list(self._public):
            if any(kind in s for s in streams):
                await _send(ws, msg)

    # ---- REST ---------------------------------------------------------------------------------------
    def _fault(self, request: web.Request) -> web.Response | None:
        self.requests.append(f"{request.method} {request.path}")
        self._current = f"{request.method} {request.path}"
        if self.http_faults:
            status = self.http_faults.pop(0)
            if status == 429:
                return web.json_response(
                    {
                        "code": -1003,
                        "msg": "Too many requests; current limit is 1200 request weight per 1 MINUTE.",
                    },
                    status=429,
                )
            return web.Response(status=status, text="<html>Service Unavailable</html>")
        return None

    async def _exchange_info(self, request: web.Request) -> web.Response:
        bad = self._fault(request)
        if bad is not None:
            return bad
        inst = self.inst
        symbol = {
            "symbol": self.market_id,
            "status": "TRADING",
            "baseAsset": self.base,
            "baseAssetPrecision": 8,
            "quoteAsset": self.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": f"{inst.tick_size:f}",
                    "maxPrice": "1000000.00000000",
                    "tickSize": f"{inst.tick_size:f}",
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": f"{inst.lot_size:f}",
                    "maxQty": f"{self.max_qty:f}",
                    "stepSize": f"{inst.lot_size:f}",
                },
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": "0.00000000",
                    "maxQty": f"{self.max_qty:f}",
                    "stepSize": "0.00000000",
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": "1.00000000",
                    "applyMinToMarket": True,
                    "maxNotional": "9000000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }
        return web.json_response(
            {
                "timezone": "UTC",
                "serverTime": int(time.time() * 1000),
                "rateLimits": [],
                "exchangeFilters": [],
                "symbols": [symbol],
            }
        )

    async def _depth(self, request: web.Request) -> web.Response:
        bad = self._fault(request)
        if bad is not None:
            return bad
        limit = int(request.query.get("limit", "100"))
        bids, asks = self.levels()
        return web.json_response(
            {
                "lastUpdateId": self.update_id,
                "bids": [[self._px(p), self._qty(s)] for p, s in bids[:limit]],
                "asks": [[self._px(p), self._qty(s)] for p, s in asks[:limit]],
            }
        )

    async def _signed(self, request: web.Request) -> tuple[dict | None, web.Response | None]:
        raw = await request.text() if request.method == "POST" else request.query_string
        if request.method == "POST" and request.query_string:
            raw = request.query_string + ("&" + raw if raw else "")
        payload, sep, signature = raw.rpartition("&signature=")
        expected = hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if request.headers.get("X-MBX-APIKEY") != self.api_key:
            return None, self._refuse(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        if not sep or not hmac.compare_digest(signature, expected):
            return None, self._refuse(-1022, "Signature for this request is not valid.")
        self.signatures_checked += 1
        return dict(parse_qsl(payload, keep_blank_values=True)), None

    async def _new_order(self, request: web.Request) -> web.Response:
        bad = self._fault(request)
        if bad is not None:
            return bad
        p, err = await self._signed(request)
        if err is not None:
            return err
        if self.order_faults:
            code, msg = self.order_faults.pop(0)
            return self._refuse(code, msg)
        inst = self.inst
        otype = p.get("type", "LIMIT")
        side = BUY if p.get("side") == "BUY" else SELL
        qty = Decimal(p.get("quantity", "0"))
        if qty > self.max_qty or qty < inst.lot_size:
            return self._refuse(-1013, "Filter failure: LOT_SIZE")
        try:
            size = inst.lots(qty)
            price = inst.ticks(p["price"]) if otype != "MARKET" else 0
        except Exception:
            return self._refuse(-1013, "Filter failure: PRICE_FILTER")
        if not self.check_balances:
            pass
        elif side == BUY:
            px = inst.price(price) if price else inst.price(self.book.best_ask() or 0)
            if px * qty > self.balances.get(self.quote, Decimal(0)):
                return self._refuse(-2010, "Account has insufficient balance for requested action.")
        elif qty > self.balances.get(self.base, Decimal(0)):
            return self._refuse(-2010, "Account has insufficient balance for requested action.")
        tif = p.get("timeInForce", "GTC")
        kind = {"MARKET": MARKET, "LIMIT_MAKER": POST_ONLY}.get(
            otype, IOC if tif in ("IOC", "FOK") else LIMIT
        )
        self._next_oid += 1
        oid = self._next_oid
        now = int(time.time() * 1000)
        o = self._new_order_facts(
            oid, p.get("newClientOrderId") or f"srv{oid}", side, price, size, otype, tif
        )
        self._orders[oid] = o
        self._push_report(o, "NEW", now)
        self.book.submit(oid, side, price, size, kind, API_OWNER, STP_NONE)
        self._after_match()
        return web.json_response(self._order_json(o, now))

    async def _cancel_order(self, request: web.Request) -> web.Response:
        bad = self._fault(request)
        if bad is not None:
            return bad
        p, err = await self._signed(request)
        if err is not None:
            return err
        o = None
        if "orderId" in p:
            o = self._orders.get(int(p["orderId"]))
        elif "origClientOrderId" in p:
            o = next((x for x in self._orders.values() if x["cid"] == p["origClientOrderId"]), None)
        if o is None or o["done"]:
            return self._refuse(-2011, "Unknown order sent.")
        o["cancel_cid"] = p.get("newClientOrderId") or f"cxl{o['id']}"
        self.book.cancel(o["id"], API_OWNER)
        self._after_match()
        return web.json_response(self._order_json(o, int(time.time() * 1000)))

    def _new_order_facts(
        self, oid: int, cid: str, side: int, price: int, size: int, otype: str, tif: str
    ) -> dict:
        return {
            "id": oid,
            "cid": cid,
            "side": side,
            "price": price,
            "size": size,
            "filled": 0,
            "quote": 0,
            "type": otype,
            "tif": tif,
            "status": "NEW",
            "created": int(time.time() * 1000),
            "done": False,
        }

    def _refuse(self, code: int, msg: str, status: int = 400) -> web.Response:
        self.refused.append((getattr(self, "_current", "?"), code))
        return _error(code, msg, status)

    def _order_status(self, o: dict) -> dict:
        facts = self._order_json(o, o["created"])
        facts.update(time=o["created"], updateTime=int(time.time() * 1000), isWorking=True)
        facts["origQuoteOrderQty"] = "0.00000000"
        return facts

    async def _open_orders(self, request: web.Request) -> web.Response:
        bad = self._fault(request)
        if bad is not None:
            return bad
        _p, err = await self._signed(request)
        if err is not None:
            return err
        return web.json_response([self._order_status(o) for o in self.open_orders()])

    async def _query_order(self, request: web.Request) -> web.Response:
        bad = self._fault(request)
        if bad is not None:
            return bad
        p, err = await self._signed(request)
        if err is not None:
            return err
        o = None
        if "orderId" in p:
            o = self._orders.get(int(p["orderId"]))
        elif "origClientOrderId" in p:
            o = next((x for x in self._orders.values() if x["cid"] == p["origClientOrderId"]), None)
        if o is None:
            return self._refuse(-2013, "Order does not exist.")
        return web.json_response(self._order_status(o))

    async def _all_orders(self, request: web.Request) -> web.Response:
        bad = self._fault(request)
        if bad is not None:
            return bad
        p, err = await self._signed(request)
        if err is not None:
            return err
        start = int(p.get("startTime", 0))
        limit = int(p.get("limit", 500))
        rows = [self._order_status(o) for o in self._orders.values() if o["created"] >= start]
        return web.json_response(rows[:limit])

    async def _my_trades_rest(self, request: web.Request) -> web.Response:
        bad = self._fault(request)
        if bad is not None:
            return bad
        p, err = await self._signed(request)
        if err is not None:
            return err
        start = int(p.get("startTime", 0))
        end = int(p.get("endTime", 1 << 62))
        from_id = int(p.get("fromId", 0))
        limit = int(p.get("limit", 500))
        rows = [t for t in self._my_trades if start <= t["time"] <= end and t["id"] >= from_id]
        return web.json_response(rows[:limit])

    async def _account(self, request: web.Request) -> web.Response:
        bad = self._fault(request)
        if bad is not None:
            return bad
        _p, err = await self._signed(request)
        if err is not None:
            return err
        return web.json_response(
            {
                "makerCommission": 0,
                "takerCommission": 10,
                "canTrade": True,
                "accountType": "SPOT",
                "updateTime": int(time.time() * 1000),
                "balances": [{"asset": a, "free": f"{v:f}", "locked": "0"} for a, v in self.balances.items()],
                "permissions": ["SPOT"],
            }
        )

    def _order_json(self, o: dict, now: int) -> dict:
        return {
            "symbol": self.market_id,
            "orderId": o["id"],
            "orderListId": -1,
            "clientOrderId": o["cid"],
            "transactTime": now,
            "price": self._px(o["price"]) if o["price"] else "0.00000000",
            "origQty": self._qty(o["size"]),
            "executedQty": self._qty(o["filled"]),
            "cummulativeQuoteQty": f"{self.inst.notional(o['quote']):f}",
            "status": o["status"],
            "timeInForce": o["tif"],
            "type": o["type"],
            "side": "BUY" if o["side"] == BUY else "SELL",
            "workingTime": now,
            "selfTradePreventionMode": "NONE",
        }

    # ---- websockets ---------------------------------------------------------------------------------
    async def _public_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        streams: set[str] = set()
        entry = (ws, streams)
        self._public.append(entry)
        self._ws_all.add(ws)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                req = json.loads(msg.data)
                if req.get("method") == "SUBSCRIBE":
                    streams.update(req.get("params", []))
                    await ws.send_str(json.dumps({"result": None, "id": req.get("id")}))
                elif req.get("method") == "UNSUBSCRIBE":
                    streams.difference_update(req.get("params", []))
                    await ws.send_str(json.dumps({"result": None, "id": req.get("id")}))
        finally:
            if entry in self._public:
                self._public.remove(entry)
            self._ws_all.discard(ws)
        return ws

    async def _ws_api(self, request: web.Request) -> web.StreamResponse:
        if self.user_stream_down:
            return web.Response(status=503, text="user data stream unavailable")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws_all.add(ws)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                req = json.loads(msg.data)
                rid = req.get("id")
                if req.get("method") == "userDataStream.subscribe.signature":
                    params = dict(req.get("params") or {})
                    signature = params.pop("signature", "")
                    query = "&".join(f"{k}={params[k]}" for k in sorted(params))
                    expected = hmac.new(self.secret.encode(), query.encode(), hashlib.sha256).hexdigest()
                    if params.get("apiKey") != self.api_key or not hmac.compare_digest(signature, expected):
                        await ws.send_str(
                            json.dumps(
                                {
                                    "id": rid,
                                    "status": 401,
                                    "error": {
                                        "code": -1022,
                                        "msg": "Signature for this request is not valid.",
                                    },
                                }
                            )
                        )
                        continue
                    self.signatures_checked += 1
                    self._user.append(ws)
                    self.user_subscribed_at.append(time.monotonic())
                    await ws.send_str(json.dumps({"id": rid, "status": 200, "result": {"subscriptionId": 0}}))
                else:
                    await ws.send_str(
                        json.dumps(
                            {
                                "id": rid,
                                "status": 400,
                                "error": {"code": -1100, "msg": f"Unknown method {req.get('method')!r}"},
                            }
                        )
                    )
        finally:
            if ws in self._user:
                self._user.remove(ws)
            self._ws_all.discard(ws)
        return ws

    def _px(self, ticks: int) -> str:
        return f"{self.inst.price(ticks):.8f}"

    def _qty(self, lots: int) -> str:
        return f"{self.inst.size(lots):.8f}"


def _error(code: int, msg: str, status: int = 400) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status)


async def _send(ws: web.WebSocketResponse, msg: str) -> None:
    try:
        if not ws.closed:
            await ws.send_str(msg)
    except (ConnectionError, RuntimeError):
        pass


class BinanceUsdmLoopback(BinanceLoopback):
    """Binance USD-M futures (`/fapi`) on 127.0.0.1 for the unmodified ccxt.pro.binanceusdm: one linear
    perpetual whose quantities are contracts of `contract_size` base units (Binance's own BTCUSDT
    counts 1 BTC a unit; this one counts contracts the way OKX's and Bybit's linear swaps do, and ccxt
    reads the market's `contractSize`, so every amount on the wire is contracts).

    Served: GET /fapi/v1/exchangeInfo, /fapi/v1/depth, POST/DELETE /fapi/v1/order, GET /fapi/v1/order,
    /fapi/v1/openOrders, /fapi/v1/allOrders, /fapi/v1/userTrades, /fapi/v3/positionRisk,
    /fapi/v1/leverageBracket, /fapi/v3/account, /fapi/v1/premiumIndex, /fapi/v1/income (FUNDING_FEE
    rows: `pay_funding`), POST/PUT /fapi/v1/listenKey; websockets where ccxt puts them under `ws_url`
    (`/public/ws/N`: depthUpdate with `pu`, trade; `/private/ws?listenKey=`: ORDER_TRADE_UPDATE).
    Orders match in the same MatchingBook as the spot venue (lots = contracts). Margin is not checked:
    the position is the sum of our trades (`position()`, contracts)."""

    def __init__(
        self, *, contract_size: str = "0.001", tick: str = "0.1", margin_asset: str = "USDT", **kw
    ) -> None:
        super().__init__(tick=tick, lot="1", max_qty="1000000", **kw)
        self.margin_asset = margin_asset  # the base currency makes it an inverse market to ccxt
        self.market_id = "BTCUSDT"
        self.contract_size = Decimal(contract_size)
        self.check_balances = False
        self.futures = True
        self.mark = Decimal("65000.0")
        self.index = Decimal("64990.0")
        self.funding_rate = "0.00010000"
        self.leverage = 10
        self.wallet = Decimal("10000.00")
        self.income: list[dict] = []
        self._next_tran = 7_000_000

    def venue_options(self) -> dict:
        return {
            "exchange": "binanceusdm",
            "rest_url": f"http://127.0.0.1:{self.port}",
            "ws_url": f"ws://127.0.0.1:{self.port}",
            "options": {"fetchCurrencies": False, "fetchMargins": False},
        }

    def pay_funding(self, income: str, *, at_ms: int | None = None) -> int:
        """The venue books a funding payment to our account (`income` USDT: negative = we paid)."""
        self._next_tran += 1
        self.income.append(
            {
                "symbol": self.market_id,
                "incomeType": "FUNDING_FEE",
                "income": income,
                "asset": "USDT",
                "info": "FUNDING_FEE",
                "time": at_ms if at_ms is not None else int(time.time() * 1000),
                "tranId": self._next_tran,
                "tradeId": "",
            }
        )
        return self._next_tran

    def _add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/fapi/v1/exchangeInfo", self._f_exchange_info)
        r.add_get("/fapi/v1/depth", self._f_depth)
        r.add_post("/fapi/v1/order", self._new_order)
        r.add_delete("/fapi/v1/order", self._cancel_order)
        r.add_get("/fapi/v1/order", self._query_order)
        r.add_get("/fapi/v1/openOrders", self._open_orders)
        r.add_get("/fapi/v1/allOrders", self._all_orders)
        r.add_get("/fapi/v1/userTrades", self._f_user_trades)
        r.add_get("/fapi/v3/positionRisk", self._f_position_risk)
        r.add_get("/fapi/v1/leverageBracket", self._f_brackets)
        r.add_get("/fapi/v3/account", self._f_account)
        r.add_get("/fapi/v1/premiumIndex", self._f_premium_index)
        r.add_get("/fapi/v1/income", self._f_income)
        r.add_post("/fapi/v1/listenKey", self._f_listen_key)
        r.add_put("/fapi/v1/listenKey", self._f_listen_key)
        r.add_get("/public/ws/{n}", self._public_ws)
        r.add_get("/market/ws/{n}", self._public_ws)
        r.add_get("/private/ws", self._f_private_ws)

    # ---- REST ---------------------------------------------------------------------------------------
    async def _f_exchange_info(self, request: web.Request) -> web.Response:
        bad = self._fault(request)
        if bad is not None:
            return bad
        symbol = {
            "symbol": self.market_id,
            "pair": self.market_id,
            "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000,
            "onboardDate": 1569398400000,
            "status": "TRADING",
            "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000",
            "baseAsset": self.base,
            "quoteAsset": self.quote,
            "marginAsset": self.margin_asset,
            "contractSize": f"{self.contract_size:f}",
            "pricePrecision": 1,
            "quantityPrecision": 0,
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "0.1", "maxPrice": "1000000", "tickSize": f"{self.inst.tick_size:f}"},
                {"filterType": "LOT_SIZE", "stepSize": "1", "maxQty": f"{self.max_qty:f}", "minQty": "1"},
                {"filterType": "MARKET_LOT_SIZE", "stepSize": "1", "maxQty": f"{self.max_qty:f}", "minQty": "1"},
            ],
            "orderTypes": ["LIMIT", "MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
        }  # fmt: skip
        body = {"timezone": "UTC", "serverTime": int(time.time() * 1000), "rateLimits": [], "assets": [],
                "symbols": [symbol]}  # fmt: skip
        return web.json_response(body)

    async def _f_depth(self, request: web.Request) -> web.Response:
        bad = self._fault(request)
        if bad is not None:
            return bad
        limit = int(request.query.get("limit", "100"))
        bids, asks = self.levels()
        now = int(time.time() * 1000)
        return web.json_response(
            {
                "lastUpdateId": self.update_id,
                "E": now,
                "T": now,
                "bids": [[self._px(p), self._qty(s)] for p, s in bids[:limit]],
                "asks": [[self._px(p), self._qty(s)] for p, s in asks[:limit]],
            }
        )

    async def _keyed(self, request: web.Request) -> web.Response | None:
        bad = self._fault(request)
        if bad is not None:
            return bad
        _p, err = await self._signed(request)
        return err

    async def _f_user_trades(self, request: web.Request) -> web.Response:
        bad = self._fault(request)
        if bad is not None:
            return bad
        p, err = await self._signed(request)
        if err is not None:
            return err
        start = int(p.get("startTime", 0))
        rows = [
            {
                "symbol": t["symbol"], "id": t["id"], "orderId": t["orderId"], "side": "BUY" if t["isBuyer"] else "SELL",
                "price": t["price"], "qty": t["qty"],
                "quoteQty": f"{Decimal(t['price']) * Decimal(t['qty']) * self.contract_size:f}",
                "realizedPnl": "0", "marginAsset": self.quote, "commission": t["commission"],
                "commissionAsset": t["commissionAsset"], "time": t["time"], "positionSide": "BOTH",
                "buyer": t["isBuyer"], "maker": t["isMaker"],
            }
            for t in self._my_trades
            if t["time"] >= start
        ]  # fmt: skip
        return web.json_response(rows[: int(p.get("limit", 500))])

    async def _f_position_risk(self, request: web.Request) -> web.Response:
        err = await self._keyed(request)
        if err is not None:
            return err
        amt = self.position()
        notional = amt * self.contract_size * self.mark
        return web.json_response(
            [
                {
                    "symbol": self.market_id, "positionSide": "BOTH", "positionAmt": f"{amt:f}",
                    "entryPrice": f"{self.mark}", "breakEvenPrice": f"{self.mark}", "markPrice": f"{self.mark}",
                    "unRealizedProfit": "0", "liquidationPrice": "0", "isolatedMargin": "0",
                    "notional": f"{notional:f}", "marginAsset": self.quote, "isolatedWallet": "0",
                    "initialMargin": f"{abs(notional) / self.leverage:f}", "maintMargin": "0",
                    "positionInitialMargin": f"{abs(notional) / self.leverage:f}", "openOrderInitialMargin": "0",
                    "adl": 1, "bidNotional": "0", "askNotional": "0", "leverage": str(self.leverage),
                    "marginType": "cross", "updateTime": int(time.time() * 1000),
                }
            ]
        )  # fmt: skip

    async def _f_brackets(self, request: web.Request) -> web.Response:
        err = await self._keyed(request)
        if err is not None:
            return err
        brackets = [
            {"bracket": 1, "initialLeverage": 125, "notionalCap": 50000, "notionalFloor": 0, "maintMarginRatio": 0.004, "cum": 0.0},
            {"bracket": 2, "initialLeverage": 100, "notionalCap": 600000, "notionalFloor": 50000, "maintMarginRatio": 0.005, "cum": 50.0},
        ]  # fmt: skip
        return web.json_response([{"symbol": self.market_id, "brackets": brackets}])

    async def _f_account(self, request: web.Request) -> web.Response:
        err = await self._keyed(request)
        if err is not None:
            return err
        w = f"{self.wallet}"
        return web.json_response(
            {
                "totalWalletBalance": w,
                "assets": [{"asset": self.quote, "walletBalance": w, "marginBalance": w, "availableBalance": w,
                            "unrealizedProfit": "0", "updateTime": int(time.time() * 1000)}],
                "positions": [],
            }
        )  # fmt: skip

    async def _f_premium_index(self, request: web.Request) -> web.Response:
        bad = self._fault(request)
        if bad is not None:
            return bad
        row = {"symbol": self.market_id, "markPrice": f"{self.mark}", "indexPrice": f"{self.index}",
               "estimatedSettlePrice": f"{self.index}", "lastFundingRate": self.funding_rate,
               "interestRate": "0.00010000", "nextFundingTime": 1700006400000, "time": int(time.time() * 1000)}  # fmt: skip
        return web.json_response(row if request.query.get("symbol") else [row])

    async def _f_income(self, request: web.Request) -> web.Response:
        bad = self._fault(request)
        if bad is not None:
            return bad
        p, err = await self._signed(request)
        if err is not None:
            return err
        start = int(p.get("startTime", 0))
        kind = p.get("incomeType")
        rows = [
            r
            for r in self.income
            if r["time"] >= start and (kind is None or r["incomeType"] == kind)
            and p.get("symbol") in (None, r["symbol"])
        ]  # fmt: skip
        return web.json_response(rows[: int(p.get("limit", 100))])

    async def _f_listen_key(self, request: web.Request) -> web.Response:
        bad = self._fault(request)
        if bad is not None:
            return bad
        if request.headers.get("X-MBX-APIKEY") != self.api_key:
            return self._refuse(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        return web.json_response({"listenKey": "lk" + hashlib.sha256(self.api_key.encode()).hexdigest()[:40]})

    # ---- orders as USD-M reports them ---------------------------------------------------------------
    def _order_json(self, o: dict, now: int) -> dict:
        avg = f"{self.inst.notional(o['quote']) / self.inst.size(o['filled']):f}" if o["filled"] else "0"
        return {
            "orderId": o["id"], "symbol": self.market_id, "status": o["status"], "clientOrderId": o["cid"],
            "price": self._px(o["price"]) if o["price"] else "0", "avgPrice": avg, "origQty": self._qty(o["size"]),
            "executedQty": self._qty(o["filled"]), "cumQty": self._qty(o["filled"]),
            "cumQuote": f"{self.inst.notional(o['quote']) * self.contract_size:f}", "timeInForce": o["tif"],
            "type": o["type"], "reduceOnly": False, "closePosition": False,
            "side": "BUY" if o["side"] == BUY else "SELL", "positionSide": "BOTH", "stopPrice": "0",
            "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": o["type"], "priceMatch": "NONE",
            "selfTradePreventionMode": "NONE", "goodTillDate": 0, "time": o["created"], "updateTime": now,
        }  # fmt: skip

    def _order_status(self, o: dict) -> dict:
        return self._order_json(o, int(time.time() * 1000))

    def _push_report(self, o: dict, exec_type: str, now: int, *, last_qty=Decimal(0), last_px=Decimal(0),
                     fee=Decimal(0), trade_id=-1, maker=False) -> None:  # fmt: skip
        ev = {
            "e": "ORDER_TRADE_UPDATE",
            "E": now,
            "T": now,
            "o": {
                "s": self.market_id, "c": o["cid"], "S": "BUY" if o["side"] == BUY else "SELL", "o": o["type"],
                "f": o["tif"], "q": self._qty(o["size"]), "p": self._px(o["price"]) if o["price"] else "0",
                "ap": "0", "sp": "0", "x": exec_type, "X": o["status"], "i": o["id"], "l": f"{last_qty:f}",
                "z": self._qty(o["filled"]), "L": f"{last_px:f}", "N": self.quote, "n": f"{fee:f}", "T": now,
                "t": trade_id if trade_id > 0 else 0, "b": "0", "a": "0", "m": maker, "R": False,
                "wt": "CONTRACT_PRICE", "ot": o["type"], "ps": "BOTH", "cp": False, "rp": "0", "pP": False,
                "si": 0, "ss": 0, "V": "NONE", "pm": "NONE", "gtd": 0,
            },
        }  # fmt: skip
        msg = json.dumps(ev)
        for ws in list(self._user):
            asyncio.get_running_loop().create_task(_send(ws, msg))

    async def _f_private_ws(self, request: web.Request) -> web.StreamResponse:
        if self.user_stream_down:
            return web.Response(status=503, text="user data stream unavailable")
        if not request.query.get("listenKey"):
            return web.Response(status=400, text="no listenKey")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws_all.add(ws)
        self._user.append(ws)
        self.user_subscribed_at.append(time.monotonic())
        try:
            async for _msg in ws:
                pass
        finally:
            if ws in self._user:
                self._user.remove(ws)
            self._ws_all.discard(ws)
        return ws

    def _qty(self, lots: int) -> str:
        return f"{self.inst.size(lots):f}"
