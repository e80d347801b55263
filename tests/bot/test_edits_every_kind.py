"""Edits end to end on every route kind that claims them: a real PNG and a mask with a
transparent hole go in through `imageroute gen --image --mask` and through the Slack edit
shortcut (signed requests into the running app), and each strict provider fake shows what it
received: the image, the prompt, and the mask in the provider's own convention. Kinds that
cannot edit (or take no mask) refuse before any call."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli import app as cli_app
from tests.bot.conftest import CHANNEL, USER, BotHarness
from tests.bot.providers import Providers, provider_env
from tests.bot.slack.test_features import _shortcut_payload
from tests.fakes.pictures import hole_pixels, holed_mask, photo


def data_url(value: str) -> bytes:
    return base64.b64decode(value.split(",", 1)[1])


def _file(value: Any) -> bytes:
    item = value[0] if isinstance(value, list) else value
    data: bytes = item[1]
    return data


@dataclass
class Wire:
    """What a provider received for the last edit."""

    image: bytes
    prompt: str
    mask_ok: bool | None  # None: the route takes no mask


def images_api(form: dict[str, Any]) -> Wire:
    image = form.get("image[]", form.get("image"))
    return Wire(_file(image), form["prompt"], _file(form["mask"]) == holed_mask())


def wire_openai(p: Providers) -> Wire:
    return images_api(p.openai.calls("edits")[-1].multipart())


def wire_gateway(p: Providers) -> Wire:
    return images_api(p.gateway.calls("edits")[-1].multipart())


def wire_local(p: Providers) -> Wire:
    return images_api(p.local.calls("edits")[-1].multipart())


def wire_assistant(p: Providers) -> Wire:
    body = p.openai.calls("responses")[-1].json()
    content = body["input"][0]["content"]
    mask = data_url(body["tools"][0]["input_image_mask"]["image_url"])
    return Wire(data_url(content[1]["image_url"]), content[0]["text"], mask == holed_mask())


def wire_gemini(p: Providers) -> Wire:
    parts = p.google.calls("generate")[-1].json()["contents"][0]["parts"]
    return Wire(base64.urlsafe_b64decode(parts[1]["inlineData"]["data"]), parts[0]["text"], None)


def wire_flux(p: Providers) -> Wire:
    body = p.bfl.submits("flux-2-pro")[-1].json()
    return Wire(base64.b64decode(body["input_image"]), body["prompt"], None)


def wire_kontext(p: Providers) -> Wire:
    body = p.bfl.submits("flux-kontext-pro")[-1].json()
    return Wire(base64.b64decode(body["input_image"]), body["prompt"], None)


def wire_nova(p: Providers) -> Wire:
    body = p.bedrock.server.calls("/model/amazon.nova-canvas-v1:0/invoke")[-1].json()
    params = body["imageVariationParams"]
    return Wire(base64.b64decode(params["images"][0]), params["text"], None)


def wire_sd35(p: Providers) -> Wire:
    body = p.bedrock.server.calls("/model/stability.sd3-5-large-v1:0/invoke")[-1].json()
    assert body["mode"] == "image-to-image" and "aspect_ratio" not in body
    return Wire(base64.b64decode(body["image"]), body["prompt"], None)


def wire_gpu(p: Providers) -> Wire:
    body = p.a1111.calls("img2img")[-1].json()
    # A1111 repaints where its mask is white: exactly our transparent hole.
    return Wire(
        base64.b64decode(body["init_images"][0]), body["prompt"], p.a1111.repainted == hole_pixels()
    )


def wire_comfy(p: Providers) -> Wire:
    graph = list(p.comfy.prompts.values())[-1]
    image = p.comfy.uploads[graph["10"]["inputs"]["image"]]
    # LoadImageMask reads the alpha channel: the pixels it masks are the hole.
    return Wire(image, graph["6"]["inputs"]["text"], p.comfy.masked == hole_pixels())


EDIT_ROUTES: dict[str, Callable[[Providers], Wire]] = {
    "openai": wire_openai,
    "assistant": wire_assistant,
    "gateway": wire_gateway,
    "gemini": wire_gemini,
    "flux": wire_flux,
    "kontext": wire_kontext,
    "nova": wire_nova,
    "sd35": wire_sd35,
    "gpu": wire_gpu,
    "comfy": wire_comfy,
    "local": wire_local,
}
NO_MASK = {"gemini", "flux", "kontext", "nova", "sd35"}


@pytest.fixture(scope="module")
def providers() -> Iterator[Providers]:
    with pytest.MonkeyPatch.context() as patch:
        provider_env(patch)
        p = Providers()
        yield p
        p.stop()


@pytest.fixture
def cli(
    providers: Providers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Any]:
    provider_env(monkeypatch)
    (tmp_path / "imageroute.toml").write_text(providers.edit_config(tmp_path))
    (tmp_path / "photo.png").write_bytes(photo())
    (tmp_path / "mask.png").write_bytes(holed_mask())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/gen.db")
    monkeypatch.setenv("ASSET_STORE", f"file://{tmp_path}/assets")

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli_app, ["gen", *args])

    return run


def calls_to(providers: Providers) -> int:
    servers = (
        providers.openai.server,
        providers.gateway.server,
        providers.local.server,
        providers.google.server,
        providers.bfl.server,
        providers.bedrock.server,
        providers.a1111.server,
        providers.comfy.server,
    )
    return sum(len(s.calls()) for s in servers)


@pytest.mark.parametrize("route", sorted(EDIT_ROUTES))
def test_cli_edit_reaches_the_provider_in_its_convention(
    route: str, providers: Providers, cli: Callable[..., Any]
) -> None:
    prompt = f"put a window where the wall is ({route})"
    mask = [] if route in NO_MASK else ["--mask", "mask.png"]
    result = cli("--route", route, "--image", "photo.png", *mask, prompt)
    assert result.exit_code == 0, result.output
    assert f"{route}: 1 image(s)" in result.output
    assert not providers.rejections()
    wire = EDIT_ROUTES[route](providers)
    assert wire.image == photo() and wire.prompt == prompt
    assert wire.mask_ok is (None if route in NO_MASK else True)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--route", "imagen", "--image", "photo.png"], "cannot edit images"),
        (["--route", "flux11", "--image", "photo.png"], "cannot edit images"),
        (
            ["--route", "gemini", "--image", "photo.png", "--mask", "mask.png"],
            "does not take an edit mask",
        ),
        (["--route", "openai", "--mask", "mask.png"], "--mask needs the image"),
        (
            ["--route", "openai", "--image", "mask.png", "--mask", "photo.png"],
            "mask has no transparency",
        ),
        (
            ["--route", "openai", "--image", "photo.png", "--moderation", "low"],
            "not available on edits",
        ),
        (["--route", "openai", "--size", "512x512"], "at least 655,360 pixels"),
        (["--route", "openai", "--image", "nowhere.png"], "cannot read nowhere.png"),
    ],
)
def test_cli_refuses_before_any_call(
    args: list[str], words: str, providers: Providers, cli: Callable[..., Any]
) -> None:
    before = calls_to(providers)
    result = cli(*args, "a window")
    assert result.exit_code == 2, result.output
    assert words in result.output and "Traceback" not in result.output
    # One sentence (the routes file's own warnings, one line per route, come before it).
    said = [x for x in result.output.strip().splitlines() if not x.startswith("imageroute: warn")]
    assert len(said) == 1
    assert calls_to(providers) == before


def test_cli_edit_with_default_moderation_sends_none(
    providers: Providers, cli: Callable[..., Any]
) -> None:
    result = cli("--route", "openai", "--image", "photo.png", "--moderation", "auto", "a window")
    assert result.exit_code == 0, result.output
    assert "moderation" not in providers.openai.calls("edits")[-1].multipart()


# -- Slack: the "Edit image with imageroute" shortcut ---------------------------------------------


def submission(
    view: dict[str, Any], route: str, instruction: str, mask_id: str | None
) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "user": {"id": USER},
        "team": {"id": "T0TEAM"},
        "view": {
            **view,
            "id": f"V{route}",
            "hash": f"h-{route}",
            "state": {
                "values": {
                    "route": {"value": {"selected_option": {"value": route}}},
                    "instruction": {"value": {"value": instruction}},
                    "mask": {"value": {"files": [{"id": mask_id}] if mask_id else []}},
                }
            },
        },
    }


async def test_slack_edit_shortcut_on_every_kind(
    providers: Providers, start_harness: Callable[..., Any], tmp_path: Path
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        provider_env(patch)
        h: BotHarness = await start_harness(providers.edit_config(tmp_path))
        shared = h.slack.share_file(photo(), name="wall.png")
        await h.interact(_shortcut_payload(h, [shared]))
        # The shortcut opens its modal after the ack: wait for what Slack received.
        opened = await h.slack.server.received(
            lambda: [v for v in h.slack.views if v["method"] == "open"]
        )
        view = opened[-1]["view"]
        offered = {o["value"] for o in view["blocks"][0]["element"]["options"]}
        # Kinds that cannot edit are not offered; every kind that can is.
        assert offered == {*EDIT_ROUTES, "demo"}

        for route, wire_of in sorted(EDIT_ROUTES.items()):
            instruction = f"put a window where the wall is (slack {route})"
            mask = None if route in NO_MASK else h.slack.share_file(holed_mask(), name="mask.png")
            answer = await h.interact(
                submission(view, route, instruction, mask["id"] if mask else None)
            )
            assert answer.status_code == 200, (route, answer.text)
            await h.settle(30)
            run = h.runtime.runlog.recent(1)[0]
            assert (run.route_id, run.status, run.prompt) == (route, "succeeded", instruction), (
                run.error_message
            )
            wire = wire_of(providers)
            assert wire.image == photo() and wire.prompt == instruction, route
            assert wire.mask_ok is (None if route in NO_MASK else True), route
        assert not providers.rejections()
        shown = [m for m in h.slack.replies(CHANNEL, "1699999999.000100") if m.image_blocks()]
        assert len(shown) == len(EDIT_ROUTES)
        assert h.slack.rejections == []

        # A route without masks: the modal itself says so, nothing runs.
        mask = h.slack.share_file(holed_mask(), name="mask.png")
        before = calls_to(providers)
        refused = await h.interact(submission(view, "gemini", "a window", mask["id"]))
        assert refused.json()["response_action"] == "errors"
        assert "does not take a mask" in json.dumps(refused.json()["errors"])
        assert calls_to(providers) == before
