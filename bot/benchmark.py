"""The route benchmark: the five prompt families on the chosen routes, every output a run.

A benchmark has an id and a row in `benches` holding its plan (routes, families, repeats,
budget, prompt file), so `--resume ID` needs nothing else. Each (route, prompt, repeat) item's
run carries the key `<bench id>:<route>:<prompt id>:<repeat>#<try>`: a resumed benchmark keeps
what finished (succeeded or failed) and redoes only what was interrupted or skipped. The budget
is checked before each call with the route's per-image list price.
"""

from __future__ import annotations

import asyncio
import dataclasses
import mimetypes
import re
import tomllib
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from bot.commands import build_request
from bot.runs import RunOrigin, RunOutcome
from bot.runtime import Runtime
from routes.errors import InvalidRequest
from routes.model import ImageRequest, InputImage
from routes.pricing import list_price_estimate
from storage.benches import BenchExists, BenchLog
from storage.runlog import DuplicateRequest
from storage.tables import Bench, Run

FAMILIES = ("product", "poster", "edit", "assistant", "edge")
FINISHED = ("succeeded", "failed")
OPTION_KEYS = ("size", "quality", "n", "background", "format", "seed", "negative")
DEFAULT_PER_ROUTE = 2
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class BenchError(ValueError):
    """A bad prompt file or bench option: one sentence for the user."""


@dataclass(frozen=True)
class BenchPrompt:
    id: str
    family: str
    prompt: str
    options: dict[str, str]
    inputs: tuple[InputImage, ...] = ()
    mask: InputImage | None = None
    note: str = ""

    def request(self) -> ImageRequest:
        request = build_request({"prompt": self.prompt, **self.options})
        return dataclasses.replace(request, input_images=self.inputs, mask=self.mask)


def _image(base: Path | None, name: str, source: str) -> InputImage:
    if base is None:
        data = resources.files("bot").joinpath(f"data/benchmark/{name}").read_bytes()
    else:
        path = base / name
        if not path.is_file():
            raise BenchError(f"{source}: input image {name} not found next to the prompt file")
        data = path.read_bytes()
    mime = mimetypes.guess_type(name)[0] or "image/png"
    return InputImage(data=data, mime=mime, name=Path(name).name, source=f"bench:{name}")


def load_prompts(path: Path | None = None) -> list[BenchPrompt]:
    """The shipped default set, or a team's own TOML file of the same format."""
    if path is None:
        text = resources.files("bot").joinpath("data/benchmark/default.toml").read_text("utf-8")
        source, base = "default prompt set", None
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise BenchError(f"{path}: cannot read the prompt file ({exc.strerror})") from None
        source, base = str(path), path.parent
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BenchError(f"{source}: not valid TOML: {exc}") from None
    prompts: list[BenchPrompt] = []
    seen: set[str] = set()
    for i, row in enumerate(raw.get("prompt", []), 1):
        prompt = _prompt(row, f"{source}: prompt #{i}", base)
        if prompt.id in seen:
            raise BenchError(f"{source}: prompt #{i}: id {prompt.id} is used twice")
        seen.add(prompt.id)
        prompts.append(prompt)
    if not prompts:
        raise BenchError(f"{source}: no [[prompt]] entries")
    return prompts


