"""Pictures of every Slack surface for docs/slack.md, from the payloads the bot really sends.

Runs the bot over signed HTTP against the fake Slack Web API (tests/fakes/slack.py, which checks
Block Kit as Slack does), drives each surface (a nine-route comparison, a failure, private and
shared lookups, advice and its More modal, App Home, the App Home form, a health alert through
acknowledgement and recovery), saves the captured payloads to docs/screens/payloads.json, renders
each as a small Slack-like HTML page and screenshots it with headless Chromium (from Debian:
`apt-get install -y chromium fonts-noto-color-emoji`).

    uv run python -m tools.slack_screens [--no-capture]

The HTML is an approximation of Slack's look; the payloads are exactly what Slack received.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import html
import io
import json
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from PIL import Image

from bot.wiring.runtime import Runtime
from bot.wiring.serve import build_http_app, start_bot
from bot.wiring.settings import Settings
from tests.bot.conftest import BOT_TOKEN, CHANNEL, SIGNING_SECRET, USER, BotHarness, button
from tests.bot.slack.test_alerts_on_call import ALERTS, Clock
from tests.bot.slack.test_alerts_on_call import Provider as AlertProvider
from tests.bot.slack.test_busy_channel import PROMPT, Gateway, nine_routes
from tests.fakes.slack import Message, SlackFake

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screens"
Payloads = dict[str, Any]


# -- capture ------------------------------------------------------------------------------------
async def _harness(slack: SlackFake, config: str, folder: Path, **settings: Any) -> Any:
    (folder / "imageroute.toml").write_text(config, encoding="utf-8")
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{folder}/imageroute.db",
        "asset_store": f"file://{folder}/assets",
        "imageroute_config": folder / "imageroute.toml",
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": slack.api_url,
        **settings,
    }
    runtime = await asyncio.to_thread(Runtime.open, Settings(_env_file=None, **values), role="bot")
    bot = await start_bot(Settings(_env_file=None, **values), runtime)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(build_http_app(bot, runtime), log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    harness = BotHarness(url, bot, runtime, slack, httpx.AsyncClient(base_url=url, timeout=30))

    async def stop() -> None:
        await bot.tasks.drain(10)
        await harness.client.aclose()
        server.should_exit = True
        await task
        await runtime.aclose()

    return harness, stop


def _message(m: Message, slack: SlackFake) -> Payloads:
    return {"kind": m.kind, "text": m.text, "blocks": m.blocks, "files": _files(m, slack)}


def _files(m: Message | None, slack: SlackFake, blocks: Any = None) -> dict[str, str]:
    """The images a payload's image blocks name, as small data URIs for the picture."""
    found: dict[str, str] = {}
    for block in (m.blocks if m is not None else blocks) or []:
        file_id = (
            (block.get("slack_file") or {}).get("id") if block.get("type") == "image" else None
        )
        if file_id:
            picture = Image.open(io.BytesIO(slack.file(file_id).data)).convert("RGB")
            picture.thumbnail((360, 360))
            buffer = io.BytesIO()
            picture.save(buffer, format="JPEG", quality=70)
            found[file_id] = (
                "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
            )
    return found


async def capture_comparison(folder: Path) -> Payloads:
    slack, gateway = SlackFake().start(), Gateway()
    gateway.down.add("broken")
    h, stop = await _harness(slack, nine_routes(gateway), folder)
    out: Payloads = {}
    try:
        await h.command("/imagegen", f'route=all prompt="{PROMPT}"')
        await h.settle(60)
        [parent] = slack.top_level(CHANNEL)
        out["scoreboard_running"] = {
            "kind": "message",
            "text": parent.updates[0]["text"],
            "blocks": parent.updates[0]["blocks"],
            "files": {},
        }
        out["scoreboard_done"] = _message(parent, slack)
        replies = slack.replies(CHANNEL, parent.ts)
        out["result"] = _message(next(m for m in replies if "*paid*" in m.all_text()), slack)
        out["failure"] = _message(next(m for m in replies if not m.image_blocks()), slack)
        # A re-run from the result's button: its own scoreboard in the thread.
        first = replies[0]
        await h.interact(h.click(first, button(first, "rerun"), user="U0USER0002"))
        await h.settle(30)
        out["rerun_scoreboard"] = _message(slack.replies(CHANNEL, parent.ts)[len(replies)], slack)

        out.update(await capture_answers(h, slack))
        assert slack.rejections == [], slack.rejections
    finally:
        await stop()
        slack.stop()
        gateway.fake.stop()
    return out


