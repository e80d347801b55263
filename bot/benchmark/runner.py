"""The route benchmark: the five prompt families on the chosen routes, every output a run.

A benchmark has an id and a row in `benches` holding its plan (routes, families, repeats,
budget, prompt file), so `--resume ID` needs nothing else. Each (route, prompt, repeat) item's
run carries the key `<bench id>:<route>:<prompt id>:<repeat>#<try>`: a resumed benchmark keeps
what finished (succeeded or failed) and redoes only what was interrupted or skipped. The spend
policy's budget is checked before each call with the route's estimate (routes.pricing); a
route nothing prices is refused under a budget, and runs of unknown cost are counted as such.

A multi-step request (the assistant family: plan and draw, then refine) runs on every route,
one run per step (`...:<repeat>:s<step>`), each step after the one before it, the way the route
allows: a route that keeps the conversation (the Responses API) continues the previous response
(`previous_response_id`); a route that edits gets the previous output back as the edit's input
image (the chain the team would build client-side); any other route logs the step as a refusal
that needs an edit-capable route. Every step logs the run it continued (`params.step`).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.benchmark.plan import (
    DEFAULT_PER_ROUTE,
    BenchItem,
    BenchPlan,
    BenchProgress,
    ProgressCallback,
    new_bench_id,
    plan_items,
)
from bot.benchmark.prompts import PROMPT_ID, BenchError, BenchPrompt, load_prompts
from bot.checks import AcceptanceChecks, CheckReport
from bot.core.requests import RequestValidator
from bot.core.runs import RunOrigin, RunOutcome, RunService, StepLink, written
from bot.core.spend import OverCap, Reservation, SpendBudget, SpendPolicy
from routes.errors import InvalidRequest
from routes.media import extension_for
from routes.model import ImageRequest, InputImage
from storage.assets import AssetStoreError
from storage.benches import BenchExists, BenchLog
from storage.runlog import DuplicateRequest
from storage.tables import Bench, Run

FINISHED = ("succeeded", "failed")
# Called once an output's acceptance checks are in (after its progress callback posted it).
CheckedCallback = Callable[[BenchItem, Run, CheckReport], Awaitable[None] | None]
NEEDS_EDITS = (
    "step {step} needs an edit-capable route: this route cannot edit an image, so it cannot "
    "continue from step {earlier}'s output (a route that keeps the conversation, like the "
    "Responses API, or one that edits can)"
)


class BenchRunner:
    """Runs a benchmark through RunService so every output is an ordinary, fully logged run."""

    def __init__(
        self,
        runs: RunService,
        validator: RequestValidator,
        spend: SpendPolicy,
        benches: BenchLog,
        *,
        per_route_concurrency: int = DEFAULT_PER_ROUTE,
        checks: AcceptanceChecks | None = None,
    ) -> None:
        self.checks = checks
        self.runs = runs
        self.validator = validator
        self.spend = spend
        self.benches = benches
        self.per_route = per_route_concurrency

    # -- planning ------------------------------------------------------------------------
    def plan(
        self,
        prompts: Sequence[BenchPrompt],
        route_ids: Sequence[str],
        families: Iterable[str] | None,
        repeat: int,
    ) -> list[BenchItem]:
        """Every (route, prompt, repeat) item, after checking the routes exist."""
        try:
            for rid in route_ids:
                self.validator.route(rid)
        except InvalidRequest as exc:
            raise BenchError(str(exc)) from None
        return plan_items(prompts, route_ids, families, repeat)

    def open(
        self,
        plan: BenchPlan | None,
        *,
        resume: str | None = None,
        source: str = "cli",
        origin: RunOrigin | None = None,
        **changes: Any,
    ) -> tuple[Bench, BenchPlan, list[BenchItem]]:
        """Check the plan and record it under a new id, or reload a stored one to resume.

        On resume, options given again (`changes`, None = not given) replace the stored ones,
        e.g. a higher --max-cost to finish what the budget skipped."""
        if resume and not PROMPT_ID.match(resume):
            raise BenchError(f"{resume!r} is not a benchmark id")
        stored = self.benches.get(resume) if resume else None
        if stored is not None:
            plan = BenchPlan.from_row(stored).with_changes(**changes)
        elif plan is None:
            raise BenchError(f"there is no benchmark {resume}: start one without --resume")
        else:
            plan = plan.with_changes(**changes)
        if plan.max_cost is not None and plan.max_cost < 0:
            raise BenchError("--max-cost must be zero or more")
        if plan.max_cost is not None:
            self._check_budgetable(plan.routes)
        if not 1 <= plan.per_route <= 16:
            raise BenchError("--concurrency must be between 1 and 16")
        items = self.plan(load_prompts(plan.prompt_set), plan.routes, plan.families, plan.repeat)
        self.per_route = plan.per_route
        if stored is not None:
            row = self.benches.update(
                stored.id,
                status="running",
                finished_at=None,
                routes=list(plan.routes),
                families=list(plan.families),
                repeat=plan.repeat,
                max_cost_usd=plan.max_cost,
                per_route=plan.per_route,
            )
            return row, plan, items
        origin = origin or RunOrigin(source=source)
        row = Bench(
            id=resume or new_bench_id(),
            source=source,
            routes=list(plan.routes),
            families=list(plan.families),
            repeat=plan.repeat,
            max_cost_usd=plan.max_cost,
            per_route=plan.per_route,
            prompt_set=str(plan.prompt_set.resolve()) if plan.prompt_set else None,
            slack_channel=origin.slack_channel,
            slack_thread_ts=origin.slack_thread_ts,
            slack_user=origin.slack_user,
        )
        try:
            return self.benches.create(row), plan, items
        except BenchExists:
            raise BenchError(f"benchmark {row.id} exists already") from None

    # -- running -------------------------------------------------------------------------
    async def run(
        self,
        items: Sequence[BenchItem],
        *,
        bench_id: str | None = None,
        max_cost: float | None = None,
        user: str | None = None,
        origin: RunOrigin | None = None,
        on_progress: ProgressCallback | None = None,
        on_checked: CheckedCallback | None = None,
    ) -> BenchProgress:
        """Run what is not finished yet, within `max_cost` and the daily caps the spend policy
        leaves (the route's, and `user`'s when a Slack user started it). Cancelling leaves the
        benchmark resumable (status interrupted)."""
        bench_id = bench_id or new_bench_id()
        routes = sorted({i.route_id for i in items})
        allowance = await self.spend.allowance(routes, user, max_cost)
        if allowance.max_cost is not None:
            self._check_budgetable(routes)
        progress, todo, tries = await self._resume(items, bench_id, allowance.max_cost)
        state = _Pass(
            bench_id=bench_id,
            origin=dataclasses.replace(origin or RunOrigin(), source="bench", bench_id=bench_id),
            progress=progress,
            budget=SpendBudget(spent=progress.spent_usd, allowance=allowance),
            tries=tries,
            on_progress=on_progress,
            on_checked=on_checked,
            finished={item.key: run for item, run in progress.outcomes},
        )
        semaphores = {rid: asyncio.Semaphore(self.per_route) for rid in {i.route_id for i in todo}}

        async def in_order(steps: list[BenchItem]) -> None:
            # A multi-step request's steps one after the other; other items are one step.
            for item in steps:
                async with semaphores[item.route_id]:
                    await self._one(item, state)

        try:
            async with asyncio.TaskGroup() as group:
                for steps in _conversations(todo):
                    group.create_task(in_order(steps))
        except BaseException:
            await asyncio.shield(asyncio.to_thread(self._mark, bench_id, "interrupted"))
            raise
        await asyncio.to_thread(self._mark, bench_id, "finished")
        return progress

    async def _resume(
        self, items: Sequence[BenchItem], bench_id: str, max_cost: float | None
    ) -> tuple[BenchProgress, list[BenchItem], dict[str, int]]:
        """Progress so far (runs already finished under this id), what is left, and how many
        tries each item has had (its next run gets a new request key)."""
        previous = await asyncio.to_thread(
            lambda: list(self.runs.runlog.iter_all(bench_id=bench_id))
        )
        finished: dict[str, Run] = {}
        tries: dict[str, int] = {}
        for r in previous:
            if r.request_key:
                item_key = r.request_key.split("#")[0].split(":", 1)[1]
                tries[item_key] = tries.get(item_key, 0) + 1
                if r.status in FINISHED:
                    finished[item_key] = r
        progress = BenchProgress(bench_id, total=len(items), max_cost=max_cost)
        for r in previous:
            progress.count(r)
            if r.cost_usd is not None:
                progress.spent_usd += r.cost_usd
            elif r.images > 0 or r.task_id is not None:
                # Billed at an unknown cost: the budget counts it at the route's estimate.
                estimate = (
                    self.spend.estimate(r.route_id) if r.route_id in self.runs.executors else None
                )
                progress.spent_usd += estimate.usd if estimate is not None else 0.0
        todo: list[BenchItem] = []
        for item in items:
            if item.key in finished:
                progress.done += 1
                progress.resumed += 1
                progress.outcomes.append((item, finished[item.key]))
            else:
                todo.append(item)
        return progress, todo, tries

    async def _one(self, item: BenchItem, state: _Pass) -> None:
        """One output: skipped, refused before any call (logged), or run within the budget."""
        link: StepLink | None = None
        if item.step == 1:
            request, refusal = self._request(item)
            if item.prompt.step_count > 1:
                link = StepLink(f"{state.bench_id}:{item.conversation}", 1, item.prompt.step_count)
        else:
            follow_up = await self._follow_up(item, state)
            if isinstance(follow_up, str):
                await state.skip(item, follow_up)
                return
            request, refusal, link = follow_up
        state.tries[item.key] = state.tries.get(item.key, 0) + 1
        origin = dataclasses.replace(
            state.origin,
            bench_family=item.prompt.family,
            request_key=f"{state.bench_id}:{item.key}#{state.tries[item.key]}",
            step=link,
        )
        estimate = 0.0
        hold = Reservation()
        if refusal is None:
            # Refusals cost nothing, so only calls that will be sent meet the budget, then the
            # daily caps shared with every other run in flight (any process).
            estimate = self._estimate(item, request, state.progress)
            reason = state.reserve(item.route_id, estimate)
            if reason is None:
                try:
                    hold = await self.spend.reserve(
                        [item.route_id], state.origin.slack_user, request
                    )
                except OverCap as exc:
                    state.settle(item.route_id, estimate, 0.0)
                    reason = str(exc)
            if reason is not None:
                await state.skip(item, reason)
                return
        try:
            run = await self._run_item(item, request, refusal, origin)
        except DuplicateRequest:
            state.settle(item.route_id, estimate, 0.0)
            await state.skip(item, "another process is running this output")
            return
        finally:
            await self.spend.release(hold)
        state.settle(item.route_id, estimate, run.cost_usd)
        state.progress.count(run)
        state.finished[item.key] = run
        state.progress.outcomes.append((item, run))
        state.progress.done += 1
        await state.notify(item, run)
        if self.checks is not None and run.status == "succeeded":
            # After the output is shown: the checks never hold its posting back.
            await state.checked(item, run, await self.checks.check(run))

    def _mark(self, bench_id: str, status: str) -> None:
        if self.benches.get(bench_id) is not None:
            self.benches.set_status(bench_id, status)

    async def _follow_up(
        self, item: BenchItem, state: _Pass
    ) -> tuple[ImageRequest, str | None, StepLink] | str:
        """A later step's request, fed by the step before it the way this route allows (and
        the refusal to log when it cannot be), or why it cannot run yet."""
        caps = self.runs.route(item.route_id).capabilities()
        request = item.prompt.request(item.step)
        earlier = item.step - 1
        previous = state.finished.get(item.previous_key or "")
        link = StepLink(
            conversation=f"{state.bench_id}:{item.conversation}",
            step=item.step,
            steps=item.prompt.step_count,
            follows_run=previous.id if previous is not None else None,
        )
        if not caps.conversation and not caps.edits:
            link = dataclasses.replace(link, carried_by="unavailable")
            return request, NEEDS_EDITS.format(step=item.step, earlier=earlier), link
        if previous is None:
            return f"step {earlier} was not run, so step {item.step} has nothing to continue"
        if previous.status != "succeeded":
            return (
                f"step {earlier} did not succeed ({previous.error_class or previous.status}), "
                f"so step {item.step} has nothing to continue"
            )
        if caps.conversation:
            if not previous.response_id:
                return f"step {earlier} has no response id to continue"
            request = dataclasses.replace(request, previous_response_id=previous.response_id)
            link = dataclasses.replace(link, carried_by="previous_response_id")
        else:
            image = await asyncio.to_thread(self._output_of, previous)
            if image is None:
                return f"step {earlier}'s output could not be read back from the asset store"
            # The edit takes the earlier output as its input (and its shape, where the route
            # takes no size on edits).
            size = request.size if caps.edit_size else None
            request = dataclasses.replace(request, input_images=(image,), size=size)
            link = dataclasses.replace(link, carried_by="input_image")
        return request, self._refusal(item.route_id, request), link

    def _output_of(self, run: Run) -> InputImage | None:
        """A finished step's first output image, read back from the asset store."""
        if run.id is None:
            return None
        outputs = self.runs.runlog.assets(run.id, role="output")
        if not outputs:
            return None
        try:
            data = self.runs.assets.get(outputs[0].path)
        except (AssetStoreError, OSError):
            return None
        return InputImage(
            data=data,
            mime=outputs[0].mime,
            name=f"run-{run.id}.{extension_for(outputs[0].mime)}",
            source=outputs[0].path,
        )

    def _check_budgetable(self, route_ids: Iterable[str]) -> None:
        """A budget is kept by reserving each call's estimate before it is sent: a route that
        nothing on file prices cannot be kept under it, so it is refused up front rather than
        run as if it cost $0."""
        unpriced = [rid for rid in route_ids if self.spend.estimate(rid) is None]
        if unpriced:
            names = ", ".join(f"`{rid}`" for rid in unpriced)
            raise BenchError(
                f"a budget cannot be kept on {names}: nothing on file prices its calls, so "
                "set estimated_usd_per_image (or a `pricing` table) on the route, or run the "
                "benchmark without a budget"
            )

    def _estimate(self, item: BenchItem, request: ImageRequest, progress: BenchProgress) -> float:
        """The route's estimate for the request (routes.pricing), or its plain per-image
        estimate for a request no price row covers. Nothing to reserve only on a route with
        no price at all, which runs only without a budget (noted: its cost is known after the
        call, if at all)."""
        estimate = self.spend.estimate(item.route_id, request)
        if estimate is None:
            plain = self.spend.estimate(item.route_id)
            if plain is not None:
                return plain.usd * max(request.n, 1)
            progress.unpriced.add(item.route_id)
            return 0.0
        return estimate.usd

    def _request(self, item: BenchItem) -> tuple[ImageRequest, str | None]:
        """The request and, if the route must refuse it before any call, the sentence why."""
        try:
            request = item.prompt.request()
        except InvalidRequest as exc:
            # Options no route could take (checked before any route): logged on this route.
            return ImageRequest(prompt=item.prompt.prompt), str(exc)
        return request, self._refusal(item.route_id, request)

    def _refusal(self, route_id: str, request: ImageRequest) -> str | None:
        try:
            self.validator.check([route_id], request)
        except InvalidRequest as exc:
            # The edge family's point: how each route refuses. Logged as a run, nothing sent.
            return str(exc)
        return None

    async def _run_item(
        self, item: BenchItem, request: ImageRequest, refusal: str | None, origin: RunOrigin
    ) -> Run:
        runs = self.runs
        if refusal is not None:
            return await written(runs.record_refusal, item.route_id, request, origin, refusal)
        outcome: RunOutcome = await runs.run(item.route_id, request, origin)
        return outcome.run


