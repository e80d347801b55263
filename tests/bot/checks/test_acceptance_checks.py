"""AcceptanceChecks over real runs on the demo route: stored per run, thresholds from the
routes file, "not run" instead of a failed run, repeats compared with the earlier output."""

from __future__ import annotations

import dataclasses

from bot.checks.model import FAILED, NOT_RUN, PASSED
from bot.core.requests import build_request
from bot.core.runs import RunOrigin
from bot.wiring.runtime import Runtime
from routes.model import InputImage
from tests.bot.checks import calibration as cal
from tests.conftest import RuntimeOpener

DEMO = """
[routes.demo]
kind = "demo"
"""


async def test_a_quoted_text_prompt_is_read_back_and_stored(open_runtime: RuntimeOpener):
    runtime = open_runtime(DEMO)
    request = build_request(
        {"prompt": "A shop sign reading 'OPEN LATE' over a door", "size": "512x512"}
    )
    outcome = await runtime.runs.run("demo", request, RunOrigin())
    report = await runtime.checks.check(outcome.run, [i.data for i in outcome.images], request)
    lines = {line.name: line for line in report.lines()}
    assert lines["text"].status == PASSED and (lines["text"].score or 0) >= 0.9
    assert lines["delivery"].status == PASSED
    assert report.verdict is True
    assert outcome.run.id is not None
    stored = runtime.checks.checklog.for_run(outcome.run.id)
    assert {r.name for r in stored} == {"text", "delivery"}
    assert all(r.duration_s is not None for r in stored)
    # The same checks from what was stored, with nothing in hand.
    again = await runtime.checks.check(outcome.run)
    assert [(r.name, r.status) for r in again.rows] == [(r.name, r.status) for r in stored]


async def test_a_prompt_without_quotes_has_no_text_check(open_runtime: RuntimeOpener):
    runtime = open_runtime(DEMO)
    request = build_request({"prompt": "a red kite", "size": "256x256"})
    outcome = await runtime.runs.run("demo", request, RunOrigin())
    report = await runtime.checks.check(outcome.run)
    assert [line.name for line in report.lines()] == ["delivery"]


async def test_a_repeat_is_compared_with_the_earlier_output(open_runtime: RuntimeOpener):
    runtime = open_runtime(DEMO)
    request = build_request({"prompt": "a lighthouse at dusk", "size": "256x256"})
    first = await runtime.runs.run("demo", request, RunOrigin())
    second = await runtime.runs.run("demo", request, RunOrigin())
    assert not [
        line for line in (await runtime.checks.check(first.run)).lines() if line.name == "repeat"
    ]
    lines = {line.name: line for line in (await runtime.checks.check(second.run)).lines()}
    assert lines["repeat"].status == PASSED and lines["repeat"].score == 1.0
    assert f"run #{first.run.id}" in lines["repeat"].summary


async def test_an_edit_and_a_transparent_sticker(open_runtime: RuntimeOpener):
    runtime = open_runtime(DEMO)
    case = cal.edit_case()
    edit = dataclasses.replace(
        build_request({"prompt": "new background", "size": "1024x1024"}),
        input_images=(InputImage(case.source, "image/png", "src.png", "test"),),
        mask=InputImage(case.mask, "image/png", "mask.png", "test"),
    )
    outcome = await runtime.runs.run("demo", edit, RunOrigin())
    report = await runtime.checks.check(outcome.run)  # source and mask read back from storage
    line = {x.name: x for x in report.lines()}["edit"]
    # The demo tints the whole picture and paints nothing in particular inside the mask.
    assert line.status == FAILED and "outside mask" in line.summary
    assert any("hardly changed inside the mask" in r for r in line.reasons)
    sticker = build_request(
        {"prompt": "a sticker", "size": "256x256", "background": "transparent", "format": "png"}
    )
    outcome = await runtime.runs.run("demo", sticker, RunOrigin())
    line = {x.name: x for x in (await runtime.checks.check(outcome.run)).lines()}["transparency"]
    assert line.status == PASSED and "transparent" in line.summary


