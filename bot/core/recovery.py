"""Runs a stopped process left unfinished: billed tasks collected, never paid for twice.

A run whose provider task was accepted (and billed) before its process stopped is finished by
collecting that task while the provider still keeps the result: polled through
`RouteExecutor.resume`, never submitted again, its images stored and its cost logged like any
run. A task whose result has expired (BFL keeps it about ten minutes) cannot be collected: the
run stays interrupted and names the task, so it can be looked up at the provider.

`settle_orphan` is the one entry point: the bot's liveness sweep (bot.core.workers, every few
heartbeats while the bot runs, the first one right after start-up) calls it for every run a
stopped process left.
"""

from __future__ import annotations

import asyncio
from collections.abc import Container, Sequence
from datetime import datetime

from bot.core.runs import RunOutcome, RunService
from routes.tasks import SubmittedTask
from storage.runlog import RunLog, as_utc
from storage.tables import Run


def stored_task(run: Run) -> SubmittedTask | None:
    """The billed task kept on the run at submit, or None when it has none."""
    if not run.task_id:
        return None
    submitted = as_utc(run.task_submitted_at or run.created_at)
    ttl = None
    if run.task_expires_at is not None:
        ttl = (as_utc(run.task_expires_at) - submitted).total_seconds()
    return SubmittedTask(run.task_id, run.task_polling_url, submitted.timestamp(), ttl)


def orphans_to_settle(
    runlog: RunLog,
    orphans: Sequence[Run],
    route_ids: Container[str],
    now: datetime | None = None,
) -> list[Run]:
    """The orphans just found, plus interrupted runs left earlier whose task can still be
    collected here (a process that stopped while collecting, or a replica that handed them
    over as it stopped).

    An earlier run on a route this process does not have is left alone: its thread was told
    when it was found, and the sweep comes back every few beats, which must not tell it again.
    """
    found = {run.id: run for run in orphans}
    for run in runlog.collectable_tasks(now):
        if run.status == "interrupted" and run.route_id in route_ids:
            found.setdefault(run.id, run)
    return [found[key] for key in sorted(found, key=lambda k: k or 0)]


async def settle_orphan(runs: RunService, run: Run) -> RunOutcome | None:
    """Finish one run a stopped process left (already marked interrupted): collect its billed
    task if the provider still keeps the result, else leave it interrupted saying which task
    it was. None when another process took it first and is finishing it."""
    task = stored_task(run)
    if task is None or run.id is None:
        return RunOutcome(run=run)  # nothing was billed to collect: it stays interrupted
    why = None
    if task.expired():
        why = "the result expired before it could be collected"
    elif run.route_id not in runs.executors:
        why = f"route {run.route_id} is no longer configured here to collect it"
    if why is not None:
        row = await asyncio.to_thread(
            runs.runlog.update,
            run.id,
            error_message=(
                f"the bot stopped before this run finished; its task {task.task_id} was "
                f"accepted (and billed) by the provider, but {why}: look the task up at the "
                "provider by that id"
            ),
            error_request_id=task.task_id,
        )
        return RunOutcome(run=row)
    return await runs.collect(run, task)
