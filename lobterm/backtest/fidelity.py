"""How far to trust a backtest: `lobterm fidelity FILE...` and `lobterm calibrate FILE...`.

`fidelity`: rerun a recorded session (sim, or live keyed / paper) with its own recorded market maker
parameters, and their recorded live changes at their times, through the reference backtest
(lobterm/backtest/reference.py), and diff what the backtest filled against what the session recorded:
fills, volume, P&L, fees and markouts, and fills and volume per fill rule.

The backtest runs the kernel's timer as the session did (`run_backtest(timer=True)`: after each sim step
on a virtual clock, every 50 ms on a live one), so the market maker's heartbeat requotes as it did live
(without it, an amend a live heartbeat sent went missing: a paper sim session reran 2,637 lots for the
recorded 2,640, seed 1, 30 s; with it, the same fills to the lot and the same P&L).

The backtest runs with the paper desk's config as the session ran it (`recorded_paper_config`: the
recorded fees; a sim paper session's recorded `paper_cross_fills`), and the queue and latency models
given (default: the paper desk's, risk-averse, no latency).

The recorded side is the session played back (lobterm/recording/player.py): the recorded fills,
the inventory's P&L marked to the recorded mid at the end, the markouts of the recorded fills. The
backtest side is the paper desk's fills.

Fill rules. The paper desk fills a resting order by one of its rules: `queue` (trades at our price ate
the queue ahead of us), `through` (a trade printed beyond our price), `cross` (the book crossed our
price without a trade), `taker` (our order crossed on arrival), and counts them (`desk_fills_by_rule`).
A recorded fill carries no rule, so for the per-rule diff both sides' fills are classified the same way,
by what the market did at the fill's timestamp (the venue trades printed then, ours included): not
maker -> taker; a trade printed beyond our price (the taker swept past us) -> through; else a trade at
our price (the taker stopped at our level) -> queue; no trade -> cross. Same classification on both
sides, so a difference per rule says in which situation the backtest fills too much or too little; the
desk's own counts are beside it.

The fidelity figure. Three relative errors, each capped at 1:
  e_fills  = |fills_bt - fills_rec| / fills_rec
  e_volume = |lots_bt - lots_rec| / lots_rec
  e_pnl    = |net_bt - net_rec| / max(|net_rec|, spread_rec, one tick x one lot)
where spread_rec is the spread the recorded fills captured (the markout P&L split's spread term: what
the fills were worth at the mid at the moment they filled). P&L is scaled by what the quoting earned
before the market moved, not by the net alone, which can sit near zero on a flat session and would make
any difference look infinite. fidelity = 1 - (e_fills + e_volume + e_pnl) / 3, as a percentage. With no
recorded fills, a count or volume error is 0 if the backtest has none either, else 1.

`calibrate`: replay the sessions under each queue model (and each latency option) and rank the
combinations by their error against the recorded fills: fill count (relative), time to fill (the
median time from an order's first acknowledgement to each of its fills, amends included, relative) and markouts (the average
markout per lot at each horizon, in ticks, relative to the recorded one, at least one tick), each
capped at 1; the score is their mean over the three and over the sessions, lower is better. Equal
scores share a rank: on those sessions the models cannot be told apart. Each session's row says how
many cancels could have told them apart (`queue_sensitive_cancels`, the paper desk's count: cancels at
one of our levels after which the row's model placed our order elsewhere than risk_averse would; with
nothing behind our order, nothing ahead of it, or a cancel larger than the model's share behind us,
hftbacktest's formula reduces to the conservative position). On sim sessions there are none, and the
tie is real, not a measuring error (time to fill and markouts are compared too, and differ across
latencies): the sim publishes one net delta per level per step and the market maker moves its quotes
often, re-joining at the back, so a cancel at our level finds nothing behind us (measured, seed 7,
60 s, 3 levels: 633 cancels at our levels, 502 with nothing behind our order, the other 131 with
nothing ahead or more cancelled than the model's share behind us: 0 sensitive under power:1, power:3,
power2:2 and log; the same 332 fills, median time to fill 0.55 s and markouts under every model; also
with refresh_tolerance_ticks 3 and 8, 587 and 712 fills under every model). A live session, where others
join behind us and cancel from anywhere, separates them.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from lobterm.backtest.models import LatencyModel, ModelError, parse_latency, parse_queue
from lobterm.backtest.reference import run_backtest
from lobterm.backtest.result import rounded
from lobterm.engine.events import BUY, OUR_OWNER, Accepted, Fill, Trade
from lobterm.recording.player import paper_config_from
from lobterm.recording.reader import SessionError, SessionReader
from lobterm.trading.inventory import to_quote
from lobterm.trading.paper import PaperConfig

__all__ = [
    "DEFAULT_QUEUE_MODELS",
    "FillCollector",
    "FidelityReport",
    "calibrate",
    "calibrate_command",
    "fidelity",
    "fidelity_command",
]

RULES = ("queue", "through", "cross", "taker")
DEFAULT_QUEUE_MODELS = ("risk_averse", "power:1", "power:2", "power:3", "power2", "power3", "log", "log2")


class FillCollector:
    """Our fills on one market from a kernel's bus: count, lots, fees, time to fill, rule (see the module
    docstring). The same collector reads the played-back recording and the backtest."""

    def __init__(self, venue: str, symbol: str) -> None:
        self.venue, self.symbol = venue, symbol
        self.fills = 0
        self.bought = 0
        self.sold = 0
        self.fees = 0  # 1/FEE_SCALE of a tick*lot, as Fill.fee
        self.by_rule: dict[str, list[int]] = {r: [0, 0] for r in RULES}  # rule -> [fills, lots]
        self.ttf_ns: list[int] = []
        self._accepted: dict[int, int] = {}
        self._ts: int | None = None
        self._trades: list[int] = []
        self._fills: list[Fill] = []
        self.desk: Any = None  # the backtest's paper desk (None when reading a recording)

    def attach(self, kernel: Any) -> None:
        self.desk = getattr(kernel.venues.get(self.venue), "desk", None)
        bus = kernel.bus
        bus.subscribe(Accepted, self.on_accepted)
        bus.subscribe(Fill, self.on_fill)
        bus.subscribe(Trade, self.on_trade)

    def _mine(self, ev: Any) -> bool:
        return ev.venue == self.venue and ev.symbol == self.symbol

    def _at(self, ts: int) -> None:
        if ts != self._ts:
            self.flush()
            self._ts = ts

    def on_accepted(self, ev: Accepted) -> None:
        if ev.owner == OUR_OWNER and self._mine(ev):
            self._accepted.setdefault(ev.order_id, ev.ts)

    def on_trade(self, ev: Trade) -> None:
        if self._mine(ev):
            self._at(ev.ts)
            self._trades.append(ev.price)

    def on_fill(self, ev: Fill) -> None:
        if ev.owner != OUR_OWNER or not self._mine(ev):
            return
        self._at(ev.ts)
        self._fills.append(ev)
        self.fills += 1
        if ev.side == BUY:
            self.bought += ev.size
        else:
            self.sold += ev.size
        self.fees += ev.fee
        t0 = self._accepted.get(ev.order_id)
        if t0 is not None:
            self.ttf_ns.append(max(0, ev.ts - t0))
        if not ev.leaves:
            self._accepted.pop(ev.order_id, None)

    def flush(self) -> None:
        for f in self._fills:
            if not f.is_maker:
                rule = "taker"
            elif any((p < f.price) if f.side == BUY else (p > f.price) for p in self._trades):
                rule = "through"
            elif f.price in self._trades:
                rule = "queue"
            else:
                rule = "cross"
            self.by_rule[rule][0] += 1
            self.by_rule[rule][1] += f.size
        self._fills.clear()
        self._trades.clear()

    @property
    def lots(self) -> int:
        return self.bought + self.sold

    def median_ttf_s(self) -> float | None:
        return statistics.median(self.ttf_ns) / 1e9 if self.ttf_ns else None


@dataclass(slots=True)
class Side:
    """What one side (recorded or backtest) filled, P&L in quote currency (exact strings)."""

    fills: int
    volume: str
    lots: int
    fees: str
    net_pnl: str
    by_rule: dict[str, dict[str, Any]]
    median_time_to_fill_s: float | None
    markout_ticks: dict[str, str | None]  # horizon (s) -> average markout per lot, ticks


@dataclass(slots=True)
class FidelityReport:
    path: str
    venue: str
    symbol: str
    params_source: str
    queue_model: str
    latency: str
    recorded: Side
    backtest: Side
    desk_fills_by_rule: dict[str, int]
    errors: dict[str, float]
    fidelity_pct: float
    quote_currency: str = ""
    quote_decimals: int = 8  # how many decimals the text shows money with
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    def as_text(self) -> str:
        r, b = self.recorded, self.backtest
        e = self.errors

        def money(amount: str) -> str:
            return rounded(amount, self.quote_decimals)

        def row(name: str, rv: Any, bv: Any, err: str = "") -> str:
            return f"  {name:<22} {str(rv):>16} {str(bv):>16}  {err}".rstrip()

        ttf = ["-" if x is None else f"{x:.3f} s" for x in (r.median_time_to_fill_s, b.median_time_to_fill_s)]
        lines = [
            f"lobterm fidelity: {self.path}",
            f"  market                 {self.venue} {self.symbol}; parameters {self.params_source}",
            f"  models                 queue {self.queue_model}, latency {self.latency}",
            row("", "recorded", "backtest", "error"),
            row("fills", r.fills, b.fills, f"{e['fills'] * 100:.1f}%"),
            row("volume", r.volume, b.volume, f"{e['volume'] * 100:.1f}%"),
            row(
                f"net P&L ({self.quote_currency})",
                money(r.net_pnl),
                money(b.net_pnl),
                f"{e['pnl'] * 100:.1f}% of scale",
            ),
            row("fees", money(r.fees), money(b.fees)),
            row("median time to fill", ttf[0], ttf[1]),
        ]
        for h in r.markout_ticks:
            lines.append(
                row(f"markout {h} s (ticks)", r.markout_ticks[h] or "-", b.markout_ticks.get(h) or "-")
            )
        for rule in RULES:
            rr, br = r.by_rule[rule], b.by_rule[rule]
            if rr["fills"] or br["fills"]:
                lines.append(
                    row(f"{rule} fills/lots", f"{rr['fills']}/{rr['lots']}", f"{br['fills']}/{br['lots']}")
                )
        lines.append(
            f"  desk's own rules       {', '.join(f'{k} {v}' for k, v in self.desk_fills_by_rule.items())}"
        )
        lines.extend(f"  problem                {p}" for p in self.problems)
        lines.append(
            f"  fidelity               {self.fidelity_pct:.1f}%  (1 - mean of the fills, volume and P&L errors)"
        )
        return "\n".join(lines)


def _rel(bt: int | Decimal, rec: int | Decimal, scale: Decimal | None = None) -> float:
    s = Decimal(rec if rec >= 0 else -rec) if scale is None else scale
    if not s:
        return 0.0 if bt == rec else 1.0
    return min(1.0, float(abs(Decimal(bt) - Decimal(rec)) / Decimal(s)))


def _markout_ticks(summary: dict | None) -> dict[str, str | None]:
    if not summary:
        return {}
    return {f"{row['horizon_s']:g}": row.get("ticks") for row in summary.get("curve", [])}


def _side(c: FillCollector, inst: Any, net: Decimal, markouts: dict | None) -> Side:
    fmt = inst.format_size
    return Side(
        fills=c.fills,
        volume=f"{fmt(c.lots)} {inst.base}",
        lots=c.lots,
        fees=str(to_quote(inst, Fraction(c.fees, _fee_scale()))),
        net_pnl=str(net),
        by_rule={k: {"fills": v[0], "lots": v[1]} for k, v in c.by_rule.items()},
        median_time_to_fill_s=None if c.median_ttf_s() is None else round(c.median_ttf_s() or 0.0, 6),
        markout_ticks=_markout_ticks(markouts),
    )


def _fee_scale() -> int:
    from lobterm.engine.instrument import FEE_SCALE

    return FEE_SCALE


@dataclass(slots=True)
class Recorded:
    """A session's recorded fills, P&L and markouts, played back once."""

    path: str
    venue: str
    symbol: str
    inst: Any
    collector: FillCollector
    net: Decimal
    spread: Decimal
    markouts: dict | None


