"""Configuration: `config.yaml` + `BOT__SECTION__KEY` environment overrides, validated once.

Precedence: command-line flag > environment > config.yaml > built-in default. The result is a tree
of frozen pydantic models passed into constructors; no module reads configuration on its own.
Secrets never live here: see `Secrets`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveFloat,
    ValidationError,
    field_validator,
)

from intel.errors import ConfigError, UserInputError
from intel.symbols import normalize_symbol
from intel.timeutil import parse_time

__all__ = [
    "BacktestConfig",
    "Config",
    "ExchangeConfig",
    "Frozen",
    "OnChainConfig",
    "Secrets",
    "SourcePolicyConfig",
    "UtcDatetime",
    "WhaleAlertConfig",
    "load_config",
]

ENV_PREFIX = "BOT__"
_SECRET_WORDS = ("token", "secret", "password", "api_key", "apikey", "client_id")


class Frozen(BaseModel):
    # `.inf` and `.nan` are YAML floats that pass `gt=0` and break arithmetic far from the key.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


def _to_utc(value: Any) -> Any:
    """ISO text, a datetime or a date (YAML parses both) to an aware UTC datetime.

    No zone means UTC and a date means its midnight UTC, as `--at` reads them.
    """
    if isinstance(value, str):
        return _as_value_error(parse_time, value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):  # pydantic would make a naive datetime of it
        return datetime.combine(value, time(), tzinfo=UTC)
    # pydantic would read a number as Unix time; the README promises ISO-8601 only.
    raise ValueError("use an ISO-8601 time, e.g. 2025-10-06T16:00Z or 2025-10-06")


UtcDatetime = Annotated[datetime, BeforeValidator(_to_utc)]


class DataConfig(Frozen):
    mode: Literal["replay", "live"] = "replay"
    replay_dir: Path | None = None
    default_at: UtcDatetime = Field(default_factory=lambda: parse_time("2025-10-06T16:00Z"))


class MaxAgeConfig(Frozen):
    candles: float = Field(7200, gt=0)
    orderbook: float = Field(3600, gt=0)
    whales: float = Field(21600, gt=0)
    posts: float = Field(43200, gt=0)
    fear_greed: float = Field(172800, gt=0)


class CacheTtlConfig(Frozen):
    candles: float = Field(60, ge=0)
    orderbook: float = Field(10, ge=0)
    whales: float = Field(300, ge=0)
    posts: float = Field(300, ge=0)
    fear_greed: float = Field(3600, ge=0)


class PipelineConfig(Frozen):
    # The outer deadline of the coordinator's decision; past it the rules decide.
    coordinator_timeout_s: float = Field(20, gt=0)
    source_timeout_s: float = Field(10, gt=0)
    agent_timeout_s: float = Field(10, gt=0)
    candle_lookback: int = Field(240, ge=24, le=5000)
    # One signal's whole gathering of sources; a modality not in by then is unavailable.
    overall_deadline_s: float = Field(15, gt=0)


class SourcePolicyConfig(Frozen):
    """How one live source is called: rate limit, timeout, retries, circuit breaker."""

    rate_per_min: float | None = Field(None, gt=0)  # None: no limit here (ccxt keeps its own)
    call_timeout_s: float = Field(5, gt=0)  # one try
    max_attempts: int = Field(3, ge=1, le=10)
    backoff_initial_s: float = Field(0.5, ge=0)  # doubles per try, with random jitter
    backoff_max_s: float = Field(4, ge=0)
    retry_deadline_s: float = Field(8, gt=0)  # tries and waits of one call end by then
    failures_to_open: int = Field(5, ge=1)  # consecutive failed calls that open the breaker
    open_cooldown_s: float = Field(60, gt=0)  # open this long, then one trial call
    # Requests let through at once before `rate_per_min` spaces them: an API that averages its
    # limit over minutes (Reddit: ten) takes one signal's burst of listings.
    rate_burst: int = Field(1, ge=1, le=100)


class ResilienceConfig(Frozen):
    exchange: SourcePolicyConfig = SourcePolicyConfig()
    fear_greed: SourcePolicyConfig = SourcePolicyConfig(rate_per_min=30)
    # Per request (each listing and the login), not per call: one call reads 2 per subreddit.
    reddit: SourcePolicyConfig = SourcePolicyConfig(rate_per_min=60, rate_burst=10)


class OrderBookAgentConfig(Frozen):
    bands_pct: tuple[PositiveFloat, ...] = Field((0.1, 0.5, 1.0, 2.0), min_length=1)
    score_band_pct: float = Field(0.5, gt=0)
    wall_multiple: float = Field(6.0, gt=1)
    wall_range_pct: float = Field(2.0, gt=0)
    spoof_window_s: float = Field(900, gt=0)
    spoof_min_lifetime_snapshots: int = Field(1, ge=1)
    spoof_reach_bps: float = Field(5.0, ge=0)
    # A wall counts as pulled only when its level shrinks below this fraction of the wall.
    spoof_vanish_fraction: float = Field(0.25, gt=0, le=1)
    # A wall seen again within this distance is the same wall (absorbs tick and bucket jitter).
    wall_match_bps: float = Field(1.0, ge=0)
    # The exchange the signal's symbol is quoted on; a book from another venue is degraded.
    home_exchange: str = "binance"


class WhalesAgentConfig(Frozen):
    window_h: int = Field(24, ge=1, le=168)
    volume_floor_usd: float = Field(50_000_000, ge=0)


class FinBertConfig(Frozen):
    """How the FinBERT engine runs (`agents.sentiment.finbert`); the model is `finbert_model`."""

    # onnx_int8 / onnx: ONNX Runtime on an int8 / fp32 model converted once and cached (int8: the
    # fastest whose labels agree with fp32, benchmarks/finbert_speed.py); torch_int8: torch
    # dynamic quantization (faster still, but changed 17 % of confident labels); torch: fp32.
    runtime: Literal["onnx_int8", "onnx", "torch_int8", "torch"] = "onnx_int8"
    load_at_start: bool = False  # False: the model loads on first use, not when the bot starts
    threads: int = Field(1, ge=1, le=64)  # inference threads; 1 leaves a core to the event loop
    max_length: int = Field(128, ge=8, le=512)  # tokens per text, longer texts are truncated
    batch_size: int = Field(16, ge=1, le=256)
    cache_size: int = Field(4096, ge=0)  # texts whose scores are kept (0: no cache)
    # Converted models are kept here, keyed by the source model's files and the runtime.
    cache_dir: Path = Path("~/.cache/signaldesk/finbert")
    # After a request arrives, wait this long for others to join its batch.
    gather_ms: float = Field(5, ge=0, le=1000)


class SentimentAgentConfig(Frozen):
    engine: Literal["lexicon", "finbert"] = "lexicon"
    window_h: int = Field(24, ge=1, le=168)
    half_life_h: float = Field(6.0, gt=0)
    fear_greed_weight: float = Field(0.5, ge=0, le=1)
    min_posts: int = Field(5, ge=1)
    finbert_model: str = "ProsusAI/finbert"
    # Live posts only (replay posts carry neither): weight a post by 1 + ln(1 + max(score, 0)),
    # and count at most this many posts of one author (the heaviest).
    score_weighting: bool = True
    max_posts_per_author: int = Field(3, ge=1)
    finbert: FinBertConfig = FinBertConfig()


class AgentsConfig(Frozen):
    orderbook: OrderBookAgentConfig = OrderBookAgentConfig()
    whales: WhalesAgentConfig = WhalesAgentConfig()
    sentiment: SentimentAgentConfig = SentimentAgentConfig()


class CoordinatorConfig(Frozen):
    # Which coordinator decides: auto = the LLM when GROQ_API_KEY is set, else the rules; the
    # rules always run first (they bound the LLM) and are the fallback.
    kind: Literal["auto", "rules", "llm"] = "auto"
    whale_threshold: float = Field(15, ge=0, le=100)
    mood_threshold: float = Field(10, ge=0, le=100)
    high_divergence: float = Field(50, ge=0, le=200)
    orderbook_confirm: float = Field(15, ge=0, le=100)
    missing_penalty: int = Field(15, ge=0, le=100)
    high_volatility_pct: float = Field(1.2, gt=0)
    # Wording: |divergence| above this (and not high) reads "moderate", else "low".
    moderate_divergence: float = Field(20, ge=0, le=200)
    # Confidence of a HOLD: base − per_divergence × min(|divergence|, cap).
    hold_confidence_base: float = Field(70, ge=0, le=100)
    hold_confidence_per_divergence: float = Field(0.3, ge=0)
    hold_divergence_cap: float = Field(150, ge=0, le=200)
    # Confidence of a BUY/SELL: min(max, base + per_divergence × |divergence|).
    call_confidence_base: float = Field(55, ge=0, le=100)
    call_confidence_per_divergence: float = Field(0.3, ge=0)
    call_confidence_max: float = Field(90, ge=0, le=100)
    orderbook_confirm_bonus: int = Field(10, ge=0, le=100)
    orderbook_against_penalty: int = Field(15, ge=0, le=100)
    degraded_penalty: int = Field(5, ge=0, le=100)
    # Confidence from which the timeframe is 24 h, 12 h (else 6 h), before volatility halves it.
    timeframe_24h_confidence: int = Field(75, ge=0, le=100)
    timeframe_12h_confidence: int = Field(55, ge=0, le=100)
    # Confidence from which a call is sized moderate, aggressive (calm market, nothing missing).
    moderate_size_confidence: int = Field(55, ge=0, le=100)
    aggressive_size_confidence: int = Field(75, ge=0, le=100)


class ScheduleConfig(Frozen):
    interval_minutes: int = Field(60, ge=1, le=1440)
    # Symbols computed at once per cycle; each source's rate limit still paces its calls.
    max_concurrent_symbols: int = Field(4, ge=1, le=64)


class StorageConfig(Frozen):
    db_path: Path = Path("signaldesk.db")


class LlmBoundsConfig(Frozen):
    """What the LLM may change in the rules' signal (README: LLM coordinator)."""

    confidence_drop_max: int = Field(
        15, ge=0, le=100
    )  # it may lower confidence this far, never raise
    timeframe_min_h: int = Field(2, ge=1, le=48)
    timeframe_max_h: int = Field(48, ge=2, le=168)


