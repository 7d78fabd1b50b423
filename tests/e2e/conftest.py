"""Helpers for end-to-end tests that run the `reframe` command as a child process."""

from __future__ import annotations

import os

from reframe_pipeline.settings import Settings


def clean_env() -> dict[str, str]:
    """This machine's environment without any setting that would change what the command does
    (a developer's provider key, endpoint or prefixes)."""
    settings = {name.upper() for name in Settings.model_fields}
    return {
        name: value
        for name, value in os.environ.items()
        if name not in settings and not name.startswith(("AWS_", "POWERTOOLS_"))
    }
