"""Configuration layering: each pair of layers in precedence order, env values read as YAML,
nested and case-insensitive keys, and a bad or unknown key named whichever layer it came from."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.config import BotConfig
from intel.config import Secrets, load_config
from intel.errors import ConfigError
from intel.timeutil import parse_time

# One value per layer for a nested key of the bot's own sections; the default is 1.
KEY = "delivery.telegram.per_chat_per_s"
ENV_NAME = "BOT__DELIVERY__TELEGRAM__PER_CHAT_PER_S"
FILE_TEXT = "delivery:\n  telegram:\n    per_chat_per_s: 2\n"
DEFAULT, FROM_FILE, FROM_ENV, FROM_FLAG = 1, 2, 3, 4


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ./config.yaml and no BOT__ variables leak in from where the tests run."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("BOT__"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "layers.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, layers: set[str], model: type[BotConfig] = BotConfig) -> BotConfig:
    path = write(tmp_path, FILE_TEXT) if "file" in layers else None
    env = {ENV_NAME: str(FROM_ENV)} if "env" in layers else {}
    flags = {KEY: FROM_FLAG} if "flag" in layers else {}
    return load_config(path, env, flags, model=model)


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        ({"flag", "env"}, FROM_FLAG),
        ({"flag", "file"}, FROM_FLAG),
        ({"flag"}, FROM_FLAG),
        ({"env", "file"}, FROM_ENV),
        ({"env"}, FROM_ENV),
        ({"file"}, FROM_FILE),
        (set(), DEFAULT),
    ],
    ids=lambda v: ("+".join(sorted(v)) or "none") if isinstance(v, set) else None,
)
def test_each_layer_beats_the_ones_below_it(tmp_path, layers, expected) -> None:
    assert load(tmp_path, layers).delivery.telegram.per_chat_per_s == expected


def test_layers_merge_key_by_key_within_a_section(tmp_path) -> None:
    path = write(tmp_path, "max_age_s:\n  candles: 100\n  orderbook: 200\n")
    env = {"BOT__MAX_AGE_S__WHALES": "300"}
    config = load_config(path, env, {"max_age_s.posts": 400})
    ages = config.max_age_s
    assert (ages.candles, ages.orderbook, ages.whales, ages.posts) == (100, 200, 300, 400)
    assert ages.fear_greed == 172800  # the default, untouched


def test_the_given_environment_is_read_not_the_process_one(monkeypatch) -> None:
    monkeypatch.setenv("BOT__SCHEDULE__INTERVAL_MINUTES", "45")
    assert load_config(env={}).schedule.interval_minutes == 60
    assert (
        load_config(env={"BOT__SCHEDULE__INTERVAL_MINUTES": "30"}).schedule.interval_minutes == 30
    )


# --- environment values are YAML ---------------------------------------------------------------


def test_environment_values_are_read_as_yaml(tmp_path) -> None:
    # The file sets values the environment then replaces, so YAML's null is seen to win.
    path = write(tmp_path, "data:\n  replay_dir: /srv/replay\nlogging:\n  json_output: true\n")
    env = {
        "BOT__SYMBOLS": "[btc, eth]",
        "BOT__SCHEDULE__INTERVAL_MINUTES": "30",
        "BOT__DATA__DEFAULT_AT": "2025-10-01T12:00Z",
        "BOT__DATA__REPLAY_DIR": "~",
        "BOT__LOGGING__JSON_OUTPUT": "null",
        "BOT__DEMO__ENABLED": "no",
        "BOT__LLM__BASE_URL": "",
        "BOT__MAX_AGE_S": "{candles: 5, orderbook: 6}",
    }
    config = load_config(path, env, model=BotConfig)
    assert config.symbols == ("BTC/USDT", "ETH/USDT")
    assert config.schedule.interval_minutes == 30
    assert config.data.default_at == parse_time("2025-10-01T12:00Z")
    assert config.data.replay_dir is None
    assert config.logging.json_output is None
    assert config.demo.enabled is False
    assert config.llm.base_url == ""
    assert (config.max_age_s.candles, config.max_age_s.orderbook) == (5, 6)


def test_a_single_symbol_needs_no_list() -> None:
    assert load_config(env={"BOT__SYMBOLS": "ethusdt"}).symbols == ("ETH/USDT",)


def test_key_names_ignore_case_but_the_prefix_does_not() -> None:
    assert load_config(env={"BOT__Max_Age_S__candles": "5"}).max_age_s.candles == 5
    assert load_config(env={"bot__max_age_s__candles": "5"}).max_age_s.candles == 7200


# --- a bad or unknown key is named, whichever layer it comes from -------------------------------


@pytest.mark.parametrize("layer", ["file", "env", "flag"])
def test_a_bad_value_names_its_key_from_any_layer(tmp_path, layer) -> None:
    path = write(tmp_path, "schedule:\n  interval_minutes: 0\n") if layer == "file" else None
    env = {"BOT__SCHEDULE__INTERVAL_MINUTES": "0"} if layer == "env" else {}
    flags = {"schedule.interval_minutes": 0} if layer == "flag" else {}
    with pytest.raises(ConfigError, match=r"^bad config: schedule\.interval_minutes: .*1"):
        load_config(path, env, flags, model=BotConfig)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("BOT__SYMBOL", "symbol"),
        ("BOT__MAX_AGE_S__CANDLE", r"max_age_s\.candle"),
        ("BOT__DELIVERY__TELEGRAM__PER_CHAT", r"delivery\.telegram\.per_chat"),
    ],
)
def test_an_unknown_environment_key_is_refused(name, key) -> None:
    with pytest.raises(ConfigError, match=rf"^bad config: {key}: unknown key$"):
        load_config(env={name: "5"}, model=BotConfig)


def test_a_secret_under_the_prefix_is_refused_and_not_used() -> None:
    env = {"BOT__TELEGRAM_TOKEN": "123456:tg-FAKE-token"}
    with pytest.raises(ConfigError) as caught:
        load_config(env=env, model=BotConfig)
    message = str(caught.value)
    assert message.startswith("bad config: telegram_token: unknown key")
    assert "environment" in message
    assert "tg-FAKE-token" not in message
    assert Secrets.from_env(env).values() == []  # only TELEGRAM_TOKEN itself is a secret


def test_a_file_that_is_not_utf8_says_so(tmp_path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("llm:\n  model: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"is not UTF-8 text$") as caught:
        load_config(path, env={})
    assert str(path) in str(caught.value)
