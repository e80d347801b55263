"""Reads a question: normalises it, finds board phrases on word boundaries, and applies negation."""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import dataclass
from enum import IntEnum
from functools import cache

from advisor.board import Board, BoardError, CountsWhen, Trigger, load_board

# Typographic quotes and dashes people paste from docs and Slack; NFKC leaves most of them alone.
_PUNCTUATION = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u00b4": "'",
        "`": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2033": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u00ad": "",
        "\u200b": "",
        "\u200c": "",
        "\u200d": "",
        "\u2060": "",
        "\ufeff": "",
    }
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
# A word (letters/digits, with inner apostrophes) or a clause boundary. A dot only ends a
# clause before whitespace, so "gpt-image-1.5" and "fal.ai" stay whole.
_TOKEN = re.compile(
    r"(?P<w>[^\W_]+(?:'[^\W_]+)*)|(?P<b>[,;:!?()\[\]{}|\n\"]|\.(?=\s|$)|\s-+\s|\s/\s)"
)
_SENTENCE_ENDS = frozenset({".", "!", "?", ";", ""})
_PATTERN_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*\*?")
# Contractions whose stem is not the plain word before "n't".
_NOT_STEMS = {"ca": "can", "wo": "will", "sha": "shall", "ai": "am"}
_DROPPED_SUFFIXES = frozenset({"s", "re", "ve", "ll", "d", "m"})
_WORD_CACHE_SIZE = 20_000


class Tag(IntEnum):
    NEUTRAL = 0
    NEG_BEFORE = 1
    NEG_FROM = 2
    NEG_AFTER = 3
    NEG_BOTH = 4
    BREAKER = 5
    FROM_STOP = 6
    DIRECT = 7
    GROUP = 8


_CUES = frozenset({Tag.NEG_BEFORE, Tag.NEG_FROM, Tag.NEG_AFTER, Tag.NEG_BOTH})

# (tag, detector index, group index); detector/group are -1 when they do not apply.
TagRef = tuple[Tag, int, int]
PatternWord = tuple[str, bool]  # (text, is_prefix)


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    start: int
    end: int
    clause: int
    sentence: int


@dataclass(frozen=True, slots=True)
class Detector:
    """A trigger compiled for matching; `owner` says what fires: ("signal"|"caveat"|"note", i)."""

    owner: tuple[str, int]
    trigger: Trigger


@dataclass(slots=True)
class _Hit:
    first: int  # token index
    last: int  # token index, inclusive
    tags: tuple[TagRef, ...]
    negated_by: str | None = None
    content: bool = False  # can be negated (a signal, caveat or note phrase)


@dataclass(frozen=True, slots=True)
class Evidence:
    """A detector that fired: where, with what words, and whether a negation covered it.

    `supports` is the polarity that counts: True means evidence for the detector's owner
    (including triggers that only mean something when negated, such as "no public cloud");
    False means the owner was mentioned under a negation and counts against it.
    """

    detector: int
    negated: bool
    supports: bool
    quote: str
    negated_by: str | None
    position: int


@dataclass(frozen=True, slots=True)
class Reading:
    text: str
    tokens: tuple[Token, ...]
    evidence: tuple[Evidence, ...]


