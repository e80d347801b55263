"""The one request validator: `/imagegen` text, CLI options or a stored run -> a checked request.

Every value is checked, the routes are chosen, and each chosen route is asked whether it can serve
the request, all before any provider is called; a problem is one sentence a user can act on.
Slack delivers command text with HTML entities escaped and, on many keyboards, smart quotes;
both are normalised before shell-style splitting so `prompt="a “red” bike"` works as typed.
"""

from __future__ import annotations

import contextlib
import html
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from routes.base import Route
from routes.capabilities import find_unsupported
from routes.errors import InvalidRequest
from routes.model import ImageRequest

MAX_PROMPT_CHARS = 32_000
MAX_N = 4
# Characters no database column should hold: NUL (PostgreSQL text refuses it outright), the
# other C0 controls but tab and line breaks, DEL, and lone surrogates (not encodable as UTF-8).
_UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")

# A word: characters other than shlex's whitespace, double-quoted parts included.
_WORD = re.compile(r'(?:[^ \t\r\n"]+|"[^"]*")+')
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "«": '"', "»": '"'})
_CHOICES: dict[str, tuple[str, ...]] = {
    "quality": ("low", "medium", "high", "auto", "standard", "hd"),
    "background": ("transparent", "opaque", "auto"),
    "format": ("png", "jpeg", "webp"),
    "moderation": ("low", "auto"),
}
_ALIASES = {
    "routes": "route",
    "r": "route",
    "p": "prompt",
    "negative_prompt": "negative",
    "output_format": "format",
    "output_compression": "compression",
    "bg": "background",
}
KEYS = (
    "route",
    "prompt",
    "size",
    "quality",
    "n",
    "background",
    "format",
    "compression",
    "seed",
    "negative",
    "moderation",
)


@dataclass(frozen=True)
class CheckedRequest:
    """Routes that can all serve `request`: nothing more needs checking before the call."""

    route_ids: tuple[str, ...]
    request: ImageRequest

    @property
    def is_comparison(self) -> bool:
        return len(self.route_ids) > 1


def split_words(text: str) -> list[str]:
    """Shell-style words of Slack command text; an unclosed quote is one clear sentence."""
    text = html.unescape(text).translate(_QUOTES).replace("\u00a0", " ").strip()
    if "\\" not in text and "'" not in text:
        # What nearly every command looks like (route=a,b prompt="..."): with no backslash and
        # no single quote, every double quote opens or closes a quoted part, and the words are
        # what shlex.split gives (a test holds the two together) in a ninth of its time: 5 µs
        # against 47 for a typical command, on the path to every ack (shlex's lexer reads a
        # character at a time).
        if text.count('"') % 2 == 0:
            return [word.replace('"', "") for word in _WORD.findall(text)]
    else:
        with contextlib.suppress(ValueError):
            return shlex.split(text)
    raise InvalidRequest('A quote is not closed: write prompt="..." with a closing quote.')


def parse_options(text: str) -> dict[str, str]:
    """key=value pairs; words without `=` are collected as the prompt."""
    options: dict[str, str] = {}
    loose: list[str] = []
    for word in split_words(text):
        key, sep, value = word.partition("=")
        key = _ALIASES.get(key.lower().strip(), key.lower().strip())
        if sep and key in KEYS:
            if key in options:
                raise InvalidRequest(f"`{key}=` is given twice: give it once.")
            options[key] = value.strip()
        elif sep and key.isidentifier() and " " not in word[: word.index("=")]:
            raise InvalidRequest(
                f"`{key}=` is not an option. Options: {', '.join(k + '=' for k in KEYS)}."
            )
        else:
            loose.append(word)
    if loose:
        if "prompt" in options:
            raise InvalidRequest(
                f'`{loose[0]}` is outside the prompt: put the whole prompt in prompt="...".'
            )
        options["prompt"] = " ".join(loose)
    return options


def select_routes(
    spec: str | None,
    configured: Sequence[str],
    board_rows: Mapping[str, str | None],
    max_routes: int,
) -> tuple[str, ...]:
    """`a,b` | `all` | `board:<row>`; with no spec, the only route (or the demo route)."""
    if not configured:
        raise InvalidRequest("No routes are configured: add one to the routes file.")
    if not spec:
        if len(configured) == 1:
            return (configured[0],)
        raise InvalidRequest(
            f"Say which route: route=<id> (configured: {', '.join(configured)}), "
            "route=a,b to compare, or route=all."
        )
    chosen: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if part == "all":
            chosen.extend(configured)
        elif part.startswith("board:"):
            row = part.removeprefix("board:")
            serving = [rid for rid in configured if board_rows.get(rid) == row]
            if not serving:
                rows = sorted({r for r in board_rows.values() if r})
                raise InvalidRequest(
                    f"No configured route serves board row `{row}` "
                    f"(rows with routes: {', '.join(rows) or 'none'})."
                )
            chosen.extend(serving)
        elif part in configured:
            chosen.append(part)
        else:
            raise InvalidRequest(
                f"There is no route `{part}` (configured: {', '.join(configured)})."
            )
    unique = tuple(dict.fromkeys(chosen))
    if not unique:
        raise InvalidRequest("route= is empty: name a route, e.g. route=demo.")
    if len(unique) > max_routes:
        raise InvalidRequest(
            f"That compares {len(unique)} routes; the limit is {max_routes} per comparison "
            "(limits.max_routes_per_comparison)."
        )
    return unique


