"""The run log's tables: one row per run, its assets and every provider attempt.

Columns follow the route board's logging list (route owner, model, date, prompt, input assets,
size, quality, response id, latency, stored asset path, billing owner; gateway: underlying
model; self-hosted: hardware, model version, deployment hash, serving config).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

RUN_STATUSES = ("pending", "succeeded", "failed", "interrupted")
# A route's runs by time, carrying what is read of its latest runs (latency percentiles, median
# cost, the family its checks are counted under), so those reads never touch the table rows.
ROUTE_TIME_COLUMNS = ("route_id", "created_at", "status", "latency_s", "cost_usd", "bench_family")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Run(SQLModel, table=True):
    __tablename__ = "runs"
    # Every time-windowed read names its key first and the time second, so its cost follows
    # the window (today, this week), not the history.
    __table_args__ = (
        sa.Index("ix_runs_status_time", "status", "created_at"),
        sa.Index("ix_runs_route_time", *ROUTE_TIME_COLUMNS),
        sa.Index("ix_runs_user_time", "slack_user", "created_at"),
        sa.Index("ix_runs_channel_time", "slack_channel", "created_at"),
        sa.Index("ix_runs_owner_time", "billing_owner", "created_at"),
        # A channel's or a user's latest runs of each route (what one viewer may see).
        sa.Index("ix_runs_channel_route_time", "slack_channel", *ROUTE_TIME_COLUMNS),
        sa.Index("ix_runs_user_route_time", "slack_user", *ROUTE_TIME_COLUMNS, "slack_channel"),
    )

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default="pending", max_length=16)
    source: str = Field(default="cli", max_length=16)  # slack | cli | bench | probe
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), index=True
    )
    finished_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))

    # The route and who owns it.
    route_id: str = Field(max_length=64)
    route_kind: str = Field(max_length=32)
    board: str | None = Field(default=None, max_length=16)
    route_owner: str | None = Field(default=None, max_length=200)
    billing_owner: str | None = Field(default=None, max_length=200)
    model_requested: str = Field(max_length=200)
    model_reported: str | None = Field(default=None, max_length=200)
    underlying_model: str | None = Field(default=None, max_length=200)

    # What was asked.
    prompt: str = Field(sa_type=sa.Text)
    revised_prompt: str | None = Field(default=None, sa_type=sa.Text)
    input_assets: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    size: str | None = Field(default=None, max_length=32)
    quality: str | None = Field(default=None, max_length=16)
    n: int = 1
    params: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)

    # What came back.
    response_id: str | None = Field(default=None, max_length=200)
    latency_s: float | None = None
    cost_usd: float | None = None
    cost_basis: str | None = Field(default=None, max_length=16)
    cost_detail: str | None = Field(default=None, sa_type=sa.Text)
    usage: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    provider_metadata: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    images: int = 0
    error_class: str | None = Field(default=None, max_length=32)
    error_message: str | None = Field(default=None, sa_type=sa.Text)
    error_request_id: str | None = Field(default=None, max_length=200)
    attempts: int = 0
    # A provider task whose submit is billed (BFL): recorded as soon as it is accepted, so the
    # result can be collected after a restart (before the provider drops it) and the task is
    # never paid for twice.
    task_id: str | None = Field(default=None, max_length=200, index=True)
    task_polling_url: str | None = Field(default=None, sa_type=sa.Text)
    task_submitted_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    task_expires_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))

    # Self-hosted routes.
    hardware: str | None = Field(default=None, max_length=200)
    model_version: str | None = Field(default=None, max_length=200)
    deployment_hash: str | None = Field(default=None, max_length=200)
    serving_config: str | None = Field(default=None, sa_type=sa.Text)

    # Where it was asked from.
    slack_team: str | None = Field(default=None, max_length=32)
    slack_channel: str | None = Field(default=None, max_length=32)
    slack_user: str | None = Field(default=None, max_length=32)
    slack_thread_ts: str | None = Field(default=None, max_length=32)
    # The parent message this run's request opened (its status line is resolved when the run
    # ends, even by another process); None for runs posted into an existing thread.
    slack_parent_ts: str | None = Field(default=None, max_length=32)
    slack_response_url: str | None = Field(default=None, sa_type=sa.Text)

    # Grouping: a comparison's runs share a group; benchmark outputs carry their bench id.
    group_id: str | None = Field(default=None, max_length=64, index=True)
    bench_id: str | None = Field(default=None, max_length=64, index=True)
    bench_family: str | None = Field(default=None, max_length=32)
    # De-duplicates retried Slack requests and double clicks (unique when set).
    request_key: str | None = Field(default=None, max_length=200, unique=True)
    # Which process ran it, so a restart can tell its own crashed runs from a live replica's.
    worker_id: str | None = Field(default=None, max_length=100)


class RouteDay(SQLModel, table=True):
    """Finished runs (succeeded or failed) per route and UTC day of creation.

    Kept by the database itself: triggers on `runs` (migration 0007) add and subtract each
    run's share in the same transaction as the run's own insert, update or delete, whichever
    code path or process writes it. All-time figures read these few thousand rows instead of
    the whole run log."""

    __tablename__ = "route_days"

    route_id: str = Field(primary_key=True, max_length=64)
    day: date = Field(primary_key=True)
    runs: int = 0
    succeeded: int = 0
    failed: int = 0
    spend_usd: float = 0.0  # known cost of the succeeded runs
    unpriced_runs: int = 0  # billed (images made or a task accepted) with no known cost


class ViewerDay(SQLModel, table=True):
    """route_days for one Slack user (scope `user`), one channel (`channel`) or the two
    together (`user_channel`, key `user|channel`): what one viewer may see is the user's plus
    the channel's minus their overlap. Kept by triggers on `runs` (migration 0011)."""

    __tablename__ = "viewer_days"

    scope: str = Field(primary_key=True, max_length=16)
    key: str = Field(primary_key=True, max_length=80)
    route_id: str = Field(primary_key=True, max_length=64)
    day: date = Field(primary_key=True)
    runs: int = 0
    succeeded: int = 0
    failed: int = 0
    spend_usd: float = 0.0
    unpriced_runs: int = 0


