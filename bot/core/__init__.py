"""The product core: checked requests, runs, spend policy, comparisons and exports.

Nothing here knows Slack or the terminal: the surfaces (bot.slack, bot.cli) call it."""
