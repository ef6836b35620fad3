"""Fake Alternative.me and Reddit APIs on 127.0.0.1 (ephemeral port), for tests and benchmarks.

Both speak the real wire formats, so the real clients (httpx, asyncpraw) run against them
unchanged, and both take injectable faults: latency, an HTTP status (5xx, 429 with Retry-After,
451), a malformed body, a wait past the client's timeout. Served data:
- Alternative.me `/fng/`: Fear & Greed readings rendered as the API renders them (newest first,
  numbers as strings, `time_until_update` on the newest only, `metadata.error`), by default the
  recorded values shipped in `intel/data/replay/fear_greed.csv` (data by Alternative.me); or a
  recorded response body served byte for byte.
- Reddit: an app-only token (`POST /api/v1/access_token`) and `GET /r/<sub>/new|hot` Listings of
  `t3` things. No crypto-subreddit Listing was ever recorded, so by default the shipped replay
  posts are re-serialised into the Listing format (their authors were removed, so they are
  `[deleted]`, and their scores were not kept, so 1); a recorded Listing body can be served as is.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import json
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from aiohttp import web

from intel.models import FearGreedReading
from intel.sources.fakes.server import serve_on_loopback
from intel.sources.replay_files import DEFAULT_REPLAY_DIR, open_text
from intel.timeutil import from_ms, to_ms

__all__ = [
    "FakeAlternativeMe",
    "FakePost",
    "FakeReddit",
    "Fault",
    "replay_fear_greed",
    "replay_posts",
]

MALFORMED_BODY = b'{"data": [{"value": "5'  # cut mid-value, as a dropped connection leaves it
FAKE_ACCESS_TOKEN = "fake-access-token"


@dataclass
class Fault:
    """What the next requests to a route get instead of a normal answer."""

    status: int | None = None  # answer with this HTTP status, e.g. 503, 429, 451
    retry_after_s: float | None = None  # with it, a Retry-After header
    latency_s: float = 0.0  # wait first; longer than the client's timeout is a timeout
    malformed: bool = False  # a 200 whose body is not JSON
    times: int | None = None  # how many requests it hits; None: until cleared


@dataclass
class _RateLimit:
    requests: int
    per_s: float
    seen: deque[float] = field(default_factory=deque)


class _FakeServer:
    """An aiohttp app on 127.0.0.1 with per-route faults, a request log and an optional limit."""

    def __init__(self, *, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s  # every request, before anything else
        self.requests: list[str] = []  # route names, in arrival order
        self.violations = 0  # requests over the rate limit (answered 429)
        self._faults: dict[str, Fault] = {}
        self._limit: _RateLimit | None = None
        self._runner: web.AppRunner | None = None
        self._url = ""

    @property
    def url(self) -> str:
        if not self._url:
            raise RuntimeError("the fake server is not started")
        return self._url

    def inject(self, route: str, fault: Fault) -> None:
        self._faults[route] = fault

    def clear(self) -> None:
        self._faults.clear()

    def rate_limit(self, requests: int, per_s: float) -> None:
        """Answer 429 (with Retry-After) to requests beyond `requests` in any `per_s` window."""
        self._limit = _RateLimit(requests, per_s)

    def count(self, route: str) -> int:
        return self.requests.count(route)

    def open_connections(self) -> int:
        """Client connections the server holds open now (keep-alive included)."""
        return len(self._runner.server.connections) if self._runner and self._runner.server else 0

    def _routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        self._routes(app)
        # A short shutdown: handlers still waiting on an injected latency are cancelled.
        runner, port = await serve_on_loopback(app, shutdown_timeout_s=0.1)
        self._runner, self._url = runner, f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        route = request.match_info.route.name or request.path
        self.requests.append(route)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if (over := self._over_limit()) is not None:
            return over
        fault = self._take_fault(route)
        if fault is None:
            response: web.StreamResponse = await handler(request)
            return response
        if fault.latency_s:
            await asyncio.sleep(fault.latency_s)
        if fault.status is not None:
            headers = {}
            if fault.retry_after_s is not None:
                headers["Retry-After"] = f"{fault.retry_after_s:g}"
            body = {"message": f"fake fault {fault.status}", "error": fault.status}
            return web.json_response(body, status=fault.status, headers=headers)
        if fault.malformed:
            return web.Response(body=MALFORMED_BODY, content_type="application/json")
        response = await handler(request)
        return response

    def _take_fault(self, route: str) -> Fault | None:
        fault = self._faults.get(route)
        if fault is not None and fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                del self._faults[route]
        return fault

    def _over_limit(self) -> web.Response | None:
        limit = self._limit
        if limit is None:
            return None
        now = time.monotonic()
        while limit.seen and now - limit.seen[0] >= limit.per_s:
            limit.seen.popleft()
        if len(limit.seen) < limit.requests:
            limit.seen.append(now)
            return None
        self.violations += 1
        wait_s = limit.per_s - (now - limit.seen[0])
        return web.json_response(
            {"message": "Too Many Requests", "error": 429},
            status=429,
            headers={"Retry-After": f"{max(wait_s, 0.001):.3f}"},
        )


class FakeAlternativeMe(_FakeServer):
    """`GET /fng/?limit=N` (route name "fng"); `limit=0` means every reading."""

    def __init__(
        self,
        readings: Sequence[FearGreedReading] | None = None,
        *,
        body: bytes | None = None,
        latency_s: float = 0.0,
    ) -> None:
        super().__init__(latency_s=latency_s)
        self.readings = list(readings) if readings is not None else replay_fear_greed()
        self.body = body  # a recorded response, served as is whatever the limit

    def _routes(self, app: web.Application) -> None:
        app.router.add_get("/fng/", self._fng, name="fng")

    async def _fng(self, request: web.Request) -> web.Response:
        if self.body is not None:
            return web.Response(body=self.body, content_type="application/json")
        limit = int(request.query.get("limit", "1"))
        newest_first = sorted(self.readings, key=lambda r: r.timestamp, reverse=True)
        chosen = newest_first if limit == 0 else newest_first[:limit]
        return web.Response(text=render_fng(chosen), content_type="application/json")


def render_fng(newest_first: Sequence[FearGreedReading]) -> str:
    """An Alternative.me `/fng/` body as the API writes it (tab-indented, numbers as text)."""
    data: list[dict[str, str]] = []
    for index, reading in enumerate(newest_first):
        timestamp_s = to_ms(reading.timestamp) // 1000
        entry = {
            "value": str(reading.value),
            "value_classification": reading.classification,
            "timestamp": str(timestamp_s),
        }
        if index == 0:  # seconds until the next daily value, on the newest entry only
            entry["time_until_update"] = str(max(0, timestamp_s + 86400 - int(time.time())))
        data.append(entry)
    body = {"name": "Fear and Greed Index", "data": data, "metadata": {"error": None}}
    return json.dumps(body, indent="\t")


@dataclass(frozen=True, slots=True)
class FakePost:
    """One Reddit submission as the fake lists it."""

    post_id: str
    subreddit: str
    created_utc_s: float
    title: str
    selftext: str = ""
    author: str | None = None  # None: "[deleted]", as Reddit shows a removed account
    score: int = 1
    stickied: bool = False
    distinguished: str | None = None  # "moderator", "admin" or None

    def thing(self) -> dict[str, Any]:
        """The `t3` thing of a Listing (the fields asyncpraw and our source read, and more)."""
        return {
            "kind": "t3",
            "data": {
                "id": self.post_id,
                "name": f"t3_{self.post_id}",
                "subreddit": self.subreddit,
                "subreddit_name_prefixed": f"r/{self.subreddit}",
                "title": self.title,
                "selftext": self.selftext,
                "is_self": True,
                "author": self.author if self.author is not None else "[deleted]",
                "score": self.score,
                "ups": max(self.score, 0),
                "downs": 0,
                "num_comments": 0,
                "stickied": self.stickied,
                "distinguished": self.distinguished,
                "over_18": False,
                "created": self.created_utc_s,
                "created_utc": self.created_utc_s,
                "permalink": f"/r/{self.subreddit}/comments/{self.post_id}/",
                "url": f"https://www.reddit.com/r/{self.subreddit}/comments/{self.post_id}/",
            },
        }


class FakeReddit(_FakeServer):
    """Reddit's token endpoint (route "token") and listings (routes "new" and "hot").

    The token is given only for `client_id`/`client_secret`; listings only with that token.
    `new` lists a subreddit's posts newest first, `hot` by score; `limit` and `after` page.
    """

    def __init__(
        self,
        posts: Iterable[FakePost] = (),
        *,
        client_id: str = "fake-client-id",
        client_secret: str = "fake-client-secret",
        listings: Mapping[tuple[str, str], Any] | None = None,
        until_s: float | None = None,
        latency_s: float = 0.0,
    ) -> None:
        super().__init__(latency_s=latency_s)
        self.posts = list(posts)
        self.until_s = until_s  # Reddit as it was then: later posts are not listed yet
        self.client_id, self.client_secret = client_id, client_secret
        # (subreddit lower-case, "new" | "hot") -> a recorded Listing body, served as is
        self.listings = {
            (sub.lower(), kind): body for (sub, kind), body in (listings or {}).items()
        }

    def _routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/access_token", self._token, name="token")
        app.router.add_get("/r/{subreddit}/new", self._new, name="new")
        app.router.add_get("/r/{subreddit}/hot", self._hot, name="hot")

    async def _token(self, request: web.Request) -> web.Response:
        expected = f"{self.client_id}:{self.client_secret}".encode()
        given = request.headers.get("Authorization", "")
        if given != "Basic " + base64.b64encode(expected).decode():
            return web.json_response({"message": "Unauthorized", "error": 401}, status=401)
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"})
        token = {"access_token": FAKE_ACCESS_TOKEN, "token_type": "bearer", "expires_in": 86400}
        return web.json_response({**token, "scope": "*"})

    async def _new(self, request: web.Request) -> web.Response:
        return self._listing(request, "new")

    async def _hot(self, request: web.Request) -> web.Response:
        return self._listing(request, "hot")

    def _listing(self, request: web.Request, kind: str) -> web.Response:
        if request.headers.get("Authorization") != f"bearer {FAKE_ACCESS_TOKEN}":
            return web.json_response({"message": "Unauthorized", "error": 401}, status=401)
        subreddit = request.match_info["subreddit"].lower()
        recorded = self.listings.get((subreddit, kind))
        if recorded is not None:
            return web.json_response(recorded)
        posts = [
            post
            for post in self.posts
            if post.subreddit.lower() == subreddit
            and (self.until_s is None or post.created_utc_s <= self.until_s)
        ]
        if kind == "new":
            posts.sort(key=lambda post: post.created_utc_s, reverse=True)
        else:
            posts.sort(key=lambda post: (post.score, post.created_utc_s), reverse=True)
        after = request.query.get("after")
        if after:
            names = [f"t3_{post.post_id}" for post in posts]
            posts = posts[names.index(after) + 1 :] if after in names else []
        limit = int(request.query.get("limit", "25"))
        page = posts[:limit]
        last = f"t3_{page[-1].post_id}" if page and len(posts) > limit else None
        children = [post.thing() for post in page]
        listing = {"after": last, "before": None, "dist": len(page), "children": children}
        return web.json_response({"kind": "Listing", "data": {"modhash": "", **listing}})


def replay_fear_greed(replay_dir: Path = DEFAULT_REPLAY_DIR) -> list[FearGreedReading]:
    """The recorded daily readings shipped with the package (data by Alternative.me)."""
    with open_text(replay_dir / "fear_greed.csv") as handle:
        return [
            FearGreedReading(
                timestamp=from_ms(int(row["timestamp"]) * 1000),
                value=int(float(row["value"])),
                classification=row["classification"],
            )
            for row in csv.DictReader(handle)
        ]


def replay_posts(replay_dir: Path = DEFAULT_REPLAY_DIR) -> list[FakePost]:
    """The shipped replay posts as fake submissions (authors removed, scores not recorded)."""
    with open_text(replay_dir / "reddit" / "posts.csv.gz") as handle:
        return [
            FakePost(
                post_id=row["post_id"],
                subreddit=row["subreddit"],
                created_utc_s=float(row["created_utc_s"]),
                title=row["title"],
                selftext=row["excerpt"],
            )
            for row in csv.DictReader(handle)
        ]
