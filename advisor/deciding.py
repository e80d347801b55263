"""Turns the evidence read from a question into Advice: scope, vetoes, scores, caveats, wording."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

from advisor.advice import (
    Advice,
    Alternative,
    AnswerScope,
    Caveat,
    Counted,
    MatchedSignal,
    MatchKind,
    ModelChange,
    WorkspaceRoute,
)
from advisor.board import Board, CaveatSpec, Signal, load_board
from advisor.lifecycle import Catalog, ModelFact
from advisor.reading import (
    AFTER_CONTRAST,
    BACKGROUND,
    PLAIN,
    STATED_PRIORITY,
    Evidence,
    Reading,
    matcher,
    read,
)


@dataclass(frozen=True, slots=True)
class _Point:
    label: str
    weight: int
    quote: str
    negated_by: str | None
    names_provider: bool
    model_name: bool
    emphasis: int = PLAIN

    @property
    def effective(self) -> int:
        # Background ("half our stack is on GCP") is context, not the need: one point less.
        return max(0, self.weight - 1) if self.emphasis == BACKGROUND else self.weight


@dataclass(slots=True)
class _Tally:
    """Evidence for and against one board row; synonyms (same label) count once."""

    route: str
    order: int
    points_for: dict[str, _Point] = field(default_factory=dict)
    points_against: dict[str, _Point] = field(default_factory=dict)
    bonus: int = 0
    # Set when this row's provider names were listed as targets of a gateway need.
    absorbed: bool = False
    _net: int | None = None  # computed once the evidence is complete

    def counted(self) -> list[_Point]:
        return [p for p in self.points_for.values() if not (self.absorbed and p.names_provider)]

    def add(self, point: _Point, supports: bool) -> None:
        target = self.points_for if supports else self.points_against
        known = target.get(point.label)
        if known is None or point.emphasis > known.emphasis:
            target[point.label] = point
            self._net = None

    def absorb(self) -> None:
        self.absorbed = True
        self._net = None

    def add_bonus(self, bonus: int) -> None:
        self.bonus = bonus
        self._net = None

    def emphasis(self) -> int:
        return max((p.emphasis for p in self.counted()), default=PLAIN)

    def positive(self, board: Board) -> int:
        points = self.counted()
        strong = sum(p.effective for p in points if p.weight >= 2)
        weak = sum(p.effective for p in points if p.weight < 2)
        emphasis = self.emphasis()
        stated = (
            board.priority_bonus
            if emphasis == STATED_PRIORITY
            else board.contrast_bonus
            if emphasis == AFTER_CONTRAST
            else 0
        )
        return strong + min(weak, board.weak_cap) + self.bonus + stated

    def negative(self) -> int:
        # A label said both ways ("not on GCP yet, but moving to GCP") counts as said.
        return sum(p.weight for k, p in self.points_against.items() if k not in self.points_for)

    def net(self, board: Board) -> int:
        if self._net is None:
            self._net = self.positive(board) - self.negative()
        return self._net

    def strongest(self) -> int:
        return max((p.weight for p in self.counted()), default=0)

    def ruled_out(self, board: Board) -> bool:
        # Only a clear statement rules a row out; a negated hint ("no assistant involved")
        # just weakens it.
        strong_against = any(
            p.weight >= 2 for k, p in self.points_against.items() if k not in self.points_for
        )
        return strong_against and self.net(board) <= 0

    def names_something(self) -> bool:
        """The question named this row's provider, platform or model, not just its job."""
        return any(p.names_provider or p.model_name for p in self.counted())

    def platform_strength(self) -> int:
        """Strongest signal that is not just a model name: "we are on OpenAI", not "GPT Image 2"."""
        return max((p.weight for p in self.counted() if not p.model_name), default=0)

    def names_provider(self) -> bool:
        return any(p.names_provider for p in self.points_for.values())

    def rank(self, board: Board) -> tuple[int, int, bool, int]:
        return (-self.net(board), -self.strongest(), not self.names_something(), self.order)


