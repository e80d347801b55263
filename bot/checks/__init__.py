"""Automatic acceptance checks: would this output survive the next real step?

Each check runs offline on CPU on the image a route returned and says, with a score and in
words, whether it met its pass mark: the prompt's quoted text read back by OCR (`text`), what an
edit kept and changed against its source (`edit`), a transparent background really delivered
(`transparency`), the size, format and count asked for (`delivery`), and how alike repeats of
one request are (`repeat`). Heavy libraries (OCR models, scikit-image) load on first use, once
per process; nothing here renders for Slack.
"""

from bot.checks.model import CHECK_LABELS, Ask, CheckReport, CheckResult
from bot.checks.service import AcceptanceChecks
from storage.checks import CHECK_NAMES

__all__ = ["CHECK_LABELS", "CHECK_NAMES", "AcceptanceChecks", "Ask", "CheckReport", "CheckResult"]
