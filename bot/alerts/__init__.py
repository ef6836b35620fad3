"""Alert policy: when a signal is worth announcing, and to whom (pure functions)."""

from bot.alerts.policy import channel_alert, describe_change, plan_deliveries

__all__ = ["channel_alert", "describe_change", "plan_deliveries"]
