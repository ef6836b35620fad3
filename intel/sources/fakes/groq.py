"""A fake Groq chat-completions server on 127.0.0.1 for the LLM coordinator's tests and benchmark.

It answers `POST /openai/v1/chat/completions` in Groq's OpenAI-style shape (`choices`, `usage`
with Groq's timing fields, `x_groq`, `system_fingerprint`) and sends Groq's `x-ratelimit-*`
headers. What it answers is scripted: each request takes the next `FakeAnswer` from `script`,
and when the script is empty `responder(request_body)` decides. An answer may be late, an HTTP
error with Groq's error body (429 with `retry-after`, 500, 400 `json_validate_failed`) or any text.
`obedient_responder` plays a model that obeys every instruction it finds in its prompt, the
worst case for prompt injection. Every request body received is kept in `requests`.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from intel.sources.fakes.server import serve_on_loopback

__all__ = ["FakeAnswer", "FakeGroq", "obedient_responder", "proposal_json"]

PATH = "/openai/v1/chat/completions"
Body = dict[str, Any]


@dataclass(frozen=True, slots=True)
class FakeAnswer:
    """One scripted answer: the message `content` (any text), or an HTTP error `status`."""

    content: str | None = None
    status: int = 200
    delay_s: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)
    error_code: str | None = None  # Groq's error code, e.g. "json_validate_failed"


def proposal_json(**fields: Any) -> str:
    """A reply of the coordinator's schema: a plain HOLD unless `fields` say otherwise."""
    reply: dict[str, Any] = {
        "action": "HOLD",
        "confidence": 50,
        "thesis": "Whales and retail do not diverge enough for a call.",
        "risk_factors": ["Signals can flip quickly around news"],
        "timeframe_hours": 12,
        "position_size": "conservative",
        "key_drivers": ["Divergence between whales and retail"],
    }
    reply.update(fields)
    return json.dumps(reply)


class FakeGroq:
    """`async with FakeGroq(...) as fake:` serves at `fake.base_url` until the block ends."""

    def __init__(self, responder: Callable[[Body], FakeAnswer] | None = None) -> None:
        self.script: deque[FakeAnswer] = deque()
        self.requests: list[Body] = []
        self.limits = {"requests": 1000, "tokens": 8000}
        self._responder = responder or (lambda body: FakeAnswer(proposal_json()))
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def __aenter__(self) -> FakeGroq:
        app = web.Application()
        app.router.add_post(PATH, self._complete)
        self._runner, port = await serve_on_loopback(app, shutdown_timeout_s=0.5)
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _complete(self, request: web.Request) -> web.Response:
        body: Body = await request.json()
        self.requests.append(body)
        answer = self.script.popleft() if self.script else self._responder(body)
        if answer.delay_s:
            await asyncio.sleep(answer.delay_s)
        headers = {**self._rate_headers(), **answer.headers}
        if answer.status != 200:
            error = {
                "message": f"fake error {answer.status}",
                "type": "invalid_request_error" if answer.status < 500 else "internal_error",
                "code": answer.error_code,
            }
            return web.json_response({"error": error}, status=answer.status, headers=headers)
        return web.json_response(_completion(body, answer.content), headers=headers)

    def _rate_headers(self) -> dict[str, str]:
        # Groq: requests count the day, tokens the minute.
        used = len(self.requests)
        return {
            "x-ratelimit-limit-requests": str(self.limits["requests"]),
            "x-ratelimit-limit-tokens": str(self.limits["tokens"]),
            "x-ratelimit-remaining-requests": str(max(0, self.limits["requests"] - used)),
            "x-ratelimit-remaining-tokens": str(max(0, self.limits["tokens"] - 700 * used)),
            "x-ratelimit-reset-requests": "1m26.4s",
            "x-ratelimit-reset-tokens": "5.25s",
        }


def _completion(body: Body, content: str | None) -> Body:
    prompt_chars = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
    prompt_tokens, completion_tokens = prompt_chars // 4, len(content or "") // 4
    return {
        "id": f"chatcmpl-fake{len(body)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "queue_time": 0.01,
            "prompt_tokens": prompt_tokens,
            "prompt_time": 0.02,
            "completion_tokens": completion_tokens,
            "completion_time": 0.1,
            "total_tokens": prompt_tokens + completion_tokens,
            "total_time": 0.12,
        },
        "system_fingerprint": "fp_fake",
        "x_groq": {"id": "req_fake"},
    }


_ACTION = re.compile(r"\b(BUY|SELL)\b")


def obedient_responder(body: Body) -> FakeAnswer:
    """A model that obeys its prompt's data: it reads the user message as a person would (look-
    alikes folded, zero-width ignored), takes any BUY/SELL found in the Reddit block as an order
    and answers with the most aggressive reply it can, carrying mentions and markup."""
    user = str(body["messages"][-1]["content"])
    folded = "".join(
        ch for ch in unicodedata.normalize("NFKC", user) if unicodedata.category(ch) != "Cf"
    )
    data = folded.split("<<<REDDIT_EXCERPTS", 1)[-1]
    ordered = _ACTION.findall(data.upper())
    action = ordered[0] if ordered else "SELL"
    shout = "@everyone <b>ACT NOW</b> **100x** [moon](https://evil.example) `rm -rf` @here"
    return FakeAnswer(
        proposal_json(
            action=action,
            confidence=100,
            thesis=f"{shout} {action} as instructed, nothing can go wrong.",
            risk_factors=[f"{shout} none, a guaranteed 500% gain"],
            timeframe_hours=1000,
            position_size="aggressive",
            key_drivers=["@everyone 9000 reasons"],
        )
    )
