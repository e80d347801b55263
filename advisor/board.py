"""Loads the route board (board.toml) into typed, immutable objects, once per process."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

ROUTE_IDS: tuple[str, ...] = ("openai", "google", "flux", "gateway", "self-hosted")
CAVEAT_IDS: tuple[str, ...] = ("transparency", "responses-tool", "org-verification")

CountsWhen = Literal["positive", "negated", "either"]
_COUNTS_WHEN: tuple[CountsWhen, ...] = ("positive", "negated", "either")


class BoardError(ValueError):
    """board.toml is malformed; raised at load time so a bad edit fails the tests, not a user."""


@dataclass(frozen=True, slots=True)
class Trigger:
    """Phrases that fire directly, and/or one combination of phrase groups that must all occur.

    `within` bounds the token distance covered by a combination (0: anywhere in the question).
    `counts_when` says which polarity counts: "positive" (the usual), "negated" (the phrase only
    means something when denied: "no public cloud"), or "either" ("avoid lock-in").
    """

    phrases: tuple[str, ...]
    all_of: tuple[tuple[str, ...], ...]
    within: int
    counts_when: CountsWhen


@dataclass(frozen=True, slots=True)
class Signal:
    """One piece of evidence for a board row; synonyms share a signal so they count once."""

    route: str
    label: str
    weight: int
    names_provider: bool
    model_name: bool
    trigger: Trigger


@dataclass(frozen=True, slots=True)
class AlternativeSpec:
    route: str
    reason: str


@dataclass(frozen=True, slots=True)
class BoardRow:
    """One row of the route board: the job, the first benchmark and what to verify."""

    id: str
    title: str
    job: str
    first_benchmark: str
    models: tuple[str, ...]
    verify: tuple[str, ...]
    alternatives: tuple[AlternativeSpec, ...]


@dataclass(frozen=True, slots=True)
class CaveatSupport:
    route: str
    weight: int
    label: str


@dataclass(frozen=True, slots=True)
class CaveatSpec:
    id: str
    title: str
    text: str
    triggers: tuple[Trigger, ...]
    supports: CaveatSupport | None
    extras: tuple[tuple[str, str], ...]
    alternatives: tuple[AlternativeSpec, ...]
    verify: tuple[str, ...]

    def wording(self, key: str) -> str:
        """An extra wording key from the caveat table (e.g. `benchmark_instead`), or ""."""
        return dict(self.extras).get(key, "")


@dataclass(frozen=True, slots=True)
class NoteSpec:
    id: str
    text: str
    triggers: tuple[Trigger, ...]


@dataclass(frozen=True, slots=True)
class Language:
    """Word-level rules for reading English questions; domain-free, so kept apart from rows."""

    negation_window: int
    coordination: tuple[str, ...]
    spelling: tuple[tuple[str, str], ...]
    negation_before: tuple[str, ...]
    negation_from: tuple[str, ...]
    from_stops: tuple[str, ...]
    negation_after: tuple[str, ...]
    negation_both: tuple[str, ...]
    scope_breakers: tuple[str, ...]
    neutral: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Board:
    default_route: str
    fallback_order: tuple[str, ...]
    weak_cap: int
    min_score: int
    enumeration_bonus: int
    enumeration_min: int
    language: Language
    rows: tuple[BoardRow, ...]
    signals: tuple[Signal, ...]
    caveats: tuple[CaveatSpec, ...]
    notes: tuple[NoteSpec, ...]

    def row(self, route_id: str) -> BoardRow:
        for row in self.rows:
            if row.id == route_id:
                return row
        raise KeyError(route_id)

    def caveat(self, caveat_id: str) -> CaveatSpec:
        for caveat in self.caveats:
            if caveat.id == caveat_id:
                return caveat
        raise KeyError(caveat_id)

    def note(self, note_id: str) -> NoteSpec:
        for note in self.notes:
            if note.id == note_id:
                return note
        raise KeyError(note_id)


@cache
def load_board() -> Board:
    """The packaged board, parsed and validated once."""
    text = resources.files("advisor").joinpath("board.toml").read_text(encoding="utf-8")
    return parse_board(text)


def parse_board(text: str) -> Board:
    """Parse board TOML text; raises BoardError naming the offending key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BoardError(f"board.toml is not valid TOML: {exc}") from exc
    routes = _table(data, "routes")
    if tuple(routes) != ROUTE_IDS:
        raise BoardError(f"routes must be exactly {ROUTE_IDS} in that order, got {tuple(routes)}")
    rows: list[BoardRow] = []
    signals: list[Signal] = []
    for route_id, raw in routes.items():
        row_data = _as_table(raw, f"routes.{route_id}")
        rows.append(
            BoardRow(
                id=route_id,
                title=_str(row_data, "title", route_id),
                job=_str(row_data, "job", route_id),
                first_benchmark=_str(row_data, "first_benchmark", route_id),
                models=_strs(row_data.get("models", []), f"routes.{route_id}.models"),
                verify=_strs(row_data.get("verify"), f"routes.{route_id}.verify"),
                alternatives=_alternatives(row_data.get("alternatives", []), route_id),
            )
        )
        for index, raw_signal in enumerate(_list(row_data.get("signals"), route_id)):
            where = f"routes.{route_id}.signals[{index}]"
            sig = _as_table(raw_signal, where)
            weight = sig.get("weight")
            if not isinstance(weight, int) or not 1 <= weight <= 4:
                raise BoardError(f"{where}.weight must be an integer 1..4")
            signals.append(
                Signal(
                    route=route_id,
                    label=_str(sig, "label", where),
                    weight=weight,
                    names_provider=bool(sig.get("names_provider", False)),
                    model_name=bool(sig.get("model_name", False)),
                    trigger=_trigger(sig, where),
                )
            )
    default_route = data.get("default_route")
    if default_route not in ROUTE_IDS:
        raise BoardError("default_route must be a route id")
    fallback = _strs(data.get("fallback_order"), "fallback_order")
    if sorted(fallback) != sorted(ROUTE_IDS):
        raise BoardError("fallback_order must list every route id once")
    caveats = _caveats(_table(data, "caveats"))
    notes = tuple(
        NoteSpec(
            id=note_id,
            text=_str(_as_table(raw, f"notes.{note_id}"), "text", note_id),
            triggers=tuple(
                _trigger(_as_table(t, f"notes.{note_id}.triggers"), f"notes.{note_id}")
                for t in _list(_as_table(raw, note_id).get("triggers", []), note_id)
            ),
        )
        for note_id, raw in _table(data, "notes").items()
    )
    return Board(
        default_route=str(default_route),
        fallback_order=fallback,
        weak_cap=_int(data, "weak_cap"),
        min_score=_int(data, "min_score"),
        enumeration_bonus=_int(data, "enumeration_bonus"),
        enumeration_min=_int(data, "enumeration_min"),
        language=_language(_table(data, "language")),
        rows=tuple(rows),
        signals=tuple(signals),
        caveats=caveats,
        notes=notes,
    )


