"""The buttons under a signal on Discord, "Refresh" and "Watch": persistent, so a press on a
message posted before a restart still works. The symbol lives in each button's `custom_id`
(`signaldesk:refresh:eth`), matched by a template that the client registers at start."""

from __future__ import annotations

import re
from typing import Any, Protocol

import discord
from discord.ui import Button, DynamicItem, View

__all__ = ["ActionsClient", "ButtonActions", "SignalButton", "signal_view"]


class ButtonActions(Protocol):
    """Where presses go (the Discord transport)."""

    async def refresh(self, interaction: discord.Interaction, base: str) -> None: ...

    async def watch(self, interaction: discord.Interaction, base: str) -> None: ...


class ActionsClient(discord.Client):
    """A client that knows where its buttons' presses go."""

    def __init__(self, actions: ButtonActions, **options: Any) -> None:
        super().__init__(**options)
        self.actions = actions


class SignalButton(
    DynamicItem[Button[View]],
    template=r"signaldesk:(?P<action>refresh|watch):(?P<base>[a-z0-9]{1,20})",
):
    """One button; its action and symbol (the base asset, lower case) are in its custom_id."""

    def __init__(self, action: str, base: str) -> None:
        label, style = (
            ("Refresh", discord.ButtonStyle.secondary)
            if action == "refresh"
            else ("Watch", discord.ButtonStyle.primary)
        )
        super().__init__(Button(label=label, style=style, custom_id=f"signaldesk:{action}:{base}"))
        self.action = action
        self.base = base

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> SignalButton:
        return cls(match["action"], match["base"])

    async def callback(self, interaction: discord.Interaction) -> None:
        client = interaction.client
        if not isinstance(client, ActionsClient):
            return
        if self.action == "refresh":
            await client.actions.refresh(interaction, self.base)
        else:
            await client.actions.watch(interaction, self.base)


def signal_view(base: str) -> View:
    """The two buttons for a signal on `base` (e.g. "eth"); never times out."""
    view = View(timeout=None)
    view.add_item(SignalButton("refresh", base))
    view.add_item(SignalButton("watch", base))
    return view
