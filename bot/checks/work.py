"""The checks themselves, as one pure step: a run's images and what it asked in, results out.

Nothing here reads the database or the asset store, so a job can travel to the checks process
(bot.checks.service) and its results travel back. Each image is decoded once, for every check
that reads it. Nothing here ever raises for a check: a check that raises is "not run", with
the reason.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.checks.delivery import delivery_check
from bot.checks.model import Ask, CheckResult, not_run
from bot.checks.pictures import ImageUnreadable, open_image

if TYPE_CHECKING:
    from PIL import Image

    from routes.config import CheckSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Earlier:
    """The output a repeat is compared with: the earlier run's first image, or its fingerprint
    when that is known already (no second decode), or why it could not be read."""

    run_id: int
    image: bytes | None = None
    fingerprint: str | None = None  # pHash, as hex
    problem: str | None = None


@dataclass(frozen=True)
class Job:
    outputs: tuple[bytes, ...]
    ask: Ask
    settings: CheckSettings
    earlier: Earlier | None = None


@dataclass(frozen=True)
class Done:
    results: list[CheckResult]
    fingerprint: str | None = None  # of the first image (pHash, hex), for the next repeat


def run_checks(job: Job) -> Done:
    """Every check that applies to the job's images."""
    pictures: list[Image.Image | ImageUnreadable] = []
    for data in job.outputs:
        try:
            pictures.append(open_image(data))
        except ImageUnreadable as exc:
            pictures.append(exc)
    decoded = [p for p in pictures if not isinstance(p, ImageUnreadable)]
    whole = decoded if len(decoded) == len(job.outputs) else None  # else delivery says why
    results = [_guarded("delivery", 0, lambda: delivery_check(job.outputs, job.ask, whole))]
    first_print: str | None = None
    for position, picture in enumerate(pictures):
        if isinstance(picture, ImageUnreadable):
            # The delivery check says so for the run; each check of this image is not run.
            for name in image_check_names(job.ask):
                results.append(not_run(name, str(picture), position))
            continue
        for name, check in _image_checks(picture, job.ask, job.settings):
            results.append(_guarded(name, position, check))
        if position == 0:
            first_print = _fingerprint(picture)
            if job.earlier is not None:
                results.append(_repeat(first_print, job.earlier, job.settings))
    return Done(results, first_print)


def image_check_names(ask: Ask) -> list[str]:
    names = ["text"] if ask.texts else []
    names += ["edit"] if ask.source is not None else []
    return names + (["transparency"] if ask.transparent else [])


def _image_checks(
    picture: Image.Image, ask: Ask, settings: CheckSettings
) -> list[tuple[str, Callable[[], CheckResult]]]:
    """The checks that apply to one image, given what was asked."""
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


def _fingerprint(picture: Image.Image) -> str | None:
    from bot.checks.repeat import fingerprint

    try:
        return str(fingerprint(picture))
    except Exception:  # a third-party library may raise anything: no repeat check, logged
        log.warning("the image's fingerprint could not be taken", exc_info=True)
        return None


def _repeat(own: str | None, earlier: Earlier, settings: CheckSettings) -> CheckResult:
    """Against the latest earlier output of the same request on the same route."""

    def compare() -> CheckResult:
        from bot.checks.repeat import fingerprint, repeat_check

        if earlier.problem is not None:
            return not_run("repeat", earlier.problem)
        if own is None:
            return not_run("repeat", "the image's fingerprint could not be taken")
        theirs = earlier.fingerprint
        if theirs is None:
            assert earlier.image is not None
            theirs = str(fingerprint(open_image(earlier.image)))
        return repeat_check(own, theirs, earlier.run_id, settings.repeat_min_similarity)

    return _guarded("repeat", 0, compare)


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
