"""Figure 4's fresh process: one invocation on a source already in moto, then its peak RSS in MB.

``python -m benchmarks.memory_child KEY ETAG SIZE``, with the environment of a process that ran
``stack.point_handler`` (endpoint and provider settings).
"""

from __future__ import annotations

import resource
import sys

from reframe_pipeline.application.values import ObjectInfo

from .stack import invoke


def main(argv: list[str]) -> None:
    key, etag, size = argv
    invoke(ObjectInfo(key=key, etag=etag, size=int(size)))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # Linux reports kilobytes


if __name__ == "__main__":
    main(sys.argv[1:])