async def capture_answers(h: BotHarness, slack: SlackFake) -> Payloads:
    """Lookups (private, shared, not understood), advice and its More, App Home and its form."""
    out: Payloads = {}
    # Lookups: private, then shared.
    before = len(slack.responses)
    await h.command("/imageroute", "stats")
    await h.settle()
    stats = slack.responses[before]
    out["stats_private"] = _private(stats)
    await h.interact(h.click_private(button(stats["blocks"], "share_answer")))
    await h.settle()
    shared = slack.top_level(CHANNEL)[-1]
    out["stats_shared"] = _message(shared, slack)
    unknown = (await h.command("/imageroute", "frobnicate")).json()
    out["unknown"] = _private(unknown)

    # Advice at a glance, then More.
    question = "we're on GCP and need product shots with transparent backgrounds"
    before = len(slack.responses)
    await h.command("/imageroute", question)
    await h.settle()
    advice = slack.responses[before]
    out["advice"] = _private(advice)
    await h.interact(h.click_private(button(advice["blocks"], "advice_more")))
    await slack.received(lambda: slack.published("open"))
    out["advice_more"] = {"kind": "modal", "view": slack.published("open")[-1]["view"]}

    # App Home, and its Compare routes form.
    await h.event({"type": "app_home_opened", "user": USER, "tab": "home"})
    [home] = await slack.received(slack.published)
    out["home"] = {"kind": "home", "view": home["view"]}
    opened = len(slack.published("open"))
    compare = button(home["view"]["blocks"], "home_compare")
    await h.interact(
        {
            "type": "block_actions",
            "user": {"id": USER},
            "team": {"id": "T0TEAM"},
            "container": {"type": "view", "view_id": "V1"},
            "view": {"id": "V1", "type": "home"},
            "trigger_id": "trigger.screens",
            "actions": [{**compare, "action_ts": "1.1"}],
        }
    )
    await slack.received(lambda: len(slack.published("open")) > opened)
    out["home_compare_form"] = {"kind": "modal", "view": slack.published("open")[-1]["view"]}
    return out


def _private(answer: dict[str, Any]) -> Payloads:
    return {"kind": "ephemeral", "text": answer["text"], "blocks": answer["blocks"]}


async def capture_alert(folder: Path) -> Payloads:
    slack, provider = SlackFake().start(), AlertProvider()
    provider.down.add("a")
    h, stop = await _harness(slack, provider.config(), folder, alert_channel=ALERTS)
    clock = Clock()
    h.bot.monitor.clock = clock
    out: Payloads = {}
    try:
        await h.command("/imagegen", 'route=a prompt="a product shot of a teal kettle"')
        await h.settle(30)
        await h.bot.monitor.round()
        [alert] = slack.top_level(ALERTS)
        out["alert_open"] = _message(alert, slack)
        clock.advance(61)
        await h.bot.monitor.round()
        await h.interact(h.click(alert, button(alert, "alert_ack")))
        await h.settle()
        out["alert_acknowledged"] = _message(alert, slack)
        provider.down.discard("a")
        clock.advance(9)
        await h.bot.monitor.round()
        out["alert_recovered"] = _message(alert, slack)
        out["alert_thread"] = [_message(m, slack) for m in slack.replies(ALERTS, alert.ts)]
        assert slack.rejections == [], slack.rejections
    finally:
        await stop()
        slack.stop()
        provider.fake.stop()
    return out