def _prompt(row: dict[str, Any], where: str, base: Path | None) -> BenchPrompt:
    pid, family, text = row.get("id"), row.get("family"), row.get("prompt")
    if not pid or not text:
        raise BenchError(f"{where} needs an id and a prompt")
    if not _ID.match(str(pid)):
        raise BenchError(f"{where}: id {pid!r} may only use letters, digits, - and _")
    if family not in FAMILIES:
        raise BenchError(f"{where}: family must be one of {', '.join(FAMILIES)}")
    options = {k: str(row[k]) for k in OPTION_KEYS if k in row}
    try:
        build_request({"prompt": str(text), **options})  # typos fail here, not on every route
    except InvalidRequest as exc:
        raise BenchError(f"{where} ({pid}): {exc}") from None
    inputs = tuple(_image(base, str(name), where) for name in _names(row.get("input")))
    mask = _image(base, str(row["mask"]), where) if row.get("mask") else None
    return BenchPrompt(
        str(pid), str(family), str(text), options, inputs, mask, str(row.get("note", ""))
    )


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def new_bench_id() -> str:
    return f"b{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class BenchPlan:
    """What a benchmark runs; stored with its id so a resume rebuilds the same items."""

    routes: tuple[str, ...]
    families: tuple[str, ...] = FAMILIES
    repeat: int = 1
    max_cost: float | None = None
    per_route: int = DEFAULT_PER_ROUTE
    prompt_set: Path | None = None  # None: the shipped default set

    @classmethod
    def from_row(cls, row: Bench) -> BenchPlan:
        return cls(
            routes=tuple(row.routes),
            families=tuple(row.families) or FAMILIES,
            repeat=row.repeat,
            max_cost=row.max_cost_usd,
            per_route=row.per_route,
            prompt_set=Path(row.prompt_set) if row.prompt_set else None,
        )

    def with_changes(self, **changes: Any) -> BenchPlan:
        """The stored plan with the options given again on resume (None = keep)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass
class BenchItem:
    route_id: str
    prompt: BenchPrompt
    repeat: int

    @property
    def key(self) -> str:
        return f"{self.route_id}:{self.prompt.id}:{self.repeat}"


@dataclass
class BenchProgress:
    bench_id: str
    total: int
    done: int = 0
    skipped: list[tuple[BenchItem, str]] = field(default_factory=list)
    outcomes: list[tuple[BenchItem, Run]] = field(default_factory=list)
    spent_usd: float = 0.0
    resumed: int = 0  # items already finished by an earlier, interrupted attempt
    max_cost: float | None = None
    # Routes whose calls counted as $0 before the call (no per-image list price on file).
    unpriced: set[str] = field(default_factory=set)


ProgressCallback = Callable[[BenchProgress, BenchItem, Run | None], Awaitable[None] | None]


class Budget:
    """Spend reserved before each call and settled with the real cost after it.

    Synchronous on purpose: reserve() has no await, so concurrent items cannot both pass."""

    def __init__(
        self,
        progress: BenchProgress,
        max_cost: float | None,
        route_caps: Mapping[str, float] | None,
    ) -> None:
        self.progress = progress
        self.max_cost = max_cost
        self.route_caps = dict(route_caps or {})
        self.route_spent: dict[str, float] = {}

    def reserve(self, route_id: str, estimate: float) -> str | None:
        """None and the estimate reserved, or why the call would pass a cap."""
        spent = self.progress.spent_usd
        if self.max_cost is not None and spent + estimate > self.max_cost + 1e-9:
            return (
                f"budget: ${spent:.2f} spent, next ~${estimate:.2f} would pass the cap of "
                f"${self.max_cost:.2f}"
            )
        cap = self.route_caps.get(route_id)
        route_spent = self.route_spent.get(route_id, 0.0)
        if cap is not None and route_spent + estimate > cap + 1e-9:
            return f"route daily spend cap: ${cap:.2f} left for `{route_id}` today"
        self.progress.spent_usd += estimate
        self.route_spent[route_id] = route_spent + estimate
        return None

    def settle(self, route_id: str, estimate: float, actual: float | None) -> None:
        delta = (actual or 0.0) - estimate
        self.progress.spent_usd += delta
        self.route_spent[route_id] = self.route_spent.get(route_id, 0.0) + delta


class BenchRunner:
    """Runs a benchmark through RunService so every output is an ordinary, fully logged run."""

    def __init__(self, runtime: Runtime, *, per_route_concurrency: int = DEFAULT_PER_ROUTE) -> None:
        self.runtime = runtime
        self.per_route = per_route_concurrency
        self.benches = BenchLog(runtime.engine)

    # -- planning ------------------------------------------------------------------------
    def plan(
        self,
        prompts: Sequence[BenchPrompt],
        route_ids: Sequence[str],
        families: Iterable[str] | None,
        repeat: int,
    ) -> list[BenchItem]:
        wanted = set(families or FAMILIES)
        unknown = wanted - set(FAMILIES)
        if unknown:
            raise BenchError(f"unknown family {sorted(unknown)[0]}: use {', '.join(FAMILIES)}")
        if not route_ids:
            raise BenchError("no routes to benchmark: configure one or pass --routes")
        missing = [r for r in route_ids if r not in self.runtime.executors]
        if missing:
            known = ", ".join(self.runtime.route_ids)
            raise BenchError(f"There is no route `{missing[0]}` (configured: {known}).")
        if not 1 <= repeat <= 10:
            raise BenchError("--repeat must be between 1 and 10")
        items = [
            BenchItem(rid, p, r)
            for p in prompts
            if p.family in wanted
            for rid in route_ids
            for r in range(repeat)
        ]
        if not items:
            raise BenchError(f"the prompt set has no prompts in {', '.join(sorted(wanted))}")
        return items

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
        if resume and not _ID.match(resume):
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
        origin: RunOrigin | None = None,
        on_progress: ProgressCallback | None = None,
        route_caps: Mapping[str, float] | None = None,
    ) -> BenchProgress:
        """Run what is not finished yet. `route_caps`: USD each route may still spend (Slack
        users' daily caps). Cancelling leaves the benchmark resumable (status interrupted)."""
        bench_id = bench_id or new_bench_id()
        origin = origin or RunOrigin(source="bench")
        previous = await asyncio.to_thread(
            lambda: list(self.runtime.runlog.iter_all(bench_id=bench_id))
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
        progress.spent_usd = sum(r.cost_usd or 0.0 for r in previous)
        todo: list[BenchItem] = []
        for item in items:
            if item.key in finished:
                progress.done += 1
                progress.resumed += 1
                progress.outcomes.append((item, finished[item.key]))
            else:
                todo.append(item)
        budget = Budget(progress, max_cost, route_caps)
        semaphores = {rid: asyncio.Semaphore(self.per_route) for rid in {i.route_id for i in todo}}

        async def notify(item: BenchItem, run: Run | None) -> None:
            if on_progress is not None:
                result = on_progress(progress, item, run)
                if result is not None:
                    await result

        async def skip(item: BenchItem, reason: str) -> None:
            progress.skipped.append((item, reason))
            progress.done += 1
            await notify(item, None)

        async def one(item: BenchItem) -> None:
            async with semaphores[item.route_id]:
                reason = self._skip_reason(item)
                if reason is not None:
                    await skip(item, reason)
                    return
                tries[item.key] = tries.get(item.key, 0) + 1
                run_origin = dataclasses.replace(
                    origin,
                    source="bench",
                    bench_id=bench_id,
                    bench_family=item.prompt.family,
                    request_key=f"{bench_id}:{item.key}#{tries[item.key]}",
                )
                request, refusal = self._request(item)
                estimate = 0.0
                if refusal is None:
                    # Refusals cost nothing, so only calls that will be sent meet the budget.
                    estimate = self._estimate(item, progress)
                    reason = budget.reserve(item.route_id, estimate)
                    if reason is not None:
                        await skip(item, reason)
                        return
                try:
                    run = await self._run_item(item, request, refusal, run_origin)
                except DuplicateRequest:
                    budget.settle(item.route_id, estimate, 0.0)
                    await skip(item, "another process is running this output")
                    return
                budget.settle(item.route_id, estimate, run.cost_usd)
                progress.outcomes.append((item, run))
                progress.done += 1
                await notify(item, run)

        try:
            async with asyncio.TaskGroup() as group:
                for item in todo:
                    group.create_task(one(item))
        except BaseException:
            await asyncio.shield(asyncio.to_thread(self._mark, bench_id, "interrupted"))
            raise
        await asyncio.to_thread(self._mark, bench_id, "finished")
        return progress

    def _mark(self, bench_id: str, status: str) -> None:
        if self.benches.get(bench_id) is not None:
            self.benches.set_status(bench_id, status)

    def _skip_reason(self, item: BenchItem) -> str | None:
        kind = self.runtime.executors[item.route_id].route.kind
        if item.prompt.family == "assistant" and kind != "openai-responses":
            return "assistant requests run on openai-responses routes only"
        return None

    def _estimate(self, item: BenchItem, progress: BenchProgress) -> float:
        """The route's per-image list price times n; 0 (and noted) when there is none, as for
        token-priced and unpriced routes: their real cost is only known after the call."""
        route = self.runtime.executors[item.route_id].route
        estimate = list_price_estimate(route, int(item.prompt.options.get("n", "1") or 1))
        if estimate is None:
            if route.kind != "demo":  # the offline demo is free, not unpriced
                progress.unpriced.add(item.route_id)
            return 0.0
        return estimate

    def _request(self, item: BenchItem) -> tuple[ImageRequest, str | None]:
        """The request and, if the route must refuse it before any call, the sentence why."""
        try:
            request = item.prompt.request()
        except InvalidRequest as exc:
            # Options no route could take (checked before any route): logged on this route.
            return ImageRequest(prompt=item.prompt.prompt), str(exc)
        try:
            self.runtime.runs.check([item.route_id], request)
        except InvalidRequest as exc:
            # The edge family's point: how each route refuses. Logged as a run, nothing sent.
            return request, str(exc)
        return request, None

    async def _run_item(
        self, item: BenchItem, request: ImageRequest, refusal: str | None, origin: RunOrigin
    ) -> Run:
        runs = self.runtime.runs
        if refusal is not None:
            return await asyncio.to_thread(
                runs.record_refusal, item.route_id, request, origin, refusal
            )
        outcome: RunOutcome = await runs.run(item.route_id, request, origin)
        return outcome.run
