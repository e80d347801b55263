"""Results the stores could not take yet, kept on local disk until they can.

Once a provider has returned images (and been paid), they are never dropped: when the asset
store or the database cannot take them, the images and what the run log still lacks go into
the spool, one folder per run: `<spool>/run-<id>-<token>/record.json` beside the image files.
`reconcile` writes them where they belong once the stores answer (the bot does it at start-up
and periodically): each image into the asset store, then the run's final fields, attempts and
assets into the run log in one transaction (RunLog.complete). Every step can be repeated, so a
crash half-way is retried and never doubled; an entry is deleted only once all of it is stored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from storage.assets import AssetStore, AssetStoreError, StoredAsset
from storage.runlog import RunLog

log = logging.getLogger(__name__)

RECORD = "record.json"
# Run fields that are datetimes (JSON keeps them as ISO strings).
_DATETIMES = ("finished_at", "task_submitted_at", "task_expires_at")


@dataclass
class SpooledImage:
    """One output image waiting for the asset store (or, once stored, for its run-log row)."""

    position: int
    mime: str
    key: str  # its asset-store key, e.g. runs/2026/11/27/12-0.png
    file: str | None = None  # the bytes, inside the entry folder (None: already stored)
    stored: dict[str, Any] | None = None  # StoredAsset fields once in the asset store


@dataclass
class SpoolRecord:
    """What one run still needs written. `finish` is None when the run log has its fields."""

    run_id: int
    finish: dict[str, Any] | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    images: list[SpooledImage] = field(default_factory=list)


@dataclass(frozen=True)
class Reconciled:
    """One reconcile pass: entries finished, entries still waiting, and why they wait."""

    done: int = 0
    waiting: int = 0
    reasons: tuple[str, ...] = ()


class Spool:
    """One folder on this machine's disk (IMAGEROUTE_SPOOL): results waiting for the stores."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()

    def keep(
        self,
        run_id: int,
        images: Sequence[tuple[int, str, str, bytes | StoredAsset]],
        *,
        finish: dict[str, Any] | None = None,
        attempts: Sequence[dict[str, Any]] = (),
    ) -> Path:
        """Spool a run's remains: images as (position, mime, key, bytes or the StoredAsset it
        already is), and the run's final fields and attempts when the database missed them.
        Written to a temporary folder, then renamed: an entry is whole or absent."""
        self.root.mkdir(parents=True, exist_ok=True)
        name = f"run-{run_id}-{uuid.uuid4().hex[:8]}"
        tmp = self.root / f".{name}.part"
        tmp.mkdir()
        record = SpoolRecord(run_id=run_id, finish=finish, attempts=list(attempts))
        for position, mime, key, content in images:
            image = SpooledImage(position=position, mime=mime, key=key)
            if isinstance(content, StoredAsset):
                image.stored = dataclasses.asdict(content)
            else:
                image.file = f"{position}{Path(key).suffix}"
                (tmp / image.file).write_bytes(content)
            record.images.append(image)
        _write_record(tmp, record)
        os.replace(tmp, self.root / name)
        return self.root / name

    def entries(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and p.name.startswith("run-"))

    def __len__(self) -> int:
        return len(self.entries())

    def reconcile(self, assets: AssetStore, runlog: RunLog) -> Reconciled:
        """Write every entry's images and rows; entries whose store is still down wait."""
        done, waiting, reasons = 0, 0, []
        for entry in self.entries():
            with _claimed(entry) as claimed:
                if not claimed:  # another process on this machine is writing it now
                    waiting += 1
                    continue
                try:
                    _reconcile_entry(entry, assets, runlog)
                except (AssetStoreError, OSError, SQLAlchemyError) as exc:
                    waiting += 1
                    reasons.append(f"{entry.name}: {type(exc).__name__}")
                    continue
            shutil.rmtree(entry, ignore_errors=True)
            done += 1
        if done:
            log.info("spool: %d result(s) written to the stores, %d waiting", done, waiting)
        return Reconciled(done, waiting, tuple(reasons))


def _reconcile_entry(entry: Path, assets: AssetStore, runlog: RunLog) -> None:
    record = _read_record(entry)
    for image in record.images:
        if image.stored is None:
            assert image.file is not None
            data = (entry / image.file).read_bytes()
            image.stored = dataclasses.asdict(assets.put(image.key, data, image.mime))
            _write_record(entry, record)  # stored once: a retry does not store it again
    outputs = [(i.position, StoredAsset(**i.stored)) for i in record.images if i.stored]
    finish = dict(record.finish) if record.finish is not None else None
    for key in _DATETIMES:
        if finish is not None and isinstance(finish.get(key), str):
            finish[key] = datetime.fromisoformat(finish[key])
    attempts = [
        {**a, "started_at": datetime.fromisoformat(a["started_at"])} for a in record.attempts
    ]
    if runlog.complete(record.run_id, finish, attempts, outputs) is None:
        log.error("spool: run %s is not in the run log; its entry %s is kept", record.run_id, entry)
        raise OSError(f"run {record.run_id} not in the run log")


def _write_record(folder: Path, record: SpoolRecord) -> None:
    tmp = folder / (RECORD + ".part")
    tmp.write_text(json.dumps(dataclasses.asdict(record), default=_json_default), "utf-8")
    os.replace(tmp, folder / RECORD)


def _read_record(folder: Path) -> SpoolRecord:
    raw = json.loads((folder / RECORD).read_text("utf-8"))
    raw["images"] = [SpooledImage(**image) for image in raw.get("images", [])]
    return SpoolRecord(**raw)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot spool {type(value).__name__}")


@contextlib.contextmanager
def _claimed(entry: Path) -> Iterator[bool]:
    """An exclusive, non-blocking lock on an entry (released by the OS if the process dies)."""
    try:
        handle = (entry / ".lock").open("a")
    except OSError:
        yield False
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True
