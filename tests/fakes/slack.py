"""A fake Slack Web API (and response_url endpoint) on loopback, recording what the bot sent.

Covers what imageroute calls: auth.test, chat.postMessage/update/postEphemeral/getPermalink,
the files_upload_v2 trio (getUploadURLExternal -> POST to the returned loopback upload_url ->
completeUploadExternal), files.info, views.publish/open, users.info, and response_url posts.
Tests can make a method fail (`fail("chat.postMessage", "not_in_channel")`) or rate-limit it.

It refuses what Slack refuses (tests/fakes/block_kit.py has the rules and their sources): Block
Kit over its limits or missing required fields (invalid_blocks, with Slack's json-pointer
wording), a message with neither text nor blocks (no_text), a view Slack would not open
(invalid_arguments), alt text over 1,000 characters on an upload (alt_txt_too_large), and an
image block naming a file that does not exist, is not an image Block Kit shows (png, jpeg, gif)
or that Slack has not processed yet: completeUploadExternal answers before processing ends
(`processing_seconds` after it; files.info has no mimetype until then). Every refusal is kept in
`rejections`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.block_kit import block_problems, can_show, view_problems
from tests.fakes.server import FakeServer, RecordedRequest, Reply

BOT_USER = "U0BOT"
TEAM = "T0TEAM"


def signed_headers(
    body: str,
    secret: str,
    *,
    timestamp: int | None = None,
    content_type: str = "application/x-www-form-urlencoded",
) -> dict[str, str]:
    """The headers Slack sends with a request `body`, signed with the app's signing secret as
    slack_sdk's SignatureVerifier (what Bolt checks) expects."""
    from slack_sdk.signature import SignatureVerifier

    ts = str(timestamp or int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
        "Content-Type": content_type,
    }


@dataclass
class Upload:
    file_id: str
    filename: str
    title: str | None
    data: bytes = b""
    channel: str | None = None
    thread_ts: str | None = None
    comment: str | None = None
    alt: str | None = None
    completed_at: float | None = None  # files.completeUploadExternal (None: never completed)

    @property
    def mimetype(self) -> str:
        """What Slack makes of the bytes once it has processed them."""
        if self.data.startswith(b"\x89PNG"):
            return "image/png"
        if self.data.startswith(b"\xff\xd8"):
            return "image/jpeg"
        if self.data.startswith(b"GIF8"):
            return "image/gif"
        if self.data[:4] == b"RIFF" and self.data[8:12] == b"WEBP":
            return "image/webp"
        return "application/octet-stream"


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None
    kind: str = "message"  # message | ephemeral | file
    user: str | None = None
    file: Upload | None = None
    updates: list[dict[str, Any]] = field(default_factory=list)

    def image_blocks(self) -> list[dict[str, Any]]:
        return [b for b in self.blocks or [] if b.get("type") == "image"]

    def actions(self) -> list[dict[str, Any]]:
        """Every interactive element of the message, in order."""
        return [
            element
            for block in self.blocks or []
            if block.get("type") == "actions"
            for element in block.get("elements", [])
        ]

    def all_text(self) -> str:
        """The text and every string in the blocks, for assertions on wording."""
        return self.text + "\n" + json.dumps(self.blocks or [], ensure_ascii=False)


