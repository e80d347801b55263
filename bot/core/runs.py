"""Orchestrates one run: pending row -> route (with retries) -> asset store -> finished row.

Every caller (Slack, CLI, benchmark) goes through RunService, so every run is logged the same
way and nothing the user asked for is lost: the row exists before the provider is called, and
image bytes stay in hand for posting even if storing them fails. Requests arrive checked
(bot.core.requests) and admitted by the spend policy (bot.core.spend).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from bot.core import correlation
from bot.core.observers import Observers, RunFinished, RunStarted
from bot.core.redaction import Redactor
from bot.core.replay import request_from_run
from routes.base import Route
from routes.capabilities import resolve_size
from routes.config import GatewayRoute, RouteConfigBase, SelfHostedRoute
from routes.errors import InvalidRequest, RouteError
from routes.executor import RouteExecutor
from routes.media import extension_for
from routes.model import GeneratedImage, ImageRequest, ImageResult
from routes.pacing import give_way, take_turn
from routes.tasks import SubmittedTask
from storage.assets import AssetStore, AssetStoreError, StoredAsset
from storage.health import PASSIVE_ERROR_CLASSES, HealthLog
from storage.runlog import RunLog, as_utc
from storage.spool import Spool
from storage.tables import HealthCheck, Run, utcnow

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# Keys of ImageResult.metadata that have their own run-log columns (self-hosted routes).
_SELF_HOSTED_FIELDS = ("hardware", "model_version", "deployment_hash", "serving_config")


@dataclass(frozen=True)
class StepLink:
    """A run that is one step of a multi-step request (the benchmark's assistant family):
    logged in the run's `params` under "step", so an export shows which conversation it
    belongs to and which earlier run fed it."""

    conversation: str  # the steps' shared key: <bench id>:<route>:<prompt>:<repeat>
    step: int  # 1-based
    steps: int
    follows_run: int | None = None  # the run whose output or response this step continues
    # How the earlier step reached this one: "previous_response_id" (the provider keeps the
    # conversation), "input_image" (the client sends the earlier output back as an edit) or
    # "unavailable" (the route can do neither: the step is refused before any call).
    carried_by: str | None = None


@dataclass(frozen=True)
class RunOrigin:
    """Where a run was asked from, and how it is grouped."""

    source: str = "cli"  # slack | cli | bench | probe
    slack_team: str | None = None
    slack_channel: str | None = None
    slack_user: str | None = None
    slack_thread_ts: str | None = None
    # The parent message the request opened (None: posted into an existing thread).
    slack_parent_ts: str | None = None
    slack_response_url: str | None = None
    group_id: str | None = None
    bench_id: str | None = None
    bench_family: str | None = None
    request_key: str | None = None
    step: StepLink | None = None


@dataclass
class RunOutcome:
    """A finished run: its final row, what the route returned and the images to show."""

    run: Run
    result: ImageResult | None = None
    error: RouteError | None = None
    images: list[GeneratedImage] = field(default_factory=list)
    stored: list[StoredAsset] = field(default_factory=list)
    # When part of the result waits in the spool for a store: one sentence saying so.
    kept: str | None = None

    @property
    def ok(self) -> bool:
        return self.run.status == "succeeded"

    def without_images(self) -> RunOutcome:
        """The same outcome without the image bytes, for what outlives the run's posting (a
        scoreboard waiting for its last edit must not hold megabytes per run)."""
        result = dataclasses.replace(self.result, images=()) if self.result else None
        return dataclasses.replace(self, images=[], result=result)


class RunService:
    """Runs requests on configured routes and keeps the run log."""

    def __init__(
        self,
        runlog: RunLog,
        assets: AssetStore,
        executors: dict[str, RouteExecutor],
        redactor: Redactor,
        worker_id: str,
        *,
        health: HealthLog | None = None,
        observers: Observers | None = None,
        spool: Spool | None = None,
    ) -> None:
        self.health = health
        self.observers = observers or Observers()
        self.runlog = runlog
        self.assets = assets
        self.executors = executors
        self.redact = redactor
        self.worker_id = worker_id
        self.spool = spool
        # Billed tasks of runs in flight, as accepted: the run's final write (or its spool
        # entry) carries them too, so a task the run log missed then is never forgotten.
        self._tasks: dict[int, dict[str, Any]] = {}

    def route(self, route_id: str) -> Route:
        return self.executors[route_id].route

    # -- running -------------------------------------------------------------------------
    async def run(
        self,
        route_id: str,
        request: ImageRequest,
        origin: RunOrigin,
        on_row: Callable[[Run], None] | None = None,
    ) -> RunOutcome:
        """Run one request on one route. Never raises for provider or storage errors: the
        outcome says (a run the log cannot record is not sent to the provider at all).
        `on_row` hears of the pending row as soon as it is written (a caller interrupted later
        can then name the run)."""
        route = self.route(route_id)
        pending = self._pending_row(route, request, origin)
        writing = asyncio.ensure_future(asyncio.to_thread(self.runlog.start, pending))
        try:
            row = await asyncio.shield(writing)
        except asyncio.CancelledError:
            # Cancelled while the row was being written: it is written all the same, so wait
            # for it and close it; a row left pending would take this request key later.
            with contextlib.suppress(SQLAlchemyError):
                await self._interrupted((await writing).id)
            raise
        except SQLAlchemyError as exc:
            log.error("run log unreachable, %s not called: %s", route_id, self.redact(str(exc)))
            return RunOutcome(run=_unlogged(pending))
        assert row.id is not None
        run_id = row.id
        self.observers.emit(RunStarted(run_id, route_id))
        if on_row is not None:
            on_row(row)
        try:
            await self._store_inputs(run_id, request)
            try:
                result = await self.executors[route_id].generate(
                    request, on_task=lambda task: self._record_task(run_id, task)
                )
            except RouteError as exc:
                return await self._failed(row, exc)
            return await self._succeeded(row, route, result)
        except asyncio.CancelledError:
            await self._interrupted(run_id)
            raise
        except Exception:
            # A bug of ours: the row is closed (never left pending) and the error goes up.
            await self._interrupted(run_id, why="an error on our side stopped this run")
            raise
        finally:
            self._tasks.pop(run_id, None)

    async def collect(self, run: Run, task: SubmittedTask) -> RunOutcome | None:
        """Finish an interrupted run by collecting the task its provider accepted (and billed)
        before the process stopped: polled with RouteExecutor.resume, never submitted again,
        then stored and logged like any run. None when another process took the run first."""
        assert run.id is not None
        run_id = run.id
        executor = self.executors[run.route_id]
        claimed = await asyncio.to_thread(self.runlog.reclaim, run_id, self.worker_id)
        if claimed is None:
            return None
        self.observers.emit(RunStarted(run_id, run.route_id))
        try:
            request = await asyncio.to_thread(self._logged_request, claimed)
            try:
                result = await executor.resume(request, task)
            except RouteError as exc:
                return await self._failed(claimed, exc)
            result = dataclasses.replace(
                result, metadata={**result.metadata, "collected_after_restart": True}
            )
            return await self._succeeded(claimed, executor.route, result)
        except asyncio.CancelledError:
            await self._interrupted(run_id)
            raise

    def _logged_request(self, run: Run) -> ImageRequest:
        """The run's request as logged (its input images read back when the store has them:
        they only weigh in the price of an edit)."""
        try:
            return request_from_run(self.runlog, self.assets, run)
        except (AssetStoreError, OSError, InvalidRequest) as exc:
            log.warning("run %s: input images not readable: %s", run.id, self.redact(str(exc)))
            return ImageRequest(prompt=run.prompt)

    async def _record_task(self, run_id: int, task: SubmittedTask) -> None:
        """A billed task, kept on the run the moment the provider accepts it."""
        expires = task.expires_at
        fields: dict[str, Any] = {
            "task_id": task.task_id,
            "task_polling_url": task.polling_url,
            "task_submitted_at": datetime.fromtimestamp(task.submitted_at, UTC),
            "task_expires_at": datetime.fromtimestamp(expires, UTC) if expires else None,
        }
        self._tasks[run_id] = fields
        try:
            await written(
                self.runlog.record_task,
                run_id,
                task.task_id,
                polling_url=task.polling_url,
                submitted_at=fields["task_submitted_at"],
                expires_at=fields["task_expires_at"],
            )
        except SQLAlchemyError as exc:
            # The call goes on (failing here would lose a paid task): the run's final write,
            # or its spool entry, carries the task.
            log.warning("run %s: task %s not logged yet: %s", run_id, task.task_id, exc)

    async def _interrupted(
        self, run_id: int | None, why: str = "the run was cancelled before it finished"
    ) -> None:
        """Close a cancelled run as interrupted, unless its outcome was written first (the
        writes in flight were waited for, so nothing lands after this)."""
        if run_id is None:
            return
        try:
            closed = await written(self._close_if_pending, run_id, why)
        except SQLAlchemyError as exc:
            # Left pending: once this process has stopped, a live one interrupts it and tells.
            log.warning("run %s: could not mark it interrupted: %s", run_id, exc)
            return
        if closed is not None:
            self.finished(closed)

    def _close_if_pending(self, run_id: int, why: str) -> Run | None:
        row = self.runlog.get(run_id)
        if row is not None and row.status == "pending":
            return self.runlog.finish(
                run_id, "interrupted", error_class="interrupted", error_message=why
            )
        return None

    def finished(self, row: Run) -> None:
        """Report a run's final row: one log line with its facts, and one RunFinished.
        Also for runs finished on behalf of a stopped process (interrupted orphans)."""
        assert row.id is not None
        unpriced = row.cost_usd is None and (row.images > 0 or row.task_id is not None)
        self.observers.emit(
            RunFinished(
                run_id=row.id,
                route_id=row.route_id,
                status=row.status,
                error_class=row.error_class,
                billing_owner=row.billing_owner,
                latency_s=row.latency_s,
                cost_usd=row.cost_usd,
                unpriced=unpriced,
            )
        )
        duration = None
        if row.finished_at is not None:
            duration = round((as_utc(row.finished_at) - as_utc(row.created_at)).total_seconds(), 3)
        outcome = row.status if row.error_class is None else f"{row.status} ({row.error_class})"
        log.info(
            "run %s on %s %s in %s s",
            row.id,
            row.route_id,
            outcome,
            duration,
            extra={
                "run_id": row.id,
                "route": row.route_id,
                "status": row.status,
                "error_class": row.error_class,
                "slack_team": row.slack_team,
                "slack_channel": row.slack_channel,
                "request_id": correlation.current().get("request_id"),
                "provider_request_id": row.error_request_id or row.response_id,
                "duration_s": duration,
                "latency_s": row.latency_s,
                "cost_usd": row.cost_usd,
                "source": row.source,
            },
        )

    def _pending_row(self, route: Route, request: ImageRequest, origin: RunOrigin) -> Run:
        caps = route.capabilities()
        size: str | None
        try:
            size = resolve_size(request.size, caps).label
        except InvalidRequest:
            size = request.size
        config = route.config
        facts = deployment_facts(config)
        params = request.params()
        if origin.step is not None:
            params["step"] = dataclasses.asdict(origin.step)
        return Run(
            status="pending",
            source=origin.source,
            route_id=route.id,
            route_kind=route.kind,
            board=config.board_row,
            route_owner=config.route_owner,
            billing_owner=config.billing_owner,
            model_requested=route.model,
            underlying_model=facts.get("underlying_model"),
            prompt=request.prompt,
            size=size,
            quality=request.quality,
            n=request.n,
            params=params,
            hardware=facts.get("hardware"),
            model_version=facts.get("model_version"),
            deployment_hash=facts.get("deployment_hash"),
            serving_config=facts.get("serving_config"),
            slack_team=origin.slack_team,
            slack_channel=origin.slack_channel,
            slack_user=origin.slack_user,
            slack_thread_ts=origin.slack_thread_ts,
            slack_parent_ts=origin.slack_parent_ts,
            slack_response_url=origin.slack_response_url,
            group_id=origin.group_id,
            bench_id=origin.bench_id,
            bench_family=origin.bench_family,
            request_key=origin.request_key,
            worker_id=self.worker_id,
        )

    def record_refusal(
        self, route_id: str, request: ImageRequest, origin: RunOrigin, sentence: str
    ) -> Run:
        """Log a request refused before any provider call (a benchmark's edge prompts), as a
        failed run with error class `unsupported`, $0 with basis `not_billed` (nothing was
        sent, so nothing was billed: not a free run)."""
        route = self.route(route_id)
        row = self.runlog.start(self._pending_row(route, request, origin))
        assert row.id is not None
        refused = self.runlog.finish(
            row.id,
            "failed",
            error_class="unsupported",
            error_message=self.redact(sentence),
            cost_usd=0.0,
            cost_basis="not_billed",
        )
        self.finished(refused)
        return refused

    async def _store_inputs(self, run_id: int, request: ImageRequest) -> None:
        """The request's input images and mask, for the run log and re-runs. Not a result: if
        the stores cannot take them, the run goes on without (re-running it then needs the
        file again)."""
        try:
            paths = await written(self._put_inputs, run_id, request)
            if paths:
                await written(self.runlog.update, run_id, input_assets=paths)
        except (AssetStoreError, OSError, SQLAlchemyError) as exc:
            log.warning("run %s: input images not stored: %s", run_id, self.redact(str(exc)))

    def _put_inputs(self, run_id: int, request: ImageRequest) -> list[str]:
        paths: list[str] = []
        items = [("input", i, img) for i, img in enumerate(request.input_images)]
        if request.mask is not None:
            items.append(("mask", 0, request.mask))
        for role, position, image in items:
            digest = hashlib.sha256(image.data).hexdigest()[:16]
            key = f"inputs/{digest}.{extension_for(image.mime)}"
            stored = self.assets.put(key, image.data, image.mime)
            self.runlog.add_asset(run_id, stored, role, position)
            paths.append(stored.path)
        return paths

    async def _failed(self, row: Run, exc: RouteError) -> RunOutcome:
        fields: dict[str, Any] = {
            "error_class": exc.error_class,
            "error_message": self.redact(exc.sentence()),
            "error_request_id": exc.request_id,
            "attempts": len(exc.attempts),
        }
        assert row.id is not None
        task_id = row.task_id or self._tasks.get(row.id, {}).get("task_id")
        if task_id is not None and row.cost_basis is None:
            # The provider accepted (and billed) the task: its cost is unknown, not $0.
            fields["cost_basis"] = "unknown"
            fields["cost_detail"] = f"task {task_id} was accepted (billed) and made no image"
        final, kept = await self._complete(row, "failed", fields, exc.attempts, [], [])
        if self.health is not None and exc.error_class in PASSIVE_ERROR_CLASSES:
            # A real run's failure feeds the route's health like a probe (passive check).
            check = HealthCheck(
                route_id=row.route_id,
                source="run",
                ok=False,
                error_class=exc.error_class,
                error_message=self.redact(exc.message),
                request_id=exc.request_id,
            )
            try:
                await asyncio.to_thread(self.health.record, check)
            except SQLAlchemyError as db:
                log.warning("passive health check of %s not recorded: %s", row.route_id, db)
        self.finished(final)
        return RunOutcome(run=final, error=exc, kept=kept)

    async def _succeeded(self, row: Run, route: Route, result: ImageResult) -> RunOutcome:
        assert row.id is not None
        images = list(result.images)
        fields: dict[str, Any] = {
            "model_reported": result.model,
            "underlying_model": result.underlying_model
            or deployment_facts(route.config).get("underlying_model"),
            "revised_prompt": result.revised_prompt,
            "response_id": result.response_id,
            "latency_s": round(result.latency_s, 4),
            "cost_usd": result.cost.usd,
            "cost_basis": result.cost.basis,
            "cost_detail": result.cost.detail,
            "usage": result.usage,
            "provider_metadata": _jsonable(result.metadata),
            "images": len(images),
            "attempts": len(result.attempts),
        }
        for key in _SELF_HOSTED_FIELDS:
            if result.metadata.get(key) is not None:
                fields[key] = str(result.metadata[key])
        # The images were made (and paid for): whatever the stores say, they stay in hand for
        # posting, and whatever a store cannot take now waits in the spool. Storing and posting
        # are the run's finishing: in the Slack bot, in its lane (routes.pacing.Lane), which a
        # large answer already entered before it was read.
        await take_turn()
        stored, unstored = await written(self._put_outputs, row.id, images)
        final, kept = await self._complete(
            row, "succeeded", fields, result.attempts, stored, unstored
        )
        self.finished(final)
        return RunOutcome(
            run=final,
            result=result,
            images=images,
            stored=[asset for _, asset in stored],
            kept=kept,
        )

    def _put_outputs(
        self, run_id: int, images: list[GeneratedImage]
    ) -> tuple[list[tuple[int, StoredAsset]], list[tuple[int, str, str, bytes]]]:
        """Each image into the asset store: (stored, left over) with their positions. After
        the first failure the rest are left over at once: a dead store is not asked again."""
        day = utcnow().strftime("%Y/%m/%d")
        stored: list[tuple[int, StoredAsset]] = []
        unstored: list[tuple[int, str, str, bytes]] = []
        for position, image in enumerate(images):
            key = f"runs/{day}/{run_id}-{position}.{extension_for(image.mime)}"
            if not unstored:
                try:
                    stored.append((position, self.assets.put(key, image.data, image.mime)))
                    continue
                except (AssetStoreError, OSError) as exc:
                    log.error(
                        "run %s: asset store refused an image: %s", run_id, self.redact(str(exc))
                    )
            unstored.append((position, image.mime, key, image.data))
        return stored, unstored

    async def _complete(
        self,
        row: Run,
        status: str,
        fields: dict[str, Any],
        attempts: Sequence[Any],
        stored: list[tuple[int, StoredAsset]],
        unstored: list[tuple[int, str, str, bytes]],
    ) -> tuple[Run, str | None]:
        """The run's end written in one transaction, or spooled with whatever a store could
        not take. Returns the final run (as logged, or as it will be) and, when something
        waits in the spool, one sentence saying so."""
        assert row.id is not None
        finish = {"status": status, **fields, **self._tasks.get(row.id, {})}
        rows = _attempt_rows(attempts)
        try:
            final = await written(self.runlog.complete, row.id, finish, rows, stored)
        except SQLAlchemyError as exc:
            log.error(
                "run %s: run log unreachable, result spooled: %s", row.id, self.redact(str(exc))
            )
            final = None
        if final is not None and not unstored:
            return final, None
        logged = final is not None
        finish = {**finish, "finished_at": utcnow()}
        waiting: list[tuple[int, str, str, bytes | StoredAsset]] = list(unstored)
        if not logged:
            waiting += [(position, asset.mime, asset.path, asset) for position, asset in stored]
        kept = _kept_sentence(images=bool(unstored), logged=logged)
        if self.spool is None:
            log.error("run %s: no spool configured; %s", row.id, kept)
        else:
            try:
                entry = await written(
                    self.spool.keep,
                    row.id,
                    waiting,
                    finish=None if logged else finish,
                    attempts=[] if logged else rows,
                )
                log.warning(
                    "run %s: kept in the spool at %s until the store is back", row.id, entry
                )
            except OSError:
                log.exception("run %s: the spool could not take the result either", row.id)
        return final or row.model_copy(update=finish), kept


def _unlogged(pending: Run) -> Run:
    """The run as it would have been logged, failed: nothing was sent to the provider."""
    return pending.model_copy(
        update={
            "status": "failed",
            "finished_at": utcnow(),
            "error_class": "storage",
            "error_message": (
                "the run log (database) could not be reached, so nothing was sent to the "
                "provider and nothing was charged: try again in a minute"
            ),
        }
    )


def _kept_sentence(*, images: bool, logged: bool) -> str:
    what = "the image" if images else "the result"
    where = "asset store" if logged else "run log"
    return (
        f"The {where} could not take {what} just now: it is kept on the bot's disk and will be "
        "stored automatically when the store is back."
    )


async def written(call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking write (run log, asset store) in a thread, to its end even when the caller
    is cancelled meanwhile: a cancelled await does not stop the thread, so a write left behind
    would land later, e.g. a run's outcome after the run was closed as interrupted, or after a
    resumed benchmark read what was finished. The cancellation is raised once it has landed.
    Started by the Slack bot, the write first gives way to the acks in progress."""

    async def write() -> T:
        await give_way()  # after the acks in progress, when the Slack bot runs this (routes.pacing)
        return await asyncio.to_thread(call, *args, **kwargs)

    writing = asyncio.ensure_future(write())
    try:
        return await asyncio.shield(writing)
    except asyncio.CancelledError:
        await writing
        raise


def deployment_facts(config: RouteConfigBase) -> dict[str, str | None]:
    """What the run log records about the route's deployment, from the kinds that configure it
    (a gateway's underlying model; a self-hosted route's hardware and model version)."""
    if isinstance(config, GatewayRoute):
        return {"underlying_model": config.underlying_model}
    if isinstance(config, SelfHostedRoute):
        return {
            "hardware": config.hardware,
            "model_version": config.model_version,
            "deployment_hash": config.deployment_hash,
            "serving_config": config.serving_config,
        }
    return {}


def _attempt_rows(attempts: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            "number": a.number,
            "started_at": datetime.fromtimestamp(a.started_at, UTC),
            "latency_s": round(a.latency_s, 4),
            "ok": a.ok,
            "waited_s": round(a.waited_s, 3),
            "error_class": a.error_class,
            "status_code": a.status_code,
            "request_id": a.request_id,
            "message": a.message,
        }
        for a in attempts
    ]


def _jsonable(value: Any) -> Any:
    """Metadata as JSON-safe plain data (bytes and odd objects become short strings)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)
