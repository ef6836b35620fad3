"""The LLM's request and token budgets: per minute and per day, a share kept for on-demand
`/signal`, and a limit per user on that share.

Counted here over sliding windows (60 s and 24 h) from each request's estimated tokens (prompt
characters / `chars_per_token` + the output cap: no tokenizer download). Groq's `x-ratelimit-*`
headers, when an answer carries them, replace that window's count until their reset (their
`limit-*` the configured limit): on Groq, `requests` count the day and `tokens` the minute. A
scheduled cycle may use the budget down to the on-demand reserve (`on_demand_share` of each
limit); a request inside `on_demand(user)` may use all of it, at most `per_user_per_hour` answers
per user.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from intel.config import LlmBudgetConfig

__all__ = ["BudgetExhaustedError", "LlmBudget", "on_demand", "requester"]

MINUTE_S = 60.0
DAY_S = 86_400.0
HOUR_S = 3_600.0

_requester: ContextVar[str | None] = ContextVar("llm_requester", default=None)


@contextmanager
def on_demand(user: str) -> Iterator[None]:
    """Marks the signals computed inside as asked for by `user` (on-demand `/signal`)."""
    token = _requester.set(user)
    try:
        yield
    finally:
        _requester.reset(token)


def requester() -> str | None:
    """The user an on-demand signal is computed for; None in a scheduled cycle."""
    return _requester.get()


class BudgetExhaustedError(Exception):
    """No budget left for this request; the message says which limit and until when."""


@dataclass(frozen=True, slots=True)
class _HeaderLimit:
    remaining: float
    limit: int | None  # the provider's limit of that window, when it said
    until: float  # monotonic time the provider's window resets


class LlmBudget:
    def __init__(
        self, config: LlmBudgetConfig, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._config = config
        self._now = monotonic
        self._spent: deque[tuple[float, int]] = deque()  # (time, tokens) within the last day
        self._per_user: dict[str, deque[float]] = {}
        self._headers: dict[str, _HeaderLimit] = {}

    def spend(self, tokens: int) -> None:
        """Count one request of `tokens`, or raise BudgetExhaustedError and count nothing."""
        now = self._now()
        self._forget(now)
        user = requester()
        reserve = 0.0 if user is not None else self._config.on_demand_share
        for name, left, limit in self._left(now, tokens):
            if left - (1 if name.startswith("requests") else tokens) < reserve * limit:
                kept = " (the rest is kept for /signal)" if reserve else ""
                raise BudgetExhaustedError(f"LLM {name.replace('_', ' ')} used up{kept}")
        if user is not None:
            asked = self._per_user.setdefault(user, deque())
            if len(asked) >= self._config.per_user_per_hour:
                raise BudgetExhaustedError(
                    f"LLM answers for this user used up ({self._config.per_user_per_hour} an hour)"
                )
            asked.append(now)
        self.record(tokens)

    def record(self, tokens: int) -> None:
        """Count one request of `tokens` already sent (a retry the guard made), never refusing:
        the provider counted it whether or not it answered."""
        now = self._now()
        self._spent.append((now, tokens))
        # What the provider said was left shrinks with each request sent since.
        for name, header in self._headers.items():
            used = 1 if name.startswith("requests") else tokens
            self._headers[name] = dataclasses.replace(header, remaining=header.remaining - used)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Read Groq's `x-ratelimit-remaining-*` and `x-ratelimit-reset-*` headers, if present."""
        now = self._now()
        for kind, window in (("requests", "requests_per_day"), ("tokens", "tokens_per_minute")):
            remaining = _number(headers.get(f"x-ratelimit-remaining-{kind}"))
            if remaining is None:
                continue
            reset_s = _duration_s(headers.get(f"x-ratelimit-reset-{kind}")) or MINUTE_S
            limit = _number(headers.get(f"x-ratelimit-limit-{kind}"))
            self._headers[window] = _HeaderLimit(
                remaining, int(limit) if limit else None, now + reset_s
            )

    def describe(self) -> str:
        """What is left, for `status`: requests and tokens, this minute and today."""
        now = self._now()
        self._forget(now)
        left = {name: (value, limit) for name, value, limit in self._left(now, 0)}
        parts = [f"{left[name][0]:,.0f}/{left[name][1]:,} {label}" for name, label in _LABELS]
        share = f"{self._config.on_demand_share:.0%}"
        return f"{'; '.join(parts)} ({share} kept for /signal)"

    def _left(self, now: float, tokens: int) -> list[tuple[str, float, int]]:
        cfg = self._config
        minute = [t for at, t in self._spent if now - at < MINUTE_S]
        counted = {
            "requests_per_minute": (cfg.requests_per_minute - len(minute), cfg.requests_per_minute),
            "requests_per_day": (cfg.requests_per_day - len(self._spent), cfg.requests_per_day),
            "tokens_per_minute": (cfg.tokens_per_minute - sum(minute), cfg.tokens_per_minute),
            "tokens_per_day": (
                cfg.tokens_per_day - sum(t for _, t in self._spent),
                cfg.tokens_per_day,
            ),
        }
        result = []
        for name, (counted_left, limit) in counted.items():
            left = float(counted_left)
            header = self._headers.get(name)
            if header is not None and header.until > now:
                # The provider's figures win while fresh: it counts every client of the key.
                left, limit = header.remaining, header.limit or limit
            result.append((name, left, limit))
        return result

    def _forget(self, now: float) -> None:
        while self._spent and now - self._spent[0][0] >= DAY_S:
            self._spent.popleft()
        for user in list(self._per_user):
            asked = self._per_user[user]
            while asked and now - asked[0] >= HOUR_S:
                asked.popleft()
            if not asked:
                del self._per_user[user]


_LABELS = (
    ("requests_per_minute", "requests this minute"),
    ("requests_per_day", "requests today"),
    ("tokens_per_minute", "tokens this minute"),
    ("tokens_per_day", "tokens today"),
)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _duration_s(text: str | None) -> float | None:
    """Groq's reset times: "7.66s", "2m59.56s", "1h2m3s", "120ms"."""
    if not text:
        return None
    parts = _DURATION_PART.findall(text)
    return sum(float(n) * _UNIT_S[unit] for n, unit in parts) if parts else None
