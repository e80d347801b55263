"""Slack as a busy channel sees it, through signed HTTP against the strict fake Slack: one
message per result, the parent as a live scoreboard with the verdict and montage, runs started
from buttons and modals under their own attributed scoreboard, private lookups until shared,
advice at a glance, App Home health from the state machine, errors with a next step."""

from __future__ import annotations

import base64
import itertools
import json
import random
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from bot.slack.answers import AnswerKeys
from tests.bot.conftest import CHANNEL, USER, BotHarness, button
from tests.fakes.openai import OpenAIFake, openai_error
from tests.fakes.server import RecordedRequest, Reply
from tests.fakes.slack import Message

PROMPT = "a lighthouse on a cliff at dusk"
OTHER_USER = "U0USER0002"


class Gateway:
    """One OpenAI-compatible gateway fake serving /{route}/v1; `down` routes answer 500."""

    def __init__(self) -> None:
        self.fake = OpenAIFake(flavor="gateway", prefix="/{route}/v1", api_key="gw-x").start()
        self.down: set[str] = set()
        self.fake.intercept = self._reply

    def _reply(self, endpoint: str, req: RecordedRequest) -> Reply | None:
        if req.path_params["route"] in self.down:
            return openai_error(500, "The server had an error.", type_="server_error")
        return None

    def route(self, rid: str, extra: str = "") -> str:
        return (
            f'\n[routes.{rid}]\nkind = "gateway"\nmodel = "openai/gpt-image-2"\n'
            f'api_key = "gw-x"\nbase_url = "{self.fake.server.url}/{rid}/v1"\n'
            f'underlying_model = "gpt-image-2"\nboard = "gateway"\nretries = 0\n'
            f'billing_owner = "Platform team"\n{extra}'
        )


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    g = Gateway()
    yield g
    g.fake.stop()


def nine_routes(gateway: Gateway) -> str:
    """Five free demo routes finishing at different times, two priced ones, a gateway of
    unknown cost, and a gateway that is down; the slowest keeps the scoreboard live."""
    config = "[limits]\nmax_routes_per_comparison = 9\n"
    for rid, delay in (("demo", 0.0), ("d1", 0.1), ("d2", 0.2), ("d3", 0.3), ("slow", 2.6)):
        config += f'\n[routes.{rid}]\nkind = "demo"\ndelay_seconds = {delay}\nboard = "openai"\n'
    for rid, usd in (("paid", 0.04), ("paid2", 0.02)):
        config += (
            f'\n[routes.{rid}]\nkind = "demo"\ndelay_seconds = 0.4\n'
            f'pricing = {{ basis = "per_image", usd_per_image = {usd} }}\n'
        )
    return config + gateway.route("gw") + gateway.route("broken")


def thread_messages(h: BotHarness, parent: Message) -> list[Message]:
    return [m for m in h.slack.thread(CHANNEL, parent.ts) if isinstance(m, Message)]


