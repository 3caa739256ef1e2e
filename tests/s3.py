"""A local S3-compatible server for the tests: moto's standalone server, on a free
port, reached over real HTTP by pyarrow, DuckDB's httpfs and `bizos run`
subprocesses alike."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs
from moto.server import ThreadedMotoServer

from core.settings import Settings, get_settings

ACCESS_KEY = "AKIATESTLAKE"
# Distinctive, so a test can prove it appears in no log and no file.
SECRET_KEY = "lake-secret-" + uuid.uuid4().hex


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def new_bucket(self) -> str:
        """A fresh bucket: each test its own lake, whatever ran before."""
        name = f"lake-{uuid.uuid4().hex[:12]}"
        fs = pafs.S3FileSystem(
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            region="us-east-1",
            endpoint_override=self.endpoint_url.removeprefix("http://"),
            scheme="http",
            allow_bucket_creation=True,
        )
        fs.create_dir(name)
        return name

    def settings(self, home: Path, *, prefix: str = "lake", **overrides: object) -> Settings:
        """Settings of a home whose lake is ``s3://<new bucket>/<prefix>``."""
        return get_settings(
            home=home,
            database_url=overrides.pop("database_url", None),
            lake_url=f"s3://{self.new_bucket()}/{prefix}",
            aws_endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            aws_region="us-east-1",
            **overrides,
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def moto_server() -> Iterator[S3Server]:
    port = _free_port()
    # Its request log would bury a failing test's own output.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        server.stop()