def read_recorded(path: str) -> Recorded:
    """Play the session back (lobterm/recording/player.py) and collect its recorded fills."""
    from lobterm.recording.player import Player

    p = Player(path)
    try:
        k = p.kernel
        m = k.default_market
        c = FillCollector(m.venue, m.symbol)
        c.attach(k)
        p.run_to_seq(p.last_seq)
        c.flush()
        inst = m.instrument
        net = k.inventory.pnl(m.venue, m.symbol, m.top()).in_quote(inst).net
        engine = k.markouts.engine if k.markouts is not None else None
        markouts = None
        spread = Decimal(0)
        if engine is not None:
            last_ts = p.last_ts or 0  # not None: the player refuses a session without events
            engine.advance(last_ts + 1)
            markouts = engine.summary(inst, net, last_ts)
            spread = engine.split(inst, net).spread_captured
        return Recorded(str(path), m.venue, m.symbol, inst, c, net, spread, markouts)
    finally:
        p.close()


def recorded_paper_config(path: str) -> PaperConfig:
    """The paper desk's config as the session ran it: the recorded fees, and for a paper session on the
    sim (a recorded venue in mode PAPER named as the [sim] venue) the recorded `sim.paper_cross_fills`
    (off by default there: `lobterm run --paper` fills as the matching engine would); a live venue's
    paper desk ran with PaperConfig's defaults."""
    with SessionReader(path) as reader:
        return paper_config_from(reader.config, reader.venues)