def _int(key: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise InvalidRequest(f"`{key}={value}` must be a whole number.") from None
    if not low <= number <= high:
        raise InvalidRequest(f"`{key}={value}` must be between {low} and {high}.")
    return number


def refuse_unstorable(name: str, text: str | None) -> None:
    """InvalidRequest when `text` holds a character the run log cannot keep (a NUL, another
    control character, a lone surrogate): refused here, before anything is posted or run."""
    found = _UNSTORABLE.search(text or "")
    if found is not None:
        code = f"U+{ord(found.group()):04X}"
        raise InvalidRequest(
            f"The {name} contains a control character ({code}) that cannot be stored: "
            "remove it and try again."
        )


def build_request(options: Mapping[str, str]) -> ImageRequest:
    """An ImageRequest from parsed options; every value checked, one sentence per problem."""
    prompt = options.get("prompt", "").strip()
    if not prompt:
        raise InvalidRequest('The prompt is empty: add prompt="what to draw".')
    for key in ("prompt", "negative"):
        refuse_unstorable(key, options.get(key))
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidRequest(
            f"The prompt is {len(prompt):,} characters; the limit is {MAX_PROMPT_CHARS:,}."
        )
    for key, allowed in _CHOICES.items():
        value = options.get(key)
        if value is not None and value.lower() not in allowed:
            raise InvalidRequest(f"`{key}={value}` is not one of {', '.join(allowed)}.")
    size = options.get("size")
    if size is not None:
        size = size.lower().replace("×", "x").strip()
        if not size:
            raise InvalidRequest("`size=` is empty: use WxH such as 1024x1024, or auto.")
    fmt = options.get("format")
    return ImageRequest(
        prompt=prompt,
        size=size if size and size != "auto" else None,
        quality=options["quality"].lower() if "quality" in options else None,
        n=_int("n", options["n"], 1, MAX_N) if "n" in options else 1,
        background=options["background"].lower() if "background" in options else None,
        output_format=fmt.lower() if fmt else None,
        output_compression=_int("compression", options["compression"], 0, 100)
        if "compression" in options
        else None,
        seed=_int("seed", options["seed"], 0, 2**32 - 1) if "seed" in options else None,
        negative_prompt=options.get("negative") or None,
        moderation=options["moderation"].lower() if "moderation" in options else None,
    )


class RequestValidator:
    """Checks requests against the configured routes (Slack, CLI, benchmark and probes use it)."""

    def __init__(self, routes: Mapping[str, Route], max_routes: int) -> None:
        self.routes = routes
        self.max_routes = max_routes

    @property
    def route_ids(self) -> list[str]:
        return list(self.routes)

    @property
    def board_rows(self) -> dict[str, str | None]:
        return {rid: route.config.board_row for rid, route in self.routes.items()}

    def parse(self, text: str) -> CheckedRequest:
        """The whole `/imagegen` text -> routes + request."""
        options = parse_options(text)
        return self.from_options(options, options.get("route"))

    def from_options(self, options: Mapping[str, str], route_spec: str | None) -> CheckedRequest:
        """Options (CLI flags, a benchmark prompt) and a route spec (`a,b`, `all`, `board:x`)."""
        request = build_request(options)
        return self.check(self.select(route_spec), request)

    def select(self, spec: str | None) -> tuple[str, ...]:
        return select_routes(spec, self.route_ids, self.board_rows, self.max_routes)

    def route(self, route_id: str) -> str:
        """One configured route id, or the sentence naming the configured ones."""
        if route_id not in self.routes:
            known = ", ".join(sorted(self.routes)) or "none"
            raise InvalidRequest(f"There is no route `{route_id}` (configured: {known}).")
        return route_id

    def check(self, route_ids: Sequence[str], request: ImageRequest) -> CheckedRequest:
        """Every route can serve the request, or InvalidRequest naming the first problem and
        the configured routes that would support it."""
        for route_id in route_ids:
            self.route(route_id)
        if not request.prompt.strip():
            raise InvalidRequest('The prompt is empty: add prompt="what to draw".')
        for route_id in route_ids:
            problems = find_unsupported(request, self.routes[route_id].capabilities())
            if problems:
                first = problems[0]
                others = [
                    rid
                    for rid, route in self.routes.items()
                    if rid not in route_ids
                    and not any(
                        p.feature == first.feature
                        for p in find_unsupported(request, route.capabilities())
                    )
                ]
                if first.feature.startswith("input:"):
                    hint = ""  # a problem of the user's file: no route would take it
                elif others:
                    hint = f" Routes that support it: {', '.join(f'`{r}`' for r in others)}."
                elif len(self.routes) > len(route_ids):
                    hint = " No other configured route supports it."
                else:
                    hint = ""
                raise InvalidRequest(f"Route `{route_id}`: {_sentence(first.sentence)}{hint}")
        return CheckedRequest(tuple(route_ids), request)


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
