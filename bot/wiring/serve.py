"""`imageroute serve`: the Slack bot in Socket Mode (default) or over HTTP with /healthz."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as HttpRoute

from bot.checks.service import CHECKS_PROCESS
from bot.core import correlation
from bot.core.admission import RunSlots
from bot.health.events import AlertSink
from bot.slack.app import SlackBot
from bot.slack.health_alerts import LoggedAlerts, SlackAlerts
from bot.slack.listeners import Product
from bot.slack.middleware import plain
from bot.slack.poster import SlackPoster, make_client
from bot.wiring.logs import bind_slack_fields
from bot.wiring.metrics import CONTENT_TYPE, Metrics, process_metrics
from bot.wiring.prober import Leadership, Prober
from bot.wiring.runtime import Runtime
from bot.wiring.settings import Settings
from storage.db import ping

log = logging.getLogger(__name__)

# A request id from the reverse proxy is kept when it looks like one (nginx's $request_id).
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# How long a thread waiting for the GIL lets the holder run on (Python: 5 ms); see serve().
ACK_SWITCH_INTERVAL_S = 0.001


def build_http_app(bot: SlackBot, runtime: Runtime, metrics: Metrics | None = None) -> Starlette:
    """POST /slack/events for commands, events and interactivity; GET /healthz for the bot;
    GET /metrics for Prometheus."""
    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler

    handler = AsyncSlackRequestHandler(bot.app)
    measured = metrics if metrics is not None else process_metrics(runtime)

    async def events(request: Request) -> Response:
        given = request.headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else correlation.new_request_id()
        started = time.perf_counter()
        with correlation.bound(request_id=request_id):
            response = await handler.handle(request)
            seconds = time.perf_counter() - started
            # Bolt's middleware (bind_slack_fields) names the kind once the signature holds.
            kind = correlation.current().get("slack_kind", "rejected")
            measured.acked(kind, seconds)
            log.info(
                "slack %s answered %d in %.3f s",
                kind,
                response.status_code,
                seconds,
                extra={"status_code": response.status_code, "duration_s": round(seconds, 4)},
            )
        response.headers["X-Request-Id"] = request_id
        return response

    async def scrape(_request: Request) -> Response:
        return Response(measured.render(), media_type=CONTENT_TYPE)

    async def healthz(_request: Request) -> Response:
        db, store = await asyncio.gather(
            asyncio.to_thread(ping, runtime.engine), asyncio.to_thread(runtime.assets.ping)
        )
        ok = db == "ok" and store == "ok" and not bot.draining
        body: dict[str, Any] = {
            "status": "draining" if bot.draining else ("ok" if ok else "degraded"),
            "database": db,
            "asset_store": store,
            "spooled": await asyncio.to_thread(len, runtime.spool),
            "routes": len(runtime.routes),
            "background_tasks": len(bot.tasks),
            "runs_in_flight": bot.slots.in_flight,
            "requests_queued": bot.slots.waiting,
            "runs_finishing": bot.slots.lane.finishing,
            "checks_waiting": CHECKS_PROCESS.waiting,
            "worker": runtime.worker_id,
            "sweeps": runtime.liveness.sweeps,
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    return Starlette(
        routes=[
            HttpRoute("/slack/events", events, methods=["POST"]),
            HttpRoute("/healthz", healthz, methods=["GET"]),
            HttpRoute("/metrics", scrape, methods=["GET"]),
        ]
    )


def alerts_for(poster: SlackPoster | None, channel: str | None) -> AlertSink:
    """Health alerts into ALERT_CHANNEL, or into the log when there is no channel or token."""
    if poster is None or not channel:
        return LoggedAlerts()
    return SlackAlerts(poster, channel)


def settled() -> None:
    """Start-up is over: the cyclic collector resumes (the commands pause it while modules load
    and clients are built), leaving out for good what start-up built. Those objects live as long
    as the process; a full collection walking them all again would stall the event loop, and
    every ack waiting on it, for tens of milliseconds."""
    gc.freeze()
    gc.enable()


async def start_bot(settings: Settings, runtime: Runtime) -> SlackBot:
    """The Slack bot over this runtime; runs a dead process left pending are finished (a
    billed task still kept by the provider is collected) or reported as interrupted."""
    assert settings.slack_bot_token is not None
    client = make_client(
        settings.slack_bot_token.get_secret_value(),
        settings.slack_api_url,
        redactor=runtime.redactor,
    )
    poster = SlackPoster(client, runtime.redactor)
    product = Product(
        runs=runtime.runs,
        validator=runtime.validator,
        spend=runtime.spend,
        monitor=runtime.monitor(alerts_for(poster, settings.alert_channel)),
        health_log=runtime.health,
        bench_runner=runtime.bench_runner,
        config_source=runtime.config.source,
        checks=runtime.checks,
        slots=RunSlots(
            settings.imageroute_max_in_flight,
            runtime.observers,
            finishing=settings.imageroute_max_finishing,
        ),
    )
    secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    )
    bot = await SlackBot.create(
        product, client, poster, signing_secret=secret, api_url=settings.slack_api_url
    )
    bot.app.middleware(plain(bind_slack_fields))  # team and channel on every log line of a request
    # From now on this process settles runs of processes that die, within a minute: billed
    # tasks the provider still keeps are collected, the others told (and runs handed over by
    # a replica that stopped are collected too).
    await runtime.start_worker(sweep=True, on_orphans=bot.recover)
    return bot


async def connect_socket_mode(bot: SlackBot, settings: Settings) -> Any:
    """Connect the bot to Slack over Socket Mode (apps.connections.open on SLACK_API_URL)."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    assert settings.slack_app_token is not None
    handler = AsyncSocketModeHandler(
        bot.app, settings.slack_app_token.get_secret_value(), web_client=bot.client
    )
    await handler.connect_async()  # type: ignore[no-untyped-call]
    log.info("connected to Slack in Socket Mode")
    return handler


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling. uvicorn stops serving on SIGTERM and, once
    stopped, raises the signal again, which ends the process before any run in flight could
    finish; here the process decides when the server stops (after the drain)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Stopping:
    """SIGTERM or SIGINT asks to stop (drain, then exit); a second one cuts the drain short."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.forced = asyncio.Event()

    def signal(self, signum: int) -> None:
        if self.requested.is_set():
            log.warning(
                "second %s: interrupting the runs still in flight", signal.strsignal(signum)
            )
            self.forced.set()
            return
        log.info("%s: stopping after the runs in flight", signal.strsignal(signum))
        self.requested.set()

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.signal, sig)


async def drain(
    bot: SlackBot, runtime: Runtime, prober: Prober | None, stopping: Stopping, grace: float
) -> None:
    """Stop taking new work, then let the runs in flight finish within `grace` seconds; those
    still running after it (or after a second signal) are interrupted, and their threads and
    parent messages say so before the process exits. The heartbeat goes on meanwhile (these
    runs are not orphans); sweeping for other processes' runs is left to the live ones."""
    bot.draining = True
    runtime.liveness.sweeping = False
    if prober is not None:
        await prober.stop()
    log.info("draining: %d task(s) in flight, up to %gs", len(bot.tasks), grace)
    draining = asyncio.ensure_future(bot.tasks.drain(grace))
    forced = asyncio.ensure_future(stopping.forced.wait())
    await asyncio.wait({draining, forced}, return_when=asyncio.FIRST_COMPLETED)
    forced.cancel()
    if not draining.done():
        draining.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await draining
        await bot.tasks.drain(0)
    log.info("drained")


