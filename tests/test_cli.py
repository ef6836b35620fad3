"""The command line as the contract fixes it: output, exit codes, one-line errors.

Most cases call `bot.cli.main` in-process; a few run `python -m bot` for real, all at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from intel.sources.replay_candles import ReplayCandleSource
from tests.contract import SIGNAL_KEYS

ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CREDENTIALS = (
    "DISCORD_TOKEN",
    "TELEGRAM_TOKEN",
    "TELEGRAM_BASE_URL",
    "GROQ_API_KEY",
    "GROQ_BASE_URL",
    "REDDIT_CLIENT_ID",
    "REDDIT_CLIENT_SECRET",
    "REDDIT_USER_AGENT",
)


def clean_env() -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("BOT__") and k not in CREDENTIALS
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Run where no config.yaml is, with no BOT__ overrides and no credentials."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("BOT__") or name in CREDENTIALS:
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True, scope="module")
def _candles_loaded_once() -> object:
    """Each `main` call builds a fresh desk; share the parsed candle files between them (the
    recorded data never changes), which saves a CSV parse per call."""
    loaded: dict[tuple[Path, str], object] = {}
    original = ReplayCandleSource._load

    def load_once(self: ReplayCandleSource, symbol: str) -> object:
        key = (self._dir, symbol)
        if key not in loaded:
            loaded[key] = original(self, symbol)
        return loaded[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ReplayCandleSource, "_load", load_once)
        yield


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse's --help
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("error: ")
    return lines[0]


# --- success ----------------------------------------------------------------------------------


def test_signal_prints_the_call(capsys) -> None:
    code, out, err = cli(capsys, "signal", "BTC/USDT")
    assert code == 0, err
    assert "BTC/USDT" in out
    assert any(action in out for action in ("BUY", "SELL", "HOLD"))


def test_signal_json_has_the_contract_keys(capsys) -> None:
    code, out, err = cli(capsys, "signal", "eth", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert set(data) >= SIGNAL_KEYS
    assert data["symbol"] == "ETH/USDT"
    assert data["action"] in {"BUY", "SELL", "HOLD"}
    assert data["as_of"] == "2025-10-06T16:00:00Z"  # data.default_at
    assert set(data["reports"]) == {"whales", "orderbook", "sentiment"}


def test_signal_chart_writes_a_png(capsys, tmp_path) -> None:
    target = tmp_path / "out.png"
    code, out, err = cli(capsys, "signal", "btc", "--chart", str(target))
    assert code == 0, err
    assert target.read_bytes()[:8] == PNG_SIGNATURE
    assert str(target) in out


def test_chart_into_a_missing_folder_is_bad_input(capsys, tmp_path) -> None:
    code, _, err = cli(capsys, "signal", "btc", "--chart", str(tmp_path / "nope" / "c.png"))
    assert code == 2
    assert "nope" in assert_one_line_error(err)


def test_at_replays_the_2024_book_moment(capsys) -> None:
    code, out, err = cli(capsys, "signal", "btc", "--at", "2024-08-09T00:05Z", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["as_of"] == "2024-08-09T00:05:00Z"
    assert data["reports"]["orderbook"]["status"] in {"ok", "degraded"}
    assert data["reports"]["orderbook"]["score"] is not None
    assert data["reports"]["whales"]["status"] == "unavailable"
    assert data["reports"]["whales"]["reason"]
    assert data["action"] == "HOLD"


def test_at_without_a_zone_means_utc(capsys) -> None:
    code, out, err = cli(capsys, "signal", "btc", "--at", "2024-08-09T00:05", "--json")
    assert code == 0, err
    assert json.loads(out)["as_of"] == "2024-08-09T00:05:00Z"


@pytest.mark.parametrize("argv", [["--help"], ["signal", "--help"]], ids=["top", "signal"])
def test_help_exits_zero(capsys, argv) -> None:
    code, out, _ = cli(capsys, *argv)
    assert code == 0
    assert "usage:" in out
    assert "signal" in out


# --- bad input: exit 2, one line --------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["signal", "btc", "--at", "2010-01-01"], "outside the recorded"),
        (["signal", "btc", "--at", "garbage"], "bad time"),
        (["signal", "btx"], "did you mean BTC/USDT"),
        (["signal", "$$$"], "malformed symbol"),
        (["signal", "a/b/c"], "malformed symbol"),
        (["signal"], "SYMBOL"),
        (["frobnicate"], "frobnicate"),
        (["signal", "btc", "--bogus"], "--bogus"),
        (["--config", "missing.yaml", "signal", "btc"], "missing.yaml"),
        (["signal", "btc", "--config", "missing.yaml"], "missing.yaml"),
    ],
    ids=[
        "at-before-data",
        "at-garbage",
        "unknown-symbol",
        "malformed-symbol",
        "three-parts",
        "no-symbol",
        "unknown-command",
        "unknown-option",
        "missing-config",
        "missing-config-after",
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, argv, says) -> None:
    code, out, err = cli(capsys, *argv)
    assert code == 2
    assert says in assert_one_line_error(err)
    assert out == ""


def test_no_command_exits_2(capsys) -> None:
    code, out, err = cli(capsys)
    assert code == 2
    assert "usage:" in out + err
    assert "Traceback" not in err


def test_a_bad_config_value_names_the_key(capsys, tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_age_s:\n  candles: -1\n", encoding="utf-8")
    code, _, err = cli(capsys, "signal", "btc", "--config", str(bad))
    assert code == 2
    assert "max_age_s.candles" in assert_one_line_error(err)


def test_a_bad_config_yaml_in_the_working_folder_is_bad_input(capsys, tmp_path) -> None:
    (tmp_path / "config.yaml").write_text("pipeline: [1, 2\n", encoding="utf-8")
    code, _, err = cli(capsys, "signal", "btc")
    assert code == 2
    assert "YAML" in assert_one_line_error(err)


def test_a_bad_environment_override_is_bad_input(capsys, monkeypatch) -> None:
    monkeypatch.setenv("BOT__PIPELINE__SOURCE_TIMEOUT_S", "-3")
    code, _, err = cli(capsys, "signal", "btc")
    assert code == 2
    assert "pipeline.source_timeout_s" in assert_one_line_error(err)


LIVE_COMMANDS = [["signal", "btc"], ["status"], ["run", "--no-console"]]


UNKNOWN_EXCHANGE = "exchange.id: unknown exchange 'nosuchexchange' (not a ccxt exchange id)"


@pytest.mark.parametrize("command", LIVE_COMMANDS)
def test_live_mode_from_config_starts_the_live_sources(capsys, monkeypatch, command) -> None:
    # An exchange id ccxt does not know is refused as the live sources start: proof that live
    # mode built them, without any network.
    monkeypatch.setenv("BOT__DATA__MODE", "live")
    monkeypatch.setenv("BOT__EXCHANGE__ID", "nosuchexchange")
    code, _, err = cli(capsys, *command, "--db", "bot.db")
    assert code == 2
    assert assert_one_line_error(err) == f"error: {UNKNOWN_EXCHANGE}"


@pytest.mark.parametrize("command", LIVE_COMMANDS)
def test_the_live_flag_asks_for_live_mode(capsys, monkeypatch, command) -> None:
    monkeypatch.setenv("BOT__EXCHANGE__ID", "nosuchexchange")
    code, _, err = cli(capsys, *command, "--live", "--db", "bot.db")
    assert code == 2
    assert assert_one_line_error(err) == f"error: {UNKNOWN_EXCHANGE}"
    # Without --live the same configuration is replay, where the exchange is never read.
    if command[0] == "signal":
        assert cli(capsys, *command, "--db", "bot.db")[0] == 0


@pytest.mark.parametrize("live", [["--live"], []])
def test_at_with_live_is_bad_input(capsys, monkeypatch, live) -> None:
    if not live:
        monkeypatch.setenv("BOT__DATA__MODE", "live")
    code, _, err = cli(capsys, "signal", "btc", "--at", "2025-10-06T16:00Z", *live)
    assert code == 2
    assert "--at" in assert_one_line_error(err)
    assert "--live" in err


def test_a_coordinator_this_version_lacks_is_bad_config(capsys, monkeypatch) -> None:
    monkeypatch.setenv("BOT__COORDINATOR__KIND", "oracle")
    code, _, err = cli(capsys, "signal", "btc")
    assert code == 2
    assert "coordinator.kind" in assert_one_line_error(err)


def test_debug_with_bad_input_still_exits_2(capsys) -> None:
    code, _, err = cli(capsys, "--debug", "signal", "btx")
    assert code == 2
    assert "did you mean" in err


# --- configuration through the command line ---------------------------------------------------


@pytest.mark.parametrize("before", [True, False], ids=["before-command", "after-command"])
def test_config_option_works_before_or_after_the_command(capsys, tmp_path, before) -> None:
    path = tmp_path / "x.yaml"
    path.write_text('data:\n  default_at: "2024-08-09T00:05Z"\n', encoding="utf-8")
    option = ["--config", str(path)]
    argv = [*option, "signal", "btc", "--json"] if before else ["signal", "btc", "--json", *option]
    code, out, err = cli(capsys, *argv)
    assert code == 0, err
    assert json.loads(out)["as_of"] == "2024-08-09T00:05:00Z"


def test_environment_overrides_the_config_file(capsys, tmp_path, monkeypatch) -> None:
    path = tmp_path / "x.yaml"
    path.write_text('data:\n  default_at: "2024-08-09T00:05Z"\n', encoding="utf-8")
    monkeypatch.setenv("BOT__DATA__DEFAULT_AT", "2025-10-01T12:00Z")
    code, out, err = cli(capsys, "signal", "btc", "--json", "--config", str(path))
    assert code == 0, err
    assert json.loads(out)["as_of"] == "2025-10-01T12:00:00Z"


def test_config_yaml_in_the_working_folder_is_used(capsys, tmp_path) -> None:
    (tmp_path / "config.yaml").write_text("symbols: [BTC/USDT]\n", encoding="utf-8")
    code, _, err = cli(capsys, "signal", "eth")
    assert code == 2
    assert "unknown symbol" in assert_one_line_error(err)


# --- the real entry point, as a subprocess ----------------------------------------------------

SUBPROCESS_CASES = {
    "signal": ["-m", "bot", "signal", "BTC/USDT"],
    "json": ["-m", "bot", "signal", "eth", "--json"],
    "unknown": ["-m", "bot", "signal", "btx"],
    "imports": [
        "-c",
        "import json, sys, bot, bot.cli, intel.desk; "
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('torch', 'transformers'))))",
    ],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every subprocess case, started together (each pays the interpreter start-up once)."""
    cwd = tmp_path_factory.mktemp("cli")
    started = {
        name: subprocess.Popen(
            [sys.executable, *argv],
            cwd=cwd,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, argv in SUBPROCESS_CASES.items()
    }
    done = {}
    for name, process in started.items():
        out, err = process.communicate(timeout=120)
        done[name] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    return done


def test_python_m_bot_signal(runs) -> None:
    run = runs["signal"]
    assert run.returncode == 0, run.stderr
    assert "BTC/USDT" in run.stdout
    assert any(action in run.stdout for action in ("BUY", "SELL", "HOLD"))


def test_python_m_bot_signal_json(runs) -> None:
    run = runs["json"]
    assert run.returncode == 0, run.stderr
    assert set(json.loads(run.stdout)) >= SIGNAL_KEYS


def test_python_m_bot_bad_input(runs) -> None:
    run = runs["unknown"]
    assert run.returncode == 2
    assert run.stdout == ""
    assert "did you mean BTC/USDT" in assert_one_line_error(run.stderr)


def test_importing_the_bot_does_not_import_torch_or_transformers(runs) -> None:
    run = runs["imports"]
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == []


def test_a_reader_that_stops_early_is_not_an_internal_error() -> None:
    # `python -m bot signal eth --json | head -3`: once the reader is gone, a write gets EPIPE.
    # `true` reads nothing and exits at once, long before the signal is printed.
    command = [sys.executable, "-m", "bot", "signal", "eth", "--json"]
    script = f"{' '.join(command)} | true"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert "internal error" not in proc.stderr
    assert proc.returncode == 0, proc.stderr
