"""A Segmind-compatible reframe server (plus Ideogram's own endpoint) with fault injection, for tests.

Run it with ``python -m reframe_local.emulator --port 8765 --api-key KEY``; ``make_server`` gives an
in-process server. The endpoints and fault kinds are described in ``server.py`` and ``state.py``.
"""

from .server import EmulatorServer, main, make_server
from .state import FAULT_KINDS, EmulatorConfig

__all__ = ["FAULT_KINDS", "EmulatorConfig", "EmulatorServer", "main", "make_server"]