def _caveats(table: dict[str, Any]) -> tuple[CaveatSpec, ...]:
    if tuple(table) != CAVEAT_IDS:
        raise BoardError(f"caveats must be exactly {CAVEAT_IDS} in that order")
    specs: list[CaveatSpec] = []
    for caveat_id, raw in table.items():
        spec = _as_table(raw, f"caveats.{caveat_id}")
        support_raw = spec.get("supports")
        support = None
        if support_raw is not None:
            sup = _as_table(support_raw, f"caveats.{caveat_id}.supports")
            if sup.get("route") not in ROUTE_IDS:
                raise BoardError(f"caveats.{caveat_id}.supports.route must be a route id")
            support = CaveatSupport(
                route=str(sup["route"]),
                weight=_int(sup, "weight"),
                label=_str(sup, "label", caveat_id),
            )
        known = {"title", "text", "triggers", "supports", "alternatives", "verify"}
        extras = tuple(
            (key, str(value)) for key, value in spec.items() if key not in known and value
        )
        specs.append(
            CaveatSpec(
                id=caveat_id,
                title=_str(spec, "title", caveat_id),
                text=_str(spec, "text", caveat_id),
                triggers=tuple(
                    _trigger(_as_table(t, f"caveats.{caveat_id}.triggers"), caveat_id)
                    for t in _list(spec.get("triggers"), caveat_id)
                ),
                supports=support,
                extras=extras,
                alternatives=_alternatives(spec.get("alternatives", []), caveat_id),
                verify=_strs(spec.get("verify", []), f"caveats.{caveat_id}.verify"),
            )
        )
    return tuple(specs)


def _language(table: dict[str, Any]) -> Language:
    spelling = _as_table(table.get("spelling", {}), "language.spelling")
    return Language(
        negation_window=_int(table, "negation_window"),
        coordination=_strs(table.get("coordination"), "coordination"),
        spelling=tuple((str(k), str(v)) for k, v in spelling.items()),
        negation_before=_strs(table.get("negation_before"), "negation_before"),
        negation_from=_strs(table.get("negation_from"), "negation_from"),
        from_stops=_strs(table.get("from_stops"), "from_stops"),
        negation_after=_strs(table.get("negation_after"), "negation_after"),
        negation_both=_strs(table.get("negation_both"), "negation_both"),
        scope_breakers=_strs(table.get("scope_breakers"), "scope_breakers"),
        neutral=_strs(table.get("neutral"), "neutral"),
    )


def _trigger(table: dict[str, Any], where: str) -> Trigger:
    phrases = _strs(table.get("phrases", []), f"{where}.phrases")
    all_of = tuple(
        _strs(group, f"{where}.all_of") for group in _list(table.get("all_of", []), where)
    )
    if not phrases and not all_of:
        raise BoardError(f"{where} needs phrases or all_of")
    counts_when = table.get("counts_when", "positive")
    if counts_when not in _COUNTS_WHEN:
        raise BoardError(f"{where}.counts_when must be one of {_COUNTS_WHEN}")
    within = table.get("within", 0)
    if not isinstance(within, int) or within < 0:
        raise BoardError(f"{where}.within must be a non-negative integer")
    return Trigger(phrases=phrases, all_of=all_of, within=within, counts_when=counts_when)


def _alternatives(raw: Any, where: str) -> tuple[AlternativeSpec, ...]:
    out: list[AlternativeSpec] = []
    for item in _list(raw, where):
        alt = _as_table(item, f"{where}.alternatives")
        if alt.get("route") not in ROUTE_IDS:
            raise BoardError(f"{where}.alternatives: unknown route {alt.get('route')!r}")
        out.append(AlternativeSpec(route=str(alt["route"]), reason=_str(alt, "reason", where)))
    return tuple(out)


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    return _as_table(data.get(key), key)


def _as_table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BoardError(f"{where} must be a table")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise BoardError(f"{where} must be an array")
    return value


def _strs(value: Any, where: str) -> tuple[str, ...]:
    items = _list(value, where)
    if not all(isinstance(item, str) and item.strip() for item in items):
        raise BoardError(f"{where} must be an array of non-empty strings")
    return tuple(items)


def _str(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BoardError(f"{where}.{key} must be a non-empty string")
    return value


def _int(table: dict[str, Any], key: str) -> int:
    value = table.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BoardError(f"{key} must be an integer")
    return value
