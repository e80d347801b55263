"""Route health: probes, the per-route state machine and incidents.

It renders nothing: what on-call should hear is emitted as events (bot.health.events) that the
Slack surface renders and posts."""
