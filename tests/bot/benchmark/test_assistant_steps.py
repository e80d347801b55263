"""The benchmark's multi-step assistant family on every route, checked on the wire: on the
Responses route a real conversation (each turn continues the previous response id), on an
Images API route the client-side chain (each step edits the previous output), on a route that
cannot edit the steps it can do and a logged refusal for the rest; each step its own run,
linked to the one before it, and shown step by step in the report."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.benchmark.prompts import BenchError, load_prompts
from bot.benchmark.report import build_report
from bot.cli import app as cli_app
from storage.db import make_engine
from storage.runlog import RunLog
from storage.tables import Run
from tests.bot.benchmark.conftest import config
from tests.conftest import RuntimeOpener
from tests.fakes.bfl import BflFake
from tests.fakes.openai import OpenAIFake, b64png, png, responses_body
from tests.fakes.server import Reply

[PLANNER] = [p for p in load_prompts() if p.family == "assistant"]
STEP_2, STEP_3 = PLANNER.steps


@pytest.fixture
def bfl() -> Iterator[BflFake]:
    fake = BflFake(api_key="bfl-x").start()
    fake.statuses = []  # ready at the first poll
    yield fake
    fake.stop()


def with_flux(openai_fake: OpenAIFake, bfl: BflFake) -> str:
    # FLUX1.1 [pro] takes no input image: a route that cannot edit.
    return config(openai_fake) + (
        f'\n[routes.flux]\nkind = "bfl"\nmodel = "flux-pro-1.1"\napi_key = "bfl-x"\n'
        f'base_url = "{bfl.url}"\npoll_interval_seconds = 0.01\nbilling_owner = "Acme"\n'
    )


def image_answer(data: bytes) -> Reply:
    return Reply(200, {"created": 1, "data": [{"b64_json": base64.b64encode(data).decode()}]})


def edit_input(call_form: dict[str, object]) -> bytes:
    images = call_form.get("image[]") or call_form.get("image")
    first = images[0] if isinstance(images, list) else images
    assert isinstance(first, tuple)
    return bytes(first[1])


def by_route(runs: list[Run]) -> dict[str, list[Run]]:
    out: dict[str, list[Run]] = {}
    for run in sorted(runs, key=lambda r: r.request_key or ""):
        out.setdefault(run.route_id, []).append(run)
    return out


def test_cli_bench_runs_the_assistant_family_on_every_route_step_by_step(
    openai_fake: OpenAIFake, bfl: BflFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_output, second_output = png("navy", (1024, 1024)), png("teal", (1024, 1024))
    openai_fake.queue("generations", image_answer(first_output))
    openai_fake.queue("edits", image_answer(second_output))
    (tmp_path / "imageroute.toml").write_text(with_flux(openai_fake, bfl))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/bench.db")
    monkeypatch.setenv("ASSET_STORE", f"file://{tmp_path}/assets")
    result = CliRunner().invoke(
        cli_app,
        ["bench", "--routes", "assistant,paid,flux", "--families", "assistant", "--out", "rep"],
    )
    assert result.exit_code == 0, result.output
    started = re.search(
        r"benchmark (b[0-9a-f]{10}): 9 outputs on assistant, paid, flux", result.output
    )
    assert started is not None, result.output
    assert not openai_fake.rejections and not bfl.rejections

    # The Responses route: one conversation, each turn continuing the previous response.
    turns = [c.json() for c in openai_fake.calls("responses")]
    assert len(turns) == 3
    assert "previous_response_id" not in turns[0]
    assert turns[1]["previous_response_id"] == "resp_bench_1"
    assert turns[2]["previous_response_id"] == "resp_bench_2"
    assert turns[1]["input"][0]["content"] == [{"type": "input_text", "text": STEP_2}]
    # The Images API route: generate, then edit the previous output, step by step.
    [generation] = openai_fake.calls("generations")
    assert generation.json()["prompt"] == PLANNER.prompt
    edits = [c.multipart() for c in openai_fake.calls("edits")]
    assert [e["prompt"] for e in edits] == [STEP_2, STEP_3]
    assert edit_input(edits[0]) == first_output
    assert edit_input(edits[1]) == second_output
    # The route that cannot edit: its first step only reached the provider.
    assert len(bfl.submits("flux-pro-1.1")) == 1

    engine = make_engine(f"sqlite:///{tmp_path}/bench.db")
    runs = by_route(list(RunLog(engine).iter_all(bench_id=started[1])))
    engine.dispose()
    for route_id, kind in (("assistant", "previous_response_id"), ("paid", "input_image")):
        steps = runs[route_id]
        assert [r.status for r in steps] == ["succeeded"] * 3
        assert [r.params["step"]["step"] for r in steps] == [1, 2, 3]
        assert [r.params["step"]["follows_run"] for r in steps] == [None, steps[0].id, steps[1].id]
        assert [r.params["step"]["carried_by"] for r in steps] == [None, kind, kind]
        assert [r.prompt for r in steps] == [PLANNER.prompt, STEP_2, STEP_3]
    responses = runs["assistant"]
    assert [r.response_id for r in responses] == ["resp_bench_1", "resp_bench_2", "resp_bench_3"]
    assert responses[1].params["previous_response_id"] == "resp_bench_1"
    # Each turn billed as the text model's tokens plus the image tool's (gpt-5.4, gpt-image-2).
    turn_cost = (60 * 2.50 + 40 * 15.0) / 1e6 + (20 * 5.0 + 272 * 30.0) / 1e6
    assert [r.cost_usd for r in responses] == [pytest.approx(turn_cost)] * 3
    assert len(runs["paid"][1].input_assets) == 1  # the previous output, stored as the input
    flux = runs["flux"]
    assert flux[0].status == "succeeded"
    for refused in flux[1:]:
        assert refused.status == "failed" and refused.error_class == "unsupported"
        assert "needs an edit-capable route" in (refused.error_message or "")
        assert refused.cost_usd == 0.0 and refused.params["step"]["carried_by"] == "unavailable"

    report_shows_each_step((tmp_path / "rep" / "summary.md").read_text(), runs)
    page_shows_each_step((tmp_path / "rep" / "summary.html").read_text(), runs)


def report_shows_each_step(summary: str, runs: dict[str, list[Run]]) -> None:
    assert "## Multi-step requests" in summary
    assert "| assistant | campaign-planner #1 | 3/3 |" in summary
    assert re.search(
        r"\| assistant \| campaign-planner #1 \| 3/3 \| [0-9.]+s \| \$0\.027 \|", summary
    )
    assert "| paid | campaign-planner #1 | 3/3 |" in summary
    assert "| flux | campaign-planner #1 | 1/3 |" in summary
    assert "the provider keeps the conversation" in summary and "client-side" in summary
    assert "needs an edit-capable route" in summary
    responses, paid = runs["assistant"], runs["paid"]
    step_2 = f"| assistant | campaign-planner #1 | 2/3 | succeeded | {responses[1].id} |"
    assert f"{step_2} run {responses[0].id} (response id) | resp_bench_2 |" in summary
    assert f"| {paid[2].id} | run {paid[1].id} (its output) |" in summary
    assert "campaign-planner step 2/3" in summary  # the refused steps, named by step


def page_shows_each_step(page: str, runs: dict[str, list[Run]]) -> None:
    """The HTML page: the same two tables, and one row per step in the family's grid."""
    section = page[page.index('<section id="conversations">') :]
    section = section[: section.index("</section>")]
    cells = "<td>assistant</td><td>campaign-planner #1</td><td>3/3</td>"
    assert cells in section
    assert "<td>flux</td><td>campaign-planner #1</td><td>1/3</td>" in section
    responses = runs["assistant"]
    step_2 = (
        f"<td>2/3</td><td>succeeded</td><td>{responses[1].id}</td>"
        f"<td>run {responses[0].id} (response id)</td><td>resp_bench_2</td>"
    )
    assert step_2 in section
    grid = page[page.index('<section id="family-assistant">') :]
    grid = grid[: grid.index("</section>")]
    assert f"<b>campaign-planner step 1/3</b>: {PLANNER.prompt}" in grid
    assert f"<b>campaign-planner step 2/3</b>: {STEP_2}" in grid
    assert f"<b>campaign-planner step 3/3</b>: {STEP_3}" in grid