def _backtest(rec: Recorded, queue: str | None, latency: LatencyModel | None) -> tuple[Any, FillCollector]:
    c = FillCollector(rec.venue, rec.symbol)
    res = run_backtest(
        rec.path,
        symbol=rec.symbol,
        queue=queue,
        latency=latency,
        paper=recorded_paper_config(rec.path),
        observe=c.attach,
        timer=True,
    )
    c.flush()
    return res, c


def fidelity(path: str, queue: str | None = None, latency: LatencyModel | None = None) -> FidelityReport:
    """The fidelity report of one session (see the module docstring)."""
    rec = read_recorded(path)
    res, bt = _backtest(rec, queue, latency)
    inst = rec.inst
    rc = rec.collector
    net_bt = Decimal(res.net_pnl)
    unit = inst.tick_size * inst.lot_size
    scale = max(abs(rec.net), abs(rec.spread), unit)
    errors = {
        "fills": _rel(bt.fills, rc.fills),
        "volume": _rel(bt.lots, rc.lots),
        "pnl": _rel(net_bt, rec.net, scale),
    }
    score = 1.0 - (errors["fills"] + errors["volume"] + errors["pnl"]) / 3
    problems = [f"recorded change refused: {c['problem']}" for c in res.param_changes if "problem" in c]
    return FidelityReport(
        path=str(path),
        venue=rec.venue,
        symbol=rec.symbol,
        params_source=res.params_source,
        queue_model=res.queue_model,
        latency=res.latency,
        recorded=_side(rc, inst, rec.net, rec.markouts),
        backtest=_side(bt, inst, net_bt, res.markouts),
        desk_fills_by_rule=dict(res.fills_by_rule),
        errors={k: round(v, 6) for k, v in errors.items()},
        fidelity_pct=round(100.0 * score, 2),
        quote_currency=res.quote_currency,
        quote_decimals=res.quote_decimals,
        problems=problems,
    )


