"""Where runs, searches, results and served models live: a local folder or ``s3://bucket/prefix``.

S3 goes through one pyarrow ``S3FileSystem`` configured from the standard AWS environment:
credentials from ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` or the instance profile,
``AWS_REGION``, and ``AWS_ENDPOINT_URL`` for S3-compatible stores (SeaweedFS, MinIO). Requests
time out after ``SEQLAB_S3_TIMEOUT_S`` seconds and are retried ``SEQLAB_S3_RETRIES`` times with
backoff, so a store that restarts within that window is ridden out. Ray Train and Tune get the
same filesystem object (``storage_filesystem``), so the driver and every worker node write with
the same settings.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pyarrow.fs as pa_fs

from seqlab.errors import SeqlabError


def seqlab_home() -> Path:
    """Root of caches and default run storage (``$SEQLAB_HOME``, default ``~/.seqlab``)."""
    return Path(os.environ.get("SEQLAB_HOME", Path.home() / ".seqlab")).expanduser().resolve()


def is_remote(uri: str) -> bool:
    return "://" in str(uri)


def s3_settings() -> dict:
    """The S3 settings this process will use (read from the environment each call)."""
    return {
        "endpoint": os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None,
        "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        "retries": int(os.environ.get("SEQLAB_S3_RETRIES", "8")),
        "timeout_s": float(os.environ.get("SEQLAB_S3_TIMEOUT_S", "20")),
    }


def s3_filesystem() -> pa_fs.S3FileSystem:
    s = s3_settings()
    kwargs = {}
    if s["endpoint"]:
        scheme, _, host = s["endpoint"].partition("://")
        kwargs = {"endpoint_override": host or scheme, "scheme": scheme if host else "https"}
    return pa_fs.S3FileSystem(
        region=s["region"], connect_timeout=s["timeout_s"], request_timeout=s["timeout_s"],
        retry_strategy=pa_fs.AwsStandardS3RetryStrategy(max_attempts=s["retries"]), **kwargs)


def open_fs(uri: str) -> tuple[pa_fs.FileSystem, str]:
    """The pyarrow filesystem and path of a local path or a URI (``s3://bucket/key``, ``gs://``...)."""
    uri = str(uri)
    if uri.startswith("s3://"):
        return s3_filesystem(), uri[len("s3://"):].rstrip("/")
    if is_remote(uri):
        return pa_fs.FileSystem.from_uri(uri)
    return pa_fs.LocalFileSystem(), str(Path(uri).expanduser().resolve())


def ray_storage(uri: str) -> dict:
    """``storage_path`` and ``storage_filesystem`` for Ray's ``RunConfig``/``Tuner.restore``."""
    if not is_remote(uri):
        return {"storage_path": str(Path(uri).expanduser().resolve()), "storage_filesystem": None}
    fs, path = open_fs(uri)
    return {"storage_path": path, "storage_filesystem": fs}


def to_uri(path: str, fs: pa_fs.FileSystem | None) -> str:
    """A path Ray reports on ``fs`` (S3 paths come without a scheme) as a URI :func:`open_fs` reads."""
    return f"s3://{path}" if isinstance(fs, pa_fs.S3FileSystem) and not is_remote(path) else path


def sha256_of(path: Path) -> str:
    """sha256 of a local file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def join(uri: str, *parts: str) -> str:
    return "/".join([str(uri).rstrip("/"), *parts])


def exists(uri: str) -> bool:
    fs, path = open_fs(uri)
    return fs.get_file_info(path).type != pa_fs.FileType.NotFound


def read_bytes(uri: str) -> bytes:
    fs, path = open_fs(uri)
    with fs.open_input_stream(path) as f:
        return f.read()


def write_bytes(uri: str, data: bytes) -> None:
    """Write a whole object (on S3 a single PUT: readers see the old or the new object, never half)."""
    fs, path = open_fs(uri)
    if not is_remote(uri):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        Path(tmp).write_bytes(data)
        os.replace(tmp, path)
        return
    with fs.open_output_stream(path) as f:
        f.write(data)


@contextmanager
def staged_dir(uri: str):
    """A local folder to write into; for a remote ``uri`` it is uploaded there when the block ends."""
    if not is_remote(uri):
        path = Path(uri).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="seqlab-") as tmp:
        yield Path(tmp)
        upload_dir(tmp, uri)


def upload_dir(local: str | Path, uri: str) -> None:
    """Copy a local folder to ``uri`` (a folder or ``s3://`` prefix)."""
    fs, path = open_fs(uri)
    if not is_remote(uri):
        shutil.copytree(local, path, dirs_exist_ok=True)
        return
    pa_fs.copy_files(str(local), path, source_filesystem=pa_fs.LocalFileSystem(), destination_filesystem=fs)


def download_dir(uri: str, local: str | Path) -> None:
    """Copy the folder at ``uri`` (a folder or ``s3://`` prefix) into the local folder ``local``."""
    fs, path = open_fs(uri)
    local = Path(local).expanduser().resolve()
    local.mkdir(parents=True, exist_ok=True)
    if not is_remote(uri):
        shutil.copytree(path, local, dirs_exist_ok=True)
        return
    pa_fs.copy_files(path, str(local), source_filesystem=fs, destination_filesystem=pa_fs.LocalFileSystem())


@contextmanager
def local_copy(uri: str):
    """A local folder with the contents of ``uri``: the folder itself, or a temporary download."""
    if not is_remote(uri):
        yield Path(uri).expanduser().resolve()
        return
    fs, path = open_fs(uri)
    try:
        info = fs.get_file_info(path)
    except OSError as exc:
        raise SeqlabError(f"cannot reach {uri}: {exc} (check AWS_ENDPOINT_URL and the credentials)") from None
    if info.type != pa_fs.FileType.Directory:
        raise SeqlabError(f"{uri} does not exist (expected a folder)")
    with tempfile.TemporaryDirectory(prefix="seqlab-") as tmp:
        pa_fs.copy_files(path, tmp, source_filesystem=fs, destination_filesystem=pa_fs.LocalFileSystem())
        yield Path(tmp)


def s3_client():
    """A boto3 S3 client with the same endpoint, region, timeouts and retries as :func:`s3_filesystem`."""
    import boto3
    from botocore.config import Config

    s = s3_settings()
    config = Config(connect_timeout=s["timeout_s"], read_timeout=s["timeout_s"],
                    retries={"max_attempts": s["retries"], "mode": "standard"})
    # a new session each time: boto3's default session keeps the first credentials it found, so a
    # changed environment (rotated keys, another endpoint) would otherwise sign with stale ones
    return boto3.session.Session().client("s3", endpoint_url=s["endpoint"], region_name=s["region"], config=config)


def ensure_bucket(uri: str) -> None:
    """Create the bucket of an ``s3://`` URI if it does not exist yet."""
    bucket = uri[len("s3://"):].split("/", 1)[0]
    client = s3_client()
    try:
        client.head_bucket(Bucket=bucket)
    except client.exceptions.ClientError:
        client.create_bucket(Bucket=bucket)
