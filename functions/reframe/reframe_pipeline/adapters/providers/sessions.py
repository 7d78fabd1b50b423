"""HTTP sessions for the remote providers and the webhook: one pool per client, no retries of urllib3's."""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter

Timeout = tuple[float, float]


def pooled_session(pool_size: int) -> requests.Session:
    """A session whose pool matches the number of calls in flight (no urllib3 retries: ours decide)."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
