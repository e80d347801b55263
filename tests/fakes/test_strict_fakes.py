"""The provider fakes themselves: each refuses requests the real endpoint refuses (and accepts
the matching good one), so a test that drives a bad request through the product fails."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from PIL import Image

from tests.fakes.bedrock import NOVA, SD35, BedrockFake
from tests.fakes.bfl import BflFake
from tests.fakes.google import API_KEY, GoogleFake
from tests.fakes.openai import OpenAIFake
from tests.fakes.self_hosted import A1111Fake, ComfyFake


def png(size: tuple[int, int] = (64, 64), mode: str = "RGBA") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format="PNG")
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- OpenAI -------------------------------------------------------------------------------------


@pytest.fixture
def openai_fake() -> Iterator[OpenAIFake]:
    fake = OpenAIFake(api_key="sk-1", organization="org-acme").start()
    yield fake
    fake.stop()


AUTH = {"Authorization": "Bearer sk-1"}


def edit(fake: OpenAIFake, headers: dict[str, str] | None = None, **fields: Any) -> httpx.Response:
    image = fields.pop("image", png())
    mask = fields.pop("mask", None)
    files: list[tuple[str, tuple[str, bytes, str]]] = [("image[]", ("a.png", image, "image/png"))]
    if mask is not None:
        files.append(("mask", ("m.png", mask, "image/png")))
    data = {"model": "gpt-image-2", "prompt": "p", **{k: str(v) for k, v in fields.items()}}
    return httpx.post(
        f"{fake.url}/images/edits", data=data, files=files, headers={**AUTH, **(headers or {})}
    )


def generate(
    fake: OpenAIFake, headers: dict[str, str] | None = None, **body: Any
) -> httpx.Response:
    payload = {"model": "gpt-image-2", "prompt": "p", **body}
    return httpx.post(
        f"{fake.url}/images/generations", json=payload, headers={**AUTH, **(headers or {})}
    )


@pytest.mark.parametrize(
    ("send", "status", "words"),
    [
        (lambda f: edit(f, moderation="low"), 400, "Unknown parameter: 'moderation'"),
        (lambda f: edit(f, mask=png(mode="RGB")), 400, "alpha channel"),
        (lambda f: edit(f, mask=png((32, 32))), 400, "same dimensions"),
        (lambda f: edit(f, image=b"GIF89a not allowed"), 400, "png, webp, or jpg"),
        (lambda f: generate(f, size="512x512"), 400, "at least 655360 pixels"),
        (lambda f: generate(f, size="1000x1000"), 400, "divisible by 16"),
        (lambda f: generate(f, size="3840x1024"), 400, "aspect ratio"),
        (lambda f: generate(f, background="transparent"), 400, "Transparent background"),
        (lambda f: generate(f, response_format="b64_json"), 400, "response_format"),
        (lambda f: generate(f, output_compression=50), 400, "output_compression"),
        (lambda f: generate(f, model="gpt-image-1"), 404, "does not exist"),
        (lambda f: generate(f, headers={"OpenAI-Organization": ""}), 401, "OpenAI-Organization"),
        (lambda f: generate(f, headers={"Authorization": "Bearer sk-wrong"}), 401, "API key"),
    ],
)
def test_openai_fake_refuses_what_openai_refuses(
    openai_fake: OpenAIFake, send: Any, status: int, words: str
) -> None:
    response = send(openai_fake)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]["message"]


def test_openai_fake_accepts_the_good_requests(openai_fake: OpenAIFake) -> None:
    hole = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    hole.paste((0, 0, 0, 0), (8, 8, 24, 24))
    buf = io.BytesIO()
    hole.save(buf, format="PNG")
    assert edit(openai_fake, mask=buf.getvalue(), quality="high").status_code == 200
    ok = generate(openai_fake, size="1024x640", moderation="low", output_format="webp",
                  output_compression=60, headers={"OpenAI-Organization": "org-acme"})  # fmt: skip
    assert ok.status_code == 200, ok.text
    assert "b64_json" in ok.json()["data"][0] and ok.headers["x-request-id"]
    assert not openai_fake.rejections


def test_openai_fake_checks_the_responses_tool(openai_fake: OpenAIFake) -> None:
    def respond(tool: dict[str, Any], part: dict[str, Any]) -> httpx.Response:
        body = {
            "model": "gpt-5",
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "p"}, part]}],
            "tools": [{"type": "image_generation", "model": "gpt-image-2", **tool}],
        }
        return httpx.post(f"{openai_fake.url}/responses", json=body, headers=AUTH)

    image = {"type": "input_image", "image_url": f"data:image/png;base64,{b64(png())}"}
    mask = {"image_url": f"data:image/png;base64,{b64(png())}"}
    assert respond({}, image).status_code == 400  # `detail` is required
    assert respond({"mask": mask}, {**image, "detail": "auto"}).status_code == 400  # unknown key
    assert respond({"input_image_mask": mask}, {**image, "detail": "auto"}).status_code == 200


def test_openai_fake_continues_only_a_stored_response(openai_fake: OpenAIFake) -> None:
    def turn(**extra: Any) -> httpx.Response:
        body = {
            "model": "gpt-5.4",
            "input": "now make it dusk",
            "tools": [{"type": "image_generation", "model": "gpt-image-2"}],
            **extra,
        }
        return httpx.post(f"{openai_fake.url}/responses", json=body, headers=AUTH)

    unknown = turn(previous_response_id="resp_never_made")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "previous_response_not_found"
    first = turn().json()["id"]
    second = turn(previous_response_id=first)
    assert second.status_code == 200 and second.json()["id"] != first
    unstored = turn(store=False).json()["id"]  # not kept: it cannot be continued
    assert turn(previous_response_id=unstored).status_code == 400


# -- Bedrock ------------------------------------------------------------------------------------


@pytest.fixture
def bedrock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    fake = BedrockFake().start()
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=fake.url,
        config=Config(retries={"total_max_attempts": 1}),
    )
    yield fake, client
    fake.stop()


def invoke(client: Any, model: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.invoke_model(modelId=model, body=json.dumps(body))
    answer: dict[str, Any] = json.loads(response["body"].read())
    return answer


@pytest.mark.parametrize(
    ("model", "body", "words"),
    [
        (
            SD35,
            {
                "prompt": "p",
                "mode": "image-to-image",
                "image": b64(png()),
                "strength": 0.5,
                "aspect_ratio": "16:9",
            },
            "only valid for text-to-image",
        ),
        (
            SD35,
            {"prompt": "p", "mode": "image-to-image", "image": b64(png())},
            "requires image and strength",
        ),
        (
            "stability.stable-image-ultra-v1:1",
            {"prompt": "p", "mode": "image-to-image"},
            "extraneous key [mode]",
        ),
        (
            NOVA,
            {
                "taskType": "TEXT_IMAGE",
                "textToImageParams": {"text": "p"},
                "imageGenerationConfig": {"seed": 4_000_000_000},
            },
            "seed",
        ),
        (
            NOVA,
            {
                "taskType": "TEXT_IMAGE",
                "textToImageParams": {"text": "p"},
                "imageGenerationConfig": {"width": 1000, "height": 1000},
            },
            "multiples of 16",
        ),
        (
            NOVA,
            {"taskType": "TEXT_IMAGE", "textToImageParams": {"text": "p", "prompt": "x"}},
            "extraneous key [prompt]",
        ),
    ],
)
def test_bedrock_fake_refuses_what_bedrock_refuses(
    bedrock: Any, model: str, body: dict[str, Any], words: str
) -> None:
    _fake, client = bedrock
    with pytest.raises(ClientError) as info:
        invoke(client, model, body)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert words in info.value.response["Error"]["Message"]


def test_bedrock_fake_answers_like_bedrock(bedrock: Any) -> None:
    fake, client = bedrock
    good = {"prompt": "p", "mode": "image-to-image", "image": b64(png()), "strength": 0.5}
    assert invoke(client, SD35, good)["finish_reasons"] == [None]
    fake.filter = "inference_error"
    assert invoke(client, SD35, {"prompt": "p"})["finish_reasons"] == ["Inference error"]
    fake.retired.add(NOVA)
    with pytest.raises(ClientError) as info:
        invoke(client, NOVA, {"taskType": "TEXT_IMAGE", "textToImageParams": {"text": "p"}})
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


# -- BFL, AUTOMATIC1111, ComfyUI, Google ----------------------------------------------------------


def test_bfl_fake_refuses_what_bfl_refuses() -> None:
    fake = BflFake().start()
    try:
        key = {"x-key": "bfl-key-123"}

        def post(model: str, body: dict[str, Any], headers: dict[str, str] = key) -> httpx.Response:
            return httpx.post(f"{fake.url}/v1/{model}", json=body, headers=headers)

        assert post("flux-pro-1.1", {"prompt": "p", "width": 1000}).status_code == 422
        assert post("flux-kontext-pro", {"prompt": "p", "aspect_ratio": "4:1"}).status_code == 422
        assert post("flux-pro-1.1", {"prompt": "p", "steps": 30}).status_code == 422
        assert post("flux-pro-1.1", {"prompt": "p"}, {}).status_code == 403
        assert post("flux-pro-1.0", {"prompt": "p"}).status_code == 404
        assert (
            post("flux-pro-1.1", {"prompt": "p", "width": 1024, "height": 768}).status_code == 200
        )
    finally:
        fake.stop()


def test_a1111_fake_refuses_what_a1111_would_get_wrong() -> None:
    fake = A1111Fake().start()
    try:
        txt2img = f"{fake.url}/sdapi/v1/txt2img"
        assert httpx.post(txt2img, json={"prompt": "p", "mask_invert": 1}).status_code == 422
        assert httpx.post(txt2img, json={"prompt": "p", "width": 1001}).status_code == 422
        img2img = f"{fake.url}/sdapi/v1/img2img"
        assert httpx.post(img2img, json={"prompt": "p"}).status_code == 422
        ok = httpx.post(img2img, json={"prompt": "p", "init_images": [b64(png())]})
        assert ok.status_code == 200 and json.loads(ok.json()["info"])["sd_model_name"]
    finally:
        fake.stop()


def test_comfyui_fake_refuses_a_graph_comfyui_would_refuse() -> None:
    fake = ComfyFake().start()
    try:
        graph = {
            "1": {"class_type": "LoadImage", "inputs": {"image": "never-uploaded.png"}},
            "2": {"class_type": "NoSuchNode", "inputs": {}},
        }
        answer = httpx.post(f"{fake.url}/prompt", json={"prompt": graph})
        assert answer.status_code == 400
        errors = answer.json()["node_errors"]
        assert errors["1"]["errors"][0]["message"] == "Invalid image file"
        assert errors["2"]["errors"][0]["message"] == "Node does not exist"
    finally:
        fake.stop()


def test_google_fake_refuses_what_google_refuses() -> None:
    fake = GoogleFake().start()
    try:
        key = {"x-goog-api-key": API_KEY}
        predict = f"{fake.url}/v1beta1/publishers/google/models/imagen-4.0-generate-001:predict"
        seed_with_watermark = {"instances": [{"prompt": "p"}], "parameters": {"seed": 1}}
        answer = httpx.post(predict, json=seed_with_watermark, headers=key)
        assert answer.status_code == 400 and "watermark" in answer.json()["error"]["message"]
        generate = f"{fake.url}/v1beta/models/gemini-2.5-flash-image:generateContent"
        four_k = {
            "contents": [{"role": "user", "parts": [{"text": "p"}]}],
            "generationConfig": {
                "responseModalities": ["IMAGE"],
                "imageConfig": {"imageSize": "4K"},
            },
        }
        assert httpx.post(generate, json=four_k, headers=key).status_code == 400
        fake.retired.add("gemini-2.5-flash-image")
        gone = httpx.post(generate, json={**four_k, "generationConfig": {}}, headers=key)
        assert gone.status_code == 404 and "not found" in gone.json()["error"]["message"]
    finally:
        fake.stop()
