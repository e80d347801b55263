"""Transparency delivered: when a transparent background was asked for, whether the file has an
alpha channel, how much of it is transparent, and whether the cut-out's edge is hard or soft."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.checks.model import FAILED, PASSED, CheckResult

if TYPE_CHECKING:
    from PIL import Image

CLEAR = 16  # alpha below this counts as transparent
SOLID = 240  # alpha from this up counts as opaque


def has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


def edge_kind(alpha: object) -> tuple[str, float]:
    """hard | anti-aliased | soft, from how many partly transparent pixels there are per pixel
    of the opaque shape's outline (a hard cut has none, anti-aliasing about one)."""
    import numpy as np
    from scipy.ndimage import binary_erosion

    values = np.asarray(alpha)
    solid = values >= SOLID
    outline = int((solid & ~binary_erosion(solid, border_value=1)).sum())
    partial = int(((values >= CLEAR) & (values < SOLID)).sum())
    ratio = partial / outline if outline else 0.0
    kind = "hard" if ratio < 0.3 else "anti-aliased" if ratio <= 2.5 else "soft"
    return kind, ratio


def transparency_check(image: Image.Image, threshold: float) -> CheckResult:
    import numpy as np

    if not has_alpha(image):
        return CheckResult(
            name="transparency",
            status=FAILED,
            summary="no alpha channel",
            score=0.0,
            threshold=threshold,
            reason=(
                f"a transparent background was asked for but the {image.format or 'image'} "
                "file has no alpha channel"
            ),
            detail={"alpha": False, "mode": image.mode},
        )
    alpha = image.convert("RGBA").getchannel("A")
    share = float((np.asarray(alpha) < CLEAR).mean())
    kind, ratio = edge_kind(alpha)
    passed = share >= threshold
    return CheckResult(
        name="transparency",
        status=PASSED if passed else FAILED,
        summary=f"alpha {share:.0%} transparent, {kind} edge",
        score=share,
        threshold=threshold,
        reason=None
        if passed
        else (
            f"the alpha channel is there but only {share:.1%} of the pixels are transparent "
            f"(needs {threshold:.0%}): the background was not cut out"
        ),
        detail={
            "alpha": True,
            "transparent_share": round(share, 4),
            "edge": kind,
            "edge_ratio": round(ratio, 3),
        },
    )