async def test_nine_route_comparison_is_one_scoreboard_and_one_message_per_route(
    start_harness: Any, gateway: Gateway
) -> None:
    gateway.down.add("broken")
    h: BotHarness = await start_harness(nine_routes(gateway))
    await h.command("/imagegen", f'route=all prompt="{PROMPT}"')
    await h.settle(60)

    [parent] = h.slack.top_level(CHANNEL)
    everything = h.slack.thread(CHANNEL, parent.ts)
    # At most routes + 2 messages in the thread: here exactly one per route, nothing else.
    assert len(everything) <= 9 + 2
    assert len(everything) == 9 and all(isinstance(m, Message) for m in everything)
    results = thread_messages(h, parent)
    assert h.slack.rejections == []

    # Each result is one message: image (or the failure), context line and actions together.
    for message in results:
        ids = {e["action_id"] for e in message.actions()}
        assert {"rerun", "result_more"} <= ids
    failed = [m for m in results if not m.image_blocks()]
    [broken] = failed
    assert "*broken* failed (provider down)" in broken.all_text()
    assert "Re-run, or check `/imageroute health`" in broken.all_text()
    shown = [m for m in results if m.image_blocks()]
    assert len(shown) == 8
    for message in shown:
        for block in message.image_blocks():
            assert PROMPT in block["alt_text"]  # every image has alt text from the prompt
            upload = h.slack.file(block["slack_file"]["id"])
            assert upload.channel is None and PROMPT in (upload.alt or "")
        context = json.dumps([b for b in message.blocks or [] if b["type"] == "context"])
        assert "billed to" in context and " s" in context and "run #" in context

    # The parent was edited while routes finished: an early edit shows some done, some waiting.
    assert len(parent.updates) >= 3
    first = json.dumps(parent.updates[0]["blocks"])
    assert "waiting" in first and "1 of 9 finished" not in json.dumps(parent.blocks)
    assert any(f"{n} of 9 finished" in first for n in range(1, 9))
    # Edits while routes run are coalesced: never two within the scoreboard's interval (the
    # final edits, the verdict then the montage, go out at once).
    progress = [u for u in parent.updates if "Fastest" not in json.dumps(u["blocks"])]
    assert len(parent.updates) - len(progress) == 2
    times = [u["at"] for u in progress]
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(times))

    final = json.dumps(parent.blocks)
    assert "waiting" not in final
    runs = [r for r in h.runtime.runlog.recent(20) if r.status == "succeeded"]
    fastest = min(runs, key=lambda r: r.latency_s or 0.0)
    assert f"*Fastest:* `{fastest.route_id}` ({fastest.latency_s:.2f} s)" in final
    # Five free routes tie for cheapest: said as a tie, not awarded to one of them; and as
    # `gw`'s cost is unknown, only among the priced routes.
    assert (
        "*Cheapest of the priced routes:* a tie between `demo`, `d1`, `d2`, `d3` and `slow` "
        "($0 (free) each)" in final
    )
    assert (
        "*Cost unknown* on `gw` (1 run unpriced), so it may be cheaper: set `pricing` or "
        "`estimated_usd_per_image` for route `gw` in the routes file." in final
    )
    assert "`broken` failed: provider down" in final
    assert "8 of 9 routes returned an image" in final
    # The montage is on the parent, its alt text naming each route with cost and latency.
    [montage] = parent.image_blocks()
    assert "paid (" in montage["alt_text"] and " s · $0.040)" in montage["alt_text"]
    assert PROMPT in montage["alt_text"]


async def test_a_re_run_gets_its_own_attributed_scoreboard_in_the_thread(
    start_harness: Any,
) -> None:
    h: BotHarness = await start_harness()
    await h.command("/imagegen", f'route=demo prompt="{PROMPT}"')
    await h.settle()
    [parent] = h.slack.top_level(CHANNEL)
    [result] = thread_messages(h, parent)
    await h.interact(h.click(result, button(result, "rerun"), user=OTHER_USER))
    await h.settle()
    scoreboard, rerun = thread_messages(h, parent)[1:]
    assert f"<@{OTHER_USER}> re-ran run #1 on `demo`" in scoreboard.all_text()
    assert scoreboard.updates and "Done" in json.dumps(scoreboard.blocks)
    assert rerun.image_blocks()


async def test_compare_on_all_from_the_menu_refuses_like_route_all(start_harness: Any) -> None:
    config = "[limits]\nmax_routes_per_comparison = 2\n" + "".join(
        f'\n[routes.r{i}]\nkind = "demo"\n' for i in range(3)
    )
    h: BotHarness = await start_harness(config)
    refused = await h.command("/imagegen", f'route=all prompt="{PROMPT}"')
    assert "the limit is 2 per comparison" in refused.json()["text"]
    await h.command("/imagegen", f'route=r0 prompt="{PROMPT}"')
    await h.settle()
    [parent] = h.slack.top_level(CHANNEL)
    [result] = thread_messages(h, parent)
    more = button(result, "result_more")
    [compare] = [o["value"] for o in more["options"] if o["value"].startswith("compare_all")]
    await h.interact(h.click(result, more, option=compare))
    await h.settle()
    assert len(h.runtime.runlog.recent(10)) == 1  # nothing ran
    [refusal] = h.slack.ephemerals()
    assert "That compares 3 routes; the limit is 2 per comparison" in refusal.text
    assert refusal.thread_ts == parent.ts


