"""A local S3-compatible server (moto in server mode) for the object-store tests.

Real HTTP and real s3fs, never AWS: the server runs in the test process on 127.0.0.1, and
clients (Ray workers too, which inherit the environment) find it through AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import socket
import uuid

import boto3
import pytest
from moto.server import ThreadedMotoServer

from muss_builder.runtime.storage import OPTIONS_ENV

BUCKET = "muss-test"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def local_s3_server() -> str:
    """The endpoint of a local S3-compatible server (moto) holding an empty bucket."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture
def s3_prefix(local_s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh ``s3://`` prefix in the bucket, with the environment pointing at the server."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_s3_server)
    monkeypatch.delenv(OPTIONS_ENV, raising=False)
    return f"s3://{BUCKET}/{uuid.uuid4().hex}"