@dataclass(slots=True)
class _Evidence:
    """What the question said, sorted by what it is about."""

    tallies: dict[str, _Tally]
    caveats: dict[str, list[Evidence]] = field(default_factory=dict)
    cleared: dict[str, list[Evidence]] = field(default_factory=dict)
    notes: dict[str, list[Evidence]] = field(default_factory=dict)
    topics: set[str] = field(default_factory=set)
    vetoes: list[Evidence] = field(default_factory=list)
    matched: list[MatchedSignal] = field(default_factory=list)


# A pasted wall of text can match thousands of times; the answer only needs to show the gist.
_MAX_MATCHED = 100
_QUOTES_SHOWN = 3
_EXAMPLE = "“we're on GCP and need product shots with transparent backgrounds”"
_LANGUAGES = "English, Spanish, German, French, Portuguese, Japanese and Chinese"


def advise(
    question: str,
    workspace: Sequence[WorkspaceRoute] = (),
    *,
    models: Mapping[str, ModelFact] | None = None,
) -> Advice:
    """Advice for `question` from the route board; pure and deterministic, never raises on text.

    `workspace` is the configured routes with their run-log numbers; the ones serving the
    recommended row (and each alternative's row) are passed through. `models` are the model
    lifecycle facts by model id (the bot hands in its live catalog); without them the board's
    dated default facts are used. Either way a model known to be shut down is never named as a
    first benchmark: its replacement is, with one line saying why.
    """
    board = load_board()
    catalog = _default_catalog() if models is None else _catalog(board, models)
    reading = read(question)
    found = _collect(board, reading)
    scope = _scope(question, reading, found)
    if scope != "advice":
        return _outside(board, question, reading, found, scope)

    tallies = found.tallies
    vetoed = list(board.hosted_routes) if found.vetoes else []
    raised = _raised_caveats(board, found, bool(vetoed))
    for caveat_id in raised:
        support = board.caveat(caveat_id).supports
        if support is not None:
            items = found.caveats[caveat_id]
            point = _Point(
                support.label,
                support.weight,
                items[0].quote,
                None,
                False,
                False,
                max(item.emphasis for item in items),
            )
            tallies[support.route].add(point, True)

    enumeration = _enumeration_bonus(board, tallies)
    transparency = "transparency" in raised
    ruled_out = [t.route for t in tallies.values() if t.ruled_out(board) or t.route in vetoed]
    ranked = sorted(
        (t for t in tallies.values() if t.net(board) > 0 and t.route not in vetoed),
        key=lambda t: t.rank(board),
    )
    set_aside: list[_Tally] = []
    if transparency:
        # GPT Image 2 cannot output alpha: OpenAI stays a candidate only when the team is
        # explicitly on the OpenAI platform, never on job hints, a model name or the default.
        openai = tallies["openai"]
        if openai in ranked and openai.platform_strength() < 3:
            ranked.remove(openai)
            set_aside.append(openai)

    route: str | None
    is_default = False
    if vetoed:
        # A hard requirement decides before any weighing: only the unhosted row is left, unless
        # the question also refuses it outright ("self-hosting is out of the question").
        left = [
            r
            for r in board.fallback_order
            if r not in ruled_out
            and not any(
                p.weight >= 3 and label not in tallies[r].points_for
                for label, p in tallies[r].points_against.items()
            )
        ]
        route = left[0] if left else None
        if route is None:
            ruled_out = list(dict.fromkeys([*ruled_out, *board.fallback_order]))
    elif ranked and ranked[0].net(board) >= board.min_score:
        route = ranked[0].route
    elif transparency:
        route = None
    else:
        route = next((r for r in board.fallback_order if r not in ruled_out), board.default_route)
        is_default = True

    both = _true_tie(board, route, ranked) if not vetoed and not is_default else ()
    caveats = tuple(
        Caveat(id=spec.id, title=spec.title, text=_caveat_text(spec, catalog, bool(vetoed)))
        for spec in board.caveats
        if spec.id in raised
    )
    alternatives = _alternatives(
        board, catalog, route, ranked, ruled_out, transparency, workspace, both
    )
    shown_routes = [r for r in (route, *(a.route for a in alternatives)) if r]
    lifecycle = tuple(_model_change(catalog, r) for r in shown_routes if _changed(catalog, r))
    verify, verify_more = _verify(board, catalog, route, raised, found, vetoed)
    why = _why(
        board,
        catalog,
        question,
        route,
        is_default,
        ranked,
        tallies,
        set_aside,
        ruled_out,
        vetoed,
        enumeration,
        found,
        raised,
        both,
    )
    notes = _notes(board, catalog, route, tallies, found, lifecycle)
    return Advice(
        route=route,
        first_benchmark=_first_benchmark(board, catalog, route, transparency),
        why=why,
        verify=verify,
        caveats=caveats,
        alternatives=alternatives,
        is_default=is_default,
        notes=notes,
        matched=_dedupe(found.matched),
        ruled_out=tuple(ruled_out),
        scores=tuple(
            (t.route, t.net(board)) for t in tallies.values() if t.net(board) or t.negative()
        ),
        in_workspace=tuple(ws for ws in workspace if route is not None and ws.board == route),
        scope="advice",
        verify_more=verify_more,
        vetoed_by=tuple(_distinct([item.said for item in found.vetoes])),
        benchmark_both=both,
        lifecycle=lifecycle,
    )