async def test_run_details_come_privately_from_the_overflow_menu(start_harness: Any) -> None:
    h: BotHarness = await start_harness()
    await h.command("/imagegen", f'route=demo prompt="{PROMPT}"')
    await h.settle()
    [parent] = h.slack.top_level(CHANNEL)
    [result] = thread_messages(h, parent)
    more = button(result, "result_more")
    await h.interact(h.click(result, more, option="details:1"))
    await h.settle()
    [details] = h.slack.ephemerals()
    assert "*Run #1* on `demo`" in details.text and "Response id" in details.text


async def test_lookups_and_advice_are_private_until_shared(start_harness: Any) -> None:
    h: BotHarness = await start_harness()
    for asked in ("routes", "stats", "runs", "health", "we are on GCP and need logos"):
        await h.command("/imageroute", asked)
    await h.settle()
    assert h.slack.top_level(CHANNEL) == []  # nothing in the channel yet
    assert len(h.slack.responses) == 5
    for answer in h.slack.responses:
        assert answer["response_type"] == "ephemeral"
        assert button(answer["blocks"], "share_answer")
        assert "/work" not in json.dumps(answer) and ".toml" not in json.dumps(answer)

    [routes] = [r for r in h.slack.responses if "Configured routes" in json.dumps(r)]
    [advice] = [r for r in h.slack.responses if r["blocks"][0]["type"] == "header"]
    await h.interact(h.click_private(button(routes["blocks"], "share_answer")))
    await h.interact(h.click_private(button(advice["blocks"], "share_answer"), user=OTHER_USER))
    await h.settle()
    shared_routes, shared_advice = h.slack.top_level(CHANNEL)
    assert f"<@{USER}> asked `/imageroute routes`" in shared_routes.all_text()
    assert "`demo`: demo" in shared_routes.all_text()
    assert f"<@{OTHER_USER}> asked `/imageroute we are on GCP and need logos`" in (
        shared_advice.all_text()
    )
    # The shared copies have no Share button; the private copies were deleted.
    for shared in (shared_routes, shared_advice):
        assert "share_answer" not in json.dumps(shared.blocks)
    deletes = [r for r in h.slack.responses if r.get("delete_original")]
    assert len(deletes) == 2


async def test_advice_fits_a_glance_with_more_in_a_modal(start_harness: Any) -> None:
    h: BotHarness = await start_harness()
    question = "we're on GCP and need product shots with transparent backgrounds"
    await h.command("/imageroute", question)
    await h.settle()
    [answer] = h.slack.responses
    blocks = answer["blocks"]
    header = blocks[0]
    assert header["type"] == "header"
    assert header["text"]["text"] == "Benchmark first: Google Cloud / Vertex AI"
    text = json.dumps(blocks, ensure_ascii=False)
    assert "*Start with* Gemini 3 Pro Image" in text
    assert "You said “GCP”" in text and "Caveat raised" not in text  # one sentence of why
    assert ":warning: *No transparent backgrounds on GPT Image 2*" in text
    [checks] = [b for b in blocks if "*Check first*" in json.dumps(b)]
    assert checks["text"]["text"].count("•") == 3
    assert len(blocks) <= 7
    assert all(len(json.dumps(b)) < 1500 for b in blocks)
    # The compare button says which routes it runs.
    compare = button(blocks, "advice_compare")
    assert compare["text"]["text"] == "Compare on slowdemo"  # serves an alternative row
    more = button(blocks, "advice_more")
    await h.interact(h.click_private(more))
    await h.slack.received(lambda: h.slack.published("open"))
    [opened] = h.slack.published("open")
    full = json.dumps(opened["view"], ensure_ascii=False)
    assert "Quota (and Provisioned Throughput" in full  # a check beyond the first three
    assert "Caveat raised because you said" in full  # the whole why


async def test_out_of_scope_and_unclear_questions_render_as_such(start_harness: Any) -> None:
    h: BotHarness = await start_harness()
    await h.command("/imageroute", "can you make me a video of a cat")
    await h.command("/imageroute", "asdf qwer zxcv")
    await h.settle()
    # The two answers come back in either order: each is told by its heading.
    headings = sorted(r["blocks"][0]["text"]["text"] for r in h.slack.responses)
    assert headings == ["I could not follow that question", "Not a route question"]
    for answer in h.slack.responses:
        assert "advice_compare" not in json.dumps(answer["blocks"])


