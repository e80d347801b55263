"""The Slack surface: listeners by kind, one Block Kit module, one poster.

Only this package and the process wiring import slack_bolt or slack_sdk."""