async def serve(
    settings: Settings,
    *,
    http: bool,
    port: int,
    host: str = "0.0.0.0",  # noqa: S104
    probes: bool = True,
) -> None:
    settings.require("slack_bot_token", why="to serve Slack")
    if http:
        settings.require("slack_signing_secret", why="for `serve --http`")
    else:
        settings.require("slack_app_token", why="for Socket Mode (or use `serve --http`)")
    stopping = Stopping()
    stopping.install()  # before anything slow: a deploy's SIGTERM at start-up still drains
    runtime = await asyncio.to_thread(Runtime.open, settings, role="bot")
    metrics = process_metrics(runtime)
    prober: Prober | None = None
    started: SlackBot | None = None  # its Slack connections are closed on the way out
    try:
        # Routes are warmed while Slack answers auth.test: /healthz (and Socket Mode) start only
        # once both are done, so ready means ready and the first run is not the slow one.
        bot, _ = await asyncio.gather(start_bot(settings, runtime), runtime.warm())
        started = bot
        settled()
        # Acks first: the event loop answers Slack, worker threads run the runs' CPU work
        # (decoding, storing, checks). A thread asking for the GIL waits one switch interval
        # before the holder is told to let go: 1 ms instead of Python's 5 ms keeps the loop's
        # wait short while the threads are busy.
        sys.setswitchinterval(ACK_SWITCH_INTERVAL_S)
        prober = (
            Prober(bot.monitor, Leadership(runtime.engine), on_leadership=metrics.leading)
            if probes
            else None
        )
        if prober is not None:
            prober.start()
        if http:
            config = uvicorn.Config(
                build_http_app(bot, runtime, metrics),
                host=host,
                port=port,
                log_level="info",
                access_log=False,
                log_config=None,  # the root handlers: one format, secrets masked
            )
            server = _Server(config)
            serving = asyncio.ensure_future(server.serve())
            warm_checks(bot, runtime)
            log.info(
                "serving Slack over HTTP on %s:%d (POST /slack/events, GET /healthz, /metrics)",
                host,
                port,
            )
            requested = asyncio.ensure_future(stopping.requested.wait())
            await asyncio.wait({serving, requested}, return_when=asyncio.FIRST_COMPLETED)
            requested.cancel()
            # The server keeps answering while runs drain: new commands hear "restarting".
            await drain(bot, runtime, prober, stopping, settings.imageroute_drain_seconds)
            server.should_exit = True
            await serving
        else:
            handler = await connect_socket_mode(bot, settings)
            warm_checks(bot, runtime)
            await stopping.requested.wait()
            await drain(bot, runtime, prober, stopping, settings.imageroute_drain_seconds)
            await handler.close_async()
    finally:
        if prober is not None:
            await prober.stop()
        if started is not None:
            await started.aclose()
        await runtime.aclose()
        log.info("stopped")


