"""Slash commands: `/imagegen` and `/imageroute`."""

from bot.slack.listeners.commands import imagegen, imageroute

__all__ = ["imagegen", "imageroute"]