async def capture() -> Payloads:
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
        payloads = await capture_comparison(Path(one))
        payloads.update(await capture_alert(Path(two)))
    return payloads


# -- rendering ----------------------------------------------------------------------------------
EMOJI = {
    "white_check_mark": "✅",
    "x": "❌",
    "hourglass_flowing_sand": "⏳",
    "inbox_tray": "📥",
    "arrows_counterclockwise": "🔄",
    "heavy_minus_sign": "➖",
    "warning": "⚠️",
    "red_circle": "🔴",
    "large_green_circle": "🟢",
    "large_yellow_circle": "🟡",
    "white_circle": "⚪",
    "rotating_light": "🚨",
}
NAMES = {USER: "maya", "U0USER0002": "sam"}


def mrkdwn(text: str) -> str:
    """Slack's mrkdwn as HTML, near enough for a picture (the text is already Slack-escaped)."""
    blocks: list[str] = []

    def keep(match: re.Match[str]) -> str:
        blocks.append(f"<pre>{match.group(1)}</pre>")
        return f"\x00{len(blocks) - 1}\x00"

    text = re.sub(r"```(.*?)```", keep, text, flags=re.S)
    text = re.sub(r"`([^`\n]+)`", r"<code>\1</code>", text)
    text = re.sub(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])", r"<b>\1</b>", text)
    text = re.sub(r"(?<![\w_])_([^_\n]+)_(?![\w_])", r"<i>\1</i>", text)
    text = re.sub(r"&lt;@(U\w+)&gt;|<@(U\w+)>", lambda m: _mention(m.group(1) or m.group(2)), text)
    text = re.sub(r"<!subteam\^(\w+)>", r'<span class="mention">@images-oncall</span>', text)
    text = re.sub(r"<#(\w+)>", r'<span class="mention">#general</span>', text)
    text = re.sub(r"<(https?://[^|>]+)\|([^>]+)>", r'<a href="#">\2</a>', text)
    text = re.sub(r":([a-z_]+):", lambda m: EMOJI.get(m.group(1), m.group(0)), text)
    lines = []
    for line in text.split("\n"):
        if line.startswith("&gt;") or line.startswith(">"):
            line = f'<span class="quote">{line.lstrip(">").removeprefix("&gt;")}</span>'
        lines.append(line)
    text = "<br>".join(lines)
    return re.sub(r"\x00(\d+)\x00", lambda m: blocks[int(m.group(1))], text)


def _mention(user: str) -> str:
    return f'<span class="mention">@{NAMES.get(user, "someone")}</span>'


def text_object(obj: Any) -> str:
    if not isinstance(obj, dict):
        return ""
    if obj.get("type") == "plain_text":
        return html.escape(obj.get("text", ""))
    return mrkdwn(obj.get("text", ""))


def element(e: dict[str, Any]) -> str:
    kind = e.get("type")
    if kind == "button":
        style = e.get("style") or ""
        return f'<span class="button {style}">{text_object(e["text"])}</span>'
    if kind in ("static_select", "multi_static_select"):
        label = text_object(e.get("placeholder") or {"type": "plain_text", "text": "Choose"})
        return f'<span class="button select">{label} ▾</span>'
    if kind == "overflow":
        return '<span class="button overflow">⋯</span>'
    if kind == "conversations_select":
        return '<span class="input">#general ▾</span>'
    if kind == "plain_text_input":
        return '<span class="input tall"></span>'
    if kind == "file_input":
        return '<span class="input">Drag a file here</span>'
    return ""


