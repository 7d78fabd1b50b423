"""The unit tests' guard (conftest.py) holds: a socket or a process in a unit test fails it at once."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest


def test_a_unit_test_cannot_open_a_socket():
    with pytest.raises(RuntimeError, match="tests/integration"), socket.socket() as sock:
        sock.connect(("127.0.0.1", 9))
    with pytest.raises(RuntimeError, match="tests/integration"), socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))


def test_a_unit_test_cannot_start_a_process():
    with pytest.raises(RuntimeError, match="tests/integration"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)