# ---- calibrate -----------------------------------------------------------------------------------


def _markout_error(rec: dict[str, str | None], bt: dict[str, str | None]) -> float:
    errs = []
    for h, rv in rec.items():
        if rv is None:
            continue
        bv = bt.get(h)
        if bv is None:
            errs.append(1.0)
            continue
        r = Decimal(rv)
        errs.append(min(1.0, float(abs(Decimal(bv) - r) / max(abs(r), Decimal(1)))))
    return sum(errs) / len(errs) if errs else 0.0


def calibrate(
    paths: Sequence[str],
    queues: Sequence[str] = DEFAULT_QUEUE_MODELS,
    latencies: Sequence[LatencyModel] = (LatencyModel(),),
    progress: Any = None,
) -> list[dict[str, Any]]:
    """Every (queue model, latency) over every session, ranked by score (see the module docstring)."""
    recorded = [read_recorded(p) for p in paths]
    rows: list[dict[str, Any]] = []
    total = len(queues) * len(latencies) * len(recorded)
    done = 0
    for q in queues:
        for lat in latencies:
            per: list[dict[str, Any]] = []
            for rec in recorded:
                res, bt = _backtest(rec, q, lat)
                rc = rec.collector
                r_ttf, b_ttf = rc.median_ttf_s(), bt.median_ttf_s()
                if r_ttf is None:
                    e_ttf = 0.0 if b_ttf is None else 1.0
                else:
                    e_ttf = 1.0 if b_ttf is None else min(1.0, abs(b_ttf - r_ttf) / max(r_ttf, 1e-9))
                e_mk = _markout_error(_markout_ticks(rec.markouts), _markout_ticks(res.markouts))
                per.append(
                    {
                        "path": rec.path,
                        "fills_recorded": rc.fills,
                        "fills_backtest": bt.fills,
                        "ttf_recorded_s": r_ttf,
                        "ttf_backtest_s": b_ttf,
                        "fill_count_error": round(_rel(bt.fills, rc.fills), 6),
                        "time_to_fill_error": round(e_ttf, 6),
                        "markout_error": round(e_mk, 6),
                        "queue_sensitive_cancels": getattr(bt.desk, "queue_sensitive_cancels", None),
                    }
                )
                done += 1
                if progress is not None:
                    progress(done, total)
            n = len(per)
            fc = sum(x["fill_count_error"] for x in per) / n
            tt = sum(x["time_to_fill_error"] for x in per) / n
            mk = sum(x["markout_error"] for x in per) / n
            rows.append(
                {
                    "queue": q,
                    "latency": lat.text(),
                    "fill_count_error": round(fc, 6),
                    "time_to_fill_error": round(tt, 6),
                    "markout_error": round(mk, 6),
                    "score": round((fc + tt + mk) / 3, 6),
                    "sessions": per,
                }
            )
    rows.sort(key=lambda r: (r["score"], r["queue"], r["latency"]))
    for r in rows:  # equal scores share a rank: the data cannot tell those models apart
        r["rank"] = 1 + sum(1 for o in rows if o["score"] < r["score"])
    return rows