def block(b: dict[str, Any], files: dict[str, str]) -> str:
    kind = b.get("type")
    if kind == "section":
        return f'<div class="section">{text_object(b.get("text"))}</div>'
    if kind == "context":
        parts = " &nbsp;·&nbsp; ".join(text_object(e) for e in b.get("elements", []))
        return f'<div class="context">{parts}</div>'
    if kind == "actions":
        return '<div class="actions">' + "".join(element(e) for e in b["elements"]) + "</div>"
    if kind == "header":
        return f'<div class="header">{text_object(b["text"])}</div>'
    if kind == "divider":
        return "<hr>"
    if kind == "image":
        src = files.get((b.get("slack_file") or {}).get("id", ""), "")
        title = text_object(b.get("title")) if b.get("title") else ""
        alt = html.escape(b.get("alt_text", ""))
        head = f'<div class="title">{title} ▾</div>'
        return f'<div class="image">{head}<img src="{src}" alt="{alt}"></div>'
    if kind == "input":
        label = text_object(b.get("label"))
        hint = f'<div class="hint">{text_object(b["hint"])}</div>' if b.get("hint") else ""
        return f'<div class="inputblock"><b>{label}</b>{element(b["element"])}{hint}</div>'
    return ""


CSS = """
body { font-family: 'DejaVu Sans', sans-serif; font-size: 14px; color: #1d1c1d; margin: 0;
       background: #fff; width: 760px; }
.msg { display: flex; padding: 12px 18px; }
.avatar { width: 36px; height: 36px; border-radius: 6px; background: #1d3557; color: #fff;
          font-weight: bold; text-align: center; line-height: 36px; margin-right: 10px;
          flex: none; }
.who { font-weight: bold; } .app { font-size: 10px; background: #e8e8e8; padding: 1px 3px;
       border-radius: 2px; color: #616061; margin-left: 4px; } .time { color: #616061;
       font-size: 12px; margin-left: 6px; }
.body { flex: 1; min-width: 0; }
.section, .context, .actions, .header, .image, .inputblock { margin: 6px 0; }
.context { color: #616061; font-size: 12.5px; }
.header { font-size: 18px; font-weight: bold; }
code { background: #f6f6f6; border: 1px solid #e1e1e1; color: #c01343; padding: 0 3px;
       border-radius: 3px; font-size: 12px; }
pre { background: #f8f8f8; border: 1px solid #e1e1e1; padding: 8px; border-radius: 4px;
      font-size: 11.5px; overflow: hidden; }
.quote { border-left: 4px solid #ddd; padding-left: 8px; display: inline-block; }
.mention { background: #e8f5fa; color: #1264a3; border-radius: 3px; padding: 0 2px; }
.button { display: inline-block; border: 1px solid #bbb; border-radius: 4px; padding: 4px 11px;
          margin: 0 6px 4px 0; font-weight: bold; font-size: 13px; }
.button.primary { background: #007a5a; color: #fff; border-color: #007a5a; }
.button.danger { color: #e01e5a; border-color: #e01e5a; }
.button.select { font-weight: normal; } .button.overflow { padding: 4px 8px; }
.image img { max-width: 360px; max-height: 360px; border-radius: 6px; border: 1px solid #ddd; }
.image .title { color: #616061; font-size: 12.5px; margin-bottom: 4px; }
.ephemeral { color: #616061; font-size: 12px; margin-bottom: 4px; }
.modal { border: 1px solid #ccc; border-radius: 8px; margin: 16px; width: 600px;
         box-shadow: 0 4px 16px rgba(0,0,0,.15); }
.modal .top { font-size: 20px; font-weight: bold; padding: 16px 20px;
              border-bottom: 1px solid #ddd; }
.modal .content { padding: 8px 20px; } .modal .bottom { text-align: right; padding: 12px 20px;
         border-top: 1px solid #ddd; }
.input { display: block; border: 1px solid #bbb; border-radius: 4px; padding: 6px; margin-top: 4px;
         color: #616061; min-height: 18px; } .input.tall { min-height: 60px; }
.hint { color: #616061; font-size: 12px; }
.thread { border-left: 3px solid #ddd; margin-left: 30px; }
hr { border: none; border-top: 1px solid #ddd; }
"""


