"""`python -m bot sentiment`: one answer per stdin line, in order, whatever the line holds."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.cli_sentiment import MAX_LINE_BYTES, read_lines

POSITIVE, NEGATIVE = "This is wonderful, I love it", "This is awful and I hate it"


class _Stdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


def run(monkeypatch, capsys, data: bytes, *argv: str) -> tuple[int, list[str], str]:
    monkeypatch.setattr(sys, "stdin", _Stdin(data))
    code = main(["sentiment", *argv])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


@pytest.fixture(autouse=True)
def _no_local_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_json_answers_follow_the_contract_in_input_order(monkeypatch, capsys) -> None:
    data = f"{POSITIVE}\n{NEGATIVE}\nThe meeting is at noon\n".encode()
    code, lines, _ = run(monkeypatch, capsys, data, "--json")
    assert code == 0
    answers = [json.loads(line) for line in lines]
    assert [a["label"] for a in answers] == ["positive", "negative", "neutral"]
    for answer in answers:
        assert set(answer) == {"label", "probabilities", "score", "engine"}
        assert answer["engine"] == "lexicon"
        p = answer["probabilities"]
        assert set(p) == {"positive", "negative", "neutral"}
        assert sum(p.values()) == pytest.approx(1.0, abs=1e-3)
        assert answer["score"] == pytest.approx(p["positive"] - p["negative"], abs=1e-3)


def test_bad_lines_each_get_an_answer_and_the_count_matches(monkeypatch, capsys) -> None:
    huge = b"rekt " * (MAX_LINE_BYTES // 2)
    data = b"\n".join(
        [b"", b"\xff\xfe\xfd", huge, b"   ", POSITIVE.encode(), b"\r", NEGATIVE.encode()]
    )
    code, lines, _ = run(monkeypatch, capsys, data)  # last line has no newline
    assert code == 0
    assert len(lines) == 7
    labels = [line.split()[0] for line in lines]
    assert labels == [
        "neutral",
        "neutral",
        "negative",
        "neutral",
        "positive",
        "neutral",
        "negative",
    ]


def test_no_input_gives_no_answers(monkeypatch, capsys) -> None:
    assert run(monkeypatch, capsys, b"", "--json") == (0, [], "")


def test_finbert_without_weights_exits_3_with_one_line(monkeypatch, capsys) -> None:
    code, lines, err = run(monkeypatch, capsys, POSITIVE.encode(), "--engine", "finbert")
    assert code == 3
    assert lines == []
    assert len(err.strip().splitlines()) == 1
    assert "finbert" in err.lower()


def test_an_unknown_engine_is_bad_input(monkeypatch, capsys) -> None:
    code, _, err = run(monkeypatch, capsys, b"x\n", "--engine", "vader")
    assert code == 2
    assert "lexicon" in err


def test_a_huge_line_is_read_in_bounded_pieces() -> None:
    stream = io.BytesIO(b"a" * 50 + b"\nnext\n")
    assert list(read_lines(stream, max_bytes=8)) == ["a" * 8, "next"]


def test_the_command_runs_as_a_process(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "sentiment", "--json"],
        input=f"{NEGATIVE}\n\n{POSITIVE}\n".encode(),
        capture_output=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [a["label"] for a in answers] == ["negative", "neutral", "positive"]


def test_a_flat_line_has_no_negative_zero(monkeypatch, capsys) -> None:
    code, lines, _ = run(monkeypatch, capsys, b"Price is flat today\n", "--json")
    assert code == 0
    assert "-0.0" not in lines[0]
    assert json.loads(lines[0])["probabilities"]["negative"] == 0.0
