"""`imageroute serve`: the Slack bot in Socket Mode (default) or over HTTP with /healthz."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as HttpRoute

from bot.health.events import AlertSink
from bot.slack.app import SlackBot
from bot.slack.health_alerts import LoggedAlerts, SlackAlerts
from bot.slack.listeners import Product
from bot.slack.poster import SlackPoster, make_client
from bot.wiring.prober import Leadership, Prober
from bot.wiring.runtime import Runtime
from bot.wiring.settings import Settings
from storage.db import ping

log = logging.getLogger(__name__)

DRAIN_SECONDS = 60.0


def build_http_app(bot: SlackBot, runtime: Runtime) -> Starlette:
    """POST /slack/events for commands, events and interactivity; GET /healthz for the bot."""
    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler

    handler = AsyncSlackRequestHandler(bot.app)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    async def healthz(_request: Request) -> Response:
        db = await asyncio.to_thread(ping, runtime.engine)
        ok = db == "ok"
        body: dict[str, Any] = {
            "status": "ok" if ok else "degraded",
            "database": db,
            "routes": len(runtime.routes),
            "background_tasks": len(bot.tasks),
            "worker": runtime.worker_id,
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    return Starlette(
        routes=[
            HttpRoute("/slack/events", events, methods=["POST"]),
            HttpRoute("/healthz", healthz, methods=["GET"]),
        ]
    )


def alerts_for(poster: SlackPoster | None, channel: str | None) -> AlertSink:
    """Health alerts into ALERT_CHANNEL, or into the log when there is no channel or token."""
    if poster is None or not channel:
        return LoggedAlerts()
    return SlackAlerts(poster, channel)


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
    )
    secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    )
    bot = await SlackBot.create(
        product, client, poster, signing_secret=secret, api_url=settings.slack_api_url
    )
    orphans = await runtime.start_worker()
    await bot.recover(orphans)  # billed tasks collected in the background, the rest told
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
    runtime = await asyncio.to_thread(Runtime.open, settings, role="bot")
    bot = await start_bot(settings, runtime)
    prober = Prober(bot.monitor, Leadership(runtime.engine)) if probes else None
    if prober is not None:
        prober.start()
    try:
        if http:
            import uvicorn

            config = uvicorn.Config(
                build_http_app(bot, runtime),
                host=host,
                port=port,
                log_level="info",
                access_log=False,
            )
            log.info(
                "serving Slack over HTTP on %s:%d (POST /slack/events, GET /healthz)", host, port
            )
            await uvicorn.Server(config).serve()
        else:
            handler = await connect_socket_mode(bot, settings)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
            await handler.close_async()
    finally:
        if prober is not None:
            await prober.stop()
        log.info("finishing %d run(s) in flight before exit", len(bot.tasks))
        await bot.tasks.drain(DRAIN_SECONDS)
        await runtime.aclose()


async def run_prober(settings: Settings) -> None:
    """`imageroute prober`: probes and alerts only; one active per database (advisory lock)."""
    runtime = await asyncio.to_thread(Runtime.open, settings, role="prober")
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
    await runtime.start_worker()
    prober = Prober(
        runtime.monitor(alerts_for(poster, settings.alert_channel)), Leadership(runtime.engine)
    )
    prober.start(first_in=1.0)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await prober.stop()
        await runtime.aclose()
