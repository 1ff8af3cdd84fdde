"""Blob keys are clean relative POSIX paths; cache and artifact keys are built from their parts."""

from __future__ import annotations

import pytest

from domain.blobs import (
    BlobIntegrityError,
    BlobUrl,
    InvalidBlobKey,
    artifact_key,
    artifact_task_id,
    cache_key,
    validate_key,
    validate_prefix,
    validate_sha256,
)


@pytest.mark.parametrize(
    "key", ["caches/owner/repo/pip-abc", "artifacts/1/junit/junit.xml", "a", "a/.hidden/b..c"]
)
def test_a_relative_posix_path_is_a_valid_key(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    "key",
    ["", "/etc/passwd", "a/../b", "..", "a//b", "a/./b", "a/", "a\x00b", "a\\b", "x" * 1025],
)
def test_absolute_empty_dotted_nul_or_overlong_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidBlobKey):
        validate_key(key)


def test_a_prefix_may_be_empty_end_with_a_slash_or_stop_inside_a_name() -> None:
    assert validate_prefix("") == ""
    assert validate_prefix("caches/") == "caches/"
    assert validate_prefix("caches/o/r/pip-") == "caches/o/r/pip-"
    with pytest.raises(InvalidBlobKey):
        validate_prefix("../caches/")


def test_a_cache_key_is_the_scope_then_the_cache_key() -> None:
    assert cache_key("owner/repo/pull/7", "pip-123") == "caches/owner/repo/pull/7/pip-123"


def test_a_cache_key_with_a_dot_dot_part_is_refused() -> None:
    with pytest.raises(InvalidBlobKey):
        cache_key("owner/repo", "../../artifacts/1/x")
    with pytest.raises(InvalidBlobKey):
        cache_key("", "pip")


def test_an_artifact_key_drops_a_leading_dot_slash_and_names_its_task() -> None:
    key = artifact_key("42", "junit", "./reports/junit.xml")
    assert key == "artifacts/42/junit/reports/junit.xml"
    assert artifact_task_id(key) == "42"


def test_only_artifact_keys_have_a_task_id() -> None:
    assert artifact_task_id("caches/o/r/pip") is None
    assert artifact_task_id("artifacts/42") is None


def test_an_artifact_path_escaping_its_name_is_refused() -> None:
    with pytest.raises(InvalidBlobKey):
        artifact_key("42", "junit", "../../43/junit/x")


def test_a_sha256_is_lower_cased_and_anything_else_is_an_integrity_error() -> None:
    assert validate_sha256("AB" * 32) == "ab" * 32
    with pytest.raises(BlobIntegrityError):
        validate_sha256("not-a-digest")


def test_the_headers_of_a_blob_url_cannot_be_changed() -> None:
    headers = {"x-amz-acl": "private"}
    url = BlobUrl("/blobs/a", headers)
    headers["x"] = "y"
    assert dict(url.headers) == {"x-amz-acl": "private"}
    with pytest.raises(TypeError):
        url.headers["x"] = "y"  # type: ignore[index]
    assert dict(BlobUrl("/blobs/a").headers) == {}