class SlackFake:
    def __init__(self) -> None:
        self.server = FakeServer("slack")
        self.messages: list[Message] = []
        self.uploads: dict[str, Upload] = {}
        self.completed: list[Upload] = []
        self.responses: list[dict[str, Any]] = []  # response_url posts
        self.views: list[dict[str, Any]] = []
        self.usergroups: dict[str, list[str]] = {}
        self.shared_files: dict[str, tuple[dict[str, Any], bytes]] = {}  # files users shared
        self.socket_url: str | None = None  # a SocketModeFake's ws:// URL
        # The bot token's scopes, sent as Slack does in every Web API answer's x-oauth-scopes.
        self.scopes: list[str] = [
            "commands",
            "chat:write",
            "files:write",
            "files:read",
            "usergroups:read",
        ]
        self.token = "xoxb-test-0000-bot-token"  # auth.test refuses any other (invalid_auth)
        self.failures: dict[str, list[tuple[str, int, dict[str, str]]]] = {}
        self.rejections: list[tuple[str, list[str]]] = []  # (method, Slack's errors)
        # How long Slack takes to process an uploaded file after completeUploadExternal.
        self.processing_seconds = 0.05
        self._lock = threading.RLock()
        self._ts = itertools.count(1)
        self._file = itertools.count(1)
        self._wire()

    # -- test controls -------------------------------------------------------------------
    def start(self) -> SlackFake:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def api_url(self) -> str:
        return self.server.url + "/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.server.url}/response/{name}"

    def fail(
        self, method: str, error: str, times: int = 1, status: int = 200, **headers: str
    ) -> None:
        """Make the next `times` calls of `method` fail with this Slack error (or HTTP status)."""
        with self._lock:
            self.failures.setdefault(method, []).extend([(error, status, headers)] * times)

    def thread(self, channel: str, thread_ts: str) -> list[Message | Upload]:
        """Everything posted into a thread (replies and file uploads), in order."""
        with self._lock:
            return [
                m.file if m.file is not None else m
                for m in self.messages
                if m.channel == channel and m.thread_ts == thread_ts and m.kind != "ephemeral"
            ]

    def top_level(self, channel: str | None = None) -> list[Message]:
        with self._lock:
            return [
                m
                for m in self.messages
                if m.thread_ts is None
                and m.kind == "message"
                and (channel is None or m.channel == channel)
            ]

    def ephemerals(self) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if m.kind == "ephemeral"]

    def replies(self, channel: str, thread_ts: str) -> list[Message]:
        """The messages in a thread (not file shares), in order."""
        return [m for m in self.thread(channel, thread_ts) if isinstance(m, Message)]

    def file(self, file_id: str) -> Upload:
        with self._lock:
            return self.uploads[file_id]

    def images(self, message: Message) -> list[Upload]:
        """The uploaded files a message shows through its image blocks."""
        return [self.file(b["slack_file"]["id"]) for b in message.image_blocks()]

    def share_file(
        self, data: bytes, mimetype: str = "image/png", name: str = "photo.png", **meta: Any
    ) -> dict[str, Any]:
        """A file as a user upload: returns the message `files` entry; download needs the token."""
        file_id = f"F0SHARED{next(self._file):03d}"
        info = {
            "id": file_id,
            "name": name,
            "mimetype": mimetype,
            "size": len(data),
            "url_private": f"{self.server.url}/files-pri/{file_id}",
            "url_private_download": f"{self.server.url}/files-pri/{file_id}",
            **meta,
        }
        with self._lock:
            self.shared_files[file_id] = (info, data)
        return dict(info)

    def calls(self, method: str) -> list[RecordedRequest]:
        return self.server.calls(f"/api/{method}")

    async def received(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until `predicate()` holds, re-checked each time the fake records something."""
        return await self.server.received(predicate, timeout)

    def published(self, method: str = "publish") -> list[dict[str, Any]]:
        """views.publish (or views.open with method="open") calls, oldest first."""
        with self._lock:
            return [v for v in self.views if v["method"] == method]

    # -- wire ----------------------------------------------------------------------------
    def _wire(self) -> None:
        s = self.server
        s.on("POST", "/api/{method}", self._api)
        s.on("GET", "/api/{method}", self._api)
        s.on("POST", "/upload/{file_id}", self._upload)
        s.on("POST", "/response/{name}", self._response)
        s.on("GET", "/files-pri/{file_id}", self._download)

    def _args(self, req: RecordedRequest) -> dict[str, Any]:
        ctype = req.headers.get("content-type", "")
        args: dict[str, Any] = {k: v[-1] for k, v in req.query.items()}
        if "json" in ctype:
            args.update(req.json() or {})
        elif "form" in ctype and "multipart" not in ctype:
            args.update(req.form())
        return args

    def _api(self, req: RecordedRequest) -> Reply:
        method = req.path_params["method"]
        with self._lock:
            queue = self.failures.get(method)
            failure = queue.pop(0) if queue else None
        if failure is not None:
            error, status, headers = failure
            if status != 200:
                return Reply(status, {"ok": False, "error": error}, headers=headers)
            return Reply(200, {"ok": False, "error": error})
        args = self._args(req)
        if method == "auth.test" and req.headers.get("authorization") != f"Bearer {self.token}":
            return Reply(200, {"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return Reply(200, {"ok": False, "error": "unknown_method"})
        return Reply(200, handler(args), headers={"x-oauth-scopes": ",".join(self.scopes)})

    def _next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    def _auth_test(self, _args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://fake.slack.test/",
            "team": "Fake Team",
            "user": "imageroute",
            "team_id": TEAM,
            "user_id": BOT_USER,
            "bot_id": "B0BOT",
            "is_enterprise_install": False,
        }

    @staticmethod
    def _blocks(args: dict[str, Any]) -> list[dict[str, Any]] | None:
        blocks = args.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        return blocks

    def _file_problem(self, file_id: str) -> str | None:
        """Why an image block may not show this file, in Slack's words (None: it may)."""
        with self._lock:
            upload = self.uploads.get(file_id)
            shared = self.shared_files.get(file_id)
        if shared is not None:
            return None if can_show(str(shared[0].get("mimetype"))) else "invalid slack file"
        if upload is None or upload.completed_at is None:
            return "invalid slack file"
        if time.monotonic() < upload.completed_at + self.processing_seconds:
            return "invalid slack file"  # not processed yet: Slack answers the same
        if not can_show(upload.mimetype):
            return "invalid slack file"
        return None

    def _refuse(
        self, method: str, errors: list[str], error: str = "invalid_blocks"
    ) -> dict[str, Any]:
        with self._lock:
            self.rejections.append((method, errors))
        return {
            "ok": False,
            "error": error,
            "errors": errors,
            "response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]},
        }

    def _message_problems(self, method: str, args: dict[str, Any]) -> dict[str, Any] | None:
        blocks = self._blocks(args)
        if not args.get("text") and not blocks and not args.get("attachments"):
            with self._lock:
                self.rejections.append((method, ["no_text"]))
            return {"ok": False, "error": "no_text"}
        if blocks is not None:
            problems = block_problems(blocks, self._file_problem)
            if problems:
                return self._refuse(method, problems)
        return None

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        refused = self._message_problems("chat.postMessage", args)
        if refused:
            return refused
        ts = self._next_ts()
        msg = Message(
            channel=str(args["channel"]),
            ts=ts,
            text=str(args.get("text") or ""),
            blocks=self._blocks(args),
            thread_ts=args.get("thread_ts") or None,
        )
        with self._lock:
            self.messages.append(msg)
        return {
            "ok": True,
            "channel": msg.channel,
            "ts": ts,
            "message": {"text": msg.text, "ts": ts},
        }

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        refused = self._message_problems("chat.update", args)
        if refused:
            return refused
        with self._lock:
            for m in self.messages:
                if m.channel == args["channel"] and m.ts == args["ts"]:
                    m.updates.append(
                        {
                            "text": args.get("text"),
                            "blocks": self._blocks(args),
                            "at": time.monotonic(),
                        }
                    )
                    m.text = str(args.get("text") or m.text)
                    m.blocks = self._blocks(args) or m.blocks
                    return {"ok": True, "channel": m.channel, "ts": m.ts}
        return {"ok": False, "error": "message_not_found"}

    def _chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        refused = self._message_problems("chat.postEphemeral", args)
        if refused:
            return refused
        msg = Message(
            channel=str(args["channel"]),
            ts=self._next_ts(),
            text=str(args.get("text") or ""),
            blocks=self._blocks(args),
            thread_ts=args.get("thread_ts") or None,
            kind="ephemeral",
            user=args.get("user"),
        )
        with self._lock:
            self.messages.append(msg)
        return {"ok": True, "message_ts": msg.ts}

    def _chat_getPermalink(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "permalink": f"https://fake.slack.test/archives/{args['channel']}/p{args['message_ts']}",
        }

    def _files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("filename") or not int(args.get("length") or 0):
            return {"ok": False, "error": "missing_argument"}
        alt = args.get("alt_txt")
        if alt is not None and len(str(alt)) > 1000:
            return {"ok": False, "error": "alt_txt_too_large"}
        file_id = f"F0UP{next(self._file):06d}"
        with self._lock:
            self.uploads[file_id] = Upload(file_id, str(args.get("filename")), None, alt=alt)
        return {"ok": True, "upload_url": f"{self.server.url}/upload/{file_id}", "file_id": file_id}

    def _upload(self, req: RecordedRequest) -> Reply:
        file_id = req.path_params["file_id"]
        with self._lock:
            upload = self.uploads.get(file_id)
            if upload is None:
                return Reply(404, "no such upload")
            ctype = req.headers.get("content-type", "")
            if "multipart" in ctype:
                parts = req.multipart()
                first = next(iter(parts.values()))
                upload.data = first[1] if isinstance(first, tuple) else str(first).encode()
            else:
                upload.data = req.body
        return Reply(200, f"OK - {len(upload.data)}")

    def _files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        files = args.get("files")
        if isinstance(files, str):
            files = json.loads(files)
        done = []
        with self._lock:
            for item in files or []:
                upload = self.uploads.get(item["id"])
                if upload is None:
                    return {"ok": False, "error": "file_not_found"}
                upload.title = item.get("title")
                upload.channel = args.get("channel_id") or args.get("channels")
                upload.thread_ts = args.get("thread_ts") or None
                upload.comment = args.get("initial_comment")
                upload.completed_at = time.monotonic()
                done.append({"id": upload.file_id, "title": upload.title})
                if not upload.channel:
                    continue  # a private file: shared later, if at all, by a message's blocks
                # The file takes its place in the channel's message order.
                self.messages.append(
                    Message(
                        channel=str(upload.channel),
                        ts=self._next_ts(),
                        text="",
                        blocks=None,
                        thread_ts=upload.thread_ts,
                        kind="file",
                        file=upload,
                    )
                )
        with self._lock:
            self.completed.extend(self.uploads[d["id"]] for d in done)
        return {"ok": True, "files": done}

    def _view_refused(self, method: str, view: Any) -> dict[str, Any] | None:
        problems = view_problems(view, self._file_problem)
        return self._refuse(method, problems, "invalid_arguments") if problems else None

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        refused = self._view_refused("views.publish", view)
        if refused:
            return refused
        with self._lock:
            self.views.append({"method": "publish", "user_id": args.get("user_id"), "view": view})
        return {"ok": True, "view": {"id": "V1"}}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        refused = self._view_refused("views.open", view)
        if refused:
            return refused
        with self._lock:
            self.views.append(
                {"method": "open", "trigger_id": args.get("trigger_id"), "view": view}
            )
        return {"ok": True, "view": {"id": "V2"}}

    def _apps_connections_open(self, _args: dict[str, Any]) -> dict[str, Any]:
        if self.socket_url is None:
            return {"ok": False, "error": "socket_mode_not_enabled"}
        return {"ok": True, "url": self.socket_url}

    def _files_info(self, args: dict[str, Any]) -> dict[str, Any]:
        file_id = str(args.get("file"))
        with self._lock:
            found = self.shared_files.get(file_id)
            upload = self.uploads.get(file_id)
        if found is not None:
            return {"ok": True, "file": found[0]}
        if upload is None or upload.completed_at is None:
            return {"ok": False, "error": "file_not_found"}
        processed = time.monotonic() >= upload.completed_at + self.processing_seconds
        mimetype = upload.mimetype if processed else ""
        return {
            "ok": True,
            "file": {
                "id": upload.file_id,
                "name": upload.filename,
                "title": upload.title,
                "mimetype": mimetype,
                "filetype": mimetype.split("/")[-1] if mimetype else "",
                "size": len(upload.data),
                "user": BOT_USER,
            },
        }

    def _download(self, req: RecordedRequest) -> Reply:
        with self._lock:
            found = self.shared_files.get(req.path_params["file_id"])
        if found is None:
            return Reply(404, "not found")
        if not req.headers.get("authorization", "").startswith("Bearer xoxb-"):
            return Reply(302, "", headers={"location": "https://fake.slack.test/login"})
        return Reply(200, found[1], content_type=found[0]["mimetype"])

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "users": self.usergroups.get(str(args.get("usergroup")), [])}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "user": {"id": args.get("user"), "tz": "UTC", "name": "tester"}}

    def _response(self, req: RecordedRequest) -> Reply:
        body = req.json() or {}
        if body.get("blocks") is not None:
            problems = block_problems(body["blocks"], self._file_problem)
            if problems:
                with self._lock:
                    self.rejections.append(("response_url", problems))
                return Reply(400, "invalid_blocks")
        with self._lock:
            self.responses.append({"name": req.path_params["name"], **body})
        return Reply(200, "ok")
