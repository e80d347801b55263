"""Runs a finished run's acceptance checks in the checks process and keeps them in the check log.

The checking itself (decoding every image, OCR, pHash: tens to hundreds of milliseconds of CPU
per image) runs, in the bot, in one checks process (started once the bot serves, or by the
first check), at the lowest CPU priority: it never holds the bot's interpreter lock, and when
the machine is busy the acks go first. Jobs queue behind each other there, and heavy engines
(OCR models) load once. What the checks read and write (the run's images, the earlier output
of a repeat, the check log) is read and stored in one worker thread of the bot. A command-line
run, which answers nobody meanwhile, checks in that worker thread and starts no process.
Nothing here ever fails a run: a check that raises is stored as "not run" with the reason, so
is every check of a job whose process stopped, and a check pass that cannot be stored is
logged and still returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import select
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, TypeVar

from cachetools import LRUCache
from sqlalchemy.exc import SQLAlchemyError

from bot.checks.model import Ask, CheckReport, not_run
from bot.checks.work import Done, Earlier, Job, run_checks
from routes.pacing import give_way
from storage.assets import AssetStore, AssetStoreError
from storage.checks import CheckLog
from storage.runlog import RunLog
from storage.tables import Run

if TYPE_CHECKING:
    from collections.abc import Callable

    from routes.config import CheckSettings
    from routes.model import ImageRequest

log = logging.getLogger(__name__)

T = TypeVar("T")

# The checks process's niceness (0 is the bot's, 19 the lowest priority): the CPU the bot and the
# machine leave, so checks wait while the machine is saturated and take an idle core otherwise.
CHECKS_NICENESS = 19
# Checks waiting for the checks process at most: each holds its run's images (a few MB) until
# checked, so past this many a run's checks are stored as not run, and say why, rather than let
# a long burst hold gigabytes.
MAX_CHECKS_WAITING = 200
# Fingerprints of recent first outputs kept by run id, so that a repeat is compared without
# reading and decoding the earlier image again (a 16-character string each).
PRINTS_KEPT = 20_000


class ChecksStopped(Exception):
    """The checks process exited before it answered (killed, out of memory)."""


class ChecksProcess:
    """One process that runs the checks (bot.checks.work) for this whole bot process, started
    on first use by a fork server (never a fork of the threaded bot) at CHECKS_NICENESS, and
    started again after it exits."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self.waiting = 0  # checks handed to the process and not answered yet (the checks' queue)

    @property
    def started(self) -> bool:
        """Whether a checks process is running (or starting) now."""
        return self._pool is not None

    async def call(self, fn: Callable[..., T], *args: Any, check: bool = True) -> T:
        """`fn(*args)` in the checks process (both picklable); ChecksStopped if it exits.
        Counted in `waiting` unless it is not a run's checks (`check=False`: the warm-up)."""
        pool = self._executor()
        counted = 1 if check else 0
        self.waiting += counted
        try:
            return await asyncio.wrap_future(pool.submit(fn, *args))
        except BrokenProcessPool as exc:
            with self._lock:
                if self._pool is pool:  # the next call starts a new process
                    self._pool = None
            pool.shutdown(wait=False)
            raise ChecksStopped(str(exc)) from None
        finally:
            self.waiting -= counted

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                methods = multiprocessing.get_all_start_methods()
                context = multiprocessing.get_context(
                    "forkserver" if "forkserver" in methods else "spawn"
                )
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=context,
                    initializer=_checks_process_start,
                    initargs=(os.getpid(),),
                )
            return self._pool


def _warm_up() -> None:
    """What every check needs, imported in the checks process (the OCR engine still loads on
    the first text check)."""
    import imagehash  # noqa: F401
    from PIL import PngImagePlugin  # noqa: F401

    import bot.checks.work  # noqa: F401


