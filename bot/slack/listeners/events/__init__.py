"""Events API: the App Home tab."""

from bot.slack.listeners.events import app_home

__all__ = ["app_home"]
