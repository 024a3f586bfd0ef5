"""A recorded sim session with live market maker parameter changes (the backtest tests')."""

from __future__ import annotations

from pathlib import Path

from lobterm.assemble import build_sim_kernel
from lobterm.config import Config, quote_params
from lobterm.services import start_recording
from lobterm.venues.sim import SimConfig

SECONDS = 20.0


def _record(directory: Path, change_at_s: float | None, changes: dict) -> Path:
    """A sim run with the market maker quoting, recorded by the real recorder on the virtual clock; at
    `change_at_s` the market maker's parameters change through the kernel's own market maker API (the
    way the TUI's keys and parameter form change them)."""
    cfg = Config(sim=SimConfig(seed=11, rate_hz=20.0), mm={"levels": 3})
    kernel, venue = build_sim_kernel(cfg, virtual=True)
    rec = start_recording(kernel, directory, config=cfg, seed=cfg.sim.seed)
    maker = kernel.add_market_maker(quote_params(cfg))
    venue.open()
    maker.resume()
    steps = round(SECONDS * cfg.sim.rate_hz)
    for i in range(steps):
        if change_at_s is not None and i == round(change_at_s * cfg.sim.rate_hz):
            maker.update_params(**changes)
        venue.step()
        kernel.on_timer()
    rec.close()
    return Path(rec.path)
