"""Where image files live: a local folder (default) or S3 (`s3://bucket/prefix`)."""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlparse

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class AssetStoreError(Exception):
    """The asset store cannot be used; the message says which and why."""


@dataclass(frozen=True)
class StoredAsset:
    """A file as stored, with what the run log keeps about it."""

    path: str  # absolute file path or s3://bucket/key
    mime: str
    bytes: int
    sha256: str
    width: int | None
    height: int | None


def image_dimensions(data: bytes) -> tuple[int | None, int | None]:
    """Width and height without decoding the pixels (Pillow reads only the header)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.width, image.height
    except (UnidentifiedImageError, OSError):
        return None, None


class AssetStore(Protocol):
    url: str

    def put(self, key: str, data: bytes, mime: str) -> StoredAsset: ...

    def get(self, path: str) -> bytes: ...

    def delete(self, path: str) -> None: ...
    def ping(self) -> str:
        """'ok', or a short reason the store cannot take files now (for /healthz)."""
        ...


def _describe(key: str, data: bytes, mime: str, path: str) -> StoredAsset:
    width, height = image_dimensions(data) if mime.startswith("image/") else (None, None)
    return StoredAsset(
        path=path,
        mime=mime,
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        width=width,
        height=height,
    )


class LocalAssetStore:
    """Files under one folder; keys become relative paths."""

    def __init__(self, root: Path, url: str) -> None:
        self.root = root.expanduser().resolve()
        self.url = url

    def put(self, key: str, data: bytes, mime: str) -> StoredAsset:
        target = (self.root / key).resolve()
        if self.root not in target.parents:
            raise AssetStoreError(f"asset key {key!r} escapes the asset folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a crash never leaves a half-written image under the final name.
        tmp = target.with_suffix(target.suffix + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        return _describe(key, data, mime, str(target))

    def get(self, path: str) -> bytes:
        return Path(path).read_bytes()

    def delete(self, path: str) -> None:
        Path(path).unlink(missing_ok=True)

    def ping(self) -> str:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"error: {exc.strerror or type(exc).__name__}"
        if not os.access(self.root, os.W_OK):
            return "error: the asset folder is not writable"
        return "ok"


class S3AssetStore:
    """Objects under s3://bucket/prefix; AWS_ENDPOINT_URL points boto3 at S3-compatible stores."""

    def __init__(self, bucket: str, prefix: str, url: str) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = url
        from botocore.config import Config

        # Bounded: an unreachable store must fail a put in seconds (the image is then
        # spooled), not hold a finished run for minutes of default timeouts and retries.
        config = Config(
            connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"}
        )
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or None
        self.client: S3Client = boto3.client("s3", endpoint_url=endpoint, config=config)
        self._pinger: S3Client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            config=Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 1}),
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes, mime: str) -> StoredAsset:
        from botocore.exceptions import BotoCoreError, ClientError

        full = self._key(key)
        try:
            self.client.put_object(Bucket=self.bucket, Key=full, Body=data, ContentType=mime)
        except (BotoCoreError, ClientError) as exc:
            raise AssetStoreError(
                f"could not store {full} in bucket {self.bucket}: {exc}"
            ) from None
        return _describe(key, data, mime, f"s3://{self.bucket}/{full}")

    def ping(self) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._pinger.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            return f"error: {exc.response.get('Error', {}).get('Code', 'refused')}"
        except BotoCoreError as exc:
            return f"error: {type(exc).__name__}"
        return "ok"

    def get(self, path: str) -> bytes:
        parsed = urlparse(path)
        body = self.client.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"]
        data: bytes = body.read()
        return data

    def delete(self, path: str) -> None:
        parsed = urlparse(path)
        self.client.delete_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))


def open_asset_store(url: str) -> AssetStore:
    """The store for ASSET_STORE: `file://./rel`, `file:///abs`, a plain path, or `s3://b/p`."""
    if url.startswith("s3://"):
        parsed = urlparse(url)
        if not parsed.netloc:
            raise AssetStoreError("ASSET_STORE s3:// URL needs a bucket: s3://bucket/prefix")
        return S3AssetStore(parsed.netloc, parsed.path, url)
    if url.startswith("file://"):
        rest = unquote(url[len("file://") :])
        return LocalAssetStore(Path(rest or "."), url)
    if "://" in url:
        raise AssetStoreError("ASSET_STORE must be file:///path or s3://bucket/prefix")
    return LocalAssetStore(Path(url), url)
