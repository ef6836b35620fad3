"""Delivery through the outbox: a sender that drains it within each transport's rate limits."""

from bot.delivery.limits import ChatPacer, TransportThrottle, window_limiter
from bot.delivery.sender import MessageBuilder, OutboxSender, SenderStats

__all__ = [
    "ChatPacer",
    "MessageBuilder",
    "OutboxSender",
    "SenderStats",
    "TransportThrottle",
    "window_limiter",
]