async def test_an_unreadable_image_is_not_run_and_the_run_stays_succeeded(
    open_runtime: RuntimeOpener,
):
    runtime = open_runtime(DEMO)
    request = build_request({"prompt": "a sign reading 'HELLO'", "size": "256x256"})
    outcome = await runtime.runs.run("demo", request, RunOrigin())
    report = await runtime.checks.check(outcome.run, [b"not an image"], request)
    assert {line.status for line in report.lines()} == {NOT_RUN}
    assert all(line.reasons for line in report.lines())
    assert report.verdict is None
    assert outcome.run.id is not None
    assert runtime.runlog.get(outcome.run.id).status == "succeeded"  # type: ignore[union-attr]


async def test_thresholds_and_switch_come_from_the_routes_file(open_runtime: RuntimeOpener):
    strict = open_runtime(DEMO + "\n[checks]\ntext_min_accuracy = 1.0\n")
    assert strict.checks.settings.text_min_accuracy == 1.0
    off = open_runtime(DEMO + "\n[checks]\nenabled = false\n", database_url=None)
    request = build_request({"prompt": "a sign reading 'HELLO'", "size": "256x256"})
    outcome = await off.runs.run("demo", request, RunOrigin())
    assert (await off.checks.check(outcome.run)).rows == ()


async def test_an_unreadable_image_without_quoted_text_is_still_stored(
    open_runtime: RuntimeOpener,
):
    runtime = open_runtime(DEMO)
    request = build_request({"prompt": "a plain red kite", "size": "256x256"})
    outcome = await runtime.runs.run("demo", request, RunOrigin())
    report = await runtime.checks.check(outcome.run, [b"not an image"], request)
    assert [(line.name, line.status) for line in report.lines()] == [("delivery", NOT_RUN)]
    assert outcome.run.id is not None
    stored = runtime.checks.checklog.for_run(outcome.run.id)
    assert [(r.name, r.status) for r in stored] == [("delivery", NOT_RUN)]


async def test_a_repeat_is_compared_with_the_earlier_fingerprint_once_known(
    open_runtime: RuntimeOpener,
):
    runtime = open_runtime(DEMO)
    request = build_request({"prompt": "a windmill in fog", "size": "256x256"})
    first = await runtime.runs.run("demo", request, RunOrigin())
    second = await runtime.runs.run("demo", request, RunOrigin())
    third = await runtime.runs.run("demo", request, RunOrigin())
    assert first.run.id is not None and second.run.id is not None
    await runtime.checks.check(first.run)  # its fingerprint is kept
    # Each earlier image is gone from the store once checked: only what the checks kept of it
    # can compare a repeat with it.
    _delete_outputs(runtime, first.run.id)
    report = await runtime.checks.check(second.run, [i.data for i in second.images], request)
    lines = {line.name: line for line in report.lines()}
    assert lines["repeat"].status == PASSED and lines["repeat"].score == 1.0
    assert f"run #{first.run.id}" in lines["repeat"].summary
    _delete_outputs(runtime, second.run.id)
    report = await runtime.checks.check(third.run, [i.data for i in third.images], request)
    lines = {line.name: line for line in report.lines()}
    assert lines["repeat"].status == PASSED and f"run #{second.run.id}" in lines["repeat"].summary


def _delete_outputs(runtime: Runtime, run_id: int) -> None:
    for asset in runtime.runlog.assets(run_id, role="output"):
        runtime.assets.delete(asset.path)


async def test_a_repeat_whose_earlier_image_is_gone_is_not_run(open_runtime: RuntimeOpener):
    runtime = open_runtime(DEMO)
    request = build_request({"prompt": "a red barn", "size": "256x256"})
    first = await runtime.runs.run("demo", request, RunOrigin())
    second = await runtime.runs.run("demo", request, RunOrigin())
    assert first.run.id is not None
    _delete_outputs(runtime, first.run.id)
    report = await runtime.checks.check(second.run, [i.data for i in second.images], request)
    lines = {line.name: line for line in report.lines()}
    assert lines["repeat"].status == NOT_RUN
    (reason,) = lines["repeat"].reasons
    assert reason == f"run #{first.run.id}'s image could not be read (FileNotFoundError)"
    assert lines["delivery"].status == PASSED  # the run's own checks are not affected