class LlmBudgetConfig(Frozen):
    """Groq's free-tier limits for openai/gpt-oss-120b by default; the x-ratelimit-* headers of
    each answer lower what is left when they say less."""

    requests_per_minute: int = Field(30, ge=1)
    requests_per_day: int = Field(1000, ge=1)
    tokens_per_minute: int = Field(8000, ge=1)
    tokens_per_day: int = Field(200_000, ge=1)
    # Share of every budget that only on-demand /signal may use (a cycle cannot drain it).
    on_demand_share: float = Field(0.25, ge=0, le=1)
    # LLM answers one user may draw from the on-demand share per hour.
    per_user_per_hour: int = Field(10, ge=0)
    # Prompt tokens estimated as characters / this (no tokenizer download), plus max_output_tokens.
    chars_per_token: float = Field(4.0, gt=0)


class LlmConfig(Frozen):
    model: str = "openai/gpt-oss-120b"
    base_url: str = ""
    call_timeout_s: float = Field(
        8, gt=0
    )  # one LLM answer (tries and waits), within the pipeline's
    max_attempts: int = Field(2, ge=1, le=5)  # tries on 429/5xx/timeouts, Retry-After honoured
    max_output_tokens: int = Field(700, ge=100, le=8000)
    temperature: float = Field(0.2, ge=0, le=2)
    # Sent to reasoning models (gpt-oss, qwen3) only: low keeps answers fast and cheap; "" sends
    # none, as models without reasoning (llama) require.
    reasoning_effort: Literal["", "low", "medium", "high"] = "low"
    cache_ttl_s: float = Field(300, ge=0)  # the same prompt within this reuses the answer
    failures_to_open: int = Field(3, ge=1)  # failed calls in a row that open the breaker
    open_cooldown_s: float = Field(120, gt=0)
    reddit_excerpts: int = Field(5, ge=0, le=20)  # quoted Reddit titles in the prompt
    excerpt_chars: int = Field(140, ge=20, le=500)
    bounds: LlmBoundsConfig = LlmBoundsConfig()
    budget: LlmBudgetConfig = LlmBudgetConfig()


