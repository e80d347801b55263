"""Message shortcuts: edit an image shared in Slack."""

from bot.slack.listeners.shortcuts import edit_image

__all__ = ["edit_image"]
