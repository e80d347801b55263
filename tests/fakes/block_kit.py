"""Block Kit as the Slack Web API checks it, for the fake Slack: limits, required fields, and
image blocks that name Slack files.

Sources (read 2026-11): docs.slack.dev/reference/block-kit/blocks (50 blocks in a message, 100
in a modal or Home tab; block_id at most 255 characters), .../blocks/section-block (text 3,000,
fields 10 x 2,000), .../blocks/context-block (10 elements), .../blocks/actions-block (25
elements), .../blocks/header-block (150), .../blocks/image-block (alt_text 2,000, title 2,000,
image_url or slack_file), .../composition-objects/slack-file-object (url or id, not both; png,
jpg, jpeg, gif only; the poster must have access), .../block-elements/button-element (text 75,
value 2,000, style primary|danger), .../overflow-menu-element (1 to 5 options),
.../select-menu-element (100 options; option text 75, value 150), .../plain-text-input-element
(max_length 1 to 3,000), reference/surfaces/views (modal title, submit, close 24 characters;
private_metadata 3,000; callback_id 255). The file id pattern and the error wording come from
Slack's own answers quoted in slackapi/python-slack-sdk issues 1521 and 1658.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
FILE_ID = re.compile(r"^F[A-Z0-9]{8,}$")
BLOCK_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif")

# file id -> None when the file can be shown, else why not (Slack's wording).
FileCheck = Callable[[str], str | None]


class Checker:
    def __init__(self, files: FileCheck, surface: str) -> None:
        self.files = files
        self.surface = surface  # message | modal | home
        self.errors: list[str] = []

    def fail(self, why: str, pointer: str) -> None:
        self.errors.append(f"{why} [json-pointer:{pointer}]")

    # -- composition objects ----------------------------------------------------------------
    def text(self, obj: Any, at: str, limit: int = 3000, kinds: tuple[str, ...] = ()) -> None:
        if isinstance(obj, str):  # a plain string where an object is required
            self.fail("must be an object", at)
            return
        if not isinstance(obj, dict):
            self.fail("missing required field: text", at)
            return
        kind = obj.get("type")
        if kind not in ("plain_text", "mrkdwn") or (kinds and kind not in kinds):
            self.fail(f"must be one of {kinds or ('plain_text', 'mrkdwn')}", f"{at}/type")
        value = obj.get("text")
        if not isinstance(value, str) or not value:
            self.fail("must be more than 0 characters", f"{at}/text")
        elif len(value) > limit:
            self.fail(f"must be less than {limit + 1} characters", f"{at}/text")

    def option(self, obj: Any, at: str) -> None:
        if not isinstance(obj, dict):
            self.fail("must be an object", at)
            return
        self.text(obj.get("text"), f"{at}/text", 75)
        value = obj.get("value")
        if not isinstance(value, str) or not value or len(value) > 150:
            self.fail("must be 1 to 150 characters", f"{at}/value")

    def confirm(self, obj: Any, at: str) -> None:
        self.text(obj.get("title"), f"{at}/title", 100, ("plain_text",))
        self.text(obj.get("text"), f"{at}/text", 300)
        for key in ("confirm", "deny"):
            self.text(obj.get(key), f"{at}/{key}", 30, ("plain_text",))

    # -- elements ---------------------------------------------------------------------------
    def element(self, obj: Any, at: str, in_input: bool = False) -> None:
        if not isinstance(obj, dict):
            self.fail("must be an object", at)
            return
        action_id = obj.get("action_id")
        if action_id is not None and (not isinstance(action_id, str) or len(action_id) > 255):
            self.fail("must be less than 256 characters", f"{at}/action_id")
        if "confirm" in obj:
            self.confirm(obj["confirm"], f"{at}/confirm")
        kind = str(obj.get("type"))
        if kind in ("plain_text_input", "file_input") and not in_input:
            self.fail("only allowed in input blocks", at)
        check = {
            "button": self._button,
            "static_select": self._select,
            "multi_static_select": self._select,
            "overflow": self._overflow,
            "plain_text_input": self._text_input,
            "conversations_select": lambda o, a: self._conversations(o, a, in_input),
            "image": self.image_source,
            "file_input": None,
            "users_select": None,
            "channels_select": None,
            "checkboxes": None,
            "radio_buttons": None,
        }
        if kind not in check:
            self.fail(f"unsupported element type {kind}", f"{at}/type")
            return
        rule = check[kind]
        if rule is not None:
            rule(obj, at)

    def _button(self, obj: dict[str, Any], at: str) -> None:
        self.text(obj.get("text"), f"{at}/text", 75, ("plain_text",))
        if len(str(obj.get("value") or "")) > 2000:
            self.fail("must be less than 2001 characters", f"{at}/value")
        if obj.get("style") not in (None, "primary", "danger"):
            self.fail("must be one of primary, danger", f"{at}/style")

    def _select(self, obj: dict[str, Any], at: str) -> None:
        options = obj.get("options") or []
        if not 1 <= len(options) <= 100:
            self.fail("must provide 1 to 100 options", f"{at}/options")
        for i, option in enumerate(options):
            self.option(option, f"{at}/options/{i}")
        values = [o.get("value") for o in options if isinstance(o, dict)]
        initial = [obj["initial_option"]] if "initial_option" in obj else []
        initial += obj.get("initial_options") or []
        if any(o.get("value") not in values for o in initial):
            self.fail("initial options must be among the options", f"{at}/initial_options")
        if "placeholder" in obj:
            self.text(obj["placeholder"], f"{at}/placeholder", 150, ("plain_text",))

    def _overflow(self, obj: dict[str, Any], at: str) -> None:
        options = obj.get("options") or []
        if not 1 <= len(options) <= 5:
            self.fail("must provide 1 to 5 options", f"{at}/options")
        for i, option in enumerate(options):
            self.option(option, f"{at}/options/{i}")

    def _text_input(self, obj: dict[str, Any], at: str) -> None:
        for key, low in (("min_length", 0), ("max_length", 1)):
            if key in obj and not low <= int(obj[key]) <= 3000:
                self.fail(f"must be between {low} and 3000", f"{at}/{key}")

    def _conversations(self, obj: dict[str, Any], at: str, in_input: bool) -> None:
        if obj.get("response_url_enabled") and not (in_input and self.surface == "modal"):
            self.fail("response_url_enabled only works in input blocks in modals", at)

    def image_source(self, obj: dict[str, Any], at: str) -> None:
        alt = obj.get("alt_text")
        if not isinstance(alt, str) or not alt:
            self.fail("missing required field: alt_text", at)
        elif len(alt) > 2000:
            self.fail("must be less than 2001 characters", f"{at}/alt_text")
        url, slack_file = obj.get("image_url"), obj.get("slack_file")
        if (url is None) == (slack_file is None):
            self.fail("must provide exactly one of image_url or slack_file", at)
            return
        if slack_file is None:
            return
        if ("id" in slack_file) == ("url" in slack_file):
            self.fail("invalid slack file", f"{at}/slack_file")
            return
        if "id" in slack_file:
            if not FILE_ID.match(str(slack_file["id"])):
                self.fail(
                    "input must match regex pattern: ^[F][A-Z0-9]{8,}$", f"{at}/slack_file/id"
                )
                return
            problem = self.files(str(slack_file["id"]))
            if problem:
                self.fail(problem, f"{at}/slack_file")

    # -- blocks -----------------------------------------------------------------------------
    def blocks(self, blocks: Any, at: str = "/blocks") -> None:
        if not isinstance(blocks, list):
            self.fail("must be an array", at)
            return
        limit = MESSAGE_BLOCKS if self.surface == "message" else VIEW_BLOCKS
        if len(blocks) > limit:
            self.fail(f"no more than {limit} items allowed", at)
        seen: set[str] = set()
        for i, block in enumerate(blocks):
            here = f"{at}/{i}"
            if not isinstance(block, dict):
                self.fail("must be an object", here)
                continue
            block_id = block.get("block_id")
            if block_id is not None:
                if len(str(block_id)) > 255:
                    self.fail("must be less than 256 characters", f"{here}/block_id")
                if block_id in seen:
                    self.fail("duplicate block_id", f"{here}/block_id")
                seen.add(str(block_id))
            self.block(block, here)

    def block(self, block: dict[str, Any], at: str) -> None:
        kind = str(block.get("type"))
        check = {
            "section": self._section,
            "context": self._context,
            "actions": self._actions,
            "header": lambda b, a: self.text(b.get("text"), f"{a}/text", 150, ("plain_text",)),
            "image": self._image,
            "input": self._input,
            "divider": None,
            "rich_text": None,
            "markdown": None,
        }
        if kind not in check:
            self.fail(f"unsupported block type {kind}", f"{at}/type")
            return
        rule = check[kind]
        if rule is not None:
            rule(block, at)

    def _section(self, block: dict[str, Any], at: str) -> None:
        if "text" not in block and "fields" not in block:
            self.fail("must provide either text or fields", at)
        if "text" in block:
            self.text(block["text"], f"{at}/text", 3000)
        fields = block.get("fields") or []
        if len(fields) > 10:
            self.fail("no more than 10 items allowed", f"{at}/fields")
        for i, item in enumerate(fields):
            self.text(item, f"{at}/fields/{i}", 2000)
        if "accessory" in block:
            self.element(block["accessory"], f"{at}/accessory")

    def _context(self, block: dict[str, Any], at: str) -> None:
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= 10:
            self.fail("must provide 1 to 10 elements", f"{at}/elements")
        for i, element in enumerate(elements):
            if isinstance(element, dict) and element.get("type") == "image":
                self.image_source(element, f"{at}/elements/{i}")
            else:
                self.text(element, f"{at}/elements/{i}", 3000)

    def _actions(self, block: dict[str, Any], at: str) -> None:
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= 25:
            self.fail("must provide 1 to 25 elements", f"{at}/elements")
        ids = [e.get("action_id") for e in elements if isinstance(e, dict) and e.get("action_id")]
        if len(ids) != len(set(ids)):
            self.fail("action_id must be unique in the block", f"{at}/elements")
        for i, element in enumerate(elements):
            self.element(element, f"{at}/elements/{i}")

    def _image(self, block: dict[str, Any], at: str) -> None:
        self.image_source(block, at)
        if "title" in block:
            self.text(block["title"], f"{at}/title", 2000, ("plain_text",))

    def _input(self, block: dict[str, Any], at: str) -> None:
        self.text(block.get("label"), f"{at}/label", 2000, ("plain_text",))
        if "hint" in block:
            self.text(block["hint"], f"{at}/hint", 2000, ("plain_text",))
        self.element(block.get("element"), f"{at}/element", in_input=True)


def block_problems(blocks: Any, files: FileCheck, surface: str = "message") -> list[str]:
    checker = Checker(files, surface)
    checker.blocks(blocks)
    return checker.errors


def view_problems(view: Any, files: FileCheck) -> list[str]:
    """views.open / views.publish: the view's own fields, then its blocks."""
    if not isinstance(view, dict):
        return ["must be an object [json-pointer:/view]"]
    kind = view.get("type")
    checker = Checker(files, "home" if kind == "home" else "modal")
    if kind not in ("modal", "home"):
        checker.fail("must be modal or home", "/view/type")
    if kind == "modal":
        checker.text(view.get("title"), "/view/title", 24, ("plain_text",))
        for key in ("submit", "close"):
            if key in view:
                checker.text(view[key], f"/view/{key}", 24, ("plain_text",))
        if any(b.get("type") == "input" for b in view.get("blocks") or []) and "submit" not in view:
            checker.fail("a modal with input blocks needs submit", "/view/submit")
    if len(str(view.get("private_metadata") or "")) > 3000:
        checker.fail("must be less than 3001 characters", "/view/private_metadata")
    if len(str(view.get("callback_id") or "")) > 255:
        checker.fail("must be less than 256 characters", "/view/callback_id")
    checker.blocks(view.get("blocks"), "/view/blocks")
    return checker.errors


def can_show(mimetype: str) -> bool:
    return mimetype in BLOCK_IMAGE_TYPES
