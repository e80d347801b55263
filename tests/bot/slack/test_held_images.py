"""A request whose runs are posted no longer holds their images while its scoreboard waits for
Slack's chat.update pace: a burst of requests waits minutes for its last edits (50 a minute),
and each run's image held meanwhile took one process to gigabytes."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from routes.model import GeneratedImage, ImageResult


def images_alive() -> list[object]:
    """Images (and route results with images) anything still refers to, in this process (other
    tests' may be among them: compare with what was alive before)."""
    gc.collect()
    return [
        o
        for o in gc.get_objects()
        if isinstance(o, GeneratedImage) or (isinstance(o, ImageResult) and bool(o.images))
    ]


async def test_a_scoreboard_waiting_for_its_last_edit_holds_no_image(start_harness: Any) -> None:
    h = await start_harness()
    before = images_alive()  # kept referenced: none of them is freed and its id reused
    pacer = h.bot.flow.pacer
    while pacer._tokens >= 1.0:  # the whole burst spent: the next edit waits ~1.2 s
        await pacer.take()
    pacer.rate = 1 / 600  # ...and, from here on, ten minutes
    for n in range(3):
        response = await h.command("/imagegen", f'route=demo prompt="a kite {n}"')
        assert response.status_code == 200
    await h.slack.received(lambda: len(h.slack.calls("files.completeUploadExternal")) == 3)
    await asyncio.sleep(0.5)  # the checks run, then each flow waits for its final edit
    assert len(h.bot.tasks) == 3  # every flow still waits for its scoreboard's final edit
    held = [o for o in images_alive() if not any(o is b for b in before)]
    assert held == []
    pacer.rate = 1000.0  # let the edits go
    pacer._serve()
    await h.bot.tasks.idle()
