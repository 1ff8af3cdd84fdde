"""The worker streams a big artifact: its RSS grows by less than 50 MB (the benchmark's check,
on a smaller file; ``benchmarks/artifact_upload.py`` runs it with 2 GB)."""

from __future__ import annotations

import pytest
from benchmarks.artifact_upload import RSS_GROWTH_TARGET_MB, measure

pytestmark = pytest.mark.integration


def test_uploading_a_300_mb_artifact_keeps_the_workers_rss_growth_under_50_mb() -> None:
    result = measure(300, timeout=300.0)

    assert result.sha256_matches
    assert result.growth_mb < RSS_GROWTH_TARGET_MB, result