class Matcher:
    """All board phrases compiled into a first-word index for leftmost-longest matching."""

    def __init__(self, board: Board) -> None:
        language = board.language
        self.window = language.negation_window
        self._spelling = dict(language.spelling)
        self._word_cache: dict[str, tuple[str, ...]] = {}
        self.coordination = frozenset(
            word for phrase in language.coordination for word in self.words(phrase)
        )
        self.detectors: list[Detector] = []
        self._entries: dict[tuple[PatternWord, ...], list[TagRef]] = {}
        for index, signal in enumerate(board.signals):
            self._add_detector(("signal", index), signal.trigger)
        for index, caveat in enumerate(board.caveats):
            for trigger in caveat.triggers:
                self._add_detector(("caveat", index), trigger)
        for index, note in enumerate(board.notes):
            for trigger in note.triggers:
                self._add_detector(("note", index), trigger)
        plain: list[tuple[tuple[str, ...], Tag]] = [
            (language.neutral, Tag.NEUTRAL),
            (language.negation_before, Tag.NEG_BEFORE),
            (language.negation_from, Tag.NEG_FROM),
            (language.negation_after, Tag.NEG_AFTER),
            (language.negation_both, Tag.NEG_BOTH),
            (language.scope_breakers, Tag.BREAKER),
            (language.from_stops, Tag.FROM_STOP),
        ]
        for phrases, tag in plain:
            for phrase in phrases:
                self._add(phrase, (tag, -1, -1))
        self._exact: dict[str, list[tuple[tuple[PatternWord, ...], tuple[TagRef, ...]]]] = {}
        self._prefix: dict[str, list[tuple[tuple[PatternWord, ...], tuple[TagRef, ...]]]] = {}
        for pattern, tags in self._entries.items():
            text, is_prefix = pattern[0]
            index_map = self._prefix if is_prefix else self._exact
            key = text[:3] if is_prefix else text
            index_map.setdefault(key, []).append((pattern, tuple(tags)))
        for candidates in (*self._exact.values(), *self._prefix.values()):
            candidates.sort(key=lambda item: -len(item[0]))

    def _add_detector(self, owner: tuple[str, int], trigger: Trigger) -> None:
        index = len(self.detectors)
        self.detectors.append(Detector(owner=owner, trigger=trigger))
        for phrase in trigger.phrases:
            self._add(phrase, (Tag.DIRECT, index, -1))
        for group_index, group in enumerate(trigger.all_of):
            for phrase in group:
                self._add(phrase, (Tag.GROUP, index, group_index))

    def _add(self, phrase: str, tag: TagRef) -> None:
        pattern = self.compile_phrase(phrase)
        if not pattern:
            raise BoardError(f"phrase {phrase!r} has no words")
        tags = self._entries.setdefault(pattern, [])
        if tag not in tags:
            tags.append(tag)

    def compile_phrase(self, phrase: str) -> tuple[PatternWord, ...]:
        words: list[PatternWord] = []
        for raw in _PATTERN_WORD.findall(_clean(phrase)):
            if raw.endswith("*"):
                prefix = raw[:-1].lower()
                if len(prefix) < 3:
                    raise BoardError(f"prefix {raw!r} in {phrase!r} needs 3+ characters")
                words.append((prefix, True))
            else:
                words.extend((word, False) for word in self.words(raw))
        return tuple(words)

    def words(self, raw: str) -> tuple[str, ...]:
        """One surface word -> matching words: contractions, spelling table, plural stem."""
        cached = self._word_cache.get(raw)
        if cached is None:
            if len(self._word_cache) >= _WORD_CACHE_SIZE:
                self._word_cache.clear()  # bounded: a 100k-character paste must not grow it
            cached = self._word_cache[raw] = tuple(self._words(raw))
        return cached

    def _words(self, raw: str) -> list[str]:
        word = raw.lower()
        if "'" in word:
            base, _, suffix = word.partition("'")
            if suffix == "t" and base.endswith("n"):
                stem = base[:-1]
                return [*self._words(_NOT_STEMS.get(stem, stem)), "not"]
            word = base if suffix in _DROPPED_SUFFIXES else base + suffix.replace("'", "")
        replacement = self._spelling.get(word)
        if replacement is None:  # plurals of joined words: "datacenters", "finetunes"
            replacement = self._spelling.get(_stem(word))
        if replacement is not None:
            return [_stem(part) for part in replacement.split()]
        return [_stem(word)]

    def tokens(self, clean: str) -> list[Token]:
        tokens: list[Token] = []
        clause = sentence = 0
        for match in _TOKEN.finditer(clean):
            if match.lastgroup == "b":
                clause += 1
                if match.group().strip() in _SENTENCE_ENDS:
                    sentence += 1
                continue
            for word in self.words(match.group()):
                tokens.append(Token(word, match.start(), match.end(), clause, sentence))
        return tokens

    def hits(self, tokens: list[Token]) -> list[_Hit]:
        """Leftmost-longest phrase matches that stay inside one clause.

        Every phrase of the winning length contributes its tags, so "leave" can be both a
        negation cue and part of "leave ... our VPC".
        """
        hits: list[_Hit] = []
        count = len(tokens)
        position = 0
        while position < count:
            token = tokens[position]
            best_length = 0
            best_tags: list[TagRef] = []
            for candidates, skip in (
                (self._exact.get(token.text), 1),  # the index key already matched word 0
                (self._prefix.get(token.text[:3]), 0),
            ):
                if not candidates:
                    continue
                for pattern, tags in candidates:
                    length = len(pattern)
                    if length < best_length:
                        break  # sorted longest first
                    if position + length > count:
                        continue
                    if tokens[position + length - 1].clause != token.clause:
                        continue
                    if not _matches(pattern, tokens, position, skip):
                        continue
                    if length > best_length:
                        best_length, best_tags = length, list(tags)
                    else:
                        best_tags.extend(tag for tag in tags if tag not in best_tags)
            if not best_length:
                position += 1
                continue
            if any(tag is Tag.NEUTRAL for tag, _, _ in best_tags):
                # A neutral phrase exists to say "this is not a signal" ("googled", "in flux").
                best_tags = [(Tag.NEUTRAL, -1, -1)]
            last = position + best_length - 1
            hits.append(_Hit(first=position, last=last, tags=tuple(best_tags)))
            position = last + 1
        return hits


