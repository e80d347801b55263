"""Answer bodies shaped like OpenAI's, for fakes of the Responses API."""

from __future__ import annotations

from typing import Any


def responses_body(
    image_b64: str,
    *,
    response_id: str = "resp_1",
    model: str = "gpt-5",
    text: str | None = None,
    usage: dict[str, Any] | None = None,
    **call: Any,
) -> dict[str, Any]:
    """A completed response whose output holds one image_generation_call (plus an assistant
    message when `text` is given); `call` adds fields to the tool call (revised_prompt, size...)."""
    output: list[dict[str, Any]] = []
    if text is not None:
        output.append(
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        )
    output.append(
        {
            "id": "ig_1",
            "type": "image_generation_call",
            "status": "completed",
            "result": image_b64,
            **call,
        }
    )
    body: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": 1,
        "model": model,
        "status": "completed",
        "tool_choice": {"type": "image_generation"},
        "tools": [],
        "parallel_tool_calls": True,
        "output": output,
    }
    if usage is not None:
        body["usage"] = usage
    return body
