"""Runs a finished run's acceptance checks off the event loop and keeps them in the check log.

One worker thread per process does the checking (OCR is CPU-heavy and its engine is shared),
so checks queue behind each other rather than compete with the bot's own threads. Nothing here
ever fails a run: a check that raises is stored as "not run" with the reason, and a check pass
that cannot be stored is logged and still returned.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from bot.checks.delivery import delivery_check
from bot.checks.model import Ask, CheckReport, CheckResult, not_run
from bot.checks.pictures import ImageUnreadable, open_image
from routes.pacing import give_way
from storage.assets import AssetStore, AssetStoreError
from storage.checks import CheckLog
from storage.runlog import RunLog
from storage.tables import Run

if TYPE_CHECKING:
    from PIL import Image

    from routes.config import CheckSettings
    from routes.model import ImageRequest

log = logging.getLogger(__name__)


class AcceptanceChecks:
    """Checks every succeeded run's images against what was asked (bot.checks)."""

    def __init__(
        self, checklog: CheckLog, runlog: RunLog, assets: AssetStore, settings: CheckSettings
    ) -> None:
        self.checklog = checklog
        self.runlog = runlog
        self.assets = assets
        self.settings = settings
        self._pool: ThreadPoolExecutor | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    @property
    def worker(self) -> ThreadPoolExecutor:
        """The process's one checks thread (created on first use): checks queue behind it."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checks")
        return self._pool

    async def check(
        self,
        run: Run,
        images: Sequence[bytes] | None = None,
        request: ImageRequest | None = None,
    ) -> CheckReport:
        """Check a finished run in the checks' worker thread; an empty report when checks are
        off or the run has no image. `images` and `request` save reading back what the caller
        holds already."""
        if not self.enabled or run.status != "succeeded" or run.id is None:
            return CheckReport()
        await give_way()  # decoding and checking images waits for the acks in progress
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.worker, self.check_now, run, images, request)
        except Exception:  # whatever goes wrong, the run and its posting stay intact: log all
            log.warning("run %s: the acceptance checks could not run", run.id, exc_info=True)
            return CheckReport()

    def check_now(
        self,
        run: Run,
        images: Sequence[bytes] | None = None,
        request: ImageRequest | None = None,
    ) -> CheckReport:
        """The same, in the calling thread (the benchmark report, scripts)."""
        assert run.id is not None
        try:
            outputs = list(images) if images is not None else self._stored(run.id, "output")
            source, mask = self._inputs(run, request)
        except (AssetStoreError, OSError, SQLAlchemyError) as exc:
            reason = f"the run's images could not be read back ({type(exc).__name__})"
            results = [not_run("delivery", reason)]
        else:
            results = self._results(run, outputs, Ask.of(run, source, mask))
        rows = [r.row() for r in results]
        try:
            self.checklog.replace(run.id, rows)
        except SQLAlchemyError as exc:
            log.warning("run %s: checks could not be stored: %s", run.id, type(exc).__name__)
        return CheckReport(rows)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    # -- the checks ------------------------------------------------------------------------
    def _results(self, run: Run, outputs: list[bytes], ask: Ask) -> list[CheckResult]:
        # Each image is decoded once, for every check that reads it (a 1024x1024 PNG costs
        # tens of milliseconds of CPU).
        pictures: list[Image.Image | ImageUnreadable] = []
        for data in outputs:
            try:
                pictures.append(open_image(data))
            except ImageUnreadable as exc:
                pictures.append(exc)
        decoded = [p for p in pictures if not isinstance(p, ImageUnreadable)]
        whole = decoded if len(decoded) == len(outputs) else None  # else delivery says why
        results = [_guarded("delivery", 0, lambda: delivery_check(outputs, ask, whole))]
        for position, picture in enumerate(pictures):
            if isinstance(picture, ImageUnreadable):
                # The delivery check says so for the run; each check of this image is not run.
                for name in self._image_check_names(ask):
                    results.append(not_run(name, str(picture), position))
                continue
            for name, check in self._image_checks(picture, ask):
                results.append(_guarded(name, position, check))
            if position == 0:
                results.extend(self._repeat(run, picture))
        return results

    @staticmethod
    def _image_check_names(ask: Ask) -> list[str]:
        names = ["text"] if ask.texts else []
        names += ["edit"] if ask.source is not None else []
        return names + (["transparency"] if ask.transparent else [])

    def _image_checks(
        self, picture: Image.Image, ask: Ask
    ) -> list[tuple[str, Callable[[], CheckResult]]]:
        """The checks that apply to one image, given what was asked."""
        settings = self.settings
        checks: list[tuple[str, Callable[[], CheckResult]]] = []
        if ask.texts:
            checks.append(("text", lambda: _text(picture, ask, settings)))
        source = ask.source
        if source is not None:
            checks.append(("edit", lambda: _edit(picture, source, ask.mask, settings)))
        if ask.transparent:
            threshold = settings.transparency_min_share
            checks.append(("transparency", lambda: _transparency(picture, threshold)))
        return checks

    def _repeat(self, run: Run, picture: Image.Image) -> list[CheckResult]:
        """Against the latest earlier output of the same request on the same route, if any."""
        try:
            earlier = self.checklog.previous_output(run)
        except SQLAlchemyError as exc:
            return [not_run("repeat", f"earlier runs could not be read ({type(exc).__name__})")]
        if earlier is None or earlier.id is None:
            return []
        earlier_id = earlier.id

        def compare() -> CheckResult:
            from bot.checks.repeat import repeat_check

            before = open_image(self._stored(earlier_id, "output")[0])
            return repeat_check(picture, before, earlier_id, self.settings.repeat_min_similarity)

        return [_guarded("repeat", 0, compare)]

    def _stored(self, run_id: int, role: str) -> list[bytes]:
        return [self.assets.get(a.path) for a in self.runlog.assets(run_id, role=role)]

    def _inputs(self, run: Run, request: ImageRequest | None) -> tuple[bytes | None, bytes | None]:
        """The edit's source image and mask: from the request in hand, else as stored."""
        if request is not None:
            source = request.input_images[0].data if request.input_images else None
            return source, request.mask.data if request.mask is not None else None
        if not run.input_assets or run.id is None:
            return None, None
        inputs = self._stored(run.id, "input")
        masks = self._stored(run.id, "mask")
        return (inputs[0] if inputs else None), (masks[0] if masks else None)


def _text(picture: Image.Image, ask: Ask, settings: CheckSettings) -> CheckResult:
    from bot.checks.text import text_check

    return text_check(picture, ask.texts, settings.text_min_accuracy)


def _edit(
    picture: Image.Image, source: bytes, mask: bytes | None, settings: CheckSettings
) -> CheckResult:
    from bot.checks.edit import edit_check

    return edit_check(picture, source, mask, settings)


def _transparency(picture: Image.Image, threshold: float) -> CheckResult:
    from bot.checks.transparency import transparency_check

    return transparency_check(picture, threshold)


def _guarded(name: str, position: int, check: Callable[[], CheckResult]) -> CheckResult:
    """Run one check; anything it raises makes it "not run" (with the reason), never a failed
    run: an OCR engine that cannot load must not cost the user their image."""
    started = time.perf_counter()
    try:
        result = check()
    except ImageUnreadable as exc:
        return not_run(name, str(exc), position)
    except Exception as exc:  # a third-party engine may raise anything: keep the run, log all
        log.warning("check %s could not run", name, exc_info=True)
        return not_run(name, f"the check could not run ({type(exc).__name__})", position)
    return dataclasses.replace(result, position=position, duration_s=time.perf_counter() - started)
