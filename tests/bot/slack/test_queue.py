"""Past the process's in-flight limit (IMAGEROUTE_MAX_IN_FLIGHT) requests wait their turn: the
ack stays immediate, the scoreboard says "queued (n ahead)" and is updated in place, and no more
runs than the limit are ever in flight."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest

from bot.core.admission import RunSlots
from tests.bot.conftest import CHANNEL


def _route_line(blocks: Any, route_id: str = "slowdemo") -> str:
    """The scoreboard's status line of a route."""
    for block in json.loads(blocks) if isinstance(blocks, str) else blocks or []:
        text = (block.get("text") or {}).get("text", "")
        for line in text.splitlines():
            if line.split(" ")[1:2] == [f"`{route_id}`"]:  # icon, route, status
                return str(line)
    return ""


async def test_requests_past_the_limit_are_queued_and_told_so(start_harness):
    h = await start_harness(imageroute_max_in_flight=1)
    responses = await asyncio.gather(
        *(h.command("/imagegen", f'route=slowdemo prompt="queued {i}"') for i in range(3))
    )
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert all(not r.text for r in responses)  # a bare ack: nothing waits before it
    await h.settle(30)

    posted = [h.slack._args(c) for c in h.slack.calls("chat.postMessage")]
    opened = sorted(_route_line(a.get("blocks")) for a in posted if not a.get("thread_ts"))
    assert opened == [
        ":hourglass_flowing_sand: `slowdemo` waiting",
        ":inbox_tray: `slowdemo` queued (1 ahead)",
        ":inbox_tray: `slowdemo` queued (next)",
    ]
    boards = h.slack.top_level(CHANNEL)
    assert len(boards) == 3
    for board in boards:
        lines = [_route_line(u["blocks"]) for u in board.updates]
        assert lines[-1].startswith(":white_check_mark: `slowdemo`"), lines  # done, in place
        assert all("queued" not in line for line in lines[1:]), lines

    runs = sorted(h.runtime.runlog.recent(10), key=lambda r: r.created_at)
    assert [r.status for r in runs] == ["succeeded"] * 3
    for before, after in itertools.pairwise(runs):  # one at a time: the limit held
        assert before.finished_at is not None and after.created_at >= before.finished_at


async def test_runs_in_flight_together_finish_in_a_lane_as_wide_as_configured(start_harness):
    """IMAGEROUTE_MAX_FINISHING=1: three runs wait on their provider together, then are stored
    and posted one after the other (each upload whole before the next begins)."""
    h = await start_harness(imageroute_max_in_flight=4, imageroute_max_finishing=1)
    responses = await asyncio.gather(
        *(h.command("/imagegen", f'route=slowdemo prompt="lane {i}"') for i in range(3))
    )
    assert [(r.status_code, r.text) for r in responses] == [(200, "")] * 3
    await h.settle(30)

    upload = ("/api/files.getUploadURLExternal", "/api/files.completeUploadExternal")
    steps = [c.path for c in h.slack.server.calls() if c.path in upload]
    assert steps == list(upload) * 3
    runs = h.runtime.runlog.recent(10)
    assert [r.status for r in runs] == ["succeeded"] * 3
    assert max(r.created_at for r in runs) < min(r.finished_at for r in runs)  # in flight together
    assert h.bot.slots.lane.finishing == 0


async def test_slots_admit_in_arrival_order_and_count_whole_requests() -> None:
    slots = RunSlots(limit=3)
    running = slots.ticket(2)
    assert running.admitted and slots.in_flight == 2
    comparison = slots.ticket(2)  # needs 2, only 1 free: waits
    single = slots.ticket(1)  # would fit, but arrived later: first come, first served
    assert not comparison.admitted and not single.admitted
    assert (comparison.ahead(), single.ahead(), slots.waiting) == (0, 1, 2)

    told: list[int] = []

    async def moved(ahead: int) -> bool:
        told.append(ahead)
        return True

    waiting = asyncio.ensure_future(single.wait(moved, every=0.01))
    running.release()
    running.release()  # twice is harmless
    assert comparison.admitted and single.admitted and slots.in_flight == 3
    await asyncio.wait_for(waiting, 1)
    assert told == []  # admitted before any position change was due

    huge = slots.ticket(9)  # more than the limit: runs alone once everything else is done
    assert huge.runs == 3 and not huge.admitted
    comparison.release()
    assert not huge.admitted
    single.release()
    assert huge.admitted and slots.in_flight == 3 and slots.waiting == 0
    huge.release()
    assert slots.in_flight == 0


async def test_a_waiting_request_hears_how_many_are_ahead_and_can_leave() -> None:
    slots = RunSlots(limit=1)
    holders = [slots.ticket(1) for _ in range(4)]
    assert [t.ahead() for t in holders] == [0, 0, 1, 2]
    told: asyncio.Queue[int] = asyncio.Queue()

    async def moved(ahead: int) -> bool:
        await told.put(ahead)
        return True

    last = holders[3]
    waiting = asyncio.ensure_future(last.wait(moved, every=0.01))
    await asyncio.sleep(0)  # the waiter starts: 2 ahead
    holders[0].release()
    assert await asyncio.wait_for(told.get(), 1) == 1
    holders[1].release()
    assert await asyncio.wait_for(told.get(), 1) == 0  # next
    holders[2].release()
    await asyncio.wait_for(waiting, 1)
    assert told.empty()  # admitted: nothing more to tell
    last.release()
    leaving = slots.ticket(1)
    gone = slots.ticket(1)
    gone.release()  # left the queue before its turn (shutdown)
    assert slots.waiting == 0
    leaving.release()
    assert slots.in_flight == 0


def test_the_limit_must_allow_a_run() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RunSlots(0)


async def test_the_queue_is_reported_to_the_observers() -> None:
    from bot.core.observers import Observers, WorkQueue

    seen: list[tuple[int, int]] = []
    observers = Observers()
    observers.subscribe(
        lambda o: seen.append((o.running, o.waiting)) if isinstance(o, WorkQueue) else None
    )
    slots = RunSlots(limit=1, observers=observers)
    first = slots.ticket(1)
    second = slots.ticket(1)
    first.release()
    second.release()
    assert seen == [(1, 0), (1, 1), (1, 0), (0, 0)]
