"""Configuration: defaults, config.yaml, BOT__SECTION__KEY overrides, precedence, clear errors."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.config import BotConfig
from intel.config import Config, Secrets, load_config
from intel.errors import ConfigError
from intel.timeutil import parse_time

REPO_CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"
MODELS = pytest.mark.parametrize("model", [Config, BotConfig], ids=["intel", "bot"])


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ./config.yaml and no BOT__ variables leak in from where the tests run."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("BOT__"):
            monkeypatch.delenv(name)


# --- defaults and the shipped file -----------------------------------------------------------


@MODELS
def test_defaults_load_with_no_file(model) -> None:
    config = load_config(env={}, model=model)
    assert isinstance(config, model)
    assert config.symbols == ("BTC/USDT", "ETH/USDT")
    assert config.data.default_at == parse_time("2025-10-06T16:00Z")
    assert config.max_age_s.orderbook == 3600
    assert config.pipeline.source_timeout_s > 0


def test_bot_config_adds_its_sections() -> None:
    config = load_config(env={}, model=BotConfig)
    assert config.delivery.concurrency >= 1
    assert config.demo.enabled is True
    assert not hasattr(load_config(env={}), "delivery")


def test_config_is_frozen() -> None:
    config = load_config(env={})
    with pytest.raises(ValidationError):
        config.max_age_s.candles = 1  # type: ignore[misc]


def test_an_empty_file_means_defaults(tmp_path) -> None:
    assert load_config(write(tmp_path, "# nothing\n"), env={}) == Config()


def test_config_yaml_in_the_working_folder_is_picked_up(tmp_path) -> None:
    write(tmp_path, "max_age_s:\n  candles: 123\n")
    assert load_config(env={}).max_age_s.candles == 123


@pytest.mark.skipif(not REPO_CONFIG.is_file(), reason="config.yaml not written yet")
def test_the_shipped_config_yaml_validates() -> None:
    # One file for the whole program, so it validates against the bot's model.
    config = load_config(REPO_CONFIG, env={}, model=BotConfig)
    assert config.symbols
    assert all("/" in symbol for symbol in config.symbols)


@pytest.mark.skipif(not REPO_CONFIG.is_file(), reason="config.yaml not written yet")
def test_the_shipped_config_yaml_documents_the_defaults() -> None:
    # "a missing key takes the built-in default shown": the file restates the defaults.
    assert load_config(REPO_CONFIG, env={}, model=BotConfig) == BotConfig()


# --- environment overrides and precedence ----------------------------------------------------


@MODELS
def test_environment_overrides_nested_keys_with_yaml_scalars(model) -> None:
    env = {
        "BOT__MAX_AGE_S__CANDLES": "600",
        "BOT__PIPELINE__SOURCE_TIMEOUT_S": "2.5",
        "BOT__SYMBOLS": "[eth, btcusdt]",
        "BOT__AGENTS__ORDERBOOK__BANDS_PCT": "[0.2, 1]",
        "BOT__DATA__DEFAULT_AT": "2024-08-09T00:05Z",
        "OTHER__MAX_AGE_S__CANDLES": "1",
    }
    config = load_config(env=env, model=model)
    assert config.max_age_s.candles == 600
    assert config.pipeline.source_timeout_s == 2.5
    assert config.symbols == ("ETH/USDT", "BTC/USDT")
    assert config.agents.orderbook.bands_pct == (0.2, 1.0)
    assert config.data.default_at == parse_time("2024-08-09T00:05Z")


def test_environment_overrides_bot_sections() -> None:
    config = load_config(
        env={"BOT__DEMO__ENABLED": "false", "BOT__DELIVERY__TELEGRAM__PER_CHAT_PER_S": "3"},
        model=BotConfig,
    )
    assert config.demo.enabled is False
    assert config.delivery.telegram.per_chat_per_s == 3


def test_process_environment_is_read_by_default(monkeypatch) -> None:
    monkeypatch.setenv("BOT__SCHEDULE__INTERVAL_MINUTES", "30")
    assert load_config().schedule.interval_minutes == 30


@MODELS
def test_precedence_flag_over_environment_over_file_over_default(tmp_path, model) -> None:
    path = write(tmp_path, "coordinator:\n  missing_penalty: 11\n", name="c.yaml")
    env = {"BOT__COORDINATOR__MISSING_PENALTY": "22"}
    flags = {"coordinator.missing_penalty": 33}
    assert load_config(path, env, flags, model=model).coordinator.missing_penalty == 33
    assert load_config(path, env, model=model).coordinator.missing_penalty == 22
    assert load_config(path, {}, model=model).coordinator.missing_penalty == 11
    assert load_config(None, {}, model=model).coordinator.missing_penalty == 15


def test_an_override_keeps_the_rest_of_the_section(tmp_path) -> None:
    path = write(tmp_path, "max_age_s:\n  candles: 100\n  orderbook: 200\n", name="c.yaml")
    config = load_config(path, {"BOT__MAX_AGE_S__CANDLES": "300"})
    assert (config.max_age_s.candles, config.max_age_s.orderbook) == (300, 200)


# --- errors: each names the key or the file --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("max_age_s:\n  candles: -5\n", "max_age_s.candles"),
        ("max_age_s:\n  candles: soon\n", "max_age_s.candles"),
        ("pipeline:\n  candle_lookback: 3\n", "pipeline.candle_lookback"),
        ("data:\n  mode: live-ish\n", "data.mode"),
        ("symbols: [$$$]\n", "symbols"),
        ("data:\n  default_at: yesterday\n", "data.default_at"),
    ],
)
def test_a_bad_value_stops_with_the_key_named(tmp_path, text, key) -> None:
    with pytest.raises(ConfigError, match=rf"^bad config: .*{key}: "):
        load_config(write(tmp_path, text), env={})


def test_a_bad_environment_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"max_age_s\.candles: "):
        load_config(env={"BOT__MAX_AGE_S__CANDLES": "abc"})


@MODELS
def test_an_unknown_key_in_a_section_is_rejected(tmp_path, model) -> None:
    with pytest.raises(ConfigError, match=r"max_age_s\.candle: unknown key"):
        load_config(write(tmp_path, "max_age_s:\n  candle: 5\n"), env={}, model=model)


def test_an_unknown_section_is_rejected_by_the_bot(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"colour: unknown key"):
        load_config(write(tmp_path, "colour: blue\n"), env={}, model=BotConfig)


@pytest.mark.parametrize("key", ["discord_token", "telegram_token", "groq_api_key"])
def test_a_secret_in_the_file_is_rejected_without_echoing_it(tmp_path, key) -> None:
    path = write(tmp_path, f"{key}: s3cr3t-value-123\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={}, model=BotConfig)
    message = str(caught.value)
    assert key in message
    assert "environment" in message
    assert "s3cr3t-value-123" not in message


def test_invalid_yaml_names_the_file(tmp_path) -> None:
    path = write(tmp_path, "max_age_s: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML") as caught:
        load_config(path, env={})
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_a_file_that_is_not_a_mapping_is_rejected(tmp_path, text) -> None:
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(write(tmp_path, text), env={})


def test_an_unreadable_path_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml", env={})
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path, env={})  # a folder


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("llm:\n  model: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError):
        load_config(path, env={})


# --- secrets -----------------------------------------------------------------------------------

SECRET_ENV = {
    "DISCORD_TOKEN": "discord-abc-123",
    "TELEGRAM_TOKEN": "12345:telegram-xyz",
    "TELEGRAM_BASE_URL": "http://127.0.0.1:8081/bot",
    "GROQ_API_KEY": "gsk_groq_secret",
    "REDDIT_CLIENT_ID": "reddit-id-42",
    "REDDIT_CLIENT_SECRET": "reddit-secret-42",
}


def test_secrets_come_from_the_environment() -> None:
    secrets = Secrets.from_env(SECRET_ENV)
    assert secrets.discord_token == "discord-abc-123"
    assert secrets.telegram_token == "12345:telegram-xyz"
    assert secrets.telegram_base_url == "http://127.0.0.1:8081/bot"
    assert secrets.groq_api_key == "gsk_groq_secret"
    assert secrets.reddit_client_id == "reddit-id-42"
    assert secrets.reddit_client_secret == "reddit-secret-42"
    assert set(secrets.values()) >= {
        "discord-abc-123",
        "12345:telegram-xyz",
        "gsk_groq_secret",
        "reddit-secret-42",
    }


def test_unset_or_empty_secrets_are_none() -> None:
    secrets = Secrets.from_env({"DISCORD_TOKEN": ""})
    assert secrets.discord_token is None
    assert secrets.values() == []


def test_secrets_never_show_in_repr_or_str() -> None:
    secrets = Secrets.from_env(SECRET_ENV)
    for shown in (repr(secrets), str(secrets), f"{secrets}", repr([secrets])):
        for name, value in SECRET_ENV.items():
            if name != "TELEGRAM_BASE_URL":
                assert value not in shown


@pytest.mark.parametrize("text", ["2025-10-06T16:00:00", "2025-10-06 16:00"])
def test_times_without_a_zone_mean_utc_in_every_section(text: str) -> None:
    env = {"BOT__DATA__DEFAULT_AT": text, "BOT__DEMO__UNTIL": text}
    config = load_config(env=env, model=BotConfig)
    for moment in (config.data.default_at, config.demo.until):
        assert moment.tzinfo is not None
        assert moment.utcoffset() == timedelta(0)
        assert (moment.hour, moment.minute) == (16, 0)