class ChartConfig(Frozen):
    candles: int = Field(72, ge=12, le=500)
    flow_hours: int = Field(48, ge=6, le=336)


def _base_url(value: Any) -> Any:
    """An http(s) base URL without its trailing slash, so paths join the same way everywhere."""
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/")


BaseUrl = Annotated[str, BeforeValidator(_base_url)]
_SUBREDDIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]{1,20}")
_SUBREDDITS: dict[str, tuple[str, ...]] = {
    "BTC": ("Bitcoin", "BitcoinMarkets", "CryptoCurrency"),
    "ETH": ("ethereum", "ethfinance", "CryptoCurrency"),
}


class FearGreedSourceConfig(Frozen):
    base_url: BaseUrl = "https://api.alternative.me"
    timeout_s: float = Field(10, gt=0)


class RedditSourceConfig(Frozen):
    # Reddit's token endpoint lives on reddit_url, the API on oauth_url; a fake can stand in.
    oauth_url: BaseUrl = "https://oauth.reddit.com"
    reddit_url: BaseUrl = "https://www.reddit.com"
    timeout_s: float = Field(10, gt=0)
    listing_limit: int = Field(100, ge=1, le=100)  # Reddit answers at most 100 per request
    max_posts_kept: int = Field(2000, ge=10, le=100_000)
    subreddits: dict[str, tuple[str, ...]] = Field(default_factory=lambda: dict(_SUBREDDITS))

    @field_validator("subreddits", mode="before")
    @classmethod
    def _asset_keys(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValueError("must map an asset to its subreddits, e.g. {BTC: [Bitcoin]}")
        fixed: dict[str, Any] = {}
        for asset, names in value.items():
            names = [names] if isinstance(names, str) else names
            if not isinstance(names, list | tuple) or not names:
                raise ValueError(f"{asset}: give a non-empty list of subreddit names")
            for name in names:
                if not isinstance(name, str) or not _SUBREDDIT_NAME.fullmatch(name):
                    raise ValueError(f"{asset}: {name!r} is not a subreddit name (no r/ prefix)")
            fixed[str(asset).upper()] = tuple(dict.fromkeys(names))
        return fixed


class SourcesConfig(Frozen):
    """The live sources (`data.mode: live`); replay mode reads none of it."""

    fear_greed: FearGreedSourceConfig = FearGreedSourceConfig()
    reddit: RedditSourceConfig = RedditSourceConfig()


class ExchangeConfig(Frozen):
    """The live exchange (ccxt): candles, order books and the order-book stream."""

    # A ccxt exchange id; checked against ccxt's list when the live source starts.
    id: str = Field("binance", min_length=1)
    # Base URLs ("scheme://host[:port][/prefix]") that replace the exchange's REST and websocket
    # hosts, so a proxy or a fake server can stand in; "" keeps the exchange's own.
    rest_url: str = ""
    ws_url: str = ""
    timeout_s: float = Field(10, gt=0)
    # Levels per side fetched over REST and kept from the stream (Binance: 5–5000).
    book_levels: int = Field(100, ge=5, le=5000)
    stream_symbols_max: int = Field(10, ge=0, le=200)
    stream_snapshot_interval_s: float = Field(1.0, gt=0)
    # The stream counts as down when no update came for this long; then REST is polled.
    stream_stale_s: float = Field(10, gt=0)
    stream_retry_s: float = Field(5, gt=0)


class BacktestSizingConfig(Frozen):
    """Fraction of equity a signal's `position_size` puts at risk in a backtest."""

    conservative: float = Field(0.25, gt=0, le=1)
    moderate: float = Field(0.5, gt=0, le=1)
    aggressive: float = Field(1.0, gt=0, le=1)


class BacktestConfig(Frozen):
    # Binance spot's base taker fee is 10 bps; slippage is paid on each fill's price.
    fee_bps: float = Field(10, ge=0, le=1000)
    slippage_bps: float = Field(2, ge=0, le=1000)
    allow_short: bool = False  # SELL: flat (default) or short
    initial_equity: float = Field(10_000, gt=0)  # quote currency
    signal_step_minutes: int = Field(60, ge=1, le=1440)  # the bot's cycle over history
    sizing: BacktestSizingConfig = BacktestSizingConfig()
    # fear-greed-contrarian: long at extreme fear while the trend is up, out at extreme greed.
    fear_max: int = Field(25, ge=0, le=100)
    greed_min: int = Field(75, ge=0, le=100)
    trend_sma_days: int = Field(50, ge=1, le=400)
    chat_cooldown_s: float = Field(60, ge=0)  # per user, between chat backtests


class BlockchainComConfig(Frozen):
    """Blockchain.com's Data API (REST: backfill, fallback) and its websocket feed."""

    rest_url: BaseUrl = "https://blockchain.info"
    ws_url: str = "wss://ws.blockchain.info/inv"
    timeout_s: float = Field(10, gt=0)
    # The Data API's per-IP throttle is unpublished; the seed kept to 20 requests a minute.
    policy: SourcePolicyConfig = SourcePolicyConfig(rate_per_min=20, call_timeout_s=15)
    # Reconnect waits: initial × 2^n, capped; REST polls the newest block while the socket is down.
    reconnect_initial_s: float = Field(1, gt=0)
    reconnect_max_s: float = Field(60, gt=0)
    rest_poll_s: float = Field(60, gt=0)
    # The socket is taken for down when nothing (not even a pong) came for this long.
    stale_s: float = Field(90, gt=0)


class WhaleAlertConfig(Frozen):
    """Whale Alert's REST API (`WHALE_ALERT_API_KEY` in the environment turns it on)."""

    base_url: BaseUrl = "https://api.whale-alert.io/v1"
    timeout_s: float = Field(10, gt=0)
    poll_s: float = Field(60, gt=0)
    min_usd: float = Field(1_000_000, ge=500_000)  # the API's own floor is 500,000 USD
    max_lookback_s: float = Field(3600, gt=0)  # how far back the first poll reaches
    max_pages: int = Field(5, ge=1, le=100)  # pages followed per poll
    # The free plan allows 10 requests a minute.
    policy: SourcePolicyConfig = SourcePolicyConfig(rate_per_min=10)


class OnChainConfig(Frozen):
    """Live whale flows: which provider, the exchange address file, the whale threshold."""

    # auto: Whale Alert when WHALE_ALERT_API_KEY is set, else Blockchain.com with address_file.
    provider: Literal["auto", "blockchain_com", "whale_alert"] = "auto"
    # CSV with the columns address,exchange; none is shipped (see README, "Whale flows").
    address_file: Path | None = None
    # A transfer is a whale transfer when it clears both: coins moved, and their USD value at
    # the price when it was seen. Set one to 0 to use the other alone.
    min_btc: float = Field(100, ge=0)
    min_usd: float = Field(1_000_000, ge=0)
    # Blocks read over REST at start, so a fresh window does not start empty (each ~1-2 MB).
    backfill_blocks: int = Field(3, ge=0, le=144)
    # BTC flows stand in for symbols whose chain no provider covers, said so on every signal.
    btc_proxy_for_other_assets: bool = False
    blockchain_com: BlockchainComConfig = BlockchainComConfig()
    whale_alert: WhaleAlertConfig = WhaleAlertConfig()


class CalibrationConfig(Frozen):
    """Calibrated confidence (`intel.calibration`): BUY/SELL confidence shown as the share of
    such calls that came out right on replay history."""

    enabled: bool = True
    map_path: Path | None = None  # None: the map shipped in the package


class Config(Frozen):
    # Top-level sections belonging to the bot (see bot.config.BotConfig) are ignored here, so
    # intel can read the shared config.yaml; BotConfig forbids unknown sections again.
    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    symbols: tuple[str, ...] = ("BTC/USDT", "ETH/USDT")
    data: DataConfig = DataConfig()
    max_age_s: MaxAgeConfig = MaxAgeConfig()
    cache_ttl_s: CacheTtlConfig = CacheTtlConfig()
    pipeline: PipelineConfig = PipelineConfig()
    resilience: ResilienceConfig = ResilienceConfig()
    agents: AgentsConfig = AgentsConfig()
    coordinator: CoordinatorConfig = CoordinatorConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    storage: StorageConfig = StorageConfig()
    llm: LlmConfig = LlmConfig()
    chart: ChartConfig = ChartConfig()
    sources: SourcesConfig = SourcesConfig()
    exchange: ExchangeConfig = ExchangeConfig()
    backtest: BacktestConfig = BacktestConfig()
    # Read from the environment by `load_config` (never from config.yaml); never dumped.
    secrets: Secrets = Field(default_factory=lambda: Secrets(), exclude=True, repr=False)
    onchain: OnChainConfig = OnChainConfig()
    calibration: CalibrationConfig = CalibrationConfig()

    @field_validator("symbols", mode="before")
    @classmethod
    def _canonical_symbols(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not value:
            raise ValueError("must be a non-empty list of symbols such as [BTC/USDT]")
        canonical = (_as_value_error(normalize_symbol, str(item)) for item in value)
        return tuple(dict.fromkeys(canonical))  # `[btc, BTC/USDT]` is one symbol; order kept


ConfigT = TypeVar("ConfigT", bound=Config)
T = TypeVar("T")


def _as_value_error(parse: Callable[[str], T], text: str) -> T:
    """Run a user-input parser inside a validator, so pydantic reports the key."""
    try:
        return parse(text)
    except UserInputError as exc:
        raise ValueError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Secrets:
    """Credentials, read only from the environment; `repr` never shows them."""

    discord_token: str | None = None
    telegram_token: str | None = None
    telegram_base_url: str | None = None
    groq_api_key: str | None = None
    reddit_client_id: str | None = None
    reddit_client_secret: str | None = None
    reddit_user_agent: str | None = None  # not secret, but Reddit's credentials go together
    whale_alert_api_key: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Secrets:
        def read(name: str) -> str | None:
            return env.get(name) or None

        return cls(
            discord_token=read("DISCORD_TOKEN"),
            telegram_token=read("TELEGRAM_TOKEN"),
            telegram_base_url=read("TELEGRAM_BASE_URL"),
            groq_api_key=read("GROQ_API_KEY"),
            reddit_client_id=read("REDDIT_CLIENT_ID"),
            reddit_client_secret=read("REDDIT_CLIENT_SECRET"),
            reddit_user_agent=read("REDDIT_USER_AGENT"),
            whale_alert_api_key=read("WHALE_ALERT_API_KEY"),
        )

    def values(self) -> list[str]:
        """Every secret that is set, for redaction."""
        return [
            v
            for v in (
                self.discord_token,
                self.telegram_token,
                self.groq_api_key,
                self.reddit_client_id,
                self.reddit_client_secret,
                self.whale_alert_api_key,
            )
            if v
        ]

    def __repr__(self) -> str:
        return "Secrets(<redacted>)"


Config.model_rebuild()  # `Config.secrets` names `Secrets`, defined after it


# Why this layering is hand-written and not pydantic-settings (tried: 2.16, every case below was
# run against both): its sources change behaviour that users and tests rely on.
# - Its env source looks up only the fields it knows, so an unknown top-level key is silently
#   dropped: a typo (`BOT__SYMBOL=eth`) or a secret under the prefix (`BOT__DISCORD_TOKEN`) is
#   no longer refused with the key named.
# - It decodes only lists and sections (as JSON) and leaves scalars as text, so values stop being
#   YAML: `BOT__LOGGING__JSON_OUTPUT=null` fails and `BOT__DATA__REPLAY_DIR=null` becomes the path
#   "null"; its `env_parse_none_str` knows one spelling, not YAML's (`~`, `Null`, ...).
# - Case-insensitive key names make the prefix case-insensitive too (`bot__…` is read), and it
#   reads only `os.environ`: an explicit mapping needs its private `_load_env_vars` hook.
# - Its YAML source skips a missing file or a folder without a word, lets a YAML or Unicode
#   error escape without the file named, and fails on a non-mapping file with a `dict` error.
# - Flags have no dotted form, and `Config()` itself would start reading the environment.
# Overriding all that leaves more code than this, which is just a reader, an env walk and a merge.
# The library would also add ~40 ms of imports to `python -m bot --help` (0.37 s in all).
def load_config(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    model: type[ConfigT] = Config,  # type: ignore[assignment]
) -> ConfigT:
    """Load and validate; `overrides` are dotted keys from command-line flags (highest precedence).

    With no `path`, `./config.yaml` is used when present, else the built-in defaults. `model` lets
    the bot extend `Config` with its own sections.
    """
    environ = os.environ if env is None else env
    raw = _read_yaml(path)
    for dotted, value in _env_overrides(environ).items():
        _set_dotted(raw, dotted, value)
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value)
    if "secrets" in raw:  # the field exists for the environment's credentials only
        raise ConfigError(
            "bad config: secrets: unknown key (secrets belong in the environment, "
            "never in config.yaml)"
        )
    try:
        config = model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    return config.model_copy(update={"secrets": Secrets.from_env(environ)})


def _read_yaml(path: Path | None) -> dict[str, Any]:
    if path is None:
        default = Path("config.yaml")
        if not default.is_file():
            return {}
        path = default
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {_yaml_problem(exc)}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections")
    return loaded


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "cannot parse"
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        dotted = ".".join(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        try:
            found[dotted] = yaml.safe_load(value) if value != "" else ""
        except yaml.YAMLError:
            found[dotted] = value
    return found


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[leaf] = value


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
            if any(word in key.lower() for word in _SECRET_WORDS):
                message += " (secrets belong in the environment, never in config.yaml)"
        problems.append(f"{key}: {message}")
    return "bad config: " + "; ".join(problems)
