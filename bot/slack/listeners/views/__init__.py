"""Modal submissions: the compare modal and the edit modal."""

from bot.slack.listeners.views import compare, edit_image

__all__ = ["compare", "edit_image"]
