"""Configuration: TOML files, then command-line flags, validated into typed sections, with friendly errors;
and `lobterm config`, the effective configuration printed back as TOML.

Looked up in order, later ones overriding earlier ones key by key:
1. `$XDG_CONFIG_HOME/lobterm/config.toml` (default `~/.config/lobterm/config.toml`)
2. `./lobterm.toml`
3. the file given with `--config FILE`
4. command-line flags (`--seed`, `--rate`, ...)

Example:

    [sim]
    symbol = "BTC/USDT"
    tick_size = "0.1"
    lot_size = "0.001"
    start_price = "65000"
    seed = 1
    rate_hz = 20

    [ui]
    default_qty = "0.010"       # in base units, on the lot grid
    qty_presets = ["0.001", "0.010", "0.100", "1.000"]
    heatmap = false             # the liquidity heatmap beside each ladder from the start (`h` toggles it)
    heatmap_minutes = 5         # history it keeps and shows, 0.5..120 (a fixed buffer: ~130 KB a minute)
    consolidated = false        # one ladder over every venue of an instrument (`L` toggles; `v` target venue)

    [risk]                      # every limit is on by default, derived from the instrument and config
    max_order_qty = "2.000"     # or "off" (explicit, and shown as off), or "auto" (the derived default)

    [keys]                      # binding id = key(s); see `lobterm keys` or the help screen
    buy = "b"
    sell = "s"

Unknown sections or keys are errors (a typo should not silently do nothing). Every value is range-checked
when it is read: finite, within sane bounds, positive where zero would spin or divide. A refusal is a
`ConfigError` (a subclass per section) naming the file, the `section.key`, the value and the rule.

The trading sections are typed: `[mm]` is a `MarketMakerConfig` (the market maker's `QuoteParams`),
`[hedge]` a `HedgeConfig` (the hedger's `HedgeParams` plus `enabled`), `[risk]` a `RiskConfig` (limits in
base and quote units, "auto" or "off"). Other modules get the trading objects from `quote_params(cfg)`,
`hedge_params(cfg)` and `risk_limits(cfg, instrument)`.
"""

from __future__ import annotations

# The package's parts: model.py (the errors, the sections' types and Config), sections.py (reading one
# section's table), loader.py (load, the profiles), limits.py (quote_params, hedge_params, the risk
# limits) and printing.py (`lobterm config`). Every name is importable from lobterm.config.
from lobterm.config.limits import (  # noqa: F401 - re-exported: lobterm.config is the import path
    EffectiveLimit,
    effective_risk,
    hedge_params,
    quote_params,
    risk_limits,
)
from lobterm.config.loader import (  # noqa: F401 - re-exported: lobterm.config is the import path
    PROFILES_DIR,
    _apply,
    _check_together,
    default_paths,
    load,
    shipped_profile,
)
from lobterm.config.model import (  # noqa: F401 - re-exported: lobterm.config is the import path
    AUTO,
    MIN_LIQUIDATION_BPS,
    OFF,
    ConfigError,
    FeedConfig,
    FileConfigError,
    HedgeConfig,
    MarketMakerConfig,
    MetricsConfig,
    RecordingConfig,
    RiskConfig,
    ServiceConfigError,
    SimConfigError,
    TradingConfigError,
    UiConfig,
    UiConfigError,
    VenueSectionError,
    default_sessions_dir,
)
from lobterm.config.printing import (  # noqa: F401 - re-exported: lobterm.config is the import path
    REDACTED,
    config_tree,
    effective_toml,
    is_secret_key,
    port_is_free,
    redact,
    to_toml,
)
from lobterm.config.sections import (  # noqa: F401 - re-exported: lobterm.config is the import path
    LADDER_OPTIONAL_COLUMNS,
    ROLES,
    SIDE_PANELS,
    VENUE_KINDS,
    Config,
    SimVenueSpec,
    mm_from_table,
    sim_venue_specs,
)

__all__ = [
    "OFF",
    "AUTO",
    "REDACTED",
    "Config",
    "ConfigError",
    "FeedConfig",
    "HedgeConfig",
    "MarketMakerConfig",
    "MetricsConfig",
    "RecordingConfig",
    "RiskConfig",
    "UiConfig",
    "config_tree",
    "effective_risk",
    "effective_toml",
    "hedge_params",
    "load",
    "quote_params",
    "redact",
    "risk_limits",
    "to_toml",
]