# --- lifecycle ----------------------------------------------------------------------------


@cache
def _default_catalog() -> Catalog:
    board = load_board()
    return _catalog(board, {fact.model_id: fact for fact in board.models})


def _catalog(board: Board, facts: Mapping[str, ModelFact]) -> Catalog:
    return Catalog(facts, {row.id: row.model for row in board.rows})


def _changed(catalog: Catalog, route: str) -> bool:
    resolved = catalog.rows.get(route)
    return resolved is not None and bool(resolved.change)


def _model_change(catalog: Catalog, route: str) -> ModelChange:
    resolved = catalog.rows[route]
    first = resolved.facts[0] if resolved.facts else None
    return ModelChange(
        route=route,
        article_model=resolved.article_id,
        model=resolved.model_id,
        status=resolved.status,
        change=resolved.change,
        source=first.source if first else "",
        checked=str(first.checked) if first and first.checked else None,
    )


# --- reading the evidence -----------------------------------------------------------------


def _collect(board: Board, reading: Reading) -> _Evidence:
    detectors = matcher().detectors
    tallies = {row.id: _Tally(route=row.id, order=i) for i, row in enumerate(board.rows)}
    found = _Evidence(tallies=tallies)
    for item in reading.evidence:
        kind, index = detectors[item.detector].owner
        if kind == "signal":
            _add_signal(found, board.signals[index], item)
        elif kind == "caveat":
            caveat_id = board.caveats[index].id
            if item.supports:
                found.caveats.setdefault(caveat_id, []).append(item)
            found.matched.append(_matched(item, caveat_id, "caveat", None, 0))
        elif kind == "clear":
            caveat_id = board.caveats[index].id
            if item.supports:
                found.cleared.setdefault(caveat_id, []).append(item)
            found.matched.append(_matched(item, f"{caveat_id} already done", "caveat", None, 0))
        elif kind == "topic":
            if item.supports:
                found.topics.add(board.topics[index].id)
        else:
            note_id = board.notes[index].id
            if item.supports:
                found.notes.setdefault(note_id, []).append(item)
            found.matched.append(_matched(item, note_id, "note", None, 0))
    return found


