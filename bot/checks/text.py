"""Text legibility: the prompt's quoted text read back from the image by OCR.

OCR is RapidOCR on ONNX Runtime (`rapidocr-onnxruntime`), whose wheel carries the PP-OCRv4
detection and recognition models: it works offline and installs from PyPI alone. The engine is
built on first use, once per process, so commands that never check text never load it.

The score is character accuracy (1 - character error rate) of each quoted string against the
best-matching stretch of everything read, compared case-insensitively and without spaces (OCR
often merges words that are set close together); which words are missing or misspelt comes
from the same alignment.
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.checks.model import FAILED, PASSED, CheckResult
from bot.checks.pictures import flattened

if TYPE_CHECKING:
    from PIL import Image

ENGINE = "rapidocr-onnxruntime (PP-OCRv4)"
# Detection runs on the image scaled so its longer side is at most this: the text of a poster
# stays well above the detector's smallest size while a 1024 px image costs about half.
DETECT_SIDE = 736
_DASHES = str.maketrans({"‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "−": "-"})
_engine: Any = None
_engine_lock = threading.Lock()


def ocr_engine() -> Any:
    """The process's one OCR engine, built on first use."""
    global _engine
    with _engine_lock:
        if _engine is None:
            from rapidocr_onnxruntime import RapidOCR

            _engine = RapidOCR(
                det_limit_side_len=DETECT_SIDE,
                det_limit_type="max",
                inter_op_num_threads=1,
            )
        return _engine


def read_lines(image: Image.Image) -> list[str]:
    """Every line of text OCR finds, top to bottom."""
    import numpy as np

    picture = flattened(image)
    bgr = np.asarray(picture)[:, :, ::-1]  # the engine takes OpenCV's channel order
    found, _timings = ocr_engine()(np.ascontiguousarray(bgr), use_cls=False)
    return [str(item[1]) for item in found or []]


def normalise(text: str) -> str:
    """Compared as a reader would: same letters whatever the case, dash or Unicode form."""
    return unicodedata.normalize("NFKC", text).translate(_DASHES).casefold()


@dataclass(frozen=True)
class WordRead:
    word: str  # as the prompt wrote it
    read: str  # what OCR read in its place ("" when nothing)
    errors: int

    @property
    def missing(self) -> bool:
        """Nothing read in its place, or so little of it that it is another word."""
        return not self.read or 2 * self.errors > len(normalise(self.word))


@dataclass(frozen=True)
class TextRead:
    """One quoted string against what was read."""

    expected: str
    distance: int  # character edits between the string and its best match in what was read
    length: int
    words: tuple[WordRead, ...]


def align(expected: str, text: str) -> tuple[int, list[int], list[str]]:
    """Edit distance of `expected` against its best-matching stretch of `text` (approximate
    substring matching: the stretch may start and end anywhere), with, per expected character,
    the edits charged to it and the text read in its place."""
    m, n = len(expected), len(text)
    # rows[i][j]: edits to match expected[:i] ending at text[:j]; row 0 is free (any start).
    rows = [[0] * (n + 1)]
    for i in range(1, m + 1):
        prev, row = rows[-1], [i] + [0] * n
        ch = expected[i - 1]
        for j in range(1, n + 1):
            row[j] = min(
                prev[j - 1] + (ch != text[j - 1]),  # same or substituted
                prev[j] + 1,  # expected character missing
                row[j - 1] + 1,  # an extra character read
            )
        rows.append(row)
    end = min(range(n + 1), key=lambda j: rows[m][j])
    distance = rows[m][end]
    errors = [0] * m
    read = [""] * m
    i, j = m, end
    while i > 0:
        if j > 0 and rows[i][j] == rows[i - 1][j - 1] + (expected[i - 1] != text[j - 1]):
            errors[i - 1] += expected[i - 1] != text[j - 1]
            read[i - 1] = text[j - 1] + read[i - 1]
            i, j = i - 1, j - 1
        elif rows[i][j] == rows[i - 1][j] + 1:
            errors[i - 1] += 1
            i -= 1
        else:  # an extra character, charged to the expected character before it
            errors[i - 1] += 1
            read[i - 1] += text[j - 1]
            j -= 1
    return distance, errors, read


def compare(expected: str, lines: list[str]) -> TextRead:
    """A quoted string against the lines read (words may be merged or split across lines)."""
    words = expected.split()
    keys = [normalise(w) for w in words]
    target = "".join(keys)
    found = "".join(normalise("".join(lines)).split())
    if not found:
        unread = tuple(WordRead(w, "", len(k)) for w, k in zip(words, keys, strict=True))
        return TextRead(expected, len(target), len(target), unread)
    distance, errors, read = align(target, found)
    out, start = [], 0
    for word, key in zip(words, keys, strict=True):
        end = start + len(key)
        out.append(WordRead(word, "".join(read[start:end]), sum(errors[start:end])))
        start = end
    return TextRead(expected, distance, len(target), tuple(out))


def text_check(image: Image.Image, texts: tuple[str, ...], threshold: float) -> CheckResult:
    """Character accuracy of the quoted text read back from the image, and the words missing or
    misspelt."""
    lines = read_lines(image)
    reads = [compare(t, lines) for t in texts]
    total = sum(r.length for r in reads) or 1
    accuracy = max(0.0, 1 - sum(r.distance for r in reads) / total)
    missing = [w.word for r in reads for w in r.words if w.missing]
    wrong = [w for r in reads for w in r.words if w.errors and not w.missing]
    passed = accuracy >= threshold
    problems = []
    if missing:
        problems.append("missing " + ", ".join(missing[:8]) + (" …" if len(missing) > 8 else ""))
    if wrong:
        shown = ", ".join(f"{w.word} (read {w.read})" for w in wrong[:6])
        problems.append("wrong " + shown + (" …" if len(wrong) > 6 else ""))
    reason = None
    if not passed:
        reason = f"text {accuracy:.1%} legible, needs {threshold:.0%}" + (
            ": " + "; ".join(problems) if problems else ""
        )
    return CheckResult(
        name="text",
        status=PASSED if passed else FAILED,
        summary=f"text {accuracy:.0%}",
        score=accuracy,
        threshold=threshold,
        reason=reason,
        detail={
            "engine": ENGINE,
            "expected": list(texts),
            "read": lines[:40],
            "missing": missing,
            "wrong": [{"word": w.word, "read": w.read} for w in wrong],
        },
    )
