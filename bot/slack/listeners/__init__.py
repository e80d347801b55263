"""Listeners by kind, as in Bolt's starter template: each kind's package has `register(app, ...)`.

Every listener validates what it can in memory, calls `ack()` within Slack's 3 s, and only then
does slow work in a background task (bot.slack.tasks)."""