def _add_signal(found: _Evidence, signal: Signal, item: Evidence) -> None:
    """A route signal: a point for (or against) its row, the topics it names, a veto."""
    point = _Point(
        signal.label,
        signal.weight,
        item.said,
        item.negated_by,
        signal.names_provider,
        signal.model_name,
        item.emphasis if item.supports else PLAIN,
    )
    found.tallies[signal.route].add(point, item.supports)
    found.matched.append(_matched(item, signal.label, "route", signal.route, signal.weight))
    if not item.supports:
        return
    if signal.topic:
        found.topics.add(signal.topic)
    found.topics.add(signal.label)
    if signal.veto == "always" or (signal.veto == "required" and item.required):
        found.vetoes.append(item)


def _raised_caveats(board: Board, found: _Evidence, vetoed: bool) -> list[str]:
    """Caveat ids to raise, in board order: fired, not cleared (unless an error persists), and
    not about an OpenAI account when every hosted route is ruled out."""
    detectors = matcher().detectors
    raised: list[str] = []
    for spec in board.caveats:
        items = found.caveats.get(spec.id)
        if not items:
            continue
        if spec.id in found.cleared and not any(
            detectors[item.detector].trigger.survives_clear for item in items
        ):
            continue
        if vetoed and spec.id == "org-verification":
            continue  # an OpenAI account task means nothing when OpenAI is ruled out
        raised.append(spec.id)
    return raised


def _scope(question: str, reading: Reading, found: _Evidence) -> AnswerScope:
    if not question.strip():
        return "unclear"
    board_words = bool(found.matched) or reading.about_images
    if reading.outside and not reading.about_images and not found.caveats:
        return "out-of-scope"
    if board_words:
        return "advice"
    latin = sum(len(token.text) for token in reading.tokens if token.text.isascii())
    if reading.foreign_letters > latin:
        return "unclear"  # written in a script the advisor does not read
    if reading.generic:
        return "advice"
    words = sum(1 for token in reading.tokens if token.text.isascii()) + (
        sum(1 for token in reading.tokens if not token.text.isascii()) // 2
    )
    # A readable question that names nothing gets the board's default, flagged as such; a
    # greeting, emoji or keyboard mash is not understood well enough to advise.
    if words >= 4 and reading.function_words:
        return "advice"
    return "unclear"


def _outside(
    board: Board, question: str, reading: Reading, found: _Evidence, scope: AnswerScope
) -> Advice:
    if not question.strip():
        why = (
            "The question is empty, so there is nothing to advise on yet. Ask which image-"
            f"generation route to benchmark first, e.g. {_EXAMPLE}."
        )
    elif scope == "out-of-scope" and reading.outside:
        listing = ", ".join(f"“{quote}”" for quote in reading.outside[:_QUOTES_SHOWN])
        why = (
            "This is outside what I advise on: I help choose which image-generation route to "
            "benchmark first (OpenAI, Google Vertex AI, FLUX through a provider, a gateway, or "
            f"self-hosted), and {listing} is not about generating images."
        )
    elif scope == "out-of-scope":
        why = (
            "This does not look like a question about choosing an image-generation route, so I "
            f"have no route to suggest. Ask about the images you need to generate, e.g. {_EXAMPLE}."
        )
    elif reading.foreign_letters:
        why = (
            "I could not read this question well enough to advise: I read questions in "
            f"{_LANGUAGES}. Ask again in one of them, e.g. {_EXAMPLE}."
        )
    else:
        shown = " ".join(question.split())[:80]
        why = (
            f"I could not understand “{shown}” well enough to advise. Say what images you need "
            f"and where your stack runs, e.g. {_EXAMPLE}."
        )
    first = (
        "Nothing to benchmark: not an image-generation route question."
        if scope == "out-of-scope"
        else "Nothing to benchmark yet: the question was not understood."
    )
    return Advice(
        route=None,
        first_benchmark=first,
        why=why,
        verify=(),
        caveats=(),
        alternatives=(),
        is_default=False,
        notes=(),
        matched=_dedupe(found.matched),
        scores=(),
        ruled_out=(),
        in_workspace=(),
        scope=scope,
    )


