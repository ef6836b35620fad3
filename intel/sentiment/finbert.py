"""The FinBERT engine: one worker thread, one batching queue, a per-text cache, lexicon fallback.

Every caller's texts go through one queue to one worker thread, which owns the model: it loads it
(at `start` when `load_at_start`, else on first use), waits `gather_ms` for concurrent callers to
join, scores the cache misses of them all together in length-sorted batches padded to their own
longest text (dynamic padding), and answers each caller. Callers never run the model on competing
threads, and `score` blocks only the thread that calls it (the agent calls it in a worker thread),
never the event loop; the model's own thread count is `threads`.

When the model cannot load (weights missing or corrupt), the engine logs one line and scores with
the fallback engine (the lexicon) from then on; `name` becomes the fallback's and `notice` says so,
for the report, the signal and `status`. A `strict` engine raises ModelUnavailableError instead.
No torch, transformers or onnxruntime is imported until the model loads.
"""

from __future__ import annotations

import asyncio
import hashlib
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import structlog
from cachetools import LRUCache

from intel.config import FinBertConfig, SentimentAgentConfig
from intel.errors import ModelUnavailableError
from intel.sentiment.base import SentimentEngine, SentimentScore
from intel.sentiment.finbert_model import (
    Classifier,
    IntArray,
    load_classifier,
    local_weights_present,
)

__all__ = ["FALLBACK_NOTICE", "FinBertEngine", "FinBertStats"]

log = structlog.get_logger(__name__)

FALLBACK_NOTICE = "FinBERT configured, weights not found — lexicon in use"
_STOP = object()


@dataclass(frozen=True, slots=True)
class FinBertStats:
    """Counts since start: `rounds` of queued requests served together, model `batches` run,
    `texts_scored` by the model, `cache_hits` answered from the cache."""

    rounds: int = 0
    batches: int = 0
    texts_scored: int = 0
    cache_hits: int = 0


@dataclass(slots=True)
class _Request:
    texts: Sequence[str]
    future: Future[list[SentimentScore]] = field(default_factory=Future)


