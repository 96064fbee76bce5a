"""Pasted URLs (``normalize_url``) and well-known public buckets opened anonymously."""

from __future__ import annotations

import json
import logging
import pickle
from typing import Any

import numpy as np
import pytest
import xarray as xr

import xzaro
from xzaro.errors import StoreError
from xzaro.stores import open_store
from xzaro.stores.urls import (
    PUBLIC_BUCKETS,
    is_public_bucket,
    normalize_url,
    public_bucket_options,
)

REGION = {"client_kwargs": {"region_name": "ap-southeast-2"}}

CASES = [
    # virtual-hosted S3, with and without a region, the legacy dash form and dual-stack
    (
        "https://aodn-cloud-optimised.s3.amazonaws.com/satellite.zarr",
        "s3://aodn-cloud-optimised/satellite.zarr",
        {},
    ),
    (
        "https://aodn-cloud-optimised.s3.ap-southeast-2.amazonaws.com/a/b.zarr/",
        "s3://aodn-cloud-optimised/a/b.zarr",
        REGION,
    ),
    ("https://bucket.s3-ap-southeast-2.amazonaws.com/k.zarr", "s3://bucket/k.zarr", REGION),
    ("https://bucket.s3.dualstack.ap-southeast-2.amazonaws.com/k", "s3://bucket/k", REGION),
    (
        "https://my.dotted.bucket.s3.ap-southeast-2.amazonaws.com/k",
        "s3://my.dotted.bucket/k",
        REGION,
    ),
    ("https://bucket.s3.amazonaws.com/", "s3://bucket", {}),
    # path-style S3
    ("https://s3.amazonaws.com/mur-sst/zarr-v1", "s3://mur-sst/zarr-v1", {}),
    ("https://s3.ap-southeast-2.amazonaws.com/bucket/x.zarr", "s3://bucket/x.zarr", REGION),
    ("https://s3-ap-southeast-2.amazonaws.com/bucket/x.zarr", "s3://bucket/x.zarr", REGION),
    # a metadata document names the node that holds it; queries and fragments are not keys
    ("https://bucket.s3.amazonaws.com/x.zarr/zarr.json", "s3://bucket/x.zarr", {}),
    ("https://bucket.s3.amazonaws.com/x.zarr/.zmetadata?versionId=3", "s3://bucket/x.zarr", {}),
    ("https://bucket.s3.amazonaws.com/x.zarr/t/.zarray#top", "s3://bucket/x.zarr/t", {}),
    ("s3://bucket/x.zarr/.zgroup", "s3://bucket/x.zarr", {}),
    # bucket browsers and consoles
    (
        "https://bucket.s3.amazonaws.com/index.html#satellite/x.zarr/",
        "s3://bucket/satellite/x.zarr",
        {},
    ),
    (
        "https://s3.console.aws.amazon.com/s3/buckets/aodn-cloud-optimised?region=ap-southeast-2&prefix=x.zarr/&showversions=false",
        "s3://aodn-cloud-optimised/x.zarr",
        REGION,
    ),
    (
        "https://console.cloud.google.com/storage/browser/cmip6/CMIP6/x?pageState=(1)",
        "gs://cmip6/CMIP6/x",
        {},
    ),
    # Google Cloud Storage
    ("https://storage.googleapis.com/cmip6/CMIP6/x.zarr", "gs://cmip6/CMIP6/x.zarr", {}),
    (
        "https://storage.googleapis.com/cmip6/CMIP6/x.zarr/.zmetadata?alt=media",
        "gs://cmip6/CMIP6/x.zarr",
        {},
    ),
    ("https://storage.cloud.google.com/bucket/x.zarr", "gs://bucket/x.zarr", {}),
    ("https://bucket.storage.googleapis.com/x.zarr", "gs://bucket/x.zarr", {}),
]

UNCHANGED = [
    "https://bucket.s3.amazonaws.com/k?X-Amz-Signature=abc&X-Amz-Expires=60",  # signed
    "https://storage.googleapis.com/b/k?X-Goog-Signature=abc",
    "http://127.0.0.1:9000/bucket/x.zarr",  # custom endpoint
    "https://thredds.example.org/thredds/fileServer/x.zarr",
    "https://s3.amazonaws.com/",  # no bucket
    "simplecache::https://bucket.s3.amazonaws.com/x.zarr",  # chained
    "reference+json://https://bucket.s3.amazonaws.com/refs.json",
    "/data/x.zarr",
    "memory://x.zarr",
]


@pytest.mark.parametrize(("url", "expected", "options"), CASES)
def test_normalize_url(url: str, expected: str, options: dict[str, Any]) -> None:
    normalized = normalize_url(url)
    assert (normalized.url, normalized.storage_options) == (expected, options)
    assert normalized.changed
    again = normalize_url(normalized.url)
    assert again.url == normalized.url and not again.changed


@pytest.mark.parametrize("url", UNCHANGED)
def test_normalize_url_leaves_others_alone(url: str) -> None:
    normalized = normalize_url(url)
    assert normalized.url == url and not normalized.changed and normalized.storage_options == {}


def test_public_buckets() -> None:
    assert is_public_bucket("s3", "aodn-cloud-optimised")
    assert is_public_bucket("s3", "noaa-goes16")  # a prefix entry
    assert is_public_bucket("gcs", "cmip6")
    assert not is_public_bucket("s3", "cmip6")  # the GCS bucket, not an S3 one
    assert not is_public_bucket("s3", "my-private-data")
    assert all(name == name.lower() for names in PUBLIC_BUCKETS.values() for name in names)
    assert public_bucket_options("s3://mur-sst/zarr", {}) == {"anon": True}
    assert public_bucket_options("gs://cmip6/x", {}) == {"token": "anon"}
    assert public_bucket_options("s3://my-private-data/x", {}) is None
    # the caller's own credentials, anonymity or endpoint win
    assert public_bucket_options("s3://mur-sst/zarr", {"anon": False}) is None
    assert public_bucket_options("s3://mur-sst/zarr", {"key": "k", "secret": "s"}) is None
    assert public_bucket_options("s3://mur-sst/zarr", {"profile": "work"}) is None
    endpoint = {"client_kwargs": {"endpoint_url": "http://127.0.0.1:1"}}
    assert public_bucket_options("s3://mur-sst/zarr", endpoint) is None
    assert public_bucket_options("https://mur-sst.example.org/x", {}) is None