def _matched(
    item: Evidence, meaning: str, kind: MatchKind, route: str | None, weight: int
) -> MatchedSignal:
    counted: Counted
    counted = "for" if item.supports else "against" if kind == "route" else "ignored"
    return MatchedSignal(
        phrase=item.quote,
        meaning=meaning,
        kind=kind,
        route=route,
        weight=weight,
        negated=item.negated,
        negated_by=item.negated_by,
        counted=counted,
    )


def _dedupe(matched: list[MatchedSignal]) -> tuple[MatchedSignal, ...]:
    """One entry per phrase and meaning: a long paste repeats the same words many times."""
    seen: dict[tuple[str, str, str, str], MatchedSignal] = {}
    for match in matched:
        key = (" ".join(match.phrase.casefold().split()), match.meaning, match.kind, match.counted)
        if key not in seen:
            seen[key] = match
            if len(seen) == _MAX_MATCHED:
                break
    return tuple(seen.values())


def _enumeration_bonus(board: Board, tallies: dict[str, _Tally]) -> list[str]:
    """Naming several providers next to a gateway need is itself the gateway's job.

    The names are then the gateway's targets ("one key for OpenAI, Google and FLUX"), so they
    stop counting for their own rows; job signals of those rows still count.
    """
    gateway = tallies["gateway"]
    if not gateway.points_for:
        return []
    named = [t.route for t in tallies.values() if t.route != "gateway" and t.names_provider()]
    if len(named) < board.enumeration_min:
        return []
    gateway.add_bonus(board.enumeration_bonus)
    for route in named:
        tallies[route].absorb()
    return named


def _true_tie(board: Board, route: str | None, ranked: list[_Tally]) -> tuple[str, ...]:
    """Two rows the question supports equally, in every respect: benchmark both."""
    if route is None or len(ranked) < 2 or ranked[0].route != route:
        return ()
    first, second = ranked[0], ranked[1]
    if first.rank(board)[:3] == second.rank(board)[:3]:
        return (first.route, second.route)
    return ()


# --- the answer's parts -------------------------------------------------------------------


def _caveat_text(spec: CaveatSpec, catalog: Catalog, vetoed: bool) -> str:
    if vetoed and spec.wording("when_vetoed"):
        return catalog.render(spec.wording("when_vetoed"))
    return catalog.render(spec.text)


def _alternatives(
    board: Board,
    catalog: Catalog,
    route: str | None,
    ranked: list[_Tally],
    ruled_out: list[str],
    transparency: bool,
    workspace: Sequence[WorkspaceRoute],
    both: tuple[str, ...],
) -> tuple[Alternative, ...]:
    """Two other routes worth benchmarking, from the first candidates that are allowed."""
    chosen: list[tuple[str, str]] = []
    for candidate, reason in _alternative_candidates(
        board, catalog, route, ranked, transparency, both
    ):
        if len(chosen) == 2:
            break
        if candidate == route or candidate in ruled_out:
            continue
        if transparency and candidate == "openai":
            continue
        if all(candidate != r for r, _ in chosen):
            chosen.append((candidate, reason))
    return tuple(
        Alternative(
            route=alt,
            reason=reason,
            first_benchmark=catalog.render(board.row(alt).first_benchmark, alt),
            in_workspace=tuple(ws for ws in workspace if ws.board == alt),
        )
        for alt, reason in chosen
    )


def _alternative_candidates(
    board: Board,
    catalog: Catalog,
    route: str | None,
    ranked: list[_Tally],
    transparency: bool,
    both: tuple[str, ...],
) -> Iterator[tuple[str, str]]:
    """Candidates in priority order: the tied second route, what the question also supports,
    the chosen row's (and the transparency caveat's) alternatives, then the board's fallbacks."""
    if len(both) == 2:
        yield both[1], f"The question supports it as much as {route}: benchmark both."
    for tally in ranked:
        quotes = _quote_list([p.quote for p in tally.counted()])
        yield tally.route, f"You also said {quotes}, which is this row's job."
    specs = board.row(route).alternatives if route is not None else ()
    if transparency:
        specs = (*specs, *board.caveat("transparency").alternatives)
    for spec in specs:
        yield spec.route, catalog.render(spec.reason, spec.route)
    for candidate in board.fallback_order:
        yield candidate, f"Its job on the board: {board.row(candidate).job}."


