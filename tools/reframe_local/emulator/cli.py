"""``reframe emulator`` (``python -m reframe_local.emulator``): the emulator served until SIGTERM or Ctrl+C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from reframe_local import wsgi

from .server import make_server
from .state import EmulatorConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="reframe emulator",
        description="A Segmind-compatible (and Ideogram-compatible) reframe server for tests and benchmarks.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: any free port)")
    parser.add_argument("--api-key", required=True, help="the key clients must send")
    parser.add_argument("--latency-ms", type=int, default=0, help="a generation's whole time, from its request")
    parser.add_argument("--max-in-flight", type=int, default=None, help="answer 429 above this many calls")
    parser.add_argument("--square-only", action="store_true", help="reject non-square sources (400)")
    parser.add_argument("--max-source-bytes", type=int, default=None, help="reject larger sources (400)")
    parser.add_argument("--max-source-pixels", type=int, default=None, help="reject larger sources (400)")
    parser.add_argument(
        "--image-format", choices=("jpeg", "png"), default="jpeg", help="how images are encoded (default jpeg)"
    )
    args = parser.parse_args(argv)
    config = EmulatorConfig(
        api_key=args.api_key,
        latency_ms=args.latency_ms,
        max_in_flight=args.max_in_flight,
        square_only=args.square_only,
        max_source_bytes=args.max_source_bytes,
        max_source_pixels=args.max_source_pixels,
        image_format=args.image_format,
    )
    try:
        server = make_server(args.host, args.port, config)
    except (ValueError, OSError) as exc:
        print(f"emulator: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with wsgi.run(server, "emulator"):
        print(f"emulator listening on {server.url}", flush=True)
        stop.wait()
    return 0
