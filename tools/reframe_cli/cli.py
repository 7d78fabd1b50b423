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


def _demo(args: argparse.Namespace) -> int:
    from . import demo

    return demo.run(Path(args.output), sys.stdout, pollers=args.pollers, timeout_s=args.timeout)


def _serve(args: argparse.Namespace) -> int:
    from . import serve

    return serve.run(sys.stdout, pollers=args.pollers, bucket=args.bucket)


def _emulator(args: argparse.Namespace, rest: list[str]) -> int:
    from .emulator import main as emulator_main

    return emulator_main(rest)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reframe", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    invoke = commands.add_parser("invoke", help="run the Lambda handler in-process on an event file")
    invoke.add_argument("--event", required=True, help="a JSON event file (see events/)")
    invoke.add_argument("--timeout", type=float, default=300.0, help="the context's deadline in seconds")
    demo = commands.add_parser(
        "demo", help="the sample images through a local S3 + SQS stack; results in an output folder"
    )
    demo.add_argument("--output", default="demo-output", help="where results go (default: demo-output)")
    demo.add_argument("--pollers", type=_positive, default=2, help="concurrent SQS pollers (default: 2)")
    demo.add_argument("--timeout", type=float, default=45.0, help="seconds to wait for every manifest (default: 45)")
    serve = commands.add_parser("serve", help="keep the local stack running: uploads are reframed as they come")
    serve.add_argument("--pollers", type=_positive, default=2, help="concurrent SQS pollers (default: 2)")
    serve.add_argument("--bucket", default="reframe-local", help="the local bucket (default: reframe-local)")
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
    handlers: dict[str, Any] = {
        "invoke": lambda: _invoke(args),
        "demo": lambda: _demo(args),
        "serve": lambda: _serve(args),
        "emulator": lambda: _emulator(args, rest),
    }
    if rest and args.command != "emulator":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return int(handlers[args.command]())


if __name__ == "__main__":
    sys.exit(main())