def message_html(p: Payloads, *, name: str = "imageroute") -> str:
    blocks = "".join(block(b, p.get("files", {})) for b in p.get("blocks") or [])
    if not blocks:
        blocks = f'<div class="section">{mrkdwn(html.escape(p.get("text", ""), quote=False))}</div>'
    only = '<div class="ephemeral">👁 Only visible to you</div>' if p["kind"] == "ephemeral" else ""
    return (
        f'<div class="msg"><div class="avatar">ir</div><div class="body"><span class="who">{name}'
        f'</span><span class="app">APP</span><span class="time">10:42</span>{only}{blocks}'
        "</div></div>"
    )


def view_html(p: Payloads) -> str:
    view = p["view"]
    blocks = "".join(block(b, {}) for b in view.get("blocks") or [])
    if view.get("type") == "home":
        return f'<div class="msg"><div class="body">{blocks}</div></div>'
    submit = text_object(view["submit"]) if view.get("submit") else ""
    close = text_object(view.get("close") or {"type": "plain_text", "text": "Close"})
    buttons = f'<span class="button">{close}</span>' + (
        f'<span class="button primary">{submit}</span>' if submit else ""
    )
    return (
        f'<div class="modal"><div class="top">{text_object(view["title"])}</div>'
        f'<div class="content">{blocks}</div><div class="bottom">{buttons}</div></div>'
    )


def page(body: str) -> str:
    return f'<!doctype html><meta charset="utf-8"><style>{CSS}</style><body>{body}</body>'


SCREENS: dict[str, tuple[str, ...]] = {
    "comparison-running": ("scoreboard_running",),
    "comparison-done": ("scoreboard_done",),
    "result-messages": ("result", "failure"),
    "rerun-scoreboard": ("rerun_scoreboard",),
    "lookup-private": ("stats_private",),
    "lookup-shared": ("stats_shared",),
    "unknown-subcommand": ("unknown",),
    "advice": ("advice",),
    "advice-more": ("advice_more",),
    "app-home": ("home",),
    "app-home-compare-form": ("home_compare_form",),
    "alert-open": ("alert_open",),
    "alert-acknowledged": ("alert_acknowledged",),
    "alert-recovered": ("alert_recovered", "alert_thread"),
}


def render(payloads: Payloads, out: Path) -> list[Path]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium is not installed: apt-get install -y chromium")
    made = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, keys in SCREENS.items():
            parts = []
            for key in keys:
                item = payloads[key]
                items = item if isinstance(item, list) else [item]
                for p in items:
                    html_part = view_html(p) if "view" in p else message_html(p)
                    if key == "alert_thread":
                        html_part = f'<div class="thread">{html_part}</div>'
                    parts.append(html_part)
            source = Path(tmp) / f"{name}.html"
            source.write_text(page("".join(parts)), encoding="utf-8")
            target = out / f"{name}.png"
            subprocess.run(
                [
                    chromium,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--hide-scrollbars",
                    "--window-size=780,2400",
                    f"--screenshot={target}",
                    source.as_uri(),
                ],
                check=True,
                capture_output=True,
            )
            _crop(target)
            made.append(target)
    return made


def _crop(path: Path) -> None:
    """Cut the white space under the content."""
    with Image.open(path) as picture:
        rgb = picture.convert("RGB")
        inverted = Image.eval(rgb, lambda v: 255 - v)
        box = inverted.getbbox()
        if box:
            rgb.crop((0, 0, rgb.width, min(rgb.height, box[3] + 16))).save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-capture", action="store_true", help="render the saved payloads")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    saved = OUT / "payloads.json"
    if args.no_capture:
        payloads = json.loads(saved.read_text(encoding="utf-8"))
    else:
        payloads = asyncio.run(capture())
        saved.write_text(json.dumps(payloads, indent=1, ensure_ascii=False), encoding="utf-8")
    for path in render(payloads, OUT):
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