def _checks_process_start(bot_pid: int) -> None:
    """The checks process's set-up: the lowest priority, and a thread that ends the process
    with the bot's. Its job queue is a pipe it holds both ends of, so a bot that is killed
    (SIGKILL, out of memory) would otherwise leave it, and the fork server, waiting forever."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(CHECKS_NICENESS)
    threading.Thread(target=_exit_with, args=(bot_pid,), name="bot-watch", daemon=True).start()


def _exit_with(bot_pid: int) -> None:
    try:
        bot = os.pidfd_open(bot_pid)  # Linux 5.3+: readable once the bot has exited
    except ProcessLookupError:
        os._exit(0)
    except (AttributeError, OSError):  # no pidfd here: look every second
        while True:
            time.sleep(1)
            try:
                os.kill(bot_pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:
                pass
    select.select([bot], [], [])
    os._exit(0)


# One per bot process: every runtime's checks share it (and its loaded engines).
CHECKS_PROCESS = ChecksProcess()
STOPPED = "the checks process stopped before it answered (out of memory, or killed)"
BEHIND = "the checks were too far behind the runs ({n} waiting): this run was not checked"


class AcceptanceChecks:
    """Checks every succeeded run's images against what was asked (bot.checks)."""

    def __init__(
        self,
        checklog: CheckLog,
        runlog: RunLog,
        assets: AssetStore,
        settings: CheckSettings,
        *,
        own_process: bool = False,
    ) -> None:
        self.checklog = checklog
        self.runlog = runlog
        self.assets = assets
        self.settings = settings
        # The bot checks in the checks process (its event loop answers Slack); a command-line
        # run, which answers nobody meanwhile, checks in its worker thread and starts nothing.
        self.own_process = own_process
        self._pool: ThreadPoolExecutor | None = None
        self._prints: LRUCache[int, str] = LRUCache(maxsize=PRINTS_KEPT)
        self._prints_lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    @property
    def worker(self) -> ThreadPoolExecutor:
        """The thread that reads and stores for the checks (created on first use)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checks")
        return self._pool

    async def check(
        self,
        run: Run,
        images: Sequence[bytes] | None = None,
        request: ImageRequest | None = None,
    ) -> CheckReport:
        """Check a finished run (in the checks process with `own_process`); an empty report
        when checks are off or the run has no image. `images` and `request` save reading back
        what the caller holds already."""
        if not self.enabled or run.status != "succeeded" or run.id is None:
            return CheckReport()
        await give_way()  # reading the run's images waits for the acks in progress
        loop = asyncio.get_running_loop()
        try:
            waiting = CHECKS_PROCESS.waiting
            if self.own_process and waiting >= MAX_CHECKS_WAITING:
                log.warning("run %s: not checked, %d checks waiting", run.id, waiting)
                job: Job | Done = Done([not_run("delivery", BEHIND.format(n=waiting))])
            else:
                job = await loop.run_in_executor(self.worker, self._job, run, images, request)
            if not isinstance(job, Job):
                done = job
            elif not self.own_process:
                done = await loop.run_in_executor(self.worker, run_checks, job)
            else:
                try:
                    done = await CHECKS_PROCESS.call(run_checks, job)
                except ChecksStopped:
                    log.warning("run %s: the checks process stopped during its checks", run.id)
                    done = Done([not_run("delivery", STOPPED)])
            return await loop.run_in_executor(self.worker, self._keep, run, done)
        except Exception:  # whatever goes wrong, the run and its posting stay intact: log all
            log.warning("run %s: the acceptance checks could not run", run.id, exc_info=True)
            return CheckReport()

    async def warm(self) -> None:
        """Start the checks process ahead of the first check (serve does, once serving)."""
        if not (self.enabled and self.own_process):
            return
        try:
            await CHECKS_PROCESS.call(_warm_up, check=False)
        except Exception:  # the first check starts it then, or says why it cannot
            log.warning("the checks process could not be started ahead", exc_info=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    # -- what the checks read and store ----------------------------------------------------
    def _job(
        self, run: Run, images: Sequence[bytes] | None, request: ImageRequest | None
    ) -> Job | Done:
        """Everything the checks need, read: the job, or the "not run" when it cannot be."""
        assert run.id is not None
        try:
            outputs = list(images) if images is not None else self._stored(run.id, "output")
            source, mask = self._inputs(run, request)
        except (AssetStoreError, OSError, SQLAlchemyError) as exc:
            reason = f"the run's images could not be read back ({type(exc).__name__})"
            return Done([not_run("delivery", reason)])
        earlier = self._earlier(run) if outputs else None
        return Job(tuple(outputs), Ask.of(run, source, mask), self.settings, earlier)

    def _earlier(self, run: Run) -> Earlier | None:
        """The latest earlier output of the same request on the same route, if any."""
        try:
            earlier = self.checklog.previous_output(run)
        except SQLAlchemyError as exc:
            return Earlier(0, problem=f"earlier runs could not be read ({type(exc).__name__})")
        if earlier is None or earlier.id is None:
            return None
        with self._prints_lock:
            known = self._prints.get(earlier.id)
        if known is not None:
            return Earlier(earlier.id, fingerprint=known)
        try:  # its first image only: a repeat compares first outputs
            image = self._first_stored(earlier.id, "output")
        except (AssetStoreError, OSError, SQLAlchemyError) as exc:
            problem = f"run #{earlier.id}'s image could not be read ({type(exc).__name__})"
            return Earlier(earlier.id, problem=problem)
        if image is None:
            return Earlier(earlier.id, problem=f"run #{earlier.id} has no stored image")
        return Earlier(earlier.id, image=image)

    def _keep(self, run: Run, done: Done) -> CheckReport:
        """Store the results (replacing any earlier ones) and remember the fingerprint."""
        assert run.id is not None
        if done.fingerprint is not None:
            with self._prints_lock:
                self._prints[run.id] = done.fingerprint
        rows = [r.row() for r in done.results]
        try:
            self.checklog.replace(run.id, rows)
        except SQLAlchemyError as exc:
            log.warning("run %s: checks could not be stored: %s", run.id, type(exc).__name__)
        return CheckReport(rows)

    def _stored(self, run_id: int, role: str) -> list[bytes]:
        return [self.assets.get(a.path) for a in self.runlog.assets(run_id, role=role)]

    def _first_stored(self, run_id: int, role: str) -> bytes | None:
        """The run's first stored image of `role`, the only one read."""
        stored = self.runlog.assets(run_id, role=role)
        return self.assets.get(stored[0].path) if stored else None

    def _inputs(self, run: Run, request: ImageRequest | None) -> tuple[bytes | None, bytes | None]:
        """The edit's source image and mask: from the request in hand, else as stored."""
        if request is not None:
            source = request.input_images[0].data if request.input_images else None
            return source, request.mask.data if request.mask is not None else None
        if not run.input_assets or run.id is None:
            return None, None
        return self._first_stored(run.id, "input"), self._first_stored(run.id, "mask")