def _matches(
    pattern: tuple[PatternWord, ...], tokens: list[Token], position: int, skip: int
) -> bool:
    for offset in range(skip, len(pattern)):
        text, is_prefix = pattern[offset]
        word = tokens[position + offset].text
        if not (word.startswith(text) if is_prefix else word == text):
            return False
    return True


def _stem(word: str) -> str:
    # Plural folding only: enough for "GPUs", "logos", "stickers", "APIs", cheap and predictable.
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_PUNCTUATION)
    return _CONTROL.sub(" ", text)


@cache
def matcher() -> Matcher:
    return Matcher(load_board())


def read(question: str) -> Reading:
    """Tokenise `question`, match board phrases, resolve negation, and evaluate detectors."""
    engine = matcher()
    clean = _clean(question)
    tokens = engine.tokens(clean)
    hits = engine.hits(tokens)
    _apply_negation(hits, tokens, clean, engine.window, engine.coordination, engine.detectors)
    evidence = _evaluate(hits, tokens, clean, engine.detectors)
    return Reading(text=clean, tokens=tuple(tokens), evidence=tuple(evidence))


def _kinds(hit: _Hit) -> set[Tag]:
    return {tag for tag, _, _ in hit.tags}


def _apply_negation(
    hits: list[_Hit],
    tokens: list[Token],
    clean: str,
    window: int,
    coordination: frozenset[str],
    detectors: list[Detector],
) -> None:
    live = _live_combos(hits, detectors)
    # Requirement phrases that count either way ("may leave our network") end a chain of
    # side-by-side phrases: what follows them is a separate fact, not more of the negated list.
    either = frozenset(i for i, d in enumerate(detectors) if d.trigger.counts_when == "either")
    for hit in hits:
        hit.content = any(
            tag is Tag.DIRECT or (tag is Tag.GROUP and detector in live)
            for tag, detector, _ in hit.tags
        )
    for index, cue in enumerate(hits):
        kinds = _kinds(cue)
        if not kinds & _CUES:
            continue
        cue_text = clean[tokens[cue.first].start : tokens[cue.last].end]
        scope = _Scope(cue, cue_text, tokens, window, coordination, either)
        if kinds & {Tag.NEG_BEFORE, Tag.NEG_FROM, Tag.NEG_BOTH}:
            scope.negate(hits[index + 1 :], forward=True, stop_at_from=Tag.NEG_FROM in kinds)
        if kinds & {Tag.NEG_AFTER, Tag.NEG_BOTH}:
            scope.negate(list(reversed(hits[:index])), forward=False, stop_at_from=False)


@dataclass(frozen=True, slots=True)
class _Scope:
    """What one negation cue reaches: the first meaningful phrase within `window` words in the
    same clause, plus phrases joined to it by coordination words ("not GCP or Vertex"). Stopping
    after the first phrase keeps "isn't verified with OpenAI" from negating OpenAI."""

    cue: _Hit
    cue_text: str
    tokens: list[Token]
    window: int
    coordination: frozenset[str]
    either: frozenset[int] = frozenset()

    def negate(self, candidates: list[_Hit], *, forward: bool, stop_at_from: bool) -> None:
        tokens = self.tokens
        clause = tokens[self.cue.first].clause
        previous: _Hit | None = None
        for hit in candidates:
            if tokens[hit.first].clause != clause:
                break
            kinds = _kinds(hit)
            if Tag.BREAKER in kinds or kinds & _CUES or (stop_at_from and Tag.FROM_STOP in kinds):
                break
            if not hit.content:
                continue
            if previous is None:
                distance = hit.first - self.cue.last if forward else self.cue.first - hit.last
                if distance > self.window:
                    break
            else:
                if forward:
                    gap = tokens[previous.last + 1 : hit.first]
                else:
                    gap = tokens[hit.last + 1 : previous.first]
                if not all(token.text in self.coordination for token in gap):
                    break
            if hit.negated_by is None:
                hit.negated_by = self.cue_text
            if any(detector in self.either for _, detector, _ in hit.tags):
                break
            previous = hit


