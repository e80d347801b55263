"""Block actions: run buttons, verdicts, the advice's compare button."""

from bot.slack.listeners.actions import advice, runs, verdicts

__all__ = ["advice", "runs", "verdicts"]
