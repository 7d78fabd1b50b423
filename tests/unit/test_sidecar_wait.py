"""The rest of SIDECAR_WAIT_S an image without a sidecar of its own waits (domain/sidecar_wait.py)."""

from __future__ import annotations

import pytest

from reframe_pipeline.domain.sidecar_wait import wait_left_s

UPLOADED = 1_765_000_000.0


@pytest.mark.parametrize(
    ("age_s", "wait_s", "left"),
    [
        (0.0, 10, 10),
        (0.2, 10, 10),  # whole seconds, rounded up: never back before the wait is over
        (3.5, 10, 7),
        (9.99, 10, 1),
        (10.0, 10, 0),
        (600.0, 10, 0),
        (0.0, 0, 0),  # SIDECAR_WAIT_S=0: no wait
        (-2.0, 10, 10),  # the bucket's clock ahead of ours: the whole wait, no more
    ],
)
def test_the_rest_of_the_wait(age_s: float, wait_s: int, left: int) -> None:
    assert wait_left_s(UPLOADED, UPLOADED + age_s, wait_s) == left


def test_an_unknown_upload_time_does_not_wait() -> None:
    assert wait_left_s(None, UPLOADED, 10) == 0
