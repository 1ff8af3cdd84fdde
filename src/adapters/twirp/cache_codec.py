"""Proto3 JSON codec of the cache and artifact calls of ``CirrusCIService``.

``CacheInfo``, ``GenerateCacheUploadURL``, ``GenerateCacheDownloadURLs``,
``GenerateArtifactUploadURLs`` and ``CommitUploadedArtifacts``, named and shaped as in the
original's ``api/cirrus_ci_service.proto``. Pure functions, no I/O; the deprecated
``task_identification`` members are neither written nor read (the headers identify the task).
"""

from __future__ import annotations

from adapters.twirp.json_fields import INT64, JsonReader, JsonWriter, as_reader
from domain.protocol import (
    ArtifactFileInfo,
    ArtifactsCommit,
    ArtifactUploadRequest,
    ArtifactUploadUrls,
    CacheInfo,
    CacheInfoRequest,
    CacheInfoResponse,
    CacheKey,
    DownloadUrls,
    UploadUrl,
    frozen_str_map,
)

JsonObject = dict[str, object]


def encode_cache_key(value: CacheKey) -> JsonObject:
    """Write a ``CacheKey``."""
    return JsonWriter().string("cache_key", value.cache_key).build()


def decode_cache_key(body: object) -> CacheKey:
    """Read a ``CacheKey``."""
    return CacheKey(cache_key=as_reader(body).string("cache_key"))


def encode_cache_info_request(value: CacheInfoRequest) -> JsonObject:
    """Write a ``CacheInfoRequest``."""
    writer = JsonWriter().string("cache_key", value.cache_key)
    return writer.repeated("cache_key_prefixes", value.cache_key_prefixes).build()


def decode_cache_info_request(body: object) -> CacheInfoRequest:
    """Read a ``CacheInfoRequest``."""
    reader = as_reader(body)
    return CacheInfoRequest(
        cache_key=reader.string("cache_key"),
        cache_key_prefixes=reader.strings("cache_key_prefixes"),
    )


def _encode_cache_info(value: CacheInfo) -> JsonObject:
    return (
        JsonWriter()
        .string("key", value.key)
        .int64("size_in_bytes", value.size_in_bytes)
        .int64("creation_timestamp", value.creation_timestamp)
        .string("created_by_task_id", value.created_by_task_id)
        .build()
    )


def _decode_cache_info(reader: JsonReader) -> CacheInfo:
    return CacheInfo(
        key=reader.string("key"),
        size_in_bytes=reader.integer("size_in_bytes", INT64),
        creation_timestamp=reader.integer("creation_timestamp", INT64),
        created_by_task_id=reader.string("created_by_task_id"),
    )


def encode_cache_info_response(value: CacheInfoResponse) -> JsonObject:
    """Write a ``CacheInfoResponse`` (``info`` always present)."""
    return JsonWriter().put("info", _encode_cache_info(value.info)).build()


def decode_cache_info_response(body: object) -> CacheInfoResponse:
    """Read a ``CacheInfoResponse``."""
    info = as_reader(body).message("info")
    return CacheInfoResponse(info=CacheInfo() if info is None else _decode_cache_info(info))


def encode_generate_url_response(value: UploadUrl) -> JsonObject:
    """Write a ``GenerateURLResponse`` (``url``, ``extraHeaders``)."""
    writer = JsonWriter().string("url", value.url)
    return writer.string_map("extra_headers", value.headers).build()


def decode_generate_url_response(body: object) -> UploadUrl:
    """Read a ``GenerateURLResponse``."""
    reader = as_reader(body)
    return UploadUrl(
        url=reader.string("url"), headers=frozen_str_map(reader.string_map("extra_headers"))
    )


def encode_generate_urls_response(value: DownloadUrls) -> JsonObject:
    """Write a ``GenerateURLsResponse``."""
    return JsonWriter().repeated("urls", value.urls).build()


def decode_generate_urls_response(body: object) -> DownloadUrls:
    """Read a ``GenerateURLsResponse``."""
    return DownloadUrls(urls=as_reader(body).strings("urls"))


def _encode_files(files: tuple[ArtifactFileInfo, ...]) -> list[object]:
    return [
        JsonWriter().string("path", f.path).int64("size_in_bytes", f.size_in_bytes).build()
        for f in files
    ]


def _decode_files(reader: JsonReader) -> tuple[ArtifactFileInfo, ...]:
    return tuple(
        ArtifactFileInfo(path=f.string("path"), size_in_bytes=f.integer("size_in_bytes", INT64))
        for f in reader.messages("files")
    )


def encode_artifact_upload_request(value: ArtifactUploadRequest) -> JsonObject:
    """Write a ``GenerateArtifactUploadURLsRequest``."""
    writer = JsonWriter().string("name", value.name)
    return writer.repeated("files", _encode_files(value.files)).build()


def decode_artifact_upload_request(body: object) -> ArtifactUploadRequest:
    """Read a ``GenerateArtifactUploadURLsRequest``."""
    reader = as_reader(body)
    return ArtifactUploadRequest(name=reader.string("name"), files=_decode_files(reader))


def encode_artifact_upload_urls(value: ArtifactUploadUrls) -> JsonObject:
    """Write a ``GenerateArtifactUploadURLsResponse`` (``urls: [{url, headers}]``)."""
    urls = [
        JsonWriter().string("url", u.url).string_map("headers", u.headers).build()
        for u in value.urls
    ]
    return JsonWriter().repeated("urls", urls).build()


def decode_artifact_upload_urls(body: object) -> ArtifactUploadUrls:
    """Read a ``GenerateArtifactUploadURLsResponse``."""
    return ArtifactUploadUrls(
        urls=tuple(
            UploadUrl(url=u.string("url"), headers=frozen_str_map(u.string_map("headers")))
            for u in as_reader(body).messages("urls")
        )
    )


def encode_artifacts_commit(value: ArtifactsCommit) -> JsonObject:
    """Write a ``CommitUploadedArtifactsRequest``."""
    return (
        JsonWriter()
        .string("name", value.name)
        .string("type", value.type)
        .string("format", value.format)
        .repeated("files", _encode_files(value.files))
        .build()
    )


def decode_artifacts_commit(body: object) -> ArtifactsCommit:
    """Read a ``CommitUploadedArtifactsRequest``."""
    reader = as_reader(body)
    return ArtifactsCommit(
        name=reader.string("name"),
        type=reader.string("type"),
        format=reader.string("format"),
        files=_decode_files(reader),
    )
