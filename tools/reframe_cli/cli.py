"""The `reframe` command (design section 6)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _invoke(args: argparse.Namespace) -> int:
    from .lambda_context import LocalContext
    from .logs import handler_output_to

    event = json.loads(Path(args.event).read_text())
    with handler_output_to(sys.stderr):
        from reframe_pipeline.handler import lambda_handler

        result = lambda_handler(event, LocalContext(timeout_s=args.timeout))
    json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def _emulator(args: argparse.Namespace, rest: list[str]) -> int:
    from .emulator import main as emulator_main

    return emulator_main(rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reframe", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    invoke = commands.add_parser("invoke", help="run the Lambda handler in-process on an event file")
    invoke.add_argument("--event", required=True, help="a JSON event file (see events/)")
    invoke.add_argument("--timeout", type=float, default=300.0, help="the context's deadline in seconds")
    commands.add_parser(
        "emulator",
        help="a Segmind-compatible reframe server for tests (options: reframe emulator --help)",
        add_help=False,
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    handlers: dict[str, Any] = {"invoke": lambda: _invoke(args), "emulator": lambda: _emulator(args, rest)}
    if rest and args.command != "emulator":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return int(handlers[args.command]())


if __name__ == "__main__":
    sys.exit(main())
