"""The route benchmark: the five prompt families on the configured routes, every output a run.

A benchmark has an id; each (route, prompt, repeat) item's run carries the key
`<bench id>:<route>:<prompt id>:<repeat>` (plus `#<try>`), so a resumed benchmark skips what
finished and redoes only what was interrupted. A budget cap is checked before each call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import mimetypes
import tomllib
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from bot.commands import build_request
from bot.runs import RunOrigin, RunOutcome
from bot.runtime import Runtime
from routes.errors import InvalidRequest
from routes.model import ImageRequest, InputImage
from storage.tables import Run

FAMILIES = ("product", "poster", "edit", "assistant", "edge")
FINISHED = ("succeeded", "failed")
OPTION_KEYS = ("size", "quality", "n", "background", "format", "seed", "negative")


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
        where = f"{source}: prompt #{i}"
        pid, family, text_ = row.get("id"), row.get("family"), row.get("prompt")
        if not pid or not text_:
            raise BenchError(f"{where} needs an id and a prompt")
        if family not in FAMILIES:
            raise BenchError(f"{where}: family must be one of {', '.join(FAMILIES)}")
        if pid in seen:
            raise BenchError(f"{where}: id {pid} is used twice")
        seen.add(pid)
        options = {k: str(row[k]) for k in OPTION_KEYS if k in row}
        inputs = tuple(_image(base, str(name), where) for name in _names(row.get("input")))
        mask = _image(base, str(row["mask"]), where) if row.get("mask") else None
        prompts.append(
            BenchPrompt(
                str(pid), str(family), str(text_), options, inputs, mask, row.get("note", "")
            )
        )
    if not prompts:
        raise BenchError(f"{source}: no [[prompt]] entries")
    return prompts


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


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


ProgressCallback = Callable[[BenchProgress, BenchItem, Run | None], Awaitable[None] | None]


class BenchRunner:
    """Runs a benchmark through RunService so every output is an ordinary, fully logged run."""

    def __init__(self, runtime: Runtime, *, per_route_concurrency: int = 2) -> None:
        self.runtime = runtime
        self.per_route = per_route_concurrency

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
        missing = [r for r in route_ids if r not in self.runtime.executors]
        if missing:
            known = ", ".join(self.runtime.route_ids)
            raise BenchError(f"There is no route `{missing[0]}` (configured: {known}).")
        if not 1 <= repeat <= 10:
            raise BenchError("--repeat must be between 1 and 10")
        return [
            BenchItem(rid, p, r)
            for p in prompts
            if p.family in wanted
            for rid in route_ids
            for r in range(repeat)
        ]

    async def run(
        self,
        items: Sequence[BenchItem],
        *,
        bench_id: str | None = None,
        max_cost: float | None = None,
        origin: RunOrigin | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> BenchProgress:
        bench_id = bench_id or f"b{uuid.uuid4().hex[:10]}"
        origin = origin or RunOrigin(source="bench")
        previous = await asyncio.to_thread(
            lambda: list(self.runtime.runlog.iter_all(bench_id=bench_id))
        )
        finished = {
            r.request_key.split("#")[0].split(":", 1)[1]: r
            for r in previous
            if r.request_key and r.status in FINISHED
        }
        tries: dict[str, int] = {}
        for r in previous:
            if r.request_key:
                item_key = r.request_key.split("#")[0].split(":", 1)[1]
                tries[item_key] = tries.get(item_key, 0) + 1
        progress = BenchProgress(bench_id, total=len(items))
        progress.spent_usd = sum(r.cost_usd or 0.0 for r in previous)
        todo: list[BenchItem] = []
        for item in items:
            if item.key in finished:
                progress.done += 1
                progress.resumed += 1
                progress.outcomes.append((item, finished[item.key]))
            else:
                todo.append(item)
        semaphores = {rid: asyncio.Semaphore(self.per_route) for rid in {i.route_id for i in todo}}
        budget = asyncio.Lock()

        async def notify(item: BenchItem, run: Run | None) -> None:
            if on_progress is not None:
                result = on_progress(progress, item, run)
                if result is not None:
                    await result

        async def one(item: BenchItem) -> None:
            async with semaphores[item.route_id]:
                reason = self._skip_reason(item)
                if reason is None and max_cost is not None:
                    async with budget:
                        estimate = self._estimate(item)
                        if progress.spent_usd + estimate > max_cost + 1e-9:
                            reason = (
                                f"budget: ${progress.spent_usd:.2f} spent, next "
                                f"~${estimate:.2f} would pass the cap of ${max_cost:.2f}"
                            )
                        else:
                            progress.spent_usd += estimate  # reserved until the real cost is known
                if reason is not None:
                    progress.skipped.append((item, reason))
                    progress.done += 1
                    await notify(item, None)
                    return
                n = tries.get(item.key, 0) + 1
                run_origin = dataclasses.replace(
                    origin,
                    source="bench",
                    bench_id=bench_id,
                    bench_family=item.prompt.family,
                    request_key=f"{bench_id}:{item.key}#{n}",
                )
                run = await self._run_item(item, run_origin)
                if max_cost is not None:
                    async with budget:
                        progress.spent_usd += (run.cost_usd or 0.0) - self._estimate(item)
                else:
                    progress.spent_usd += run.cost_usd or 0.0
                progress.outcomes.append((item, run))
                progress.done += 1
                await notify(item, run)

        await asyncio.gather(*(one(item) for item in todo))
        return progress

    def _skip_reason(self, item: BenchItem) -> str | None:
        kind = self.runtime.executors[item.route_id].route.kind
        if item.prompt.family == "assistant" and kind != "openai-responses":
            return "assistant requests run on openai-responses routes only"
        return None

    def _estimate(self, item: BenchItem) -> float:
        price = getattr(self.runtime.executors[item.route_id].route, "price", None)
        per_image = getattr(price, "usd_per_image", None) if price is not None else None
        n = int(item.prompt.options.get("n", "1") or 1)
        return float(per_image or 0.0) * n

    async def _run_item(self, item: BenchItem, origin: RunOrigin) -> Run:
        runs = self.runtime.runs
        try:
            request = item.prompt.request()
        except InvalidRequest as exc:
            # Options no route could take (checked before any route): logged on this route.
            bare = ImageRequest(prompt=item.prompt.prompt)
            return await asyncio.to_thread(
                runs.record_refusal, item.route_id, bare, origin, str(exc)
            )
        try:
            runs.check([item.route_id], request)
        except InvalidRequest as exc:
            # The edge family's point: how each route refuses. Logged as a run, nothing sent.
            return await asyncio.to_thread(
                runs.record_refusal, item.route_id, request, origin, str(exc)
            )
        outcome: RunOutcome = await runs.run(item.route_id, request, origin)
        return outcome.run