class ViewerCheck(SQLModel, table=True):
    """check_totals per viewer scope (as viewer_days): acceptance checks by their run's user,
    channel or both, kept by triggers on `run_checks` (migration 0011)."""

    __tablename__ = "viewer_checks"

    scope: str = Field(primary_key=True, max_length=16)
    key: str = Field(primary_key=True, max_length=80)
    route_id: str = Field(primary_key=True, max_length=64)
    family: str = Field(primary_key=True, max_length=32)
    name: str = Field(primary_key=True, max_length=16)
    passed: int = 0
    failed: int = 0
    not_run: int = 0
    score_sum: float = 0.0
    scored: int = 0


class ViewerVerdict(SQLModel, table=True):
    """Verdicts per route and viewer scope (as viewer_days), by their run's user, channel or
    both, kept by triggers on `verdicts` (migration 0011)."""

    __tablename__ = "viewer_verdicts"

    scope: str = Field(primary_key=True, max_length=16)
    key: str = Field(primary_key=True, max_length=80)
    route_id: str = Field(primary_key=True, max_length=64)
    survived: int = 0
    not_survived: int = 0


class CheckTotal(SQLModel, table=True):
    """Acceptance checks per route, benchmark family ('' outside any) and check, all time.

    Kept by the database itself: triggers on `run_checks` (migration 0010) add and subtract
    each check row's share in the same transaction as its write. Stats and the advisor read
    these few rows instead of every check ever made."""

    __tablename__ = "check_totals"

    route_id: str = Field(primary_key=True, max_length=64)
    family: str = Field(primary_key=True, max_length=32)
    name: str = Field(primary_key=True, max_length=16)
    passed: int = 0
    failed: int = 0
    not_run: int = 0
    score_sum: float = 0.0  # over the checks that ran and gave a score
    scored: int = 0


class RunAsset(SQLModel, table=True):
    __tablename__ = "run_assets"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True)
    role: str = Field(default="output", max_length=16)  # output | input | mask | montage
    position: int = 0
    path: str = Field(sa_type=sa.Text)
    mime: str = Field(max_length=64)
    bytes: int
    sha256: str = Field(max_length=64)
    width: int | None = None
    height: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


class RunAttempt(SQLModel, table=True):
    __tablename__ = "run_attempts"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True)
    number: int
    started_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    latency_s: float
    ok: bool
    waited_s: float = 0.0
    error_class: str | None = Field(default=None, max_length=32)
    status_code: int | None = None
    request_id: str | None = Field(default=None, max_length=200)
    message: str | None = Field(default=None, sa_type=sa.Text)


class Worker(SQLModel, table=True):
    """A live bot/CLI process; `seen_at` is its heartbeat."""

    __tablename__ = "workers"

    id: str = Field(primary_key=True, max_length=100)
    role: str = Field(max_length=16)
    started_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    seen_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