class FinBertEngine:
    """A SentimentEngine over a FinBERT-style model (`model`: hub id or local folder)."""

    def __init__(
        self,
        model: str,
        config: FinBertConfig,
        fallback: SentimentEngine,
        *,
        strict: bool = False,
    ) -> None:
        self._model = model
        self._config = config
        self._fallback = fallback
        self._strict = strict
        self._queue: queue.SimpleQueue[_Request | object] = queue.SimpleQueue()
        self._cache: LRUCache[bytes, SentimentScore] | None = (
            LRUCache(maxsize=config.cache_size) if config.cache_size else None
        )
        self._classifier: Classifier | None = None
        self._failure: ModelUnavailableError | None = None
        self._rounds = self._batches = self._texts_scored = self._cache_hits = 0
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: SentimentAgentConfig, fallback: SentimentEngine) -> FinBertEngine:
        return cls(config.finbert_model, config.finbert, fallback)

    @property
    def name(self) -> str:
        return self._fallback.name if self._failure is not None else "finbert"

    @property
    def notice(self) -> str | None:
        """FALLBACK_NOTICE once the model failed to load; None while FinBERT is (or may be) used."""
        return FALLBACK_NOTICE if self._failure is not None else None

    @property
    def stats(self) -> FinBertStats:
        return FinBertStats(self._rounds, self._batches, self._texts_scored, self._cache_hits)

    def describe(self) -> str:
        """One line for `status`: the runtime in use, not loaded yet, or the fallback."""
        runtime = self._config.runtime
        if self._failure is not None:
            return f"{FALLBACK_NOTICE} ({self._failure})"
        if self._classifier is not None:
            return f"finbert ({runtime}) loaded from {self._model}"
        if not local_weights_present(self._model):
            return f"{FALLBACK_NOTICE} (no weights for {self._model} on this host yet)"
        return f"finbert ({runtime}) from {self._model}, loads on first use"

    async def start(self) -> None:
        """Start the worker; with `load_at_start`, load the model now (in the worker)."""
        self._ensure_worker()
        await self._fallback.start()
        if self._config.load_at_start:
            await asyncio.wrap_future(self.submit(()))

    async def close(self) -> None:
        """Stop the worker after the requests already queued; release the model."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(thread.join)
        self._classifier = None
        await self._fallback.close()

    def score(self, texts: Sequence[str]) -> list[SentimentScore]:
        """Scores in the order of `texts`; blocks the calling thread until the worker answers."""
        return self.submit(texts).result()

    def submit(self, texts: Sequence[str]) -> Future[list[SentimentScore]]:
        """Queue `texts` for the worker; the future holds their scores in order."""
        request = _Request(tuple(texts))
        self._ensure_worker()
        self._queue.put(request)
        return request.future

    def _ensure_worker(self) -> None:
        with self._thread_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="finbert", daemon=True)
                self._thread.start()

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            requests = [first, *self._gather()]
            stop = _STOP in requests
            self._serve([r for r in requests if isinstance(r, _Request)])
            if stop:
                return

    def _gather(self) -> list[_Request | object]:
        """Requests that arrive within `gather_ms` of the first (a stop ends the wait)."""
        more: list[_Request | object] = []
        timeout = self._config.gather_ms / 1000.0
        while True:
            try:
                item = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                return more
            more.append(item)
            if item is _STOP:
                return more

    def _serve(self, requests: list[_Request]) -> None:
        self._rounds += 1
        try:
            classifier = self._loaded()
            if classifier is None:
                for request in requests:
                    request.future.set_result(self._fallback.score(request.texts))
                return
            scores = self._score_all(classifier, [t for r in requests for t in r.texts])
        except Exception as exc:  # each caller gets the error instead of waiting forever
            for request in requests:
                if not request.future.done():
                    request.future.set_exception(exc)
            return
        start = 0
        for request in requests:
            request.future.set_result(scores[start : start + len(request.texts)])
            start += len(request.texts)

    def _loaded(self) -> Classifier | None:
        """The classifier, loading it on first call; None after a failed load (the fallback)."""
        if self._classifier is None and self._failure is None:
            try:
                self._classifier = load_classifier(self._model, self._config)
            except ModelUnavailableError as exc:
                if self._strict:
                    raise
                self._failure = exc
                log.warning("finbert_unavailable", notice=FALLBACK_NOTICE, reason=str(exc))
            else:
                log.info("finbert_loaded", model=self._model, runtime=self._config.runtime)
        return self._classifier

    def _score_all(self, classifier: Classifier, texts: list[str]) -> list[SentimentScore]:
        keys = [hashlib.blake2b(text.encode("utf-8", "replace")).digest() for text in texts]
        known: dict[bytes, SentimentScore] = {}
        for key in keys:
            hit = self._cache.get(key) if self._cache is not None else None
            if hit is not None:
                known[key] = hit
        # A text repeated within the round is scored once, as is a text already in the cache.
        pending = {key: text for key, text in zip(keys, texts, strict=True) if key not in known}
        scored = self._infer(classifier, list(pending.values()))
        for key, score in zip(pending, scored, strict=True):
            known[key] = score
            if self._cache is not None:
                self._cache[key] = score
        self._texts_scored += len(pending)
        self._cache_hits += len(texts) - len(pending)
        return [known[key] for key in keys]

    def _infer(self, classifier: Classifier, texts: list[str]) -> list[SentimentScore]:
        """Scores of `texts`: batches of similar length, each padded to its own longest."""
        encodings = classifier.tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        scores: list[SentimentScore | None] = [None] * len(texts)
        size = self._config.batch_size
        for chunk in (order[i : i + size] for i in range(0, len(order), size)):
            batch = _pad(classifier, [encodings[i] for i in chunk])
            probabilities = _softmax(classifier.logits(batch))
            for i, row in zip(chunk, probabilities, strict=True):
                scores[i] = _to_score(classifier, row)
            self._batches += 1
        return [s for s in scores if s is not None]


def _pad(classifier: Classifier, encodings: list[Any]) -> dict[str, IntArray]:
    """One batch as the model's inputs: (n, longest) int64 arrays, padded on the right."""
    width = max(len(e.ids) for e in encodings)
    fields = {
        "input_ids": ("ids", classifier.pad_id),
        "attention_mask": ("attention_mask", 0),
        "token_type_ids": ("type_ids", 0),
    }
    batch: dict[str, IntArray] = {}
    for name in classifier.input_names:
        attribute, pad = fields[name]
        array = np.full((len(encodings), width), pad, dtype=np.int64)
        for row, encoding in enumerate(encodings):
            values = getattr(encoding, attribute)
            array[row, : len(values)] = values
        batch[name] = array
    return batch


def _softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return cast(npt.NDArray[np.float64], shifted / shifted.sum(axis=1, keepdims=True))


def _to_score(classifier: Classifier, row: npt.NDArray[np.float64]) -> SentimentScore:
    by_label = {label: float(p) for label, p in zip(classifier.labels, row, strict=True)}
    return SentimentScore(
        label=classifier.labels[int(np.argmax(row))],
        positive=by_label["positive"],
        negative=by_label["negative"],
        neutral=by_label["neutral"],
    )
