"""A small Black Forest Labs API on loopback: submit (`POST /v1/{model}`), a region-style polling
URL, and a delivery host for the signed result. It records every request, so tests count the
billed submits on the wire; `statuses` scripts the poll answers."""

from __future__ import annotations

import io
import time
from typing import Any

from PIL import Image

from tests.fakes.server import FakeServer, RecordedRequest, Reply


def jpeg(size: tuple[int, int] = (32, 24)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, "purple").save(buf, format="JPEG")
    return buf.getvalue()


class Bfl:
    """Fake BFL API: /v1/{model} submit, a region-style polling path, a delivery host path."""

    def __init__(self) -> None:
        self.server = FakeServer("bfl").start()
        self.statuses: list[str] = ["Pending", "Pending", "Ready"]
        self.submit_reply: Reply | None = None
        self.delivery_status = 200
        self.image_size = (32, 24)  # what the delivered image measures (FLUX.2 bills per MP)
        # Seconds after its submit before a task is Ready (a slow render), on top of `statuses`.
        self.ready_after: float | None = None
        self.submitted_at: dict[str, float] = {}
        self.server.on("POST", "/v1/{model}", self._submit)
        self.server.on("GET", "/us1/v1/get_result", self._poll)
        self.server.on("GET", "/delivery/{name}", self._deliver)
        self.server.on("GET", "/v1/credits", Reply(200, {"credits": 12.5}))

    def _submit(self, req: RecordedRequest) -> Reply:
        if self.submit_reply is not None:
            return self.submit_reply
        task = f"task-{len(self.server.calls(method='POST'))}"
        self.submitted_at[task] = time.monotonic()
        return Reply(
            200, {"id": task, "polling_url": f"{self.server.url}/us1/v1/get_result?id={task}"}
        )

    def _poll(self, req: RecordedRequest) -> Reply:
        task = req.query["id"][0]
        started = self.submitted_at.get(task)
        slow = self.ready_after is not None and started is not None
        if slow and time.monotonic() - started < self.ready_after:  # type: ignore[operator]
            return Reply(200, {"id": task, "status": "Pending"})
        status = self.statuses.pop(0) if self.statuses else "Ready"
        body: dict[str, Any] = {"id": task, "status": status}
        if status == "Ready":
            body["result"] = {"sample": f"{self.server.url}/delivery/{task}.jpg", "seed": 42}
        if status == "ServerError":
            return Reply(502, "bad gateway")
        return Reply(200, body)

    def _deliver(self, req: RecordedRequest) -> Reply:
        if self.delivery_status != 200:
            return Reply(self.delivery_status, "<Error>Request has expired</Error>")
        return Reply(200, jpeg(self.image_size), content_type="image/jpeg")
