"""The Groq chat client: one JSON-mode completion through the `groq` SDK, behind the resilience
layer every live source uses (retries honouring `Retry-After`, a deadline, a circuit breaker).

The SDK's own retries are off (`max_retries=0`) so one mechanism decides. Errors become the
source error tree: 429, 5xx, timeouts and connection errors are `SourceError` (retried, 429 with
its `retry-after`); a refused key or a bad request is `PermanentSourceError`; Groq's own
JSON-mode failure (400 `json_validate_failed`) is an answer without content, to be repaired.
An empty `base_url` lets the SDK read `GROQ_BASE_URL` (CONTRACTS: Environment).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import groq
from groq.types.chat import ChatCompletionMessageParam

from intel.config import LlmConfig, SourcePolicyConfig
from intel.errors import PermanentSourceError, SourceError
from intel.sources.resilience import SourceGuard, Timing

__all__ = ["ChatAnswer", "GroqChat"]


@dataclass(frozen=True, slots=True)
class ChatAnswer:
    content: str | None
    headers: Mapping[str, str]
    prompt_tokens: int | None  # as the server counted them, when it says
    # Why there is no content: Groq refused the model's output in JSON mode (not a fault of
    # the service, so neither retried nor counted by the breaker; the coordinator repairs).
    problem: str | None = None


def _nothing(attempt: int, headers: Mapping[str, str]) -> None:
    """No one listening for the requests sent."""


class GroqChat:
    """`complete(system, user)` -> the model's JSON text; `start` opens the HTTP client."""

    def __init__(self, config: LlmConfig, api_key: str, timing: Timing | None = None) -> None:
        self.model = config.model
        self._config = config
        self._api_key = api_key
        # The whole call, tries and waits, ends by `call_timeout_s`; the breaker is the sources'.
        policy = SourcePolicyConfig(
            rate_per_min=None,
            call_timeout_s=config.call_timeout_s,
            max_attempts=config.max_attempts,
            backoff_initial_s=0.25,
            backoff_max_s=2.0,
            retry_deadline_s=config.call_timeout_s,
            failures_to_open=config.failures_to_open,
            open_cooldown_s=config.open_cooldown_s,
        )
        self.guard = SourceGuard("llm", policy, timing)
        effort = config.reasoning_effort
        self._reasoning: dict[str, Any] = {"reasoning_effort": effort} if effort else {}
        self._client: groq.AsyncGroq | None = None

    async def start(self) -> None:
        self._client = groq.AsyncGroq(
            api_key=self._api_key,
            base_url=self._config.base_url or None,
            max_retries=0,
            timeout=self._config.call_timeout_s,
        )

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def complete(
        self, system: str, user: str, *, sent: Callable[[int, Mapping[str, str]], None] = _nothing
    ) -> ChatAnswer:
        """One answer under the guard; SourceError (or a subclass) when there is none. `sent`
        hears of every request that reached the provider (its attempt number, from 1, and the
        response's headers, an error's included), so a budget counts the guard's retries too."""
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
        ]
        attempts = itertools.count(1)
        return await self.guard.call(lambda: self._once(messages, next(attempts), sent))

    async def _once(
        self,
        messages: list[ChatCompletionMessageParam],
        attempt: int,
        sent: Callable[[int, Mapping[str, str]], None],
    ) -> ChatAnswer:
        if self._client is None:
            raise SourceError("the LLM client is not started")
        try:
            raw = await self._client.chat.completions.with_raw_response.create(
                model=self.model,
                messages=messages,
                response_format={"type": "json_object"},
                temperature=self._config.temperature,
                max_completion_tokens=self._config.max_output_tokens,
                **self._reasoning,
            )
        except groq.APIStatusError as exc:
            sent(attempt, dict(exc.response.headers))
            if exc.status_code == 400 and "json_validate_failed" in str(exc.body):
                problem = "the model's output was not valid JSON (json_validate_failed)"
                return ChatAnswer(None, dict(exc.response.headers), None, problem)
            raise _status_error(exc) from exc
        except (groq.APITimeoutError, groq.APIConnectionError) as exc:
            raise SourceError(f"llm: {type(exc).__name__}") from exc
        sent(attempt, dict(raw.headers))
        completion = await raw.parse()
        usage = completion.usage
        return ChatAnswer(
            content=completion.choices[0].message.content if completion.choices else None,
            headers=dict(raw.headers),
            prompt_tokens=usage.prompt_tokens if usage is not None else None,
        )


def _status_error(exc: groq.APIStatusError) -> Exception:
    status = exc.status_code
    if status == 429:
        return SourceError("llm: HTTP 429 rate limited", retry_after_s=_retry_after_s(exc))
    if status >= 500:
        return SourceError(f"llm: HTTP {status}")
    return PermanentSourceError(f"llm: HTTP {status} {type(exc).__name__}")


def _retry_after_s(exc: groq.APIStatusError) -> float | None:
    text = exc.response.headers.get("retry-after")
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
