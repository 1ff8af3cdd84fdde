"""The controller file's ``blobs:`` section: filesystem by default, or S3 with secret files."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.blobs.config import (
    BlobSettings,
    default_blob_directory,
    default_directory_of,
    parse_blob_settings,
)
from adapters.blobs.s3 import S3Settings
from domain.errors import ConfigError


def test_no_section_is_the_filesystem_store_in_the_default_directory() -> None:
    assert parse_blob_settings(None) == BlobSettings()


def test_the_default_directory_is_beside_a_sqlite_file_else_in_the_data_home() -> None:
    environ = {"XDG_DATA_HOME": "/data"}
    assert default_directory_of("/var/lib/c/controller.db", environ) == Path("/var/lib/c/blobs")
    assert default_directory_of(":memory:", environ) == Path("/data/cirrus/blobs")
    assert default_directory_of(None, environ) == Path("/data/cirrus/blobs")
    assert default_blob_directory(None, {}).parts[-2:] == ("cirrus", "blobs")


def test_a_filesystem_section_names_its_directory_and_limit() -> None:
    settings = parse_blob_settings({"kind": "filesystem", "path": "/srv/b", "max-bytes": 10})
    assert settings == BlobSettings("filesystem", Path("/srv/b"), max_bytes=10)


def test_an_s3_section_reads_its_credentials_from_files(tmp_path: Path) -> None:
    (tmp_path / "id").write_text("AKIA\n")
    (tmp_path / "secret").write_text("s3cr3t\n")
    settings = parse_blob_settings(
        {
            "kind": "s3",
            "bucket": "b",
            "endpoint": "http://127.0.0.1:9000",
            "access-key-id-file": str(tmp_path / "id"),
            "secret-access-key-file": str(tmp_path / "secret"),
            "prefix": "ci/",
        }
    )
    assert settings.s3 == S3Settings(
        "b", "http://127.0.0.1:9000", "us-east-1", "AKIA", "s3cr3t", "ci/"
    )


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("/srv/blobs", "blobs"),
        ({"kind": "nfs"}, "blobs.kind"),
        ({"kind": "filesystem", "bucket": "b"}, "blobs.bucket"),
        ({"kind": "s3"}, "blobs.bucket"),
        ({"kind": "s3", "bucket": "b", "endpoint": "s3.example.com"}, "blobs.endpoint"),
        (
            {"kind": "s3", "bucket": "b", "access-key-id-file": "/nonexistent/id"},
            "blobs.access-key-id-file",
        ),
        ({"path": ["a"]}, "blobs.path"),
        ({"max-bytes": "lots"}, "blobs.max-bytes"),
    ],
)
def test_a_bad_blobs_value_names_its_key(section: object, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_blob_settings(section)
    assert raised.value.key == key


def test_an_access_key_id_without_its_secret_is_refused(tmp_path: Path) -> None:
    (tmp_path / "id").write_text("AKIA")
    with pytest.raises(ConfigError, match="go together"):
        parse_blob_settings(
            {"kind": "s3", "bucket": "b", "access-key-id-file": str(tmp_path / "id")}
        )
