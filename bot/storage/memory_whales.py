"""The whale-alert part of `MemoryStore`, with `SqliteWhaleAlerts`' semantics."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot.storage.base import DeliveryKind, OutboxItem
from bot.storage.whales import (
    HOUR_S,
    WhaleAlert,
    WhaleAlertChat,
    whale_alert_from_json,
    whale_alert_to_json,
)

if TYPE_CHECKING:
    from bot.storage.memory import _Tables

__all__ = ["MemoryWhaleAlerts", "WhaleTables"]


@dataclass(slots=True)
class WhaleTables:
    """`whale_alert_chats` and `whale_alerts` as dicts."""

    chats: dict[tuple[str, str], WhaleAlertChat] = field(default_factory=dict)
    disabled: dict[tuple[str, str], str] = field(default_factory=dict)  # chat -> reason
    payloads: dict[int, str] = field(default_factory=dict)  # alert id -> JSON
    txids: dict[str, int] = field(default_factory=dict)  # txid -> alert id
    created_s: dict[int, float] = field(default_factory=dict)  # alert id -> when queued
    next_id: int = 1


class MemoryWhaleAlerts:
    """`WhaleAlertStore` in memory; outbox rows go to the shared outbox table."""

    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    async def set_whale_alerts(self, chat: WhaleAlertChat, on: bool) -> bool:
        w = self._tables.t.whales
        key = (chat.transport, chat.chat_id)
        had, was_disabled = key in w.chats, key in w.disabled
        w.disabled.pop(key, None)
        if not on:
            w.chats.pop(key, None)
            return had
        w.chats[key] = chat
        return not had or was_disabled

    async def whale_alerts_on(self, transport: str, chat_id: str) -> bool:
        w = self._tables.t.whales
        return (transport, chat_id) in w.chats and (transport, chat_id) not in w.disabled

    async def queue_whale_alert(self, alert: WhaleAlert, max_per_chat_h: int) -> int | None:
        t, now_s = self._tables.t, self._tables.now_s()
        w = t.whales
        if alert.transfer.txid in w.txids:
            return None
        alert_id, w.next_id = w.next_id, w.next_id + 1
        w.txids[alert.transfer.txid] = alert_id
        w.payloads[alert_id] = json.dumps(whale_alert_to_json(alert))
        w.created_s[alert_id] = now_s
        recent: dict[tuple[str, str], int] = {}
        for row in t.outbox.values():
            item = row.item
            if item.whale_alert_id is not None and item.created_at.timestamp() > now_s - HOUR_S:
                key = (item.transport, item.chat_id)
                recent[key] = recent.get(key, 0) + 1
        queued = 0
        for key, chat in sorted(w.chats.items()):
            if key in w.disabled or recent.get(key, 0) >= max_per_chat_h:
                continue
            item = OutboxItem(
                t.next_outbox_id,
                None,
                chat.transport,
                chat.chat_id,
                chat.kind,
                "",
                attempts=0,
                created_at=datetime.fromtimestamp(now_s, UTC),
                whale_alert_id=alert_id,
            )
            self._tables.add_outbox_row(item, chat.user_id, now_s)
            queued += 1
        return queued

    async def load_whale_alert(self, alert_id: int) -> WhaleAlert | None:
        payload = self._tables.t.whales.payloads.get(alert_id)
        return None if payload is None else whale_alert_from_json(json.loads(payload))

    async def whale_alert_chats(self) -> dict[DeliveryKind, int]:
        w = self._tables.t.whales
        counts: dict[DeliveryKind, int] = {}
        for key, chat in w.chats.items():
            if key not in w.disabled:
                counts[chat.kind] = counts.get(chat.kind, 0) + 1
        return counts

    async def prune_whale_alerts(self, keep_s: float) -> int:
        t = self._tables.t
        w, before_s = t.whales, self._tables.now_s() - keep_s
        rows: dict[int, list[int]] = {}  # alert id -> its outbox row ids
        pending: set[int] = set()
        for row_id, row in t.outbox.items():
            alert_id = row.item.whale_alert_id
            if alert_id is not None:
                rows.setdefault(alert_id, []).append(row_id)
                if row.status == "pending":
                    pending.add(alert_id)
        old = [i for i, at_s in w.created_s.items() if at_s < before_s and i not in pending]
        for alert_id in old:
            for row_id in rows.get(alert_id, ()):
                del t.outbox[row_id]
            del w.payloads[alert_id], w.created_s[alert_id]
        w.txids = {txid: i for txid, i in w.txids.items() if i in w.payloads}
        return len(old)
