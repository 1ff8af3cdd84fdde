"""Blob store adapters: a local directory (default) and S3-compatible object storage."""
