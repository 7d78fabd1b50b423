"""Lambda SnapStart's hooks (reframe_pipeline/snapstart.py): registered with the runtime's library where it is
there; the pipeline built before the snapshot without a connection; each restored copy draws its own random
numbers."""

from __future__ import annotations

import random
import sys
import types
from collections.abc import Callable

import pytest

from reframe_pipeline import handler, snapstart


class Runtime(types.ModuleType):
    """``snapshot_restore_py`` as Lambda's Python runtime offers it: the hooks kept, to be run when the test says."""

    def __init__(self) -> None:
        super().__init__("snapshot_restore_py")
        self.before: list[Callable[[], object]] = []
        self.after: list[Callable[[], object]] = []

    def register_before_snapshot(self, hook: Callable[[], object]) -> None:
        self.before.append(hook)

    def register_after_restore(self, hook: Callable[[], object]) -> None:
        self.after.append(hook)


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Runtime:
    offered = Runtime()
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", offered)
    return offered


def test_outside_lambdas_runtime_nothing_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # as if not installed: importing it fails
    assert snapstart.register(handler.pipeline) is False


@pytest.mark.usefixtures("handler_env")
def test_the_pipeline_is_built_before_the_snapshot_without_a_connection(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The deployed defaults: Segmind with its key in a secret, the idempotency table, notices on EventBridge.
    for name, value in {
        "REFRAME_PROVIDER": "segmind",
        "SEGMIND_API_KEY_SECRET": "reframe-api-key",
        "IDEMPOTENCY_TABLE": "reframe-idempotency",
        "EVENT_BUS_NAME": "default",
    }.items():
        monkeypatch.setenv(name, value)
    handler.reset()
    try:
        assert snapstart.register(handler.pipeline) is True
        (before_snapshot,) = runtime.before
        built = before_snapshot()  # unit tests refuse sockets: a connection made here would fail the test
        assert built is handler.pipeline()  # the first event after a restore finds it built
    finally:
        handler.reset()


def test_each_copy_restored_from_one_snapshot_draws_its_own_random_numbers(runtime: Runtime) -> None:
    snapstart.register(lambda: None)
    (after_restore,) = runtime.after
    random.seed(1234)
    snapshot = random.getstate()
    random.setstate(snapshot)
    unseeded = random.random()
    random.setstate(snapshot)
    assert random.random() == unseeded  # without the hook, every copy would draw the same
    draws = []
    for _ in range(2):  # two execution environments resumed from the same snapshot
        random.setstate(snapshot)
        after_restore()
        draws.append(random.random())
    assert draws[0] != draws[1]
