"""`/imageroute bench` end to end: progress, every output with verdict buttons, the report, one thread."""

from __future__ import annotations

import json

from tests.fakes.slack import Message, Upload


async def test_slack_bench_posts_progress_outputs_and_report_in_one_thread(start_harness):
    h = await start_harness()
    await h.command("/imageroute", "bench routes=demo,slowdemo families=product,edge")
    await h.settle(60)
    [parent] = h.slack.top_level()
    assert parent.updates and "Done: benchmark" in json.dumps(parent.updates[-1])
    thread = h.slack.thread(parent.channel, parent.ts)
    uploads = [m for m in thread if isinstance(m, Upload)]
    texts = "\n".join(m.text for m in thread if isinstance(m, Message))
    # 2 routes x (2 product + 3 edge prompts), the oversized edge prompt refused on both.
    image_outputs = [u for u in uploads if u.filename.startswith(("demo-", "slowdemo-"))]
    assert len(image_outputs) == 2 * 4
    assert texts.count("Verdict for run") == 2 * 5
    assert "report" in texts and "| demo | product |" in texts
    assert any(u.filename == "contact-product.png" for u in uploads)
    assert any(u.filename == "chart.png" for u in uploads)
    bad = await h.command("/imageroute", "bench routes=nope")
    assert bad.status_code == 200
    await h.settle()
    assert "no route `nope`" in h.slack.ephemerals()[-1].text
