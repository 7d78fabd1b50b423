"""Lambda SnapStart (the template's ``SnapStart`` parameter): Lambda initializes the function once, when a version
is published, and resumes each new execution environment from a snapshot of it.

Before the snapshot the pipeline is built (settings, clients, thread pools: what a cold start otherwise does in
its first event); building it opens no connection, so no socket is in the snapshot. After each restore the random
generator is seeded again: every copy resumed from one snapshot would otherwise draw the same retry jitter, try
the shared slots in the same order and give SOURCE_CHECK=retry's second generations the same seeds. The hooks
come from Lambda's Python runtime (``snapshot_restore_py``); anywhere else nothing is registered."""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable


def register(build: Callable[[], object]) -> bool:
    """Register the hooks when the runtime offers them; False where it does not (tests, local runs)."""
    try:
        hooks = importlib.import_module("snapshot_restore_py")
    except ImportError:
        return False
    hooks.register_before_snapshot(build)
    hooks.register_after_restore(after_restore)
    return True


def after_restore() -> None:
    random.seed()  # from the OS's entropy, which differs in each restored copy
