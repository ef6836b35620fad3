"""SIGKILL the bot in the middle of a fan-out, again and again: nothing is lost, and each crash
duplicates at most the sends that were in flight (the sender's concurrency).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from bot.config import BotConfig

ROOT = Path(__file__).resolve().parent.parent
RECIPIENTS = 400
CRASHES = 10


def delivered(log: Path) -> list[tuple[int, int, str]]:
    """(run_id, outbox_id, chat_id) of every complete line of the delivery log."""
    if not log.exists():
        return []
    text = log.read_text()
    lines = text.splitlines()[: text.count("\n")]  # a line being written is not delivered yet
    return [(int(run), int(row), chat) for run, row, chat in (line.split() for line in lines)]


def start(tmp_path: Path, run_id: int, concurrency: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "tests.crash_harness",
        "--db",
        str(tmp_path / "bot.db"),
        "--log",
        str(tmp_path / "delivered.log"),
        "--run-id",
        str(run_id),
        "--recipients",
        str(RECIPIENTS),
        "--concurrency",
        str(concurrency),
    ]
    output = (tmp_path / f"run-{run_id}.out").open("wb")
    return subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)


def kill_mid_fan_out(process: subprocess.Popen[bytes], log: Path, rng: random.Random) -> None:
    """SIGKILL once this run has delivered a few rows (a random number), after a random pause."""
    before = len(delivered(log))
    wanted = before + rng.randint(1, 12)
    deadline = time.monotonic() + 20
    while len(delivered(log)) < wanted:
        assert process.poll() is None, "the harness finished before it could be killed"
        assert time.monotonic() < deadline, "the harness delivered nothing"
        time.sleep(0.002)
    time.sleep(rng.uniform(0.0, 0.03))
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=10) == -signal.SIGKILL


def test_sigkill_mid_fan_out_loses_nothing(tmp_path: Path) -> None:
    concurrency = BotConfig().delivery.concurrency
    rng = random.Random(int(os.environ.get("CRASH_TEST_SEED", "20251010")))
    log = tmp_path / "delivered.log"
    for run_id in range(CRASHES):
        kill_mid_fan_out(start(tmp_path, run_id, concurrency), log, rng)
    final = start(tmp_path, CRASHES, concurrency)
    assert final.wait(timeout=60) == 0, (tmp_path / f"run-{CRASHES}.out").read_text()

    lines = delivered(log)
    rows_by_run: dict[int, set[int]] = defaultdict(set)
    for run_id, row, _ in lines:
        assert row not in rows_by_run[run_id], "one process sent a row twice"
        rows_by_run[run_id].add(row)
    assert all(rows_by_run[run_id] for run_id in range(CRASHES + 1)), "a run sent nothing"

    chats = Counter(chat for _, _, chat in lines)
    expected = {f"c{i}" if i % 3 == 0 else f"dm-u{i}" for i in range(RECIPIENTS)}
    assert set(chats) == expected  # 0 lost
    duplicates_per_crash = [
        len(
            rows_by_run[run_id]
            & set().union(*(rows_by_run[r] for r in range(run_id + 1, CRASHES + 1)))
        )
        for run_id in range(CRASHES)
    ]
    assert max(duplicates_per_crash) <= concurrency, duplicates_per_crash
    assert sum(chats.values()) - len(expected) == sum(duplicates_per_crash)
    print(
        f"crashes={CRASHES} deliveries={len(lines)} recipients={len(expected)} "
        f"duplicates={sum(duplicates_per_crash)} per crash={duplicates_per_crash} lost=0 "
        f"concurrency={concurrency}"
    )
