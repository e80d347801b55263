"""Untrusted text made inert in Slack mrkdwn: the one escape for prompts, questions, provider
messages, file names and labels, applied where such text enters a message.

Slack reads `&`, `<` and `>` as control characters: `<!channel>`, `<@U123>`, `<!subteam^S1>` and
`<https://evil.example|click me>` only exist because of them, so escaping the three (as Slack's
formatting reference asks) leaves every such sequence as literal text. Mrkdwn text objects also
parse a bare `@channel`, `@here` or `@everyone` (their `verbatim` default), so a word joiner is
put after the `@`: the text reads the same and pings nobody. Pure string work, no Slack import,
so the core, the CLI and the Slack layer share it.
"""

from __future__ import annotations

import re

# U+2060 WORD JOINER: invisible, and it breaks the token Slack would parse as a mention.
_JOINER = "\u2060"
_BROADCAST = re.compile(r"@(?=(?:channel|here|everyone)\b)", re.IGNORECASE)


def escape(text: str) -> str:
    """`text` shown literally in mrkdwn: no mention, link or channel-wide ping can hide in it."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub("@" + _JOINER, text)
