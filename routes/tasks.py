"""Provider tasks whose submit is billed: the record of one accepted task, and the ledger the
executor hands an adapter so that a retry resumes the task instead of paying for it again.

A route such as BFL bills at submit and returns a task id to poll. Whatever layer times out
after that (the poll loop, the executor's per-attempt timeout, a restart), the task is polled
again, never resubmitted. The ledger also remembers a submit whose answer never arrived: its
outcome is unknown (the provider may have accepted and billed it), so it is not sent again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubmittedTask:
    """A task a provider accepted (and billed): what is needed to collect its result later."""

    task_id: str
    polling_url: str | None
    submitted_at: float  # unix seconds
    # How long the provider keeps the result after submit (BFL: about 10 minutes); None: unknown.
    result_ttl_s: float | None = None

    @property
    def expires_at(self) -> float | None:
        return None if self.result_ttl_s is None else self.submitted_at + self.result_ttl_s

    def expired(self, now: float | None = None) -> bool:
        expires = self.expires_at
        return expires is not None and (now if now is not None else time.time()) >= expires


OnSubmit = Callable[[SubmittedTask], Awaitable[None] | None]


class TaskLedger:
    """What one run has submitted, shared by every attempt the executor makes for it."""

    def __init__(self, on_submit: OnSubmit | None = None, task: SubmittedTask | None = None):
        self.task = task
        # A submit was sent and no answer read: the provider may have accepted it.
        self.submit_in_flight = False
        self._on_submit = on_submit

    def submitting(self) -> None:
        self.submit_in_flight = True

    def not_accepted(self) -> None:
        """The provider answered the submit with an error: nothing was accepted."""
        self.submit_in_flight = False

    async def accepted(self, task: SubmittedTask) -> None:
        """Record the accepted task before polling it, and tell the caller (the run log keeps
        it so a restart can collect the result). A failing callback never loses the task."""
        self.task = task
        self.submit_in_flight = False
        if self._on_submit is None:
            return
        try:
            outcome = self._on_submit(task)
            if outcome is not None:
                await outcome
        except Exception:  # the image is still worth collecting, whatever the log did
            log.exception("could not record task %s; polling it all the same", task.task_id)
