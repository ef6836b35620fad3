"""Every value a user can configure is refused at start naming its key, or taken as documented."""

from __future__ import annotations

import gzip
import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel

from bot.cli import main
from bot.commands.base import Request
from bot.commands.help import HelpCommands
from bot.config import BotConfig
from intel.config import load_config
from intel.errors import ConfigError
from intel.sources.replay_files import DEFAULT_REPLAY_DIR

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("BOT__") or name.endswith("_TOKEN"):
            monkeypatch.delenv(name)


def leaf_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            keys.extend(leaf_keys(kind, f"{prefix}{name}."))
        else:
            keys.append(prefix + name)
    return keys


def env_name(key: str) -> str:
    return "BOT__" + "__".join(part.upper() for part in key.split("."))


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def last_candle_close(symbol_file: str) -> datetime:
    """Read independently of the source: the last recorded open time plus one hour."""
    with gzip.open(DEFAULT_REPLAY_DIR / "candles" / symbol_file, "rt", encoding="utf-8") as f:
        last = f.read().strip().splitlines()[-1]
    return datetime.fromtimestamp(int(last.split(",")[0]) / 1000, tz=UTC) + timedelta(hours=1)


# --- the schema, key by key ---------------------------------------------------------------------

HOSTILE = ["", "abc", "-1", "0", "1e300", ".inf", ".nan", "[]", "{}", "null", "2025-10-06"]


@pytest.mark.parametrize("key", leaf_keys(BotConfig))
def test_every_key_refuses_a_bad_value_with_its_name_or_keeps_a_meaning(key: str) -> None:
    for text in HOSTILE:
        try:
            config = load_config(env={env_name(key): text}, model=BotConfig)
        except ConfigError as exc:
            refusal = str(exc)
        else:
            # Accepted: nothing infinite or undefined slipped in.
            assert all(math.isfinite(number) for number in _numbers(config)), (key, text)
            continue
        assert key in refusal, (text, refusal)


def _numbers(model: BaseModel) -> list[float]:
    found: list[float] = []
    for value in model.__dict__.values():
        if isinstance(value, BaseModel):
            found.extend(_numbers(value))
        elif isinstance(value, float):
            found.append(value)
        elif isinstance(value, tuple):
            found.extend(v for v in value if isinstance(v, float))
    return found


# --- times --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["data.default_at", "demo.until"])
def test_a_date_alone_means_midnight_utc_from_env_and_yaml(key: str, tmp_path: Path) -> None:
    section, leaf = key.split(".")
    path = tmp_path / "c.yaml"
    path.write_text(f"{section}:\n  {leaf}: 2025-10-07\n", encoding="utf-8")  # YAML: a date
    midnight = datetime(2025, 10, 7, tzinfo=UTC)
    from_env = load_config(env={env_name(key): "2025-10-07"}, model=BotConfig)
    from_yaml = load_config(path, env={}, model=BotConfig)
    for config in (from_env, from_yaml):
        assert getattr(getattr(config, section), leaf) == midnight


@pytest.mark.parametrize("text", ["0", "1700000000", "true"])
def test_a_number_is_not_a_time(text: str) -> None:
    with pytest.raises(ConfigError, match=r"data\.default_at: .*ISO-8601"):
        load_config(env={"BOT__DATA__DEFAULT_AT": text}, model=BotConfig)


def test_signal_at_a_configured_date_is_that_midnight(capsys, monkeypatch) -> None:
    monkeypatch.setenv("BOT__DATA__DEFAULT_AT", "2025-10-06")
    code, out, err = cli(capsys, "signal", "btc", "--json")
    assert code == 0, err
    assert json.loads(out)["as_of"] == "2025-10-06T00:00:00Z"


