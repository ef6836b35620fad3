"""The FinBERT engine end to end on a tiny BERT built here, through the real from_pretrained path.

Expected probabilities come from the model's logits by construction (a head with zero weights and
a chosen bias) or from transformers run directly on one unpadded text, never from the engine.
Under CI (`CI` or `SIGNALDESK_CI` set) a missing `finbert` extra is an error, not a skip.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bot.cli_status import _gather
from bot.config import BotConfig
from intel.config import Config, FinBertConfig, load_config
from intel.desk import build_desk
from intel.errors import ModelUnavailableError
from intel.sentiment.finbert import FALLBACK_NOTICE, FinBertEngine
from intel.sentiment.lexicon import LexiconEngine

if os.environ.get("CI") or os.environ.get("SIGNALDESK_CI"):
    import onnxruntime  # noqa: F401  (CI installs the finbert extra: never skip there)
    import torch  # noqa: F401
    import transformers  # noqa: F401
else:
    for module in ("torch", "transformers", "onnxruntime"):
        pytest.importorskip(module, reason="the finbert extra is not installed")

from tests.tiny_bert import (  # imports torch: only after the check above
    FINBERT_ORDER,
    OTHER_ORDER,
    build_tiny_bert,
    reference_probabilities,
)

RUNTIMES = ("torch", "torch_int8", "onnx", "onnx_int8")
TEXTS = [
    "buy the dip",
    "bull trap",
    "eth dump incoming, sell everything now before it is too late",
    "btc to the moon",
    "",
    "price up 12% since monday, whales are accumulating while retail panics",
]


def settings(tmp_path: Path, runtime: str = "torch", **changes: object) -> FinBertConfig:
    return FinBertConfig(runtime=runtime, cache_dir=tmp_path / "converted", **changes)  # type: ignore[arg-type]


def engine_for(folder: Path, config: FinBertConfig, **kwargs: bool) -> FinBertEngine:
    return FinBertEngine(str(folder), config, LexiconEngine(), **kwargs)


def softmax(logits: tuple[float, ...]) -> list[float]:
    exps = [math.exp(x) for x in logits]
    return [e / sum(exps) for e in exps]


async def run_python(script: str) -> str:
    """stdout of `script` run by this Python in a fresh process (fresh `sys.modules`)."""
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout


@pytest.fixture(scope="module")
def random_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("random") / "model", seed=7)


# --- labels, probabilities, padding ---------------------------------------------------------


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("id2label", [OTHER_ORDER, FINBERT_ORDER])
async def test_labels_are_read_by_name_from_id2label(tmp_path, runtime, id2label) -> None:
    bias = (0.0, 2.0, -1.0)
    folder = build_tiny_bert(tmp_path / "model", id2label, bias=bias)
    expected = dict(zip((id2label[i] for i in range(3)), softmax(bias), strict=True))
    engine = engine_for(folder, settings(tmp_path, runtime))
    await engine.start()
    try:
        scores = await asyncio.to_thread(engine.score, TEXTS)
    finally:
        await engine.close()
    assert engine.name == "finbert"
    assert engine.notice is None
    for score in scores:
        assert score.label == id2label[1]  # the column with the largest bias, by its name
        assert score.positive == pytest.approx(expected["positive"], abs=1e-4)
        assert score.negative == pytest.approx(expected["negative"], abs=1e-4)
        assert score.neutral == pytest.approx(expected["neutral"], abs=1e-4)


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
async def test_batches_padded_to_their_longest_match_each_text_alone(
    tmp_path, random_bert, runtime
) -> None:
    engine = engine_for(random_bert, settings(tmp_path, runtime, batch_size=2))
    scores = await asyncio.to_thread(engine.score, TEXTS)
    await engine.close()
    assert engine.stats.batches == 3  # six texts, two per batch
    for text, score in zip(TEXTS, scores, strict=True):
        reference = reference_probabilities(random_bert, text)
        assert score.positive == pytest.approx(reference["positive"], abs=1e-5)
        assert score.negative == pytest.approx(reference["negative"], abs=1e-5)
        assert score.neutral == pytest.approx(reference["neutral"], abs=1e-5)
        assert score.label == max(reference, key=reference.__getitem__)
    assert len({score.label for score in scores}) > 1  # the model tells texts apart


async def test_long_text_is_truncated_at_max_length(tmp_path, random_bert) -> None:
    head = "buy the dip " * 4
    engine = engine_for(random_bert, settings(tmp_path, max_length=8, cache_size=0))
    long, short = await asyncio.to_thread(engine.score, [head + "sell " * 500, head])
    await engine.close()
    # 8 tokens are [CLS], six of the shared head and [SEP]: the two texts read the same.
    assert long == short


# --- one queue, batching and the cache ------------------------------------------------------


async def test_concurrent_callers_are_served_in_one_round(tmp_path, random_bert) -> None:
    engine = engine_for(random_bert, settings(tmp_path, gather_ms=500, batch_size=4))
    await asyncio.to_thread(engine.score, [])  # loads the model
    before = engine.stats
    futures = [engine.submit([f"caller {i}", "shared text"]) for i in range(5)]
    results = [await asyncio.wrap_future(f) for f in futures]
    await engine.close()
    after = engine.stats
    assert after.rounds - before.rounds == 1
    assert after.texts_scored - before.texts_scored == 6  # five own texts + the shared one once
    assert after.batches - before.batches == 2  # six texts, four per batch
    assert {r[1] for r in results} == {results[0][1]}  # everyone gets the same shared score


async def test_cache_scores_a_text_once_and_is_bounded(tmp_path, random_bert) -> None:
    engine = engine_for(random_bert, settings(tmp_path, cache_size=2))
    first = await asyncio.to_thread(engine.score, ["a", "b"])
    again = await asyncio.to_thread(engine.score, ["b", "a", "b"])
    assert engine.stats.texts_scored == 2
    assert engine.stats.cache_hits == 3
    assert again == [first[1], first[0], first[1]]
    await asyncio.to_thread(engine.score, ["c"])  # evicts "a", the least recently used
    await asyncio.to_thread(engine.score, ["b", "a"])
    await engine.close()
    assert engine.stats.texts_scored == 4


async def test_event_loop_keeps_ticking_while_scoring(tmp_path) -> None:
    folder = build_tiny_bert(tmp_path / "model", hidden=256, layers=4)
    engine = engine_for(folder, settings(tmp_path, cache_size=0, max_length=128))
    await asyncio.to_thread(engine.score, ["warm up"])
    text = "whales are accumulating eth while retail panics and sells"
    texts = [f"{i} {text}" * 3 for i in range(600)]
    ticks: list[float] = []

    async def heartbeat() -> None:
        for _ in range(100_000):  # bounded; cancelled when scoring ends
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    beat = asyncio.create_task(heartbeat())
    started = time.perf_counter()
    await asyncio.to_thread(engine.score, texts)
    took = time.perf_counter() - started
    beat.cancel()
    await engine.close()
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert took > 0.8, "scoring must last long enough for the check to mean something"
    # Scoring on the loop would stall it for the whole `took`; a busy host may delay a tick a bit.
    assert max(gaps) < min(0.5, took / 2)
    assert len(ticks) >= took / 0.05


# --- fallback ---------------------------------------------------------------------------------


def corrupt_model(tmp_path: Path) -> Path:
    folder = build_tiny_bert(tmp_path / "corrupt")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])  # a download cut short
    return folder


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("broken", ["missing", "corrupt", "no weights"])
async def test_fallback_to_the_lexicon_says_so_once(tmp_path, runtime, broken) -> None:
    folder = {
        "missing": lambda: tmp_path / "not-there",
        "corrupt": lambda: corrupt_model(tmp_path),
        "no weights": lambda: _without_weights(tmp_path),
    }[broken]()
    engine = engine_for(folder, settings(tmp_path, runtime, load_at_start=True))
    with capture_logs() as logs:
        await engine.start()
        scores = await asyncio.to_thread(engine.score, TEXTS)
        await asyncio.to_thread(engine.score, TEXTS)
        await engine.close()
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["finbert_unavailable"]
    assert engine.name == "lexicon"
    assert engine.notice == FALLBACK_NOTICE
    assert FALLBACK_NOTICE == "FinBERT configured, weights not found — lexicon in use"
    assert engine.describe().startswith(FALLBACK_NOTICE)
    assert scores == LexiconEngine().score(TEXTS)


def _without_weights(tmp_path: Path) -> Path:
    folder = build_tiny_bert(tmp_path / "partial")
    (folder / "model.safetensors").unlink()
    return folder


async def test_a_model_with_other_labels_falls_back(tmp_path) -> None:
    folder = build_tiny_bert(tmp_path / "model", {0: "bearish", 1: "bullish", 2: "neutral"})
    engine = engine_for(folder, settings(tmp_path))
    await asyncio.to_thread(engine.score, ["x"])
    await engine.close()
    assert engine.notice == FALLBACK_NOTICE
    assert "bearish" in engine.describe()


async def test_strict_engine_raises_instead_of_falling_back(tmp_path) -> None:
    engine = engine_for(tmp_path / "nope", settings(tmp_path, load_at_start=True), strict=True)
    with pytest.raises(ModelUnavailableError, match="no such folder"):
        await engine.start()
    await engine.close()
    assert engine.notice is None


# --- the converted model is cached on disk ----------------------------------------------------


async def test_onnx_conversion_is_cached_and_reused_without_torch(tmp_path, random_bert) -> None:
    config = settings(tmp_path, "onnx_int8")
    first = engine_for(random_bert, config)
    expected = await asyncio.to_thread(first.score, TEXTS)
    await first.close()
    (entry,) = (tmp_path / "converted").iterdir()
    written = (entry / "model.onnx").stat().st_mtime_ns
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from intel.config import FinBertConfig\n"
        "from intel.sentiment.finbert import FinBertEngine\n"
        "from intel.sentiment.lexicon import LexiconEngine\n"
        f"cache = Path({str(tmp_path / 'converted')!r})\n"
        "config = FinBertConfig(runtime='onnx_int8', cache_dir=cache)\n"
        f"engine = FinBertEngine({str(random_bert)!r}, config, LexiconEngine(), strict=True)\n"
        f"scores = engine.score({TEXTS!r})\n"
        "print([round(s.positive, 6) for s in scores])\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    out = (await run_python(script)).splitlines()[-2:]  # after the engine's log line
    assert out[0] == str([round(s.positive, 6) for s in expected])
    assert out[1] == "False False"  # the cached conversion runs on onnxruntime alone
    assert (entry / "model.onnx").stat().st_mtime_ns == written
    assert len(list((tmp_path / "converted").iterdir())) == 1


# --- lazy imports, the desk, the report and status --------------------------------------------


async def test_importing_the_bot_and_scoring_with_the_lexicon_never_imports_torch() -> None:
    script = (
        "import sys, asyncio\n"
        "import bot, intel, bot.cli\n"
        "from intel.config import Config\n"
        "from intel.desk import build_desk\n"
        "config = Config.model_validate({'agents': {'sentiment': {'engine': 'finbert'}}})\n"
        "desk = build_desk(config)\n"
        "from intel.sentiment.lexicon import LexiconEngine\n"
        "LexiconEngine().score(['buy the dip'])\n"
        "print(sorted(m for m in ('torch', 'transformers', 'onnxruntime') if m in sys.modules))\n"
    )
    assert (await run_python(script)).strip() == "[]"


def desk_config(model: Path, tmp_path: Path) -> Config:
    finbert = {"runtime": "torch", "cache_dir": str(tmp_path / "converted")}
    sentiment = {"engine": "finbert", "finbert_model": str(model), "finbert": finbert}
    return Config.model_validate({"agents": {"sentiment": sentiment}})


async def test_signal_and_status_say_the_lexicon_stands_in(tmp_path) -> None:
    async with build_desk(desk_config(tmp_path / "missing", tmp_path)) as desk:
        result = await desk.signal("BTC/USDT")
        status = desk.sentiment_engine_status()
    report = result.signal.reports["sentiment"]
    assert report.engine == "lexicon"
    assert FALLBACK_NOTICE in report.notes
    assert status.startswith(FALLBACK_NOTICE)


async def test_signal_names_finbert_when_it_scored(tmp_path, random_bert) -> None:
    async with build_desk(desk_config(random_bert, tmp_path)) as desk:
        assert "loads on first use" in desk.sentiment_engine_status()
        result = await desk.signal("BTC/USDT")
        status = desk.sentiment_engine_status()
    report = result.signal.reports["sentiment"]
    assert report.engine == "finbert"
    assert FALLBACK_NOTICE not in report.notes
    assert status == f"finbert (torch) loaded from {random_bert}"


async def test_status_command_names_the_engine_and_the_fallback(tmp_path) -> None:
    overrides = {
        "storage.db_path": str(tmp_path / "bot.db"),
        "agents.sentiment.engine": "finbert",
        "agents.sentiment.finbert_model": str(tmp_path / "missing"),
    }
    status = await _gather(load_config(env={}, overrides=overrides, model=BotConfig))
    expected = (
        f"Sentiment: {FALLBACK_NOTICE} (no weights for {tmp_path / 'missing'} on this host yet)"
    )
    assert expected in status.notes


# --- `python -m bot sentiment --engine finbert` --------------------------------------------


def test_the_sentiment_command_scores_with_finbert_from_a_local_folder(tmp_path) -> None:
    bias = (0.0, 2.0, -1.0)  # OTHER_ORDER: column 1 is the label every text gets
    folder = build_tiny_bert(tmp_path / "model", OTHER_ORDER, bias=bias)
    expected = dict(zip((OTHER_ORDER[i] for i in range(3)), softmax(bias), strict=True))
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "BOT__AGENTS__SENTIMENT__FINBERT_MODEL": str(folder),
        "BOT__AGENTS__SENTIMENT__FINBERT__RUNTIME": "torch",
        "BOT__AGENTS__SENTIMENT__FINBERT__CACHE_DIR": str(tmp_path / "converted"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot", "sentiment", "--engine", "finbert", "--json"],
        input="buy the dip\n\nbull trap\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(answers) == 3  # one per line, the empty one included
    for answer in answers:
        assert answer["engine"] == "finbert"
        assert answer["label"] == OTHER_ORDER[1]
        assert answer["probabilities"]["positive"] == pytest.approx(expected["positive"], 1e-4)
        assert answer["score"] == pytest.approx(expected["positive"] - expected["negative"], 1e-4)


def test_the_sentiment_command_exits_3_when_the_finbert_folder_is_corrupt(tmp_path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{not json", encoding="utf-8")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "BOT__AGENTS__SENTIMENT__FINBERT_MODEL": str(folder),
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot", "sentiment", "--engine", "finbert"],
        input="buy the dip\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 3
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    assert "finbert" in done.stderr.lower()