def _conversations(items: Sequence[BenchItem]) -> list[list[BenchItem]]:
    """The items grouped by conversation, each group's steps in order (one item for
    everything but a multi-step request)."""
    groups: dict[str, list[BenchItem]] = {}
    for item in items:
        groups.setdefault(item.conversation, []).append(item)
    return [sorted(group, key=lambda i: i.step) for group in groups.values()]


@dataclass
class _Pass:
    """One pass over a benchmark's items: where it stands and what it may still spend."""

    bench_id: str
    origin: RunOrigin
    progress: BenchProgress
    budget: SpendBudget
    tries: dict[str, int]
    on_progress: ProgressCallback | None
    # The run each item key finished with (this pass or an earlier one): what a later step
    # of a multi-step request continues.
    finished: dict[str, Run]
    on_checked: CheckedCallback | None = None

    def reserve(self, route_id: str, estimate: float) -> str | None:
        refusal = self.budget.reserve(route_id, estimate)
        self.progress.spent_usd = self.budget.spent
        return refusal

    def settle(self, route_id: str, estimate: float, actual: float | None) -> None:
        self.budget.settle(route_id, estimate, actual)
        self.progress.spent_usd = self.budget.spent

    async def notify(self, item: BenchItem, run: Run | None) -> None:
        if self.on_progress is not None:
            result = self.on_progress(self.progress, item, run)
            if result is not None:
                await result

    async def checked(self, item: BenchItem, run: Run, report: CheckReport) -> None:
        if self.on_checked is not None:
            result = self.on_checked(item, run, report)
            if result is not None:
                await result

    async def skip(self, item: BenchItem, reason: str) -> None:
        self.progress.skipped.append((item, reason))
        self.progress.done += 1
        await self.notify(item, None)
