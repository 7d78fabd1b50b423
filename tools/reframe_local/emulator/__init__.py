"""A Segmind-compatible reframe server (plus Ideogram's own endpoint) with fault injection, for tests.

Run it with ``python -m reframe_local.emulator --port 8765 --api-key KEY``; ``make_server`` gives an
in-process server. One module per API (``segmind.py``, ``ideogram.py``); what they share: the requests they
accept and the work (``api.py``), the answers (``replies.py``), the state and fault kinds (``state.py``); the
HTTP side (``server.py``) and the command line (``cli.py``).
"""

from .cli import main
from .server import EmulatorServer, make_server
from .state import FAULT_KINDS, EmulatorConfig

__all__ = ["FAULT_KINDS", "EmulatorConfig", "EmulatorServer", "main", "make_server"]