async def test_a_resumed_conversation_continues_from_the_last_finished_step(
    openai_fake: OpenAIFake, open_runtime: RuntimeOpener
) -> None:
    runtime = open_runtime(config(openai_fake))
    runner = runtime.bench_runner()
    items = runner.plan(load_prompts(), ["assistant"], ["assistant"], 1)
    # The first turn answers at once; the second is still being drawn when we stop.
    openai_fake.queue(
        "responses",
        Reply(200, responses_body(b64png(), response_id="resp_a")),
        Reply(200, responses_body(b64png(), response_id="resp_slow"), delay=30),
    )
    task = asyncio.create_task(runner.run(items, bench_id="bconv"))
    await openai_fake.server.received(lambda: len(openai_fake.calls("responses")) >= 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    before = {r.request_key: r.status for r in runtime.runlog.iter_all(bench_id="bconv")}
    assert before == {
        "bconv:assistant:campaign-planner:0#1": "succeeded",
        "bconv:assistant:campaign-planner:0:s2#1": "interrupted",
    }

    state = await runner.run(items, bench_id="bconv")
    turns = [c.json() for c in openai_fake.calls("responses")]
    # Step 1 was kept; step 2 ran again continuing step 1's response, then step 3 followed.
    assert len(turns) == 4 and state.resumed == 1
    assert [t.get("previous_response_id") for t in turns[2:]] == ["resp_a", "resp_bench_3"]
    finished = [r for r in runtime.runlog.iter_all(bench_id="bconv") if r.status == "succeeded"]
    assert len(finished) == 3


async def test_a_failed_step_leaves_the_rest_unrun_and_the_report_says_why(
    openai_fake: OpenAIFake, open_runtime: RuntimeOpener
) -> None:
    refused = {
        "error": {
            "message": "Your request was rejected by the safety system.",
            "type": "image_generation_user_error",
            "param": None,
            "code": "moderation_blocked",
        }
    }
    openai_fake.queue("generations", Reply(400, refused, headers={"x-request-id": "req_mod"}))
    runtime = open_runtime(config(openai_fake))
    runner = runtime.bench_runner()
    state = await runner.run(runner.plan(load_prompts(), ["paid"], ["assistant"], 1))
    [(_, first)] = state.outcomes
    assert first.error_class == "moderation"
    assert [(i.step, why) for i, why in state.skipped] == [
        (2, "step 1 did not succeed (moderation), so step 2 has nothing to continue"),
        (3, "step 2 was not run, so step 3 has nothing to continue"),
    ]
    assert openai_fake.calls("edits") == []  # nothing to edit, nothing sent

    report = build_report(state, runtime.runlog, runtime.assets, ["paid"])
    [conversation] = report.conversations
    assert conversation.completed == 0 and conversation.total == 3
    assert [s.status for s in conversation.steps] == ["failed", "skipped", "skipped"]
    assert conversation.cost_usd == 0.0 and conversation.orchestration == "—"
    assert "| paid | campaign-planner #1 | 0/3 |" in report.markdown
    assert "| 2/3 | skipped | — | — | — | — | — | step 1 did not succeed" in report.markdown


def test_steps_belong_to_the_assistant_family_and_are_checked(tmp_path: Path) -> None:
    own = tmp_path / "p.toml"
    own.write_text(
        '[[prompt]]\nid = "plan"\nfamily = "assistant"\nprompt = "plan, then draw"\n'
        'steps = ["now at night", "add the headline"]\n'
    )
    [prompt] = load_prompts(own)
    assert prompt.step_count == 3 and prompt.request(3).prompt == "add the headline"
    own.write_text('[[prompt]]\nid = "p"\nfamily = "product"\nprompt = "x"\nsteps = ["y"]\n')
    with pytest.raises(BenchError, match="steps are for the assistant family"):
        load_prompts(own)
    own.write_text('[[prompt]]\nid = "p"\nfamily = "assistant"\nprompt = "x"\nsteps = "y"\n')
    with pytest.raises(BenchError, match="steps must be a list of instructions"):
        load_prompts(own)
    own.write_text(
        '[[prompt]]\nid = "p"\nfamily = "assistant"\nprompt = "x"\nsteps = ["a","b","c","d","e","f"]\n'
    )
    with pytest.raises(BenchError, match="at most 6 steps"):
        load_prompts(own)
    own.write_text(
        f'[[prompt]]\nid = "p"\nfamily = "assistant"\nprompt = "x"\nsteps = ["{"y" * 40000}"]\n'
    )
    with pytest.raises(BenchError, match=r"\(p\) step 2: The prompt is 40,000 characters"):
        load_prompts(own)