async def test_an_unknown_subcommand_says_what_was_not_understood(start_harness: Any) -> None:
    h: BotHarness = await start_harness()
    response = await h.command("/imageroute", "frobnicate")
    body = response.json()
    assert body["response_type"] == "ephemeral"
    assert "I did not understand `frobnicate`" in json.dumps(body["blocks"])
    assert "/imageroute <question>" in json.dumps(body["blocks"])


async def test_app_home_shows_a_route_whose_runs_fail_as_failing(
    start_harness: Any, gateway: Gateway
) -> None:
    gateway.down.add("gw")
    h: BotHarness = await start_harness(
        '[routes.demo]\nkind = "demo"\n' + gateway.route("gw", 'probe = "off"\n')
    )
    for _ in range(4):
        await h.command("/imagegen", f'route=gw prompt="{PROMPT}"')
    await h.command("/imagegen", f'route=demo prompt="{PROMPT}"', user=OTHER_USER)
    await h.settle(30)
    await h.event({"type": "app_home_opened", "user": USER, "tab": "home"})
    [published] = await h.slack.received(h.slack.published)
    home = json.dumps(published["view"])
    assert ":red_circle: `gw` *failing*" in home
    assert "`demo` *unknown*" in home  # never probed, no failures: not called healthy
    # Buttons to start from, and only the viewer's own runs.
    ids = [
        e["action_id"]
        for b in published["view"]["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    ]
    assert {"home_try", "home_compare", "home_health"} <= set(ids)
    assert home.count("`gw` failed") == 4 and "`demo` succeeded" not in home


async def test_app_home_try_opens_a_form_and_runs_in_the_chosen_channel(
    start_harness: Any,
) -> None:
    h: BotHarness = await start_harness()
    await h.event({"type": "app_home_opened", "user": USER, "tab": "home"})
    [home] = await h.slack.received(h.slack.published)
    home_message = Message("", "", "", home["view"]["blocks"], None)
    await h.interact(
        {
            "type": "block_actions",
            "user": {"id": USER},
            "team": {"id": "T0TEAM"},
            "container": {"type": "view", "view_id": "V1"},
            "view": {"id": "V1", "type": "home"},
            "trigger_id": "trigger.home",
            "actions": [{**button(home_message, "home_try"), "action_ts": "1.1"}],
        }
    )
    await h.slack.received(lambda: h.slack.published("open"))
    [opened] = h.slack.published("open")
    view = opened["view"]

    def submit(prompt: str, channel: str | None) -> dict[str, Any]:
        values: dict[str, Any] = {"prompt": {"value": {"type": "x", "value": prompt}}}
        values["channel"] = {"value": {"type": "x", "selected_conversation": channel}}
        return {
            "type": "view_submission",
            "user": {"id": USER},
            "team": {"id": "T0TEAM"},
            "view": {**view, "id": "VH", "hash": "h", "state": {"values": values}},
            "response_urls": [
                {
                    "block_id": "channel",
                    "action_id": "value",
                    "channel_id": channel,
                    "response_url": h.slack.response_url("home"),
                }
            ],
        }

    empty = await h.interact(submit("  ", CHANNEL))
    assert empty.json() == {
        "response_action": "errors",
        "errors": {"prompt": "Describe the image you want."},
    }
    await h.interact(submit(PROMPT, CHANNEL))
    await h.settle()
    [parent] = h.slack.top_level(CHANNEL)
    assert f"<@{USER}> tried `demo` from App Home" in parent.all_text()
    assert h.slack.rejections == []


async def test_form_errors_speak_the_form_s_language(start_harness: Any) -> None:
    h: BotHarness = await start_harness()
    shared = h.slack.share_file(b"\x89PNG fake", name="mockup.png")
    payload = {
        "type": "message_action",
        "callback_id": "edit_image",
        "trigger_id": "trigger.edit",
        "user": {"id": USER},
        "team": {"id": "T0TEAM"},
        "channel": {"id": CHANNEL},
        "message_ts": "1699999999.000100",
        "message": {"type": "message", "ts": "1699999999.000100", "files": [shared]},
    }
    await h.interact(payload)
    await h.slack.received(lambda: h.slack.published("open"))
    view = h.slack.published("open")[-1]["view"]
    submission = {
        "type": "view_submission",
        "user": {"id": USER},
        "team": {"id": "T0TEAM"},
        "view": {
            **view,
            "id": "VE",
            "hash": "h",
            "state": {
                "values": {
                    "route": {"value": {"selected_option": {"value": "demo"}}},
                    "instruction": {"value": {"value": "   "}},
                    "mask": {"value": {"files": []}},
                }
            },
        },
    }
    refused = (await h.interact(submission)).json()
    assert refused["errors"] == {"instruction": "Say what should change in the image."}
    assert "prompt=" not in json.dumps(refused)


async def test_a_failure_suggests_only_routes_that_support_the_request(
    start_harness: Any, gateway: Gateway
) -> None:
    """A transparent background failed on an OpenAI route that is down: the next step names
    the configured route that can make one, not the gpt-image-2 gateway route that cannot."""
    openai = OpenAIFake(api_key="sk-down").start()
    openai.intercept = lambda endpoint, req: openai_error(
        500, "The server had an error.", type_="server_error"
    )
    try:
        h: BotHarness = await start_harness(
            '[routes.demo]\nkind = "demo"\n'
            + gateway.route("gw")
            + f'\n[routes.broken]\nkind = "openai"\nmodel = "gpt-image-1.5"\n'
            f'api_key = "sk-down"\nbase_url = "{openai.server.url}/v1"\nretries = 0\n'
        )
        await h.command("/imagegen", f'route=broken prompt="{PROMPT}" background=transparent')
        await h.settle(30)
    finally:
        openai.stop()
    [parent] = h.slack.top_level(CHANNEL)
    [failure] = thread_messages(h, parent)
    text = failure.all_text()
    assert "*broken* failed (provider down)" in text
    assert "try another route meanwhile: `demo`." in text
    assert "`gw`" not in text


async def test_a_long_question_travels_in_its_button_and_any_process_can_share_it(
    start_harness: Any,
) -> None:
    h: BotHarness = await start_harness()
    question = "we are on GCP and need logos " + "with crisp lettering " * 100
    await h.command("/imageroute", question)
    await h.settle()
    [answer] = h.slack.responses
    share = button(answer["blocks"], "share_answer")
    # Too long percent-encoded, so compressed into the value: no process needs to remember it.
    assert share["value"].startswith("z:") and len(share["value"]) <= 2000
    assert AnswerKeys().asked(share["value"]) == question.strip()  # e.g. after a restart
    await h.interact(h.click_private(share))
    await h.settle()
    [shared] = h.slack.top_level(CHANNEL)
    assert f"<@{USER}> asked `/imageroute we are on GCP and need logos" in shared.all_text()


async def test_a_question_too_long_even_compressed_is_remembered_and_a_forgotten_key_says_ask_again(
    start_harness: Any,
) -> None:
    h: BotHarness = await start_harness()
    rng = random.Random(7)
    words = [f"{rng.getrandbits(48):x}" for _ in range(400)]
    question = "we are on GCP and need logos " + " ".join(words)
    await h.command("/imageroute", question)
    await h.settle()
    [answer] = h.slack.responses
    share = button(answer["blocks"], "share_answer")
    assert share["value"].startswith("k:") and len(share["value"]) < 100
    await h.interact(h.click_private(share))
    await h.settle()
    [shared] = h.slack.top_level(CHANNEL)
    assert f"<@{USER}> asked `/imageroute we are on GCP and need logos" in shared.all_text()
    # A button from before a restart names a key this process never saw.
    await h.interact(h.click_private({**share, "value": "k:" + "0" * 20}))
    await h.settle()
    assert "no longer remembered (the bot restarted since" in h.slack.responses[-1]["text"]
    # A compressed value that is not ours (or would unpack to megabytes) is refused the same way.
    bomb = base64.urlsafe_b64encode(zlib.compress(b"a" * 10_000_000)).decode()
    await h.interact(h.click_private({**share, "value": "z:" + bomb}))
    await h.settle()
    assert "no longer remembered" in h.slack.responses[-1]["text"]
    assert len(h.slack.top_level(CHANNEL)) == 1