def test_the_demo_clock_takes_a_date_alone(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT__")}
    env.update(BOT__DEMO__UNTIL="2025-10-12", PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--db", str(tmp_path / "bot.db")],
        input="status\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "2025-10-12T00:00:00Z" in proc.stdout  # the clock's stop, shown by `status`


# --- logging levels -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["logging.level", "logging.console_level"])
def test_a_log_level_is_a_standard_name_in_any_case(key: str) -> None:
    _section, leaf = key.split(".")
    config = load_config(env={env_name(key): "debug"}, model=BotConfig)
    assert getattr(config.logging, leaf) == "DEBUG"
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(env={env_name(key): "verbose"}, model=BotConfig)


def test_run_refuses_a_bad_log_level_at_start(capsys, monkeypatch) -> None:
    monkeypatch.setenv("BOT__LOGGING__LEVEL", "verbose")
    code, _, err = cli(capsys, "run", "--no-console", "--db", "bot.db")
    assert code == 2, err
    assert "logging.level" in err


# --- symbols ------------------------------------------------------------------------------------


def test_repeated_symbols_are_one_in_their_first_order() -> None:
    config = load_config(env={"BOT__SYMBOLS": "[eth, btc, BTC/USDT, ETH-USDT]"}, model=BotConfig)
    assert config.symbols == ("ETH/USDT", "BTC/USDT")


@pytest.mark.parametrize(
    "command", [["signal", "doge"], ["signal", "btc"], ["status"], ["run", "--no-console"]]
)
@pytest.mark.parametrize("symbols", ["[BTC/USDT, DOGE/USDT]", "doge"])
def test_a_symbol_with_no_data_at_all_is_refused_naming_symbols(
    capsys, monkeypatch, command, symbols
):
    # Also when it is the only one: then `signal btc` must blame the config, not the user's btc.
    monkeypatch.setenv("BOT__SYMBOLS", symbols)
    code, _, err = cli(capsys, *command, "--db", "bot.db")
    assert code == 2, err
    assert "symbols" in err
    assert "DOGE/USDT" in err
    assert "internal error" not in err


def test_a_missing_replay_folder_is_refused_naming_it(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("BOT__DATA__REPLAY_DIR", str(tmp_path / "nowhere"))
    code, _, err = cli(capsys, "signal", "btc")
    assert code == 2, err
    assert "data.replay_dir" in err


def test_a_default_moment_past_a_symbols_data_is_no_signal_with_its_range(capsys, monkeypatch):
    monkeypatch.setenv("BOT__SYMBOLS", "[btc, sol]")
    monkeypatch.setenv("BOT__DATA__DEFAULT_AT", "2025-10-06T16:00Z")
    last = last_candle_close("SOLUSDT_1h.csv.gz")
    assert last < datetime(2025, 10, 6, 16, tzinfo=UTC)  # the premise: SOL's data ends before
    code, _, err = cli(capsys, "signal", "sol")
    assert code == 3, err
    assert last.strftime("%Y-%m-%dT%H:%M:%SZ") in err
    assert "--at" not in err  # the user never passed it
    inside = (last - timedelta(days=3)).strftime("%Y-%m-%dT%H:%MZ")
    code, _, err = cli(capsys, "signal", "sol", "--at", inside)
    assert code == 0, err


# --- messages promise only what this build has ----------------------------------------------


async def test_help_promises_no_chat_this_build_lacks() -> None:
    request = Request("console", "u", "c", "c", "help")
    text = (await HelpCommands({}).help(request)).text
    assert "Discord when DISCORD_TOKEN is set" in text  # this build has both platforms
    assert "Telegram when TELEGRAM_TOKEN is set" in text
    for promise in ("no Discord", "no Telegram", "restart"):
        assert promise not in text


def test_the_shipped_files_promise_no_chat_or_llm_this_build_lacks() -> None:
    config_yaml = (ROOT / "config.yaml").read_text(encoding="utf-8")
    assert "used when GROQ_API_KEY is set" not in config_yaml
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "no chat transport" not in dockerfile  # both platforms are in this build
    assert "-e DISCORD_TOKEN" in dockerfile
    assert "-e TELEGRAM_TOKEN" in dockerfile
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "next release" not in readme
