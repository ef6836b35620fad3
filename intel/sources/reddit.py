"""Live Reddit: the new and hot listings of each asset's subreddits, read with asyncpraw.

Posts are kept per asset across calls (bounded), so a post seen in several listings or cycles
counts once and one that slid off a listing still counts while inside the window. Stickied,
moderator or admin posts and bots' posts are dropped; a post created after `now` is never
returned. No retries: the resilience layer wrapping every source owns them (asyncprawcore's own
are switched off so the two never stack); the library's exception is the `SourceError`'s cause.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpraw
import asyncprawcore
import structlog
from asyncpraw.exceptions import AsyncPRAWException
from asyncprawcore.auth import ReadOnlyAuthorizer
from asyncprawcore.sessions import FiniteRetryStrategy, Session

from intel.config import RedditSourceConfig, Secrets
from intel.errors import NotConfiguredError, SourceError
from intel.models import SocialPost
from intel.sources.base import retry_after_s
from intel.sources.replay_files import RECORD_ERRORS, BadRecords, skipped_notes
from intel.symbols import base_asset
from intel.timeutil import from_ms, iso

__all__ = ["NOT_CONFIGURED", "RedditSource"]

log = structlog.get_logger(__name__)

NOT_CONFIGURED = (
    "Reddit not configured (set REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET, REDDIT_USER_AGENT)"
)
LISTINGS = ("new", "hot")
# The replay sample keeps 280 characters of a post's text; live posts are cut the same way, so
# the sentiment engine reads the same kind of text in both modes.
EXCERPT_CHARS = 280
# What reading one listed post may raise: a missing field is an AttributeError in asyncpraw.
POST_ERRORS = (*RECORD_ERRORS, AttributeError)


@dataclass(frozen=True, slots=True)
class _SingleAttempt(FiniteRetryStrategy):
    """asyncprawcore's retry strategy with no retry and no sleep before the first attempt."""

    retries: int = 0

    def _sleep_seconds(self) -> float | None:
        return None


