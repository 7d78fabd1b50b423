"""Reframe Pipeline: S3 upload -> sidecar -> reframe provider -> variants + manifest."""
