"""Benchmark prompt sets: the shipped five-family set, or a team's own TOML file of prompts."""

from __future__ import annotations

import dataclasses
import mimetypes
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from bot.core.requests import build_request
from routes.errors import InvalidRequest
from routes.model import ImageRequest, InputImage

FAMILIES = ("product", "poster", "edit", "assistant", "edge")
MAX_STEPS = 6  # a multi-step request's turns, the first prompt included
OPTION_KEYS = ("size", "quality", "n", "background", "format", "seed", "negative")
SHIPPED = "prompt_sets"  # the default set and its images, inside this package
PROMPT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class BenchError(ValueError):
    """A bad prompt file or bench option: one sentence for the user."""


@dataclass(frozen=True)
class BenchPrompt:
    id: str
    family: str
    prompt: str
    options: dict[str, str]
    inputs: tuple[InputImage, ...] = ()
    mask: InputImage | None = None
    note: str = ""
    # Follow-up instructions of a multi-step request (assistant family): step 2, 3, ... each
    # continue the step before it.
    steps: tuple[str, ...] = ()

    @property
    def step_count(self) -> int:
        return 1 + len(self.steps)

    def instruction(self, step: int = 1) -> str:
        """The words sent at one step: the prompt, then each follow-up instruction."""
        return self.prompt if step == 1 else self.steps[step - 2]

    def request(self, step: int = 1) -> ImageRequest:
        """Step 1 is the prompt with its images; a later step is its instruction alone, with
        the same options (what it continues is added by the runner)."""
        if step > 1:
            return build_request({"prompt": self.instruction(step), **self.options})
        request = build_request({"prompt": self.prompt, **self.options})
        return dataclasses.replace(request, input_images=self.inputs, mask=self.mask)


def _image(base: Path | None, name: str, source: str) -> InputImage:
    if base is None:
        data = resources.files("bot.benchmark").joinpath(SHIPPED, name).read_bytes()
    else:
        path = base / name
        if not path.is_file():
            raise BenchError(f"{source}: input image {name} not found next to the prompt file")
        data = path.read_bytes()
    mime = mimetypes.guess_type(name)[0] or "image/png"
    return InputImage(data=data, mime=mime, name=Path(name).name, source=f"bench:{name}")


def load_prompts(path: Path | None = None) -> list[BenchPrompt]:
    """The shipped default set, or a team's own TOML file of the same format."""
    if path is None:
        text = (
            resources.files("bot.benchmark").joinpath("prompt_sets/default.toml").read_text("utf-8")
        )
        source, base = "default prompt set", None
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise BenchError(f"{path}: cannot read the prompt file ({exc.strerror})") from None
        source, base = str(path), path.parent
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BenchError(f"{source}: not valid TOML: {exc}") from None
    prompts: list[BenchPrompt] = []
    seen: set[str] = set()
    for i, row in enumerate(raw.get("prompt", []), 1):
        prompt = _prompt(row, f"{source}: prompt #{i}", base)
        if prompt.id in seen:
            raise BenchError(f"{source}: prompt #{i}: id {prompt.id} is used twice")
        seen.add(prompt.id)
        prompts.append(prompt)
    if not prompts:
        raise BenchError(f"{source}: no [[prompt]] entries")
    return prompts


def _prompt(row: dict[str, Any], where: str, base: Path | None) -> BenchPrompt:
    pid, family, text = row.get("id"), row.get("family"), row.get("prompt")
    if not pid or not text:
        raise BenchError(f"{where} needs an id and a prompt")
    if not PROMPT_ID.match(str(pid)):
        raise BenchError(f"{where}: id {pid!r} may only use letters, digits, - and _")
    if family not in FAMILIES:
        raise BenchError(f"{where}: family must be one of {', '.join(FAMILIES)}")
    options = {k: str(row[k]) for k in OPTION_KEYS if k in row}
    try:
        build_request({"prompt": str(text), **options})  # typos fail here, not on every route
    except InvalidRequest as exc:
        raise BenchError(f"{where} ({pid}): {exc}") from None
    inputs = tuple(_image(base, str(name), where) for name in _names(row.get("input")))
    mask = _image(base, str(row["mask"]), where) if row.get("mask") else None
    steps = _steps(row.get("steps"), f"{where} ({pid})", str(family))
    for number, step in enumerate(steps, 2):
        try:
            build_request({"prompt": step, **options})
        except InvalidRequest as exc:
            raise BenchError(f"{where} ({pid}) step {number}: {exc}") from None
    return BenchPrompt(
        str(pid), str(family), str(text), options, inputs, mask, str(row.get("note", "")), steps
    )


def _steps(value: Any, where: str, family: str) -> tuple[str, ...]:
    """The follow-up instructions of a multi-step (assistant) prompt, checked."""
    if value is None:
        return ()
    if family != "assistant":
        raise BenchError(f"{where}: steps are for the assistant family (multi-step requests)")
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise BenchError(f"{where}: steps must be a list of instructions (non-empty strings)")
    if len(value) + 1 > MAX_STEPS:
        raise BenchError(f"{where}: at most {MAX_STEPS} steps, the first prompt included")
    return tuple(v.strip() for v in value)


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]
