"""Alert policy: when a signal is worth announcing, and to whom (pure functions)."""

from bot.alerts.calls import advance_call, steady_changed
from bot.alerts.policy import channel_change, plan_deliveries

__all__ = ["advance_call", "channel_change", "plan_deliveries", "steady_changed"]
