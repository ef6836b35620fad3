"""The shared fake platform itself: its limits answer 429 with the wait a platform would give,
blocked chats fail for good, and a closed transport sends nothing."""

from __future__ import annotations

import pytest

from bot.commands.base import Reply
from bot.transports.base import (
    OutMessage,
    PermanentDeliveryError,
    RateLimitedError,
    TransientDeliveryError,
)
from bot.transports.memory import MemoryTransport, PlatformLimits

MESSAGE = OutMessage(intro="hi", reply=Reply(text="BTC/USDT turned BUY"))
GROUP_MESSAGE = OutMessage(intro="hi", reply=Reply(text="to the group"), is_group=True)


async def test_per_chat_limit_answers_429_until_its_window_frees() -> None:
    transport = MemoryTransport(limits=PlatformLimits(per_chat_per_s=1))
    await transport.send("a", MESSAGE)
    with pytest.raises(RateLimitedError) as refused:
        await transport.send("a", MESSAGE)
    # The first send leaves the one-second window about one second from now (10 ms steps).
    assert 0.98 <= refused.value.retry_after_s <= 1.0
    await transport.send("b", MESSAGE)  # another chat is not held back
    assert transport.chats() == ["a", "b"]
    assert transport.rejected == 1
    assert [chat for _, chat in transport.calls] == ["a", "a", "b"]


async def test_overall_and_group_limits() -> None:
    transport = MemoryTransport(limits=PlatformLimits(overall_per_s=2, retry_after_s=5.0))
    await transport.send("a", MESSAGE)
    await transport.send("b", MESSAGE)
    with pytest.raises(RateLimitedError) as refused:
        await transport.send("c", MESSAGE)
    assert refused.value.retry_after_s == 5.0  # the configured answer
    groups = MemoryTransport(limits=PlatformLimits(per_group_per_min=1))
    await groups.send("g", GROUP_MESSAGE)
    await groups.send("g", MESSAGE)  # a message that is not to a group is not counted as one
    with pytest.raises(RateLimitedError):
        await groups.send("g", GROUP_MESSAGE)


async def test_blocked_chats_and_queued_failures() -> None:
    transport = MemoryTransport(
        blocked_chats={"gone"}, failures={"flaky": [TransientDeliveryError("HTTP 502")]}
    )
    for _ in range(2):
        with pytest.raises(PermanentDeliveryError, match="blocked"):
            await transport.send("gone", MESSAGE)
    with pytest.raises(TransientDeliveryError, match="502"):
        await transport.send("flaky", MESSAGE)
    await transport.send("flaky", MESSAGE)  # the queued failure is used up
    assert transport.chats() == ["flaky"]


async def test_lifecycle_commands_and_close() -> None:
    transport = MemoryTransport("telegram")
    with pytest.raises(RuntimeError, match="not started"):
        await transport.command(None)  # type: ignore[arg-type]

    async def echo(request: object) -> Reply:
        return Reply(text=f"got {request}")

    await transport.start(echo)
    assert transport.started.is_set()
    assert (await transport.command("ping")).text == "got ping"  # type: ignore[arg-type]
    await transport.stop()
    await transport.send("a", MESSAGE)  # stopped: still sends
    await transport.close()
    with pytest.raises(TransientDeliveryError, match="closed"):
        await transport.send("a", MESSAGE)
    assert transport.events == ["start", "stop", "send", "sent", "close", "send"]