class SpendReservation(SQLModel, table=True):
    """A call's expected cost, held from before the provider is called until its run ends.

    Caps count these beside the run log's spend, so concurrent requests (in one process or
    several) cannot all pass a cap that fits only some of them. A reservation is keyed by its
    request (when it has a key), so one request is never admitted twice."""

    __tablename__ = "spend_reservations"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=sa.DateTime(timezone=True), index=True
    )
    worker_id: str = Field(max_length=100, index=True)
    route_id: str = Field(max_length=64, index=True)
    slack_user: str | None = Field(default=None, max_length=32, index=True)
    usd: float = 0.0
    request_key: str | None = Field(default=None, max_length=200, unique=True)


class Verdict(SQLModel, table=True):
    """A person's judgement of one run: does the output survive the next real step?"""

    __tablename__ = "verdicts"
    __table_args__ = (sa.UniqueConstraint("run_id", "judged_by", name="uq_verdict_run_user"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True)
    # The run's route, copied when the verdict is given: counts per route read this table only.
    route_id: str | None = Field(default=None, max_length=64, index=True)
    survives: bool
    judged_by: str = Field(max_length=64)  # Slack user id, or "cli:<name>"
    judged_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    note: str | None = Field(default=None, sa_type=sa.Text)


class HealthCheck(SQLModel, table=True):
    """One health observation of a route: a scheduled probe, or a real run (passive check)."""

    __tablename__ = "health_checks"
    __table_args__ = (
        sa.Index("ix_health_checks_route_time", "route_id", "checked_at"),
        sa.Index("ix_health_checks_time", "checked_at"),  # probe spend over a window
    )

    id: int | None = Field(default=None, primary_key=True)
    route_id: str = Field(max_length=64)
    checked_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    source: str = Field(default="probe", max_length=8)  # probe | run
    probe_kind: str | None = Field(default=None, max_length=16)  # auth | generate
    ok: bool
    latency_s: float | None = None
    error_class: str | None = Field(default=None, max_length=32)
    error_message: str | None = Field(default=None, sa_type=sa.Text)
    request_id: str | None = Field(default=None, max_length=200)
    cost_usd: float | None = None  # generate probes: probe spend


class Incident(SQLModel, table=True):
    """A route that went failing or degraded, from its opening to its recovery.

    Several routes failing in one round share one alert message (same alert_ts)."""

    __tablename__ = "incidents"

    id: int | None = Field(default=None, primary_key=True)
    route_id: str = Field(index=True, max_length=64)
    kind: str = Field(max_length=16)  # failing | degraded
    opened_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    resolved_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    first_error: str | None = Field(default=None, sa_type=sa.Text)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    error_class: str | None = Field(default=None, max_length=32)
    request_id: str | None = Field(default=None, max_length=200)
    alert_channel: str | None = Field(default=None, max_length=32)
    alert_ts: str | None = Field(default=None, max_length=32)
    alerted_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    reminded_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    recovery_posted: bool = False
    # Someone on call took it (the alert's Acknowledge button): reminders stop.
    acknowledged_by: str | None = Field(default=None, max_length=64)
    acknowledged_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class Bench(SQLModel, table=True):
    """A benchmark's plan and state, so `--resume ID` needs nothing but the id.

    Its outputs are ordinary runs carrying `bench_id`; this row only remembers what was asked."""

    __tablename__ = "benches"

    id: str = Field(primary_key=True, max_length=64)
    status: str = Field(default="running", max_length=16)  # running | finished | interrupted
    source: str = Field(default="cli", max_length=16)  # cli | slack
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    finished_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    routes: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    families: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    repeat: int = 1
    max_cost_usd: float | None = None
    per_route: int = 2  # calls in flight per route
    prompt_set: str | None = Field(default=None, sa_type=sa.Text)  # a team's file; None = default
    slack_channel: str | None = Field(default=None, max_length=32)
    slack_thread_ts: str | None = Field(default=None, max_length=32)
    slack_user: str | None = Field(default=None, max_length=32)


class RunCheck(SQLModel, table=True):
    """One automatic acceptance check of one run's output: would it survive the next step?

    One row per check and image (`position`; run-wide checks such as the count use 0). A check
    that could not run is kept as `not_run` with the reason, so a missing figure is never read
    as a pass."""

    __tablename__ = "run_checks"
    __table_args__ = (
        sa.UniqueConstraint("run_id", "name", "position", name="uq_run_check_position"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True)
    name: str = Field(max_length=16)  # text | edit | transparency | delivery | repeat
    position: int = 0
    status: str = Field(max_length=16)  # passed | failed | not_run
    score: float | None = None  # 0..1, higher is better
    threshold: float | None = None  # the pass mark in force when it was checked
    summary: str = Field(max_length=200)  # "text 96%", "kept 98% outside mask"
    reason: str | None = Field(default=None, sa_type=sa.Text)  # what failed, or why not run
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    duration_s: float | None = None
    checked_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
