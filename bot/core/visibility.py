"""Which runs a Slack viewer may see or act on: one rule for every surface.

A viewer sees the runs they asked for themselves, wherever, and the runs asked in the
conversation they are looking from; nothing else, so a private channel's or a DM's prompts
never show up in App Home, `/imageroute runs` or `/imageroute stats` of anyone outside it. A
button acts only on a run of the conversation it was clicked in: a button value naming another
channel's run id is refused. Runs started outside Slack (the CLI) belong to no viewer.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.sql.elements import ColumnElement

from storage.runlog import Seen
from storage.tables import Run


@dataclass(frozen=True)
class Viewer:
    """Who is looking (a Slack user id) and from where (a channel id; None in App Home)."""

    user: str | None
    channel: str | None = None

    def sees(self, run: Run) -> bool:
        return bool(
            (self.user and run.slack_user == self.user)
            or (self.channel and run.slack_channel == self.channel)
        )

    def runs_clause(self) -> ColumnElement[bool]:
        """The same rule as a condition on the runs table, for the run log's queries."""
        return self.seen().clause()

    def seen(self) -> Seen:
        """The same rule as the run log reads it: figures from its per-user and per-channel
        rollups rather than from the runs (stats at any length of history)."""
        return Seen(user=self.user, channel=self.channel)


def may_act_on(run: Run, channel: str | None, thread_ts: str | None = None) -> bool:
    """Whether a button clicked in `channel` (in the thread `thread_ts`, when known) may act
    on `run`: only a run of that conversation, and of that thread when the run has one."""
    if not channel or run.slack_channel != channel:
        return False
    return thread_ts is None or run.slack_thread_ts in (None, thread_ts)
