"""How long a new image without a sidecar of its own waits for one (SIDECAR_WAIT_S, docs/uploads.md): copying an
image and its sidecar uploads one a moment after the other, and the image's event must not pay for the folder
default the sidecar would replace."""

from __future__ import annotations

import math


def wait_left_s(uploaded_at: float | None, now: float, wait_s: int) -> int:
    """Whole seconds an image uploaded at ``uploaded_at`` (epoch seconds) still waits at ``now``; 0: no wait
    (SIDECAR_WAIT_S=0, the wait is over, or the upload time is unknown). Never more than the whole wait, even
    when the bucket's clock runs ahead of ours."""
    if wait_s <= 0 or uploaded_at is None:
        return 0
    left = wait_s - (now - uploaded_at)
    return min(wait_s, math.ceil(left)) if left > 0 else 0
