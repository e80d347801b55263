"""Asset stores: a local folder and S3 (a moto server on loopback, via AWS_ENDPOINT_URL)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import boto3
import pytest
from PIL import Image

from storage.assets import AssetStoreError, open_asset_store


def _png(size: tuple[int, int] = (40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, "green").save(buf, format="PNG")
    return buf.getvalue()


def test_local_store_writes_file_and_describes_it(tmp_path: Path) -> None:
    store = open_asset_store(f"file://{tmp_path}/assets")
    data = _png()
    stored = store.put("runs/2026/11/25/1-0.png", data, "image/png")
    assert Path(stored.path).read_bytes() == data
    assert (stored.width, stored.height, stored.bytes) == (40, 30, len(data))
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert store.get(stored.path) == data


def test_s3_store_on_moto(s3_server: str) -> None:
    boto3.client("s3").create_bucket(Bucket="imageroute-assets")
    store = open_asset_store("s3://imageroute-assets/team-a")
    data = _png((64, 64))
    stored = store.put("runs/1-0.png", data, "image/png")
    assert stored.path == "s3://imageroute-assets/team-a/runs/1-0.png"
    assert (stored.width, stored.height) == (64, 64)
    obj = boto3.client("s3").get_object(Bucket="imageroute-assets", Key="team-a/runs/1-0.png")
    assert obj["Body"].read() == data and obj["ContentType"] == "image/png"
    assert store.get(stored.path) == data


def test_s3_missing_bucket_is_a_clear_error(s3_server: str) -> None:
    store = open_asset_store("s3://no-such-bucket/x")
    with pytest.raises(AssetStoreError, match="no-such-bucket"):
        store.put("a.png", _png(), "image/png")


def test_bad_asset_store_urls() -> None:
    with pytest.raises(AssetStoreError, match="bucket"):
        open_asset_store("s3:///prefix")
    with pytest.raises(AssetStoreError, match="file:///path or s3://"):
        open_asset_store("ftp://host/dir")
