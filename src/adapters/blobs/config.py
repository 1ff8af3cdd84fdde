"""The controller file's ``blobs:`` section: which blob store, where, and how large a blob.

```yaml
blobs:                      # default: kind filesystem under the database's directory
  kind: filesystem
  path: /var/lib/cirrus/blobs
  max-bytes: 8589934592     # largest PUT /blobs/... (filesystem store)
---
blobs:
  kind: s3
  bucket: cirrus-blobs
  endpoint: https://s3.example.com   # empty: AWS
  region: eu-central-1
  access-key-id-file: /run/secrets/s3-key-id
  secret-access-key-file: /run/secrets/s3-secret
  prefix: controller-a/
```
Credentials come from files so that they never appear in a process listing or the file
itself; without them obstore's usual sources apply (environment, instance profile).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from adapters.blobs.filesystem import FilesystemBlobStore
from adapters.blobs.s3 import S3BlobStore, S3Settings, open_s3_store
from adapters.blobs.signing import SettingsStore, load_blob_signer
from domain.blobs import BlobStore
from domain.errors import ConfigError

SECTION = "blobs"
FILESYSTEM = "filesystem"
S3 = "s3"
_FILESYSTEM_KEYS = frozenset({"kind", "path", "max-bytes"})
_S3_KEYS = frozenset(
    {
        "kind",
        "bucket",
        "endpoint",
        "region",
        "access-key-id-file",
        "secret-access-key-file",
        "prefix",
        "max-bytes",
    }
)


@dataclass(frozen=True, slots=True)
class BlobSettings:
    """The parsed ``blobs:`` section: a directory (``path``; None: the default) or S3."""

    kind: str = FILESYSTEM
    path: Path | None = None
    s3: S3Settings | None = None
    max_bytes: int | None = None


def default_blob_directory(database_file: Path | None, environ: Mapping[str, str]) -> Path:
    """``<directory of the SQLite file>/blobs``, else ``$XDG_DATA_HOME/cirrus/blobs``."""
    if database_file is not None:
        return database_file.parent / "blobs"
    data_home = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "cirrus" / "blobs"


def _text(section: Mapping[object, object], key: str, default: str = "") -> str:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ConfigError(f"{SECTION}.{key}", "must be a string")
    return str(value)


def _secret_file(section: Mapping[object, object], key: str) -> str:
    path = _text(section, key)
    if not path:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ConfigError(
            f"{SECTION}.{key}", f"cannot read {path}: {error.strerror or error}"
        ) from None


def parse_blob_settings(section: object) -> BlobSettings:
    """Check the ``blobs:`` value; errors are ``ConfigError``s naming ``blobs.<key>``."""
    if section is None:
        return BlobSettings()
    if not isinstance(section, Mapping):
        raise ConfigError(SECTION, "must be a mapping (kind: filesystem or s3, and its keys)")
    kind = _text(section, "kind", FILESYSTEM)
    if kind not in (FILESYSTEM, S3):
        raise ConfigError(f"{SECTION}.kind", f"must be {FILESYSTEM} or {S3}, not {kind!r}")
    known = _FILESYSTEM_KEYS if kind == FILESYSTEM else _S3_KEYS
    for key in section:
        if key not in known:
            raise ConfigError(
                f"{SECTION}.{key}",
                f"unknown key for kind {kind} (known: {', '.join(sorted(known))})",
            )
    max_bytes = None
    if "max-bytes" in section:
        text = _text(section, "max-bytes")
        if not text.isdigit() or int(text) < 1:
            raise ConfigError(
                f"{SECTION}.max-bytes", f"must be a whole number from 1, not {text!r}"
            )
        max_bytes = int(text)
    if kind == FILESYSTEM:
        path = _text(section, "path")
        return BlobSettings(kind, Path(path).expanduser() if path else None, max_bytes=max_bytes)
    bucket = _text(section, "bucket")
    if not bucket:
        raise ConfigError(f"{SECTION}.bucket", "is required for kind s3")
    endpoint = _text(section, "endpoint")
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise ConfigError(f"{SECTION}.endpoint", f"must be an http(s) URL, not {endpoint!r}")
    key_id = _secret_file(section, "access-key-id-file")
    secret = _secret_file(section, "secret-access-key-file")
    if bool(key_id) != bool(secret):
        raise ConfigError(
            f"{SECTION}.secret-access-key-file" if key_id else f"{SECTION}.access-key-id-file",
            "access-key-id-file and secret-access-key-file go together",
        )
    settings = S3Settings(
        bucket=bucket,
        endpoint=endpoint,
        region=_text(section, "region", "us-east-1") or "us-east-1",
        access_key_id=key_id,
        secret_access_key=secret,
        prefix=_text(section, "prefix"),
    )
    return BlobSettings(kind, s3=settings, max_bytes=max_bytes)


def default_directory_of(database_target: str | None, environ: Mapping[str, str]) -> Path:
    """The default blob directory for a database: beside a SQLite file, else the data home."""
    if database_target and database_target != ":memory:":
        return default_blob_directory(Path(database_target).expanduser().absolute(), environ)
    return default_blob_directory(None, environ)


async def open_blob_store(
    settings: BlobSettings, default_directory: Path, store: SettingsStore
) -> BlobStore:
    """The blob store of the settings; the filesystem's URLs are signed with the key in
    ``store``'s settings (made on the first start)."""
    if settings.kind == S3 and settings.s3 is not None:
        return S3BlobStore(open_s3_store(settings.s3))
    root = settings.path or default_directory
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"{SECTION}.path", f"cannot create {root}: {error.strerror or error}"
        ) from None
    return FilesystemBlobStore(root, await load_blob_signer(store))
