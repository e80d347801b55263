"""Edit preservation: what an edit kept and what it changed, against its source image.

Structural similarity (SSIM, scikit-image) of the output against the source, on luminance at
a working size of at most 512 px. With a mask (transparent where to edit) the similarity is
measured outside the mask (what had to stay: "kept") and inside it ("changed" = 1 - SSIM); a
narrow band along the mask's edge is left out, since SSIM's window straddles both sides there.
Without a mask only the whole image's similarity is known.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.checks.model import FAILED, PASSED, CheckResult
from bot.checks.pictures import flattened, open_image
from routes.media import EDIT_ALPHA_BELOW, mask_alpha

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from routes.config import CheckSettings

WORK_SIDE = 512
EDGE_BAND = 4  # pixels at the working size, each side of the mask's edge
# An output whose aspect ratio differs from the source's by more than this was reframed: the
# comparison is still made (scaled to the source), but the reason says so.
REFRAMED = 0.02


def _grey(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    import numpy as np
    from PIL import Image

    return np.asarray(flattened(image).convert("L").resize(size, Image.Resampling.BILINEAR))


def working_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, WORK_SIDE / max(width, height))
    return max(8, round(width * scale)), max(8, round(height * scale))


def edit_check(
    output: Image.Image, source: bytes, mask: bytes | None, settings: CheckSettings
) -> CheckResult:
    import numpy as np
    from skimage.metrics import structural_similarity

    original = open_image(source)
    size = working_size(*original.size)
    before, after = _grey(original, size), _grey(output, size)
    # scikit-image leaves this function unannotated.
    ssim_map = structural_similarity(before, after, data_range=255, full=True)[1]  # type: ignore[no-untyped-call]
    reframed = abs(output.width / output.height - original.width / original.height) > REFRAMED * (
        original.width / original.height
    )
    detail: dict[str, object] = {
        "source_size": f"{original.width}x{original.height}",
        "output_size": f"{output.width}x{output.height}",
        "reframed": reframed,
    }
    alpha = mask_alpha(mask) if mask is not None else None
    if alpha is None:
        kept = float(np.clip(ssim_map.mean(), 0, 1))
        detail["kept_overall"] = round(kept, 4)
        passed = kept >= settings.edit_min_kept_overall
        reason = None
        if not passed:
            reason = (
                f"the edit kept {kept:.1%} of the source overall, needs "
                f"{settings.edit_min_kept_overall:.0%}"
            ) + ("; the output was reframed" if reframed else "")
        return CheckResult(
            name="edit",
            status=PASSED if passed else FAILED,
            summary=f"kept {kept:.0%} overall",
            score=kept,
            threshold=settings.edit_min_kept_overall,
            reason=reason,
            detail=detail,
        )
    inside, outside = _regions(alpha, size)
    kept = float(np.clip(ssim_map[outside].mean(), 0, 1)) if outside.any() else 1.0
    changed = float(np.clip(1 - ssim_map[inside].mean(), 0, 1)) if inside.any() else 0.0
    detail.update(kept_outside=round(kept, 4), changed_inside=round(changed, 4))
    problems = []
    if kept < settings.edit_min_kept_outside_mask:
        problems.append(
            f"changed outside the mask: kept {kept:.1%}, needs "
            f"{settings.edit_min_kept_outside_mask:.0%}"
        )
    if changed < settings.edit_min_changed_inside_mask:
        problems.append(
            f"hardly changed inside the mask ({changed:.1%}, needs "
            f"{settings.edit_min_changed_inside_mask:.0%})"
        )
    if problems and reframed:
        problems.append("the output was reframed")
    return CheckResult(
        name="edit",
        status=FAILED if problems else PASSED,
        summary=f"kept {kept:.0%} outside mask, changed {changed:.0%} inside",
        score=kept,
        threshold=settings.edit_min_kept_outside_mask,
        reason="; ".join(problems) or None,
        detail=detail,
    )


def _regions(alpha: Image.Image, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(inside, outside) the mask at the working size, each without the band along the edge."""
    import numpy as np
    from PIL import Image
    from scipy.ndimage import binary_erosion

    editable = np.asarray(alpha.resize(size, Image.Resampling.NEAREST)) < EDIT_ALPHA_BELOW
    inside = binary_erosion(editable, iterations=EDGE_BAND, border_value=1)
    outside = binary_erosion(~editable, iterations=EDGE_BAND, border_value=1)
    return inside, outside
