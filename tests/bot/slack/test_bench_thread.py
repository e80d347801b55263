"""`/imageroute bench` end to end: progress, every output with verdict buttons and its checks,
the report, one thread; guardrails and daily spend caps; verdicts counted in a resumed
benchmark's report."""

from __future__ import annotations

import json

from storage.benches import BenchLog
from tests.bot.conftest import USER, button
from tests.fakes.openai import OpenAIFake
from tests.fakes.slack import Message, Upload


async def test_slack_bench_posts_progress_outputs_and_report_in_one_thread(start_harness):
    h = await start_harness()
    await h.command("/imageroute", "bench routes=demo,slowdemo families=product,edge")
    await h.settle(60)
    [parent] = h.slack.top_level()
    bench_id = parent.text.split("benchmark `")[1].split("`")[0]
    assert parent.updates and "Done: benchmark" in json.dumps(parent.updates[-1])
    thread = h.slack.thread(parent.channel, parent.ts)
    uploads = [m for m in thread if isinstance(m, Upload)]
    texts = "\n".join(m.text for m in thread if isinstance(m, Message))
    # 2 routes x (2 product + 3 edge prompts), the oversized edge prompt refused on both.
    image_outputs = [u for u in uploads if u.filename.startswith(("demo-", "slowdemo-"))]
    assert len(image_outputs) == 2 * 4
    assert texts.count("Verdict for run") == 2 * 5
    # Each output's verdict message gets its acceptance checks once they are in (every image
    # at least for being delivered as asked); a refused output has none.
    verdicts = [m for m in thread if isinstance(m, Message) and "Verdict for run" in m.text]
    checked = [m for m in verdicts if "Checks:" in json.dumps(m.blocks)]
    assert len(checked) == 2 * 4 and all(m.updates for m in checked)
    assert all("as asked" in m.text and "verdict_pass" in json.dumps(m.blocks) for m in checked)
    assert "report" in texts and "| demo | product |" in texts
    assert any(u.filename == "contact-product.png" for u in uploads)
    assert any(u.filename == "chart.png" for u in uploads)
    # Every output is a run of this benchmark, filed under this thread.
    runs = list(h.runtime.runlog.iter_all(bench_id=bench_id))
    assert len(runs) == 10 and {r.slack_thread_ts for r in runs} == {parent.ts}
    assert {r.source for r in runs} == {"bench"} and {r.slack_user for r in runs} == {USER}
    row = BenchLog(h.runtime.engine).get(bench_id)
    assert row is not None and row.status == "finished" and row.source == "slack"
    assert row.slack_thread_ts == parent.ts

    # A verdict on one output, then the benchmark resumed: nothing re-run, the verdict counted.
    first = next(m for m in thread if isinstance(m, Message) and "Verdict for run" in m.text)
    await h.interact(h.click(first, button(first, "verdict_pass")))
    await h.settle()
    await h.command("/imageroute", f"bench resume={bench_id}")
    await h.settle(60)
    resumed = h.slack.top_level()[-1]
    assert f"resumed benchmark `{bench_id}`" in resumed.text
    again = h.slack.thread(resumed.channel, resumed.ts)
    report = next(m.text for m in again if isinstance(m, Message) and "report" in m.text)
    assert "1/0 |" in report
    assert len(list(h.runtime.runlog.iter_all(bench_id=bench_id))) == 10

    bad = await h.command("/imageroute", "bench routes=nope")
    assert bad.status_code == 200
    await h.settle()
    assert "no route `nope`" in h.slack.ephemerals()[-1].text


async def test_slack_bench_respects_channel_limits_and_the_users_daily_cap(start_harness):
    fake = OpenAIFake().start()
    try:
        h = await start_harness(
            config=f"""
[limits]
user_daily_spend_usd = 0.05

[routes.paid]
kind = "openai"
api_key = "sk-bench"
base_url = "{fake.server.url}/v1"
billing_owner = "Acme OpenAI org"
pricing = {{ basis = "per_image", usd_per_image = 0.04 }}

[routes.locked]
kind = "demo"
allowed_channels = ["C0ELSEWHERE"]
"""
        )
        await h.command("/imageroute", "bench routes=locked families=product")
        await h.settle()
        assert "can only be used in" in h.slack.ephemerals()[-1].text
        assert not h.slack.top_level()

        await h.command("/imageroute", "bench routes=paid families=product max_cost=5")
        await h.settle(30)
        [parent] = h.slack.top_level()
        assert "budget $0.05" in parent.text  # the user's daily cap wins over max_cost=5
        assert len(fake.server.calls("/v1/images/generations")) == 1
        done = json.dumps(parent.updates[-1])
        assert "1 skipped" in done and "$0.04 spent" in done
    finally:
        fake.stop()
