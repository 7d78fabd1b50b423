"""Figure 4's fresh process: one invocation on a source already in moto, then its peak RSS in MB.

``python -m benchmarks.memory_child KEY ETAG SIZE``, with the environment of a process that ran
``stack.point_handler`` (endpoint and provider settings).
"""

from __future__ import annotations

import sys

from reframe_pipeline.application.values import ObjectInfo

from .stack import invoke, peak_rss_mb


def main(argv: list[str]) -> None:
    key, etag, size = argv
    invoke(ObjectInfo(key=key, etag=etag, size=int(size)))
    print(peak_rss_mb())


if __name__ == "__main__":
    main(sys.argv[1:])