def _write_array(url: str, options: dict[str, Any]) -> np.ndarray:
    data = np.arange(60, dtype="int16").reshape(6, 10)
    xr.DataArray(data, dims=("y", "x"), name="v").to_dataset().chunk(
        {"y": 3, "x": 4}
    ).zaro.to_store(url, storage_options=options, zarr_format=3)
    return data


def test_open_store_reads_a_pasted_s3_url(
    s3_server: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A pasted web URL opens the bucket through the S3 client, the region kept and logged."""
    bucket = s3_server["make_bucket"]("pasted-urls")
    options = s3_server["storage_options"]
    data = _write_array(f"s3://{bucket}/a.zarr", options)
    pasted = f"https://{bucket}.s3.us-east-1.amazonaws.com/a.zarr/zarr.json"
    with caplog.at_level(logging.INFO, logger="xzaro"):
        store = open_store(pasted, options)
    assert store.url == f"s3://{bucket}/a.zarr"
    assert f"reading {pasted} as s3://{bucket}/a.zarr" in caplog.text
    assert store.storage_options["client_kwargs"] == {  # type: ignore[attr-defined]
        **options["client_kwargs"],
        "region_name": "us-east-1",
    }
    np.testing.assert_array_equal(
        xzaro.open_array(pasted, storage_options=options, path="v")[...], data
    )


def _make_public(bucket: str, endpoint_url: str) -> None:
    """Let anyone read and list ``bucket``, as the owners of public buckets do."""
    boto3 = pytest.importorskip("boto3")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            }
        ],
    }
    client = boto3.client("s3", endpoint_url=endpoint_url, region_name="us-east-1")
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


def test_public_bucket_opens_anonymously(
    s3_server: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A well-known public bucket is read with unsigned requests when no credentials are given;
    the endpoint comes from the environment, as a user of a mirror would set it."""
    bucket = s3_server["make_bucket"]("noaa-xzaro-test")
    data = _write_array(f"s3://{bucket}/a.zarr", s3_server["storage_options"])
    _make_public(bucket, s3_server["endpoint_url"])
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server["endpoint_url"])
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with caplog.at_level(logging.INFO, logger="xzaro"):
        store = open_store(f"s3://{bucket}/a.zarr")
        values = xzaro.open_array(store, path="v")[...]
    assert store.storage_options == {"anon": True}  # type: ignore[attr-defined]
    assert "public bucket: opening it anonymously" in caplog.text
    np.testing.assert_array_equal(values, data)
    # writing is never made anonymous
    assert "anon" not in open_store(f"s3://{bucket}/b.zarr", mode="w").storage_options  # type: ignore[attr-defined]


@pytest.mark.parametrize("client", ["fsspec", "obstore"])
def test_s3_region_redirect_is_followed(s3_server: dict[str, Any], client: str) -> None:
    """A bucket in another region answers every request signed for the wrong one with S3's
    301 PermanentRedirect naming its region: the read is signed again for that region and
    succeeds, not failed or filled, through either client; with obstore the store then reads
    in that region (and pickles so)."""
    from faults import REDIRECT_REGION, start_fault_proxy

    bucket = s3_server["make_bucket"](f"elsewhere-{client}")
    data = _write_array(f"s3://{bucket}/a.zarr", s3_server["storage_options"])
    proxy = start_fault_proxy(s3_server["endpoint_url"], bucket_region=REDIRECT_REGION)
    try:
        options = {**s3_server["storage_options"], "endpoint_url": proxy.base_url}
        array = xzaro.open_array(
            f"s3://{bucket}/a.zarr", "v", storage_options={**options, "client": client}
        )
        np.testing.assert_array_equal(array[...], data)
        assert proxy.stats.faults["301"] >= 1
        if client == "obstore":
            store = array.store
            assert type(store).__name__ == "ObstoreStore"
            assert store.storage_options["client_kwargs"]["region_name"] == REDIRECT_REGION
            again = pickle.loads(pickle.dumps(store))
            assert again.storage_options["client_kwargs"]["region_name"] == REDIRECT_REGION
    finally:
        proxy.stop()
    assert REDIRECT_REGION != "us-east-1"


def test_a_redirect_naming_no_other_region_is_raised(s3_server: dict[str, Any]) -> None:
    """When S3 names no other region than the one asked, the redirect is raised as a store
    error naming the URL and key, not retried forever or read as fill."""
    from faults import REDIRECT_REGION, start_fault_proxy

    bucket = s3_server["make_bucket"]("nowhere")
    _write_array(f"s3://{bucket}/a.zarr", s3_server["storage_options"])
    proxy = start_fault_proxy(s3_server["endpoint_url"], faults={"301": 1.0})
    try:
        options = {**s3_server["storage_options"], "endpoint_url": proxy.base_url}
        options["client_kwargs"] = {"region_name": REDIRECT_REGION}
        with pytest.raises(StoreError, match="region") as caught:
            xzaro.open_array(
                f"s3://{bucket}/a.zarr", "v", storage_options={**options, "client": "obstore"}
            )
        assert caught.value.url == f"s3://{bucket}/a.zarr"
    finally:
        proxy.stop()
