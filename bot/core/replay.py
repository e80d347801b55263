"""Rebuilds the ImageRequest of a logged run, for Re-run / Try another route buttons."""

from __future__ import annotations

from routes.model import ImageRequest, InputImage
from storage.assets import AssetStore
from storage.runlog import RunLog
from storage.tables import Run

_FIELDS = (
    "size",
    "quality",
    "n",
    "background",
    "output_format",
    "output_compression",
    "seed",
    "negative_prompt",
    "moderation",
)


def request_from_run(runlog: RunLog, assets: AssetStore, run: Run) -> ImageRequest:
    """The same request again, with its input images and mask read back from the asset store."""
    params = {k: v for k, v in (run.params or {}).items() if k in _FIELDS}
    inputs: list[InputImage] = []
    mask: InputImage | None = None
    if run.id is not None:
        for asset in runlog.assets(run.id):
            if asset.role not in ("input", "mask"):
                continue
            image = InputImage(
                data=assets.get(asset.path),
                mime=asset.mime,
                name=f"{asset.role}-{asset.position}.png",
                source=asset.path,
            )
            if asset.role == "mask":
                mask = image
            else:
                inputs.append(image)
    return ImageRequest(prompt=run.prompt, input_images=tuple(inputs), mask=mask, **params)