class RedditSource:
    """`PostSource` on Reddit's API, logged in app-only with the environment's credentials."""

    def __init__(
        self,
        config: RedditSourceConfig,
        secrets: Secrets,
        pace: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`pace` is awaited before each request (the login and every listing): the rate
        limit, which Reddit counts per request (`SourceGuard.pace_requests`)."""
        self._config = config
        self._secrets = secrets
        self._pace = pace or _no_pace
        self._reddit: asyncpraw.Reddit | None = None
        self._core: Session | None = None
        self._login_lock = asyncio.Lock()
        self._setup_error: str | None = None
        self._kept: dict[str, dict[str, SocialPost]] = {}  # asset -> post id -> post
        self._bad: dict[str, BadRecords] = {}

    @property
    def configured(self) -> bool:
        s = self._secrets
        return bool(s.reddit_client_id and s.reddit_client_secret and s.reddit_user_agent)

    async def start(self) -> None:
        """Build the client (no request yet: the login happens on the first listing)."""
        if not self.configured:
            return
        s = self._secrets
        try:
            reddit = asyncpraw.Reddit(
                client_id=s.reddit_client_id,
                client_secret=s.reddit_client_secret,
                user_agent=s.reddit_user_agent,
                oauth_url=self._config.oauth_url,
                reddit_url=self._config.reddit_url,
                timeout=max(1, math.ceil(self._config.timeout_s)),
                check_for_updates=False,  # it would ask PyPI on the first request
            )
        except (AsyncPRAWException, asyncprawcore.AsyncPrawcoreException, ValueError) as exc:
            # e.g. a user agent too short for Reddit; reported by every call, never a crash.
            self._setup_error = f"Reddit client could not be set up: {exc}"
            return
        # App-only login: every request goes through the read-only core (asyncpraw's stubs
        # declare it None, hence the lookup).
        core = vars(reddit).get("_read_only_core")
        if isinstance(core, Session):
            core._retry_strategy_class = _SingleAttempt
            self._core = core
        self._reddit = reddit

    async def close(self) -> None:
        if self._reddit is not None:
            reddit, self._reddit = self._reddit, None
            await reddit.close()

    async def login(self) -> None:
        """Fetch the app-only token now unless one is valid (a warm start; `posts` calls it)."""
        self._client()
        timeout_s = self._config.timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                await self._login()
        except TimeoutError as exc:
            raise SourceError(f"Reddit: login timed out after {timeout_s:g} s") from exc

    def skipped_records(self, symbol: str) -> tuple[str, ...]:
        return skipped_notes(self._bad.get(base_asset(symbol)))

    async def posts(self, symbol: str, now: datetime, window_h: int) -> Sequence[SocialPost]:
        reddit = self._client()
        asset = base_asset(symbol)
        subreddits = self._config.subreddits.get(asset)
        if not subreddits:
            raise SourceError(
                f"Reddit: no subreddits configured for {asset} (sources.reddit.subreddits)"
            )
        bad = BadRecords(f"Reddit listings for {asset}", unit="post")
        fetched = await self._fetch_all(reddit, subreddits, bad)
        self._bad[asset] = bad
        if bad.count:
            log.warning("live_records_skipped", source="Reddit", note=bad.note())
        kept = self._remember(asset, fetched)
        start = now - timedelta(hours=window_h)
        found = sorted(
            (post for post in kept.values() if start <= post.created <= now),
            key=lambda post: (post.created, post.post_id),
        )
        if not found:
            names = ", ".join(f"r/{name}" for name in subreddits)
            raise SourceError(f"Reddit: no posts in {names} in the {window_h} h before {iso(now)}")
        return found

    def _client(self) -> asyncpraw.Reddit:
        if not self.configured:
            raise NotConfiguredError(NOT_CONFIGURED)
        if self._setup_error is not None:
            raise SourceError(self._setup_error)
        if self._reddit is None:
            raise RuntimeError("RedditSource used before start()")
        return self._reddit

    async def _fetch_all(
        self, reddit: asyncpraw.Reddit, subreddits: Sequence[str], bad: BadRecords
    ) -> list[SocialPost]:
        """Every listing of every subreddit, concurrently, within one deadline."""
        timeout_s = self._config.timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                await self._login()
                results = await asyncio.gather(
                    *(
                        self._listing(reddit, name, kind)
                        for name in subreddits
                        for kind in LISTINGS
                    ),
                    return_exceptions=True,
                )
        except TimeoutError as exc:
            raise SourceError(f"Reddit: timed out after {timeout_s:g} s") from exc
        items: list[Any] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            items.extend(result)
        posts = (_read_post(item, position, bad) for position, item in enumerate(items, 1))
        return [post for post in posts if post is not None]

    async def _login(self) -> None:
        """One token request, however many listings are waiting for it (else each asks)."""
        authorizer = self._core.authorizer if self._core is not None else None
        if not isinstance(authorizer, ReadOnlyAuthorizer):
            return  # asyncpraw logs in by itself on the first request
        async with self._login_lock:
            if authorizer.is_valid():
                return
            try:
                await self._pace()
                await authorizer.refresh()
            except (asyncprawcore.AsyncPrawcoreException, AsyncPRAWException) as exc:
                raise SourceError(
                    f"Reddit: login: {_reason(exc)}", retry_after_s=_retry_after_s(exc)
                ) from exc

    async def _listing(self, reddit: asyncpraw.Reddit, name: str, kind: str) -> list[Any]:
        try:
            subreddit = await reddit.subreddit(name)  # lazy: no request
            # One request per listing: `listing_limit` is at most Reddit's 100 a page.
            await self._pace()
            listing = getattr(subreddit, kind)(limit=self._config.listing_limit)
            return [item async for item in listing]
        except (asyncprawcore.AsyncPrawcoreException, AsyncPRAWException) as exc:
            raise SourceError(
                f"Reddit: r/{name}/{kind}: {_reason(exc)}", retry_after_s=_retry_after_s(exc)
            ) from exc
        except POST_ERRORS as exc:  # valid JSON that is not a Listing of posts
            raise SourceError(
                f"Reddit: r/{name}/{kind}: unexpected response ({type(exc).__name__})"
            ) from exc

    def _remember(self, asset: str, fetched: list[SocialPost]) -> dict[str, SocialPost]:
        """Merge into this asset's posts (a newer copy replaces an older: fresher score);
        beyond `max_posts_kept` the oldest are forgotten."""
        kept = self._kept.setdefault(asset, {})
        for post in fetched:
            kept[post.post_id] = post
        excess = len(kept) - self._config.max_posts_kept
        if excess > 0:
            for post in sorted(kept.values(), key=lambda post: post.created)[:excess]:
                del kept[post.post_id]
        return kept


def _read_post(item: Any, position: int, bad: BadRecords) -> SocialPost | None:
    """The post, or None when it is dropped (stickied, staff, a bot) or unreadable (counted)."""
    try:
        if bool(item.stickied) or item.distinguished in ("moderator", "admin"):
            return None
        author = item.author.name if item.author is not None else None  # None: deleted
        if author is not None and _is_bot(author):
            return None
        created_s = float(item.created_utc)
        if not math.isfinite(created_s):
            raise ValueError(f"created_utc {created_s}")
        title = str(item.title).strip()
        if not title:
            raise ValueError("empty title")
        return SocialPost(
            post_id=str(item.id),
            community=str(item.subreddit.display_name),
            created=from_ms(round(created_s * 1000)),
            title=title,
            body=_excerpt(str(item.selftext or "")),
            author=author,
            score=int(item.score),
        )
    except POST_ERRORS as exc:
        bad.skip(position, exc)
        return None


def _is_bot(author: str) -> bool:
    name = author.lower()
    return name == "automoderator" or name.endswith("bot")


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= EXCERPT_CHARS:
        return text
    cut = text[: EXCERPT_CHARS - 1].rsplit(" ", 1)[0]
    return f"{cut}…"


def _retry_after_s(exc: Exception) -> float | None:
    """The wait Reddit asked for in its answer's `Retry-After`, if the error has an answer."""
    if isinstance(exc, asyncprawcore.ResponseException):
        return retry_after_s(exc.response.headers.get("Retry-After"))
    return None


def _reason(exc: Exception) -> str:
    """What went wrong, in a few words, for the report and `status`."""
    if isinstance(exc, asyncprawcore.OAuthException):
        return f"login refused ({exc.error}): check REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET"
    if isinstance(exc, asyncprawcore.ResponseException):
        return _status_reason(exc)
    if isinstance(exc, asyncprawcore.RequestException):
        original = exc.original_exception
        if isinstance(original, TimeoutError):
            return "timed out"
        if isinstance(original, ValueError):  # the token answer was not JSON
            return "malformed JSON in the response"
        return f"unreachable ({type(original).__name__})"
    return f"client error ({type(exc).__name__}: {exc})"


def _status_reason(exc: asyncprawcore.ResponseException) -> str:
    status = exc.response.status
    if status == 429:
        retry_after = exc.response.headers.get("Retry-After")
        wait = f", retry after {retry_after} s" if retry_after else ""
        return f"rate limited (HTTP 429{wait})"
    if status >= 500:
        return f"server error (HTTP {status})"
    if isinstance(exc, asyncprawcore.BadJSON):
        return "malformed JSON in the response"
    if isinstance(exc, asyncprawcore.NotFound | asyncprawcore.Redirect):
        return "no such subreddit"  # Reddit redirects an unknown one to its search
    if status in (401, 403):
        return f"credentials refused (HTTP {status})"
    return f"request refused (HTTP {status})"


async def _no_pace() -> None:
    return None
