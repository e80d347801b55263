"""Repeatability: how alike two outputs of the same request on the same route are.

A 64-bit perceptual hash (pHash, imagehash) of each image; similarity is 1 - distance/32,
floored at 0. Two unrelated images differ in about half of the 64 bits (32), so they score
about 0, an identical image 1; a recompressed or slightly noisy copy stays near 1. It measures
composition and tone, not quality.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.checks.model import FAILED, PASSED, CheckResult

if TYPE_CHECKING:
    from PIL import Image

UNRELATED_BITS = 32


def fingerprint(image: Image.Image) -> object:
    import imagehash

    from bot.checks.pictures import flattened

    return imagehash.phash(flattened(image))


def similarity(a: object, b: object) -> float:
    distance = int(a - b)  # type: ignore[operator]
    return max(0.0, 1 - distance / UNRELATED_BITS)


def mean_similarity(images: Sequence[Image.Image]) -> float | None:
    """Mean similarity over every pair of repeats; None with fewer than two."""
    prints = [fingerprint(i) for i in images]
    pairs = [similarity(a, b) for a, b in itertools.combinations(prints, 2)]
    return statistics.fmean(pairs) if pairs else None


def repeat_check(image: str, earlier: str, earlier_run: int, threshold: float) -> CheckResult:
    """Two fingerprints (`fingerprint`, as hex) compared: this image's and the earlier run's."""
    import imagehash

    a, b = imagehash.hex_to_hash(image), imagehash.hex_to_hash(earlier)
    score = similarity(a, b)
    passed = score >= threshold
    return CheckResult(
        name="repeat",
        status=PASSED if passed else FAILED,
        summary=f"repeat {score:.0%} like run #{earlier_run}",
        score=score,
        threshold=threshold,
        reason=None
        if passed
        else (
            f"the same request on this route gave a different picture than run #{earlier_run} "
            f"({score:.1%} alike, needs {threshold:.0%})"
        ),
        detail={"compared_with": earlier_run, "distance_bits": int(a - b)},
    )
