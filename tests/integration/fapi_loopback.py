"""A Binance USD-M futures REST venue on 127.0.0.1: only what lobterm's linear-swap margin figures need,
for the unmodified ccxt.pro.binanceusdm (ccxt 4.5.90).

Served: GET /fapi/v1/exchangeInfo (one BTCUSDT perpetual), /fapi/v1/leverageBracket (the maintenance
rate tiers ccxt loads before positions), /fapi/v3/positionRisk (our position: `position`, `entry`,
`mark`, `leverage`), /fapi/v3/account (the USDT wallet: `wallet`) and /fapi/v1/premiumIndex (mark and
index). Signed requests need the key in X-MBX-APIKEY; the signature is not checked. Not served: orders
and the futures websockets (market data and the user stream): `binance_loopback.BinanceUsdmLoopback`
serves the whole USD-M protocol (orders, streams, income) for live swap trading tests.
"""

from __future__ import annotations

from decimal import Decimal

from aiohttp import web

SYMBOL = {
    "symbol": "BTCUSDT",
    "pair": "BTCUSDT",
    "contractType": "PERPETUAL",
    "deliveryDate": 4133404800000,
    "onboardDate": 1569398400000,
    "status": "TRADING",
    "maintMarginPercent": "2.5000",
    "requiredMarginPercent": "5.0000",
    "baseAsset": "BTC",
    "quoteAsset": "USDT",
    "marginAsset": "USDT",
    "pricePrecision": 2,
    "quantityPrecision": 3,
    "baseAssetPrecision": 8,
    "quotePrecision": 8,
    "underlyingType": "COIN",
    "filters": [
        {"minPrice": "261.10", "maxPrice": "809484", "filterType": "PRICE_FILTER", "tickSize": "0.10"},
        {"stepSize": "0.001", "filterType": "LOT_SIZE", "maxQty": "1000", "minQty": "0.001"},
    ],
    "orderTypes": ["LIMIT", "MARKET"],
    "timeInForce": ["GTC", "IOC"],
}
BRACKETS = [
    {"bracket": 1, "initialLeverage": 125, "notionalCap": 50000, "notionalFloor": 0, "maintMarginRatio": 0.004, "cum": 0.0},
    {"bracket": 2, "initialLeverage": 100, "notionalCap": 600000, "notionalFloor": 50000, "maintMarginRatio": 0.005, "cum": 50.0},
]  # fmt: skip


class FapiLoopback:
    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.position = Decimal("0.500")  # signed BTC
        self.entry = Decimal("65000.0")
        self.mark = Decimal("64800.00")
        self.index = Decimal("64790.0")
        self.leverage = 10
        self.wallet = Decimal("10000.00")
        self.requests: list[str] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    def venue_options(self) -> dict:
        return {
            "exchange": "binanceusdm",
            "rest_url": f"http://127.0.0.1:{self.port}",
            "ws_url": f"ws://127.0.0.1:{self.port}",
            "options": {"fetchCurrencies": False, "fetchMargins": False},
        }

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, req: web.Request) -> web.Response:
        path = req.path
        self.requests.append(path)
        public = path in ("/fapi/v1/exchangeInfo", "/fapi/v1/premiumIndex")
        if not public and req.headers.get("X-MBX-APIKEY") != self.api_key:
            return web.json_response({"code": -2015, "msg": "Invalid API-key"}, status=401)
        if path == "/fapi/v1/exchangeInfo":
            body: object = {
                "timezone": "UTC",
                "serverTime": 0,
                "rateLimits": [],
                "assets": [],
                "symbols": [SYMBOL],
            }
        elif path == "/fapi/v1/leverageBracket":
            body = [{"symbol": "BTCUSDT", "brackets": BRACKETS}]
        elif path == "/fapi/v3/positionRisk":
            notional = self.position * self.mark
            body = [
                {
                    "symbol": "BTCUSDT",
                    "positionSide": "BOTH",
                    "positionAmt": f"{self.position}",
                    "entryPrice": f"{self.entry}",
                    "breakEvenPrice": f"{self.entry}",
                    "markPrice": f"{self.mark}",
                    "unRealizedProfit": f"{self.position * (self.mark - self.entry)}",
                    "liquidationPrice": "0",
                    "isolatedMargin": "0",
                    "notional": f"{notional}",
                    "marginAsset": "USDT",
                    "isolatedWallet": "0",
                    "initialMargin": f"{abs(notional) / self.leverage}",
                    "maintMargin": "0",
                    "positionInitialMargin": f"{abs(notional) / self.leverage}",
                    "openOrderInitialMargin": "0",
                    "adl": 1,
                    "bidNotional": "0",
                    "askNotional": "0",
                    "leverage": str(self.leverage),
                    "marginType": "cross",
                    "updateTime": 1700000000000,
                }
            ]
        elif path == "/fapi/v3/account":
            body = {
                "totalWalletBalance": f"{self.wallet}",
                "assets": [
                    {"asset": "USDT", "walletBalance": f"{self.wallet}", "marginBalance": f"{self.wallet}",
                     "availableBalance": f"{self.wallet}", "unrealizedProfit": "0", "updateTime": 1700000000000}
                ],
                "positions": [],
            }  # fmt: skip
        elif path == "/fapi/v1/premiumIndex":
            body = {"symbol": "BTCUSDT", "markPrice": f"{self.mark}", "indexPrice": f"{self.index}",
                    "lastFundingRate": "0.0001", "interestRate": "0.0001", "nextFundingTime": 1700006400000,
                    "time": 1700000000000}  # fmt: skip
        else:
            return web.json_response({"code": -1100, "msg": f"not served here: {path}"}, status=400)
        return web.json_response(body)
