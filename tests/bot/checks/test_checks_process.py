"""The checks run in their own process, at a lower CPU priority, started again when it exits:
the bot's event loop never waits for the interpreter lock while an image is decoded or read,
and a checks process killed mid-job (out of memory) costs the run its checks, never the run."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.checks import service
from bot.checks.model import NOT_RUN
from bot.checks.service import BEHIND, CHECKS_NICENESS, CHECKS_PROCESS, STOPPED, ChecksStopped
from bot.core.requests import build_request
from bot.core.runs import RunOrigin
from tests.bot.processes import wait_for
from tests.conftest import RuntimeOpener

DEMO = """
[routes.demo]
kind = "demo"
"""


async def test_the_checks_process_is_another_process_at_a_lower_priority():
    pid = await CHECKS_PROCESS.call(os.getpid)
    assert pid != os.getpid()
    assert await CHECKS_PROCESS.call(os.nice, 0) == min(19, os.nice(0) + CHECKS_NICENESS)
    assert await CHECKS_PROCESS.call(os.getpid) == pid  # one process, kept


async def test_a_checks_process_that_exits_is_started_again():
    before = await CHECKS_PROCESS.call(os.getpid)
    with pytest.raises(ChecksStopped):
        await CHECKS_PROCESS.call(os._exit, 3)
    after = await CHECKS_PROCESS.call(os.getpid)
    assert after not in (before, os.getpid())


async def test_a_run_whose_checks_process_is_killed_keeps_its_image_and_says_why(
    open_runtime: RuntimeOpener,
):
    runtime = open_runtime(DEMO, role="bot")
    request = build_request({"prompt": "a sign reading 'OPEN'", "size": "256x256"})
    outcome = await runtime.runs.run("demo", request, RunOrigin())
    pid = await CHECKS_PROCESS.call(os.getpid)
    busy = asyncio.ensure_future(CHECKS_PROCESS.call(time.sleep, 30))  # the process is busy
    checking = asyncio.ensure_future(
        runtime.checks.check(outcome.run, [i.data for i in outcome.images], request)
    )
    await _until_waiting(2)  # the check is read and waits behind the busy job
    assert CHECKS_PROCESS.waiting == 2 and not checking.done()
    os.kill(pid, signal.SIGKILL)
    report = await asyncio.wait_for(checking, 30)
    with pytest.raises(ChecksStopped):
        await busy
    assert [(line.name, line.status, line.reasons) for line in report.lines()] == [
        ("delivery", NOT_RUN, (STOPPED,))
    ]
    assert outcome.run.id is not None
    assert runtime.runlog.get(outcome.run.id).status == "succeeded"  # type: ignore[union-attr]
    stored = runtime.checks.checklog.for_run(outcome.run.id)
    assert [(r.name, r.status, r.reason) for r in stored] == [("delivery", NOT_RUN, STOPPED)]
    # The next check runs in a new process, in full.
    again = await runtime.checks.check(outcome.run, [i.data for i in outcome.images], request)
    assert {line.name for line in again.lines()} == {"text", "delivery"}


async def test_warming_starts_a_process_with_what_every_check_imports(
    open_runtime: RuntimeOpener,
):
    with pytest.raises(ChecksStopped):
        await CHECKS_PROCESS.call(os._exit, 3)  # a new process from here on
    warming = asyncio.ensure_future(open_runtime(DEMO, role="bot").checks.warm())
    await asyncio.sleep(0)  # handed to the process: not a run's checks, so none is waiting
    assert CHECKS_PROCESS.started and not warming.done() and CHECKS_PROCESS.waiting == 0
    await warming
    assert await CHECKS_PROCESS.call(_imported, ("imagehash", "PIL.PngImagePlugin"))


def _imported(names: tuple[str, ...]) -> bool:
    return all(name in sys.modules for name in names)


async def test_past_the_checks_waiting_limit_a_run_is_not_checked_and_says_why(
    open_runtime: RuntimeOpener, monkeypatch: pytest.MonkeyPatch
):
    runtime = open_runtime(DEMO, role="bot")
    request = build_request({"prompt": "a blue kite", "size": "256x256"})
    outcome = await runtime.runs.run("demo", request, RunOrigin())
    monkeypatch.setattr(service, "MAX_CHECKS_WAITING", 1)
    pid = await CHECKS_PROCESS.call(os.getpid)
    busy = asyncio.ensure_future(CHECKS_PROCESS.call(time.sleep, 30))
    try:
        await _until_waiting(1)
        report = await runtime.checks.check(outcome.run, [i.data for i in outcome.images])
    finally:
        os.kill(pid, signal.SIGKILL)  # ends the busy job
        with pytest.raises(ChecksStopped):
            await busy
    reason = BEHIND.format(n=1)
    assert [(line.name, line.status, line.reasons) for line in report.lines()] == [
        ("delivery", NOT_RUN, (reason,))
    ]
    assert outcome.run.id is not None
    stored = runtime.checks.checklog.for_run(outcome.run.id)
    assert [(r.status, r.reason) for r in stored] == [(NOT_RUN, reason)]
    # Once the checks caught up, the next run is checked again.
    again = await runtime.checks.check(outcome.run, [i.data for i in outcome.images])
    assert {line.status for line in again.lines()} != {NOT_RUN}


async def test_a_command_line_run_checks_in_its_own_thread_and_starts_no_process(
    open_runtime: RuntimeOpener,
):
    with pytest.raises(ChecksStopped):
        await CHECKS_PROCESS.call(os._exit, 3)  # no checks process from here on
    assert not CHECKS_PROCESS.started
    runtime = open_runtime(DEMO)  # the command line's role
    request = build_request({"prompt": "a sign reading 'OPEN'", "size": "256x256"})
    outcome = await runtime.runs.run("demo", request, RunOrigin())
    await runtime.checks.warm()
    report = await runtime.checks.check(outcome.run, [i.data for i in outcome.images], request)
    assert {line.name for line in report.lines()} == {"text", "delivery"}
    assert not CHECKS_PROCESS.started


def test_a_killed_bot_leaves_no_checks_process_behind(tmp_path: Path):
    # A bot process with a checks process, then killed outright (SIGKILL: no clean-up of its
    # own runs): the checks process and the fork server it came from exit with it.
    bot = subprocess.Popen(
        [sys.executable, "-c", _BOT],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        assert bot.stdout is not None
        checks_pid = int(bot.stdout.readline())
        fork_server = int(Path(f"/proc/{checks_pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert _alive(checks_pid) and _alive(fork_server) and fork_server != bot.pid
    finally:
        bot.kill()
        bot.wait()
    wait_for(
        lambda: not (_alive(checks_pid) or _alive(fork_server)) or None,
        30,
        "the checks process and its fork server to exit",
    )
    assert not _alive(checks_pid) and not _alive(fork_server)


_BOT = """
import asyncio, os
from bot.checks.service import CHECKS_PROCESS

async def main():
    print(await CHECKS_PROCESS.call(os.getpid), flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to read its status has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def _until_waiting(calls: int, timeout: float = 30) -> None:
    """Until this many calls wait for the checks process (bounded)."""
    deadline = time.monotonic() + timeout
    while CHECKS_PROCESS.waiting < calls:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {calls} calls to the checks process")
        await asyncio.sleep(0.01)
