"""Loads the route board (board.toml) into typed, immutable objects, once per process."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any, Literal

from advisor.lifecycle import MODEL_STATUSES, ModelFact

ROUTE_IDS: tuple[str, ...] = ("openai", "google", "flux", "gateway", "self-hosted")
CAVEAT_IDS: tuple[str, ...] = ("transparency", "responses-tool", "org-verification")

CountsWhen = Literal["positive", "negated", "either"]
_COUNTS_WHEN: tuple[CountsWhen, ...] = ("positive", "negated", "either")
Veto = Literal["", "always", "required"]
_VETOES: tuple[Veto, ...] = ("", "always", "required")
# Placeholders a board text may use; each names a model resolved through the lifecycle facts.
TEMPLATE_KEYS: tuple[str, ...] = ("model", "model_name", "model_id", "openai", "google", "flux")
# Caveat wordings that are templates too (they name the OpenAI row's model).
TEMPLATE_EXTRAS: tuple[str, ...] = ("with_openai", "benchmark_instead", "with_route", "when_vetoed")


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
    # An error trigger ("403 on gpt-image-2") still raises its caveat after the question said
    # the caveat was already dealt with ("we are verified but still get a 403").
    survives_clear: bool = False


@dataclass(frozen=True, slots=True)
class Signal:
    """One piece of evidence for a board row; synonyms share a signal so they count once.

    `veto` makes the signal a hard requirement that no hosted route can meet: "always" (an air
    gap, data that may not leave) or "required" (own hardware, only when stated as a must).
    `topic` links the signal to the verify items about it.
    """

    route: str
    label: str
    weight: int
    names_provider: bool
    model_name: bool
    trigger: Trigger
    veto: Veto = ""
    topic: str = ""


@dataclass(frozen=True, slots=True)
class Check:
    """One item of a verify list; `about` names the topics, signals or caveats it belongs to."""

    text: str
    about: tuple[str, ...]
    only_if: str = ""  # a caveat id: without it raised, the check goes last


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
    first_benchmark: str  # a template: {model} is the row's model as resolved today
    model: str  # the model id the source article named ("" when the row names no model)
    as_of: date
    checks: tuple[Check, ...]
    alternatives: tuple[AlternativeSpec, ...]

    @property
    def verify(self) -> tuple[str, ...]:
        return tuple(check.text for check in self.checks)


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
    checks: tuple[Check, ...]
    as_of: date
    # Statements that the caveat is already dealt with ("our org is already verified").
    clears: tuple[Trigger, ...] = ()

    def wording(self, key: str) -> str:
        """An extra wording key from the caveat table (e.g. `benchmark_instead`), or ""."""
        return dict(self.extras).get(key, "")


@dataclass(frozen=True, slots=True)
class NoteSpec:
    id: str
    text: str
    triggers: tuple[Trigger, ...]


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """Words that show what the question cares about (cost, latency...), to order verify items."""

    id: str
    triggers: tuple[Trigger, ...]


@dataclass(frozen=True, slots=True)
class Scope:
    """What makes a question about image routes, and subjects that are outside the advisor."""

    image: tuple[str, ...]
    generic: tuple[str, ...]
    outside: tuple[str, ...]
    function_words: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Language:
    """Word-level rules for reading questions in the supported languages; domain-free."""

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
    priority: tuple[str, ...] = ()
    priority_after: tuple[str, ...] = ()
    contrast: tuple[str, ...] = ()
    concession: tuple[str, ...] = ()
    background: tuple[str, ...] = ()
    require: tuple[str, ...] = ()
    typo_terms: tuple[str, ...] = ()
    elision: tuple[tuple[str, str], ...] = ()


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
    as_of: date
    hosted_routes: tuple[str, ...]
    priority_bonus: int
    contrast_bonus: int
    verify_shown: int
    topics: tuple[TopicSpec, ...]
    scope: Scope
    models: tuple[ModelFact, ...]  # the default facts, used when the caller hands in none

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
                first_benchmark=_template(row_data, "first_benchmark", route_id),
                model=str(row_data.get("model", "")),
                as_of=_date(row_data, "as_of", f"routes.{route_id}"),
                checks=_checks(row_data.get("verify"), f"routes.{route_id}.verify"),
                alternatives=_alternatives(row_data.get("alternatives", []), route_id),
            )
        )
        for index, raw_signal in enumerate(_list(row_data.get("signals"), route_id)):
            where = f"routes.{route_id}.signals[{index}]"
            sig = _as_table(raw_signal, where)
            weight = sig.get("weight")
            if not isinstance(weight, int) or not 1 <= weight <= 4:
                raise BoardError(f"{where}.weight must be an integer 1..4")
            veto = sig.get("veto", "")
            if veto not in _VETOES:
                raise BoardError(f"{where}.veto must be one of {_VETOES}")
            signals.append(
                Signal(
                    route=route_id,
                    label=_str(sig, "label", where),
                    weight=weight,
                    names_provider=bool(sig.get("names_provider", False)),
                    model_name=bool(sig.get("model_name", False)),
                    trigger=_trigger(sig, where),
                    veto=veto,
                    topic=str(sig.get("topic", "")),
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
    hosted = _strs(data.get("hosted_routes"), "hosted_routes")
    if not set(hosted) < set(ROUTE_IDS):
        raise BoardError("hosted_routes must be route ids, leaving at least one row")
    models = _models(_table(data, "models"))
    known = {fact.model_id for fact in models}
    for row in rows:
        if row.model and row.model not in known:
            raise BoardError(f"routes.{row.id}.model {row.model!r} has no [models] fact")
    scope = _as_table(data.get("scope"), "scope")
    topics = tuple(
        TopicSpec(
            id=topic_id,
            triggers=tuple(
                _trigger(_as_table(t, f"topics.{topic_id}"), f"topics.{topic_id}")
                for t in _list(_as_table(raw, topic_id).get("triggers"), topic_id)
            ),
        )
        for topic_id, raw in _table(data, "topics").items()
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
        as_of=_date(data, "as_of", "board"),
        hosted_routes=hosted,
        priority_bonus=_int(data, "priority_bonus"),
        contrast_bonus=_int(data, "contrast_bonus"),
        verify_shown=_int(data, "verify_shown"),
        topics=topics,
        scope=Scope(
            image=_strs(scope.get("image"), "scope.image"),
            generic=_strs(scope.get("generic"), "scope.generic"),
            outside=_strs(scope.get("outside"), "scope.outside"),
            function_words=_strs(scope.get("function_words"), "scope.function_words"),
        ),
        models=models,
    )


def _models(table: dict[str, Any]) -> tuple[ModelFact, ...]:
    facts: list[ModelFact] = []
    for model_id, raw in table.items():
        where = f"models.{model_id}"
        fact = _as_table(raw, where)
        status = fact.get("status")
        if status not in MODEL_STATUSES:
            raise BoardError(f"{where}.status must be one of {MODEL_STATUSES}")
        replacement = fact.get("replacement")
        if replacement is not None and replacement not in table:
            raise BoardError(f"{where}.replacement {replacement!r} has no [models] fact")
        shutdown = fact.get("shutdown")
        if shutdown is not None and not isinstance(shutdown, date):
            raise BoardError(f"{where}.shutdown must be a date")
        facts.append(
            ModelFact(
                model_id=model_id,
                name=_str(fact, "name", where),
                status=status,
                shutdown=shutdown,
                replacement=replacement,
                source=_str(fact, "source", where),
                checked=_date(fact, "checked", where),
                provider=str(fact.get("provider", "")),
            )
        )
    return tuple(facts)


def _checks(raw: Any, where: str) -> tuple[Check, ...]:
    checks: list[Check] = []
    for index, item in enumerate(_list(raw, where)):
        table = _as_table(item, f"{where}[{index}]")
        checks.append(
            Check(
                text=_template(table, "text", f"{where}[{index}]"),
                about=_strs(table.get("about", []), f"{where}[{index}].about"),
                only_if=str(table.get("only_if", "")),
            )
        )
    return tuple(checks)


def _template(table: dict[str, Any], key: str, where: str) -> str:
    """A text that may name models through {placeholders}; a typo in one fails at load."""
    text = _str(table, key, where)
    values: dict[str, object] = dict.fromkeys(TEMPLATE_KEYS, "x")
    values["m"] = _AnyModel()
    try:
        text.format_map(values)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise BoardError(f"{where}.{key} has a bad placeholder: {exc}") from exc
    return text


class _AnyModel:
    """Stands in for the model labels while a template is checked at load."""

    def __getitem__(self, model_id: str) -> str:
        return model_id


def _date(table: dict[str, Any], key: str, where: str) -> date:
    value = table.get(key)
    if not isinstance(value, date):
        raise BoardError(f"{where}.{key} must be a date (YYYY-MM-DD)")
    return value


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
        known = {
            "title",
            "text",
            "triggers",
            "supports",
            "alternatives",
            "verify",
            "clears",
            "as_of",
        }
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
                checks=_checks(spec.get("verify", []), f"caveats.{caveat_id}.verify"),
                as_of=_date(spec, "as_of", f"caveats.{caveat_id}"),
                clears=tuple(
                    _trigger(_as_table(t, f"caveats.{caveat_id}.clears"), caveat_id)
                    for t in _list(spec.get("clears", []), caveat_id)
                ),
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
        priority=_strs(table.get("priority"), "priority"),
        priority_after=_strs(table.get("priority_after"), "priority_after"),
        contrast=_strs(table.get("contrast"), "contrast"),
        concession=_strs(table.get("concession"), "concession"),
        background=_strs(table.get("background"), "background"),
        require=_strs(table.get("require"), "require"),
        typo_terms=_strs(table.get("typo_terms"), "typo_terms"),
        elision=tuple(
            (str(k), str(v))
            for k, v in _as_table(table.get("elision", {}), "language.elision").items()
        ),
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
    return Trigger(
        phrases=phrases,
        all_of=all_of,
        within=within,
        counts_when=counts_when,
        survives_clear=bool(table.get("survives_clear", False)),
    )


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