def calibrate_text(rows: list[dict[str, Any]], paths: Sequence[str]) -> str:
    w = max([len("latency"), *(len(r["latency"]) for r in rows)])
    head = f"{'rank':>4}  {'queue':<12} {'latency':<{w}} {'fills':>7} {'ttf':>7} {'markout':>8} {'score':>7}"
    lines = [f"lobterm calibrate: {len(paths)} session{'s' if len(paths) != 1 else ''}", head]
    for r in rows:
        lines.append(
            f"{r['rank']:>4}  {r['queue']:<12} {r['latency']:<{w}} {r['fill_count_error'] * 100:>6.1f}% "
            f"{r['time_to_fill_error'] * 100:>6.1f}% {r['markout_error'] * 100:>7.1f}% {r['score'] * 100:>6.1f}%"
        )
    lines.append(
        "errors vs the recorded fills (relative, capped at 100%); score = their mean, lower is better"
    )
    if len(rows) > len({r["rank"] for r in rows}):
        lines.append(
            "equal ranks: those models gave the same errors on these sessions (the data cannot tell them apart)"
        )
    counts = [[x.get("queue_sensitive_cancels") for x in r["sessions"]] for r in rows]
    if counts and all(isinstance(n, int) for c in counts for n in c):
        lines.append(
            f"cancels a probabilistic queue model placed us differently from risk_averse: at most "
            f"{max(sum(c) for c in counts):,} (0: on these sessions every queue model fills the same)"
        )
    return "\n".join(lines)


# ---- commands ------------------------------------------------------------------------------------


def add_parsers(sub: Any) -> None:
    from lobterm.backtest.models import add_model_arguments

    fid = sub.add_parser(
        "fidelity",
        help="rerun sessions with their recorded parameters and diff the backtest against the recorded fills",
    )
    fid.add_argument("files", nargs="+", metavar="FILE", help="session files (sessions/*.lobterm.sqlite)")
    add_model_arguments(fid)
    fid.add_argument("--json", action="store_true", help="print the reports as one JSON object")
    cal = sub.add_parser(
        "calibrate",
        help="rank queue models (and latency options) by their error against sessions' recorded fills",
    )
    cal.add_argument("files", nargs="+", metavar="FILE", help="session files (sessions/*.lobterm.sqlite)")
    cal.add_argument(
        "--queue",
        action="append",
        metavar="MODEL[:n]",
        help=f"a queue model to try (repeat; default: {', '.join(DEFAULT_QUEUE_MODELS)})",
    )
    cal.add_argument(
        "--latency",
        action="append",
        metavar="SPEC",
        help="a latency option to try with each queue model (repeat; default: none)",
    )
    cal.add_argument("--json", action="store_true", help="print the ranking as one JSON object")


def fidelity_command(args: Any) -> int:
    import json

    try:
        latency = parse_latency(args.latency) if args.latency is not None else None
        queue = parse_queue(args.queue) if args.queue is not None else None
    except ModelError as exc:
        print(f"lobterm: {exc}", file=sys.stderr)
        return 2
    reports = []
    for path in args.files:
        try:
            reports.append(fidelity(path, queue=queue, latency=latency))
        except SessionError as exc:
            print(f"lobterm: cannot check fidelity of {exc}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps({"sessions": [r.as_dict() for r in reports]}))
    else:
        print("\n\n".join(r.as_text() for r in reports))
    return 0


def calibrate_command(args: Any) -> int:
    import json

    try:
        queues = [parse_queue(q) for q in args.queue] if args.queue else list(DEFAULT_QUEUE_MODELS)
        latencies = [parse_latency(x) for x in args.latency] if args.latency else [LatencyModel()]
    except ModelError as exc:
        print(f"lobterm: {exc}", file=sys.stderr)
        return 2
    try:
        rows = calibrate(args.files, queues, latencies)
    except SessionError as exc:
        print(f"lobterm: cannot calibrate on {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"sessions": list(args.files), "ranking": rows}))
    else:
        print(calibrate_text(rows, args.files))
    return 0
