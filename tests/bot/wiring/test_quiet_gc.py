"""While the bot serves, full garbage collections wait for a moment no Slack request is being
answered (bounded by a patience), and CPython's own are off; stopping gives them back."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bot.slack.tasks import Answering
from bot.wiring.quiet_gc import NEVER, QuietCollector
from tests.bot.slack.test_acks_first import Requests


@pytest.fixture
def full_collections() -> Iterator[list[float]]:
    """When each full collection (by anyone) started, seen through gc.callbacks."""
    seen: list[float] = []

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start" and info["generation"] == 2:
            seen.append(time.monotonic())

    gc.callbacks.append(callback)
    saved = gc.get_threshold()
    try:
        yield seen
    finally:
        gc.callbacks.remove(callback)
        gc.set_threshold(*saved)


def make_due(collector: QuietCollector) -> None:
    """Enough collections of the middle generation for a full one to be due."""
    for _ in range(collector.due):
        gc.collect(1)


async def test_a_due_full_collection_waits_for_the_request_being_answered(
    full_collections: list[float],
) -> None:
    answering = Answering(settle=0.05)
    requests = Requests(answering)
    collector = QuietCollector(answering, every=0.01, patience=5.0, min_gap=0)
    saved = gc.get_threshold()
    collector.start()
    try:
        assert gc.get_threshold() == (saved[0], saved[1], NEVER)  # CPython's own are off
        release, request = requests.start()
        await asyncio.sleep(0)
        make_due(collector)
        await asyncio.sleep(0.2)
        assert full_collections == []  # a request is being answered
        release.set()
        await request
        await asyncio.sleep(0.2)
        assert collector.collections == 1
        [collected] = full_collections
        assert collected - requests.answered[0] >= 0.045  # and then none for `settle` seconds
    finally:
        await collector.stop()
    assert gc.get_threshold() == saved  # given back


async def test_a_full_collection_goes_after_the_patience_when_the_bot_is_never_quiet(
    full_collections: list[float],
) -> None:
    answering = Answering(settle=0.05)
    requests = Requests(answering)
    collector = QuietCollector(answering, every=0.01, patience=0.2, min_gap=0)
    collector.start()
    try:
        release, request = requests.start()
        await asyncio.sleep(0)
        make_due(collector)
        began = time.monotonic()
        await asyncio.sleep(0.5)
        [collected] = full_collections
        assert 0.15 <= collected - began < 0.45
        assert not request.done()  # still answering: the collection did not wait for it
        release.set()
        await request
    finally:
        await collector.stop()


async def test_nothing_is_collected_before_it_is_due(full_collections: list[float]) -> None:
    collector = QuietCollector(Answering(settle=0.01), every=0.01, min_gap=0)
    collector.start()
    try:
        gc.collect()  # a fresh start: nothing due
        full_collections.clear()
        await asyncio.sleep(0.2)
        assert full_collections == []
        make_due(collector)
        await asyncio.sleep(0.2)
        assert len(full_collections) == 1  # once, then not due again
    finally:
        await collector.stop()


async def test_full_collections_are_spaced_by_their_length(
    full_collections: list[float],
) -> None:
    collector = QuietCollector(Answering(settle=0.01), every=0.01, spacing=50, min_gap=0)
    collector.start()
    try:
        make_due(collector)
        await asyncio.sleep(0.1)
        assert collector.collections == 1
        collector.last_seconds = 0.01  # as if that one took 10 ms: the next no sooner than 0.5 s
        make_due(collector)
        await asyncio.sleep(0.3)
        assert collector.collections == 1
        await asyncio.sleep(0.4)
        assert collector.collections == 2
    finally:
        await collector.stop()
