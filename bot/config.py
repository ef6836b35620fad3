"""The bot's configuration sections, added to intel's `Config` (one file, loaded once)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field

from intel.config import Config, Frozen, UtcDatetime
from intel.timeutil import parse_time

__all__ = ["BotConfig"]


class TransportLimits(Frozen):
    overall_per_s: float = Field(30, gt=0)
    per_chat_per_s: float = Field(1, gt=0)
    per_group_per_min: float = Field(20, gt=0)


class DeliveryConfig(Frozen):
    concurrency: int = Field(8, ge=1, le=64)
    poll_interval_s: float = Field(1.0, gt=0)
    backoff_base_s: float = Field(1.0, gt=0)
    backoff_max_s: float = Field(300.0, gt=0)
    telegram: TransportLimits = TransportLimits()
    # discord.py enforces Discord's own buckets; this only caps our burst rate.
    discord: TransportLimits = TransportLimits(
        overall_per_s=45, per_chat_per_s=5, per_group_per_min=120
    )
    console: TransportLimits = TransportLimits(
        overall_per_s=1000, per_chat_per_s=1000, per_group_per_min=60000
    )


class AlertsConfig(Frozen):
    confidence_step: int = Field(10, ge=1, le=100)
    # A new call (or a confidence move) is announced once it held this many cycles in a row.
    dwell_cycles: int = Field(3, ge=1, le=48)
    # An announced call stands at least this long (market hours) before the next change is.
    min_hold_hours: float = Field(6.0, ge=0, le=168)


class CommandsConfig(Frozen):
    signal_cooldown_s: float = Field(10.0, ge=0)  # per user and symbol
    # Symbols one user may have computing at once (a repeat of one in flight joins it).
    max_signals_in_flight_per_user: int = Field(2, ge=1, le=16)
    max_concurrent_signals: int = Field(4, ge=1, le=64)
    # How long an on-demand signal waits for a free slot before the user is told to retry.
    signal_wait_s: float = Field(30.0, gt=0)
    # Per user, between answered `performance` requests: each reads every stored signal and, in
    # live mode, fetches the candles back to the oldest one from the exchange.
    performance_cooldown_s: float = Field(30.0, ge=0)


class DemoConfig(Frozen):
    enabled: bool = True
    # Bounded so a cycle's real interval stays between a few ms and a day or so of real time.
    speed: float = Field(360.0, ge=0.01, le=1_000_000)
    # Where the demo clock stops: the end of the whale coverage, while every replayed modality
    # is still current. The clock also stops at the end of any configured symbol's candles.
    until: UtcDatetime = Field(default_factory=lambda: parse_time("2025-10-12T14:00Z"))


class ConsoleConfig(Frozen):
    chart_dir: Path = Path("charts")
    # Newest chart PNGs the console keeps in chart_dir; it deletes older ones it wrote.
    max_chart_files: int = Field(100, ge=1)


class DiscordConfig(Frozen):
    # The REST API's base URL; empty: Discord's own. A proxy or a test's fake server otherwise.
    api_base_url: str = ""
    gateway_url: str = ""  # the gateway's websocket URL; empty: Discord's own
    # A development server: commands sync to it at once (global ones take a while to show).
    guild_id: int | None = Field(None, gt=0)
    # Members of these roles may subscribe a channel, besides those with Manage Server.
    admin_role_ids: tuple[int, ...] = ()
    # discord.py waits out a 429 up to this long inside the send; a longer one goes back to the
    # outbox sender, which pauses the transport. Never both, so no wait is doubled. discord.py
    # accepts nothing under 30 s here.
    max_retry_after_s: float = Field(30.0, ge=30, le=600)


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


# The standard library's level names, any case; anything else is refused at load with its key.
LogLevel = Annotated[
    Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)
]


class LoggingConfig(Frozen):
    json_output: bool | None = None
    level: LogLevel = "INFO"
    # While the console chat shares the terminal, quieter logs keep the conversation readable.
    console_level: LogLevel = "WARNING"


class WhaleAlertsConfig(Frozen):
    """Instant whale alerts (bot.alerts.whales): one transfer into or out of an exchange at or
    above `min_usd` goes at once to the chats that asked; at most `max_per_chat_h` an hour each."""

    enabled: bool = True
    min_usd: float = Field(100_000_000, gt=0)
    max_per_chat_h: int = Field(6, ge=1, le=60)
    # A delivered alert is deleted after `keep_h`; until then its txid is not alerted again.
    # 336 h is Bitcoin Core's -mempoolexpiry default: a transaction alerted from the mempool
    # confirms within it or is dropped, so its block cannot alert it a second time.
    keep_h: float = Field(336, gt=0)


class BotConfig(Config):
    model_config = ConfigDict(frozen=True, extra="forbid")

    delivery: DeliveryConfig = DeliveryConfig()
    alerts: AlertsConfig = AlertsConfig()
    commands: CommandsConfig = CommandsConfig()
    demo: DemoConfig = DemoConfig()
    console: ConsoleConfig = ConsoleConfig()
    discord: DiscordConfig = DiscordConfig()
    logging: LoggingConfig = LoggingConfig()
    whale_alerts: WhaleAlertsConfig = WhaleAlertsConfig()