def _live_combos(hits: list[_Hit], detectors: list[Detector]) -> set[int]:
    """Combos with every group present somewhere: only their terms count as content for
    negation, so a stray "our" (part of "train on our images") does not end a scope."""
    seen: dict[int, set[int]] = {}
    for hit in hits:
        for tag, detector, group in hit.tags:
            if tag is Tag.GROUP:
                seen.setdefault(detector, set()).add(group)
    return {d for d, groups in seen.items() if len(groups) == len(detectors[d].trigger.all_of)}


# Bounds the combination search on pathological inputs (a 100k-character wall of "agent tool").
_MAX_GROUP_HITS = 24


def _evaluate(
    hits: list[_Hit], tokens: list[Token], clean: str, detectors: list[Detector]
) -> list[Evidence]:
    evidence: list[Evidence] = []
    groups: dict[int, dict[int, list[_Hit]]] = {}
    for hit in hits:
        for tag, detector, group in hit.tags:
            if tag is Tag.DIRECT:
                negated = hit.negated_by is not None
                supports = _supports(detectors[detector].trigger.counts_when, negated)
                if supports is not None:
                    evidence.append(
                        Evidence(
                            detector=detector,
                            negated=negated,
                            supports=supports,
                            quote=_quote(clean, tokens, hit.first, hit.last),
                            negated_by=hit.negated_by,
                            position=hit.first,
                        )
                    )
            elif tag is Tag.GROUP:
                members = groups.setdefault(detector, {}).setdefault(group, [])
                if len(members) < _MAX_GROUP_HITS:
                    members.append(hit)
    for detector, found in groups.items():
        trigger = detectors[detector].trigger
        if len(found) < len(trigger.all_of):
            continue
        combination = _best_combination(
            [found[g] for g in range(len(trigger.all_of))], trigger.within, tokens
        )
        if combination is None:
            continue
        negated_by = next((h.negated_by for h in combination if h.negated_by), None)
        negated = negated_by is not None
        supports = _supports(trigger.counts_when, negated)
        if supports is None:
            continue
        first = min(h.first for h in combination)
        last = max(h.last for h in combination)
        evidence.append(
            Evidence(
                detector=detector,
                negated=negated,
                supports=supports,
                quote=_quote(clean, tokens, first, last, parts=combination),
                negated_by=negated_by,
                position=first,
            )
        )
    evidence.sort(key=lambda item: item.position)
    return evidence


def _supports(counts_when: CountsWhen, negated: bool) -> bool | None:
    """True: evidence for the owner; False: evidence against it; None: means nothing."""
    if counts_when == "either":
        return True
    if counts_when == "negated":
        return True if negated else None
    return not negated


def _best_combination(
    groups: list[list[_Hit]], within: int, tokens: list[Token]
) -> tuple[_Hit, ...] | None:
    """A positive combination if one exists, else a negated one, else None.

    A bounded combination (`within` > 0) must also sit in one sentence."""
    fallback: tuple[_Hit, ...] | None = None
    for combination in itertools.product(*groups):
        if len({id(hit) for hit in combination}) != len(combination):
            continue
        if within:
            starts = [hit.first for hit in combination]
            if max(starts) - min(starts) > within:
                continue
            if len({tokens[hit.first].sentence for hit in combination}) > 1:
                continue
        if all(hit.negated_by is None for hit in combination):
            return combination
        if fallback is None:
            fallback = combination
    return fallback


def _quote(
    clean: str, tokens: list[Token], first: int, last: int, parts: tuple[_Hit, ...] = ()
) -> str:
    start, end = tokens[first].start, tokens[last].end
    if end - start <= 60 or not parts:
        return " ".join(clean[start:end].split())
    ordered = sorted(parts, key=lambda hit: hit.first)
    pieces = [clean[tokens[h.first].start : tokens[h.last].end] for h in ordered]
    return " … ".join(" ".join(piece.split()) for piece in pieces)