def warm_checks(bot: SlackBot, runtime: Runtime) -> None:
    """The checks process starts (at its lower priority) once this process serves, after the
    requests being answered: the first run's checks do not wait for it to start."""
    bot.tasks.spawn(runtime.checks.warm(), name="checks-warm")


def prober_status_app(runtime: Runtime, prober: Prober, metrics: Metrics) -> Starlette:
    """GET /healthz (database reachable; whether this process is the active prober) and GET
    /metrics, for the prober process."""

    async def healthz(_request: Request) -> Response:
        db = await asyncio.to_thread(ping, runtime.engine)
        ok = db == "ok"
        body: dict[str, Any] = {
            "status": "ok" if ok else "degraded",
            "database": db,
            "active": prober.active,
            "rounds": prober.rounds,
            "routes": len(prober.monitor.probed()),
            "worker": runtime.worker_id,
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    async def scrape(_request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return Starlette(
        routes=[
            HttpRoute("/healthz", healthz, methods=["GET"]),
            HttpRoute("/metrics", scrape, methods=["GET"]),
        ]
    )


class _BesideServer:
    """uvicorn serving next to a process that handles SIGTERM itself (the prober): uvicorn
    must neither take the signals nor raise them again when it stops."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        import uvicorn

        class Quiet(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, log_config=None
        )
        self.server = Quiet(config)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve(), name="prober-http")
        while not self.server.started:
            if self.task.done():
                self.task.result()  # the port is taken: say so and stop
                raise RuntimeError("the prober's HTTP server stopped at start")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task


async def run_prober(
    settings: Settings,
    port: int | None = None,
    host: str = "0.0.0.0",  # noqa: S104
) -> None:
    """`imageroute prober`: probes and alerts only; one active per database (advisory lock).
    /healthz and /metrics on `port` (PROBER_PORT; 0: none)."""
    runtime = await asyncio.to_thread(Runtime.open, settings, role="prober")
    metrics = process_metrics(runtime)
    await runtime.warm()
    settled()
    poster = None
    if settings.slack_bot_token is not None:
        client = make_client(
            settings.slack_bot_token.get_secret_value(),
            settings.slack_api_url,
            redactor=runtime.redactor,
        )
        poster = SlackPoster(client, runtime.redactor)
    else:
        log.warning("SLACK_BOT_TOKEN is not set: health alerts are only logged")
    # A prober runs no generations: it only keeps its heartbeat (the bot replicas sweep).
    await runtime.start_worker(sweep=False)
    prober = Prober(
        runtime.monitor(alerts_for(poster, settings.alert_channel)),
        Leadership(runtime.engine),
        on_leadership=metrics.leading,
    )
    port = settings.prober_port if port is None else port
    status = None
    if port:
        status = _BesideServer(prober_status_app(runtime, prober, metrics), host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if status is not None:
            await status.start()
            log.info("prober status on %s:%d (GET /healthz, /metrics)", host, port)
        prober.start(first_in=1.0)
        await stop.wait()
    finally:
        await prober.stop()
        if status is not None:
            await status.stop()
        await runtime.aclose()