def _first_benchmark(board: Board, catalog: Catalog, route: str | None, transparency: bool) -> str:
    if not transparency:
        target = route or board.default_route
        return catalog.render(board.row(target).first_benchmark, target)
    caveat = board.caveat("transparency")
    if route is None:
        return catalog.render(caveat.wording("benchmark_instead"))
    if route == "openai":
        return catalog.render(caveat.wording("with_openai"), route)
    row_text = catalog.render(board.row(route).first_benchmark, route)
    return f"{row_text}, {catalog.render(caveat.wording('with_route'), route)}"


def _verify(
    board: Board,
    catalog: Catalog,
    route: str | None,
    raised: list[str],
    found: _Evidence,
    vetoed: list[str],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The checks for this question, most important first: the requirements it stated, the
    caveats it raised, then the row's checks about what it mentioned; cleared ones dropped."""
    first: list[str] = []
    for quote in _distinct([item.said for item in found.vetoes]):
        first.append(
            f"Your requirement (“{quote}”): check that nothing in the pipeline crosses it, "
            "including weight and container downloads, telemetry, safety checks and logging"
        )
    for caveat_id in raised:
        first.extend(catalog.render(c.text, route) for c in board.caveat(caveat_id).checks)
    mentioned = found.topics | set(raised)
    cleared = set(found.cleared) - set(raised)
    rest: list[str] = []
    conditional: list[str] = []
    if route is not None:
        for check in board.row(route).checks:
            about = set(check.about)
            if cleared & about:
                continue
            text = catalog.render(check.text, route)
            if mentioned & about:
                first.append(text)
            elif check.only_if and check.only_if not in raised:
                # "Responses API tool, if an assistant must ...": only if it was asked about.
                conditional.append(text)
            else:
                rest.append(text)
    ordered = list(dict.fromkeys([*first, *rest, *conditional]))
    shown = min(board.verify_shown, max(3, len(dict.fromkeys(first))))
    return tuple(ordered[:shown]), tuple(ordered[shown:])


def _notes(
    board: Board,
    catalog: Catalog,
    route: str | None,
    tallies: dict[str, _Tally],
    found: _Evidence,
    lifecycle: tuple[ModelChange, ...],
) -> tuple[str, ...]:
    notes: list[str] = []
    if "stale-page" in found.notes:
        notes.append(catalog.render(board.note("stale-page").text))
    # Not for a gateway that is only a fallback alternative: the note would be noise there.
    if route == "gateway" or bool(tallies["gateway"].points_for):
        notes.append(board.note("gateway-claims").text)
    if "strongest" in found.notes:
        notes.append(board.note("strongest").text)
    # The recommended row's model change is in `why`; an alternative's is said here.
    notes.extend(change.change for change in lifecycle if change.route != route)
    return tuple(notes)


# --- why ----------------------------------------------------------------------------------


def _quote_list(quotes: Sequence[str], limit: int = _QUOTES_SHOWN) -> str:
    """“a”, “b” and “c”: each quote once, none that is part of a longer one."""
    unique = _distinct(quotes)
    shown = [f"“{q}”" for q in unique[:limit]]
    if len(unique) > limit:
        shown.append(f"{len(unique) - limit} more")
    return _and(shown)


def _distinct(quotes: Sequence[str]) -> list[str]:
    """Each quote once, leaving out any that is part of a longer one."""
    unique = list(dict.fromkeys(quotes))
    return [q for q in unique if not any(q != o and q.casefold() in o.casefold() for o in unique)]


def _and(items: Sequence[str]) -> str:
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + f" and {items[-1]}"


def _title(board: Board, route: str) -> str:
    return board.row(route).title


def _why(
    board: Board,
    catalog: Catalog,
    question: str,
    route: str | None,
    is_default: bool,
    ranked: list[_Tally],
    tallies: dict[str, _Tally],
    set_aside: list[_Tally],
    ruled_out: list[str],
    vetoed: list[str],
    enumeration: list[str],
    found: _Evidence,
    raised: list[str],
    both: tuple[str, ...],
) -> str:
    parts: list[str] = []
    if vetoed:
        parts += _why_vetoed(board, route, tallies, vetoed, found)
    elif route is None:
        quotes = _quote_list([e.quote for e in found.caveats["transparency"]])
        parts.append(
            f"The question needs transparent output ({quotes}) and nothing else in it points "
            f"at a route. {catalog.rows['openai'].name}, the usual default, does not support "
            "transparent backgrounds, so no route fits as asked; the first benchmark says what "
            "to try instead."
        )
    elif is_default:
        parts += _why_default(board, catalog, route, tallies, ruled_out)
    else:
        parts.extend(_why_chosen(board, route, ranked, tallies, enumeration, both))
    parts += _why_set_aside(board, catalog, route, is_default, tallies, set_aside, ruled_out)
    parts += _why_caveats(board, route, found, raised, vetoed)
    if route is not None and _changed(catalog, route):
        parts.append(catalog.rows[route].change)
    return " ".join(parts)


def _why_vetoed(
    board: Board,
    route: str | None,
    tallies: dict[str, _Tally],
    vetoed: list[str],
    found: _Evidence,
) -> list[str]:
    """A requirement no hosted route can meet (data must stay on our own hardware...)."""
    parts: list[str] = []
    requirement = _quote_list([item.said for item in found.vetoes])
    hosted = _and([_title(board, r) for r in vetoed])
    if route is None:
        parts.append(
            f"You said {requirement}, which rules out every hosted route ({hosted}), and "
            "you also ruled out self-hosting, so no route fits as asked: decide which of "
            "the two requirements is firm before benchmarking."
        )
    else:
        parts.append(
            f"You said {requirement}: no hosted route can meet that, so every hosted route "
            f"({hosted}) is ruled out and the first benchmark is {route}."
        )
        others = [
            p.quote for r in vetoed for p in tallies[r].counted() if tallies[r].net(board) > 0
        ]
        if others:
            parts.append(
                f"What you said about hosted options ({_quote_list(others)}) does not "
                "change that; the same models can often run on your own hardware."
            )
    return parts


def _why_default(
    board: Board, catalog: Catalog, route: str, tallies: dict[str, _Tally], ruled_out: list[str]
) -> list[str]:
    """Nothing points at a route: the board's default, or where it moves when ruled out."""
    parts: list[str] = []
    default_model = catalog.render(board.row(board.default_route).first_benchmark, "openai")
    against = [r for r in ruled_out if r == board.default_route]
    if route == board.default_route and route in ruled_out:
        parts.append(
            "The question rules out every row of the board as written, so this falls back "
            f"to the default, {default_model}. It is a starting point, not a verdict: "
            "re-read the constraints before benchmarking."
        )
    elif against:
        quotes = _quote_list([p.quote for p in tallies[against[0]].points_against.values()])
        parts.append(
            f"You ruled out {_title(board, against[0])} ({quotes}) and nothing else points "
            f"at a specific route, so the default starting point moves to {route} "
            f"({_title(board, route)}). It is a default for a benchmark, not a verdict."
        )
    else:
        parts.append(
            "Nothing in the question points at a specific route, so this is the board's "
            f"default starting point: {default_model}. It is a default for a benchmark, "
            "not a verdict."
        )
    return parts


def _why_set_aside(
    board: Board,
    catalog: Catalog,
    route: str | None,
    is_default: bool,
    tallies: dict[str, _Tally],
    set_aside: list[_Tally],
    ruled_out: list[str],
) -> list[str]:
    """OpenAI mentions set aside for transparency, and the routes the question ruled out."""
    parts: list[str] = []
    if set_aside:
        quotes = _quote_list([p.quote for t in set_aside for p in t.points_for.values()])
        parts.append(
            f"Your OpenAI mentions ({quotes}) were set aside: "
            f"{catalog.rows['openai'].name} cannot produce transparent backgrounds and nothing "
            "says the team must stay on OpenAI."
        )
    negated = [
        (t.route, p)
        for t in tallies.values()
        for label, p in t.points_against.items()
        if label not in t.points_for and (t.route in ruled_out or p.weight >= 2)
    ]
    if negated and not (is_default and route != board.default_route):
        listing = "; ".join(f"{_title(board, r)} (“{p.quote}”)" for r, p in negated[:_QUOTES_SHOWN])
        parts.append(f"You ruled out {listing}.")
    return parts


def _why_caveats(
    board: Board, route: str | None, found: _Evidence, raised: list[str], vetoed: list[str]
) -> list[str]:
    """Why each caveat is raised, and which ones the question said are done already."""
    parts: list[str] = []
    for caveat_id in raised:
        if caveat_id == "transparency" and route is None:
            continue
        spec = board.caveat(caveat_id)
        quotes = _quote_list([e.quote for e in found.caveats[caveat_id]], 2)
        parts.append(f"Caveat raised because you said {quotes}: {spec.title}.")
    for caveat_id, items in found.cleared.items():
        if caveat_id in found.caveats and caveat_id not in raised and not vetoed:
            parts.append(
                f"You said {_quote_list([e.quote for e in items], 1)}, so the caveat "
                f"“{board.caveat(caveat_id).title}” is not raised and its check is dropped."
            )
    return parts


def _why_chosen(
    board: Board,
    route: str,
    ranked: list[_Tally],
    tallies: dict[str, _Tally],
    enumeration: list[str],
    both: tuple[str, ...],
) -> list[str]:
    winner = tallies[route]
    points = winner.counted() or list(winner.points_for.values())
    stated = [p.quote for p in points if p.emphasis == STATED_PRIORITY]
    plain = [p.quote for p in points if p.emphasis != STATED_PRIORITY]
    title = _title(board, route)
    parts: list[str] = []
    if len(both) == 2:
        other = tallies[both[1]]
        parts.append(
            f"You said {_quote_list([p.quote for p in points])}, which points to {route} "
            f"({title}), and {_quote_list([p.quote for p in other.counted()])}, which points "
            f"to {both[1]} ({_title(board, both[1])}) just as much: benchmark both."
        )
        return parts
    if stated:
        parts.append(
            f"You said what matters most is {_quote_list(stated)}: that is the {title} row's "
            "job, so it is the first benchmark."
        )
        if plain:
            parts.append(f"It also fits {_quote_list(plain)}.")
    else:
        parts.append(
            f"You said {_quote_list(plain)}: that is the {title} row's job "
            f"({board.row(route).job.split(';')[0]}), so it is the first benchmark."
        )
    if enumeration:
        names = ", ".join(_title(board, r) for r in enumeration)
        parts.append(
            f"You named providers from several rows ({names}) next to a need for one access "
            "layer: reaching them all is the gateway's job, so those names count as its targets."
        )
    others = [t for t in ranked if t.route != route]
    if others:
        background = [p.quote for t in others for p in t.counted() if p.emphasis == BACKGROUND]
        listing = "; ".join(
            f"{_quote_list([p.quote for p in t.counted()], 2)} points to {t.route}"
            for t in others[:2]
        )
        if background and (stated or winner.emphasis() >= AFTER_CONTRAST):
            parts.append(
                f"{_quote_list(background)} reads as background, and your stated need decides; "
                f"{listing}, so it is offered as an alternative."
            )
        elif winner.emphasis() == AFTER_CONTRAST:
            parts.append(f"What you said after “but” decides: {listing}, kept as an alternative.")
        else:
            parts.append(f"{listing[0].upper()}{listing[1:]}: offered as an alternative.")
    return parts
