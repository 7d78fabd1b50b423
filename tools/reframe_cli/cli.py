"""The `reframe` command (docs/cli.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from .errors import CANNOT_RUN, UserError

_MAX_PRESIGN_S = 7 * 24 * 3600


def _one_line(exc: Exception) -> str | None:
    """What went wrong, in one line, for the errors a user can fix; None for a bug (keep its traceback)."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    from reframe_pipeline.domain.errors import ReframeError
    from reframe_pipeline.settings import SettingsError

    if isinstance(exc, UserError | SettingsError):
        return str(exc)
    if isinstance(exc, ReframeError):
        return exc.message
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    if isinstance(exc, NoCredentialsError):
        return f"{exc}: configure AWS access (aws configure, AWS_PROFILE) or set AWS_ENDPOINT_URL for a local stack"
    if isinstance(exc, ClientError | BotoCoreError):
        return f"AWS: {exc}"
    return None


def _read_event(path: Path) -> dict[str, Any]:
    """The event file, refused here (one line) rather than by the handler (its logs and a traceback)."""
    from reframe_pipeline.adapters.inbound.s3_events import is_sqs_batch, parse_notification
    from reframe_pipeline.domain.errors import PermanentError

    hint = "see events/ for one sample of each shape"
    try:
        event: dict[str, Any] = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a JSON event ({exc}); {hint}") from exc
    if not is_sqs_batch(event):
        try:
            parse_notification(event)
        except PermanentError as exc:
            raise UserError(f"{path}: not an event the handler takes: {exc.message}; {hint}") from exc
    return event


def _invoke(args: argparse.Namespace) -> int:
    from reframe_local.lambda_context import LocalContext
    from reframe_pipeline.settings import Settings

    from .logs import handler_output_to

    event = _read_event(Path(args.event))
    settings = Settings.from_env()
    needed_s = settings.min_call_ms / 1000
    if args.timeout < needed_s:
        raise UserError(
            f"--timeout {args.timeout:g} is too short: no provider call starts with less than CALL_BUDGET_MS +"
            f" UPLOAD_RESERVE_MS ({needed_s:g} s) left, so every variant would fail with 'deadline';"
            f" give --timeout {needed_s:g} or more"
        )
    with handler_output_to(sys.stderr):
        from reframe_pipeline.handler import lambda_handler

        result = lambda_handler(event, LocalContext(timeout_s=args.timeout))
    json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def _webhook_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--webhook",
        metavar="URL",
        help="also POST each notice, signed per Standard Webhooks, to URL: https, or a receiver at http://127.0.0.1:PORT",
    )


def _demo(args: argparse.Namespace) -> int:
    from reframe_pipeline.settings import Settings

    from . import demo

    if args.plan:
        sys.stdout.write(demo.planned(Settings.from_env()))
        return 0
    _webhook(args)
    return demo.run(Path(args.output), sys.stdout, pollers=args.pollers, timeout_s=args.timeout)


def _webhook(args: argparse.Namespace) -> None:
    if args.webhook:
        from .local_webhook import describe, post_notices_to

        print(describe(args.webhook, post_notices_to(args.webhook)), flush=True)


def _serve(args: argparse.Namespace) -> int:
    from . import serve

    _webhook(args)
    return serve.run(sys.stdout, pollers=args.pollers, bucket=args.bucket, gallery_port=args.gallery_port)


def _report(args: argparse.Namespace) -> int:
    from . import report
    from .words import counted

    with open(args.output, "w", encoding="utf-8") as output:
        found = report.write(args.url, output, sys.stderr, expires_s=args.expires)
    print(
        f"{args.output}: {counted(found.sources, 'source')}, {counted(found.variants, 'variant')},"
        f" {found.failed} failed, {found.flagged} flagged, {counted(found.rejected_sources, 'source')} rejected,"
        f" cost ${found.cost_usd:.3f}"
    )
    return 0


def _expiry(text: str) -> int:
    value = _positive(text)
    if value > _MAX_PRESIGN_S:
        raise argparse.ArgumentTypeError(f"at most {_MAX_PRESIGN_S} seconds (7 days, S3's limit for a presigned URL)")
    return value


def _presets(args: argparse.Namespace) -> int:
    from . import presets_cmd

    return presets_cmd.run(sys.stdout, as_markdown=args.markdown)


def _schema(args: argparse.Namespace) -> int:
    from . import schema

    return schema.run(sys.stdout, notice=args.notice)


def _validate(args: argparse.Namespace) -> int:
    from . import validate

    return validate.run(Path(args.file), sys.stdout, sys.stderr)


def _backfill(args: argparse.Namespace) -> int:
    from . import backfill

    return backfill.run(
        args.url,
        sys.stdout,
        sys.stderr,
        dry_run=args.dry_run,
        queue_url=args.queue,
        provider=args.provider,
        verbose=args.verbose,
        retry_fallbacks=args.retry_fallbacks,
    )


def _attach(args: argparse.Namespace) -> int:
    from . import attach

    return attach.run(args.url, sys.stdout, sys.stderr, dry_run=args.dry_run)


def _check_provider(args: argparse.Namespace) -> int:
    from . import check_provider

    return check_provider.run(
        sys.stdout, sys.stderr, provider=args.provider, image_url=args.image_url, dry_run=args.dry_run
    )


def _emulator(args: argparse.Namespace, rest: list[str]) -> int:
    from reframe_local.emulator import main as emulator_main

    return emulator_main(rest)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _verbose(command: argparse.ArgumentParser, also: str = "") -> None:
    command.add_argument("--verbose", action="store_true", help=f"{also}the traceback of an error")


# Long for a reason: the table of every subcommand and its options, read top to bottom like `--help`.
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reframe",
        description=__doc__,
        epilog=f"exit status: 0 done, 1 done with problems, {CANNOT_RUN} could not run (the message says why)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    invoke = commands.add_parser("invoke", help="run the Lambda handler in-process on an event file")
    invoke.add_argument("--event", required=True, help="a JSON event file (see events/)")
    invoke.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="the context's deadline in seconds (default: 300); at least CALL_BUDGET_MS + UPLOAD_RESERVE_MS,"
        " the time a provider call needs to start, or every variant fails with 'deadline'",
    )
    _verbose(invoke)
    demo = commands.add_parser(
        "demo", help="the sample images through a local S3 + SQS stack; results in an output folder"
    )
    demo.add_argument("--output", default="demo-output", help="where results go (default: demo-output)")
    demo.add_argument("--pollers", type=_positive, default=2, help="concurrent SQS pollers (default: 2)")
    demo.add_argument("--timeout", type=float, default=45.0, help="seconds to wait for every manifest (default: 45)")
    demo.add_argument(
        "--plan", action="store_true", help="only print what it uploads, the variants and their cost (docs/demo.md)"
    )
    _webhook_option(demo)
    _verbose(demo)
    serve = commands.add_parser("serve", help="keep the local stack running: uploads are reframed as they come")
    serve.add_argument("--pollers", type=_positive, default=2, help="concurrent SQS pollers (default: 2)")
    serve.add_argument("--bucket", default="reframe-local", help="the local bucket (default: reframe-local)")
    serve.add_argument(
        "--gallery-port", type=int, default=0, help="the review gallery's port on 127.0.0.1 (default: a free one)"
    )
    _webhook_option(serve)
    _verbose(serve)
    presets = commands.add_parser("presets", help="the named output sizes and the resolution each is reframed at")
    presets.add_argument("--markdown", action="store_true", help="print docs/presets.md instead of a plain table")
    schema = commands.add_parser("schema", help="print the sidecar's JSON Schema (schemas/sidecar.schema.json)")
    schema.add_argument(
        "--notice", action="store_true", help="the notice detail's instead (schemas/notice.schema.json)"
    )
    validate = commands.add_parser("validate", help="check a sidecar offline: its targets and estimated cost")
    validate.add_argument("file", help="a sidecar file (IMAGE.reframe.json or _reframe.json)")
    _verbose(validate)
    backfill = commands.add_parser("backfill", help="produce the variants missing for images already in a bucket")
    backfill.add_argument("url", help="s3://BUCKET/PREFIX (PREFIX defaults to INPUT_PREFIX)")
    backfill.add_argument("--dry-run", action="store_true", help="only count and estimate: no writes, no calls")
    backfill.add_argument("--queue", help="send the work to the deployed pipeline's SQS queue instead of running here")
    backfill.add_argument(
        "--provider", choices=["segmind", "ideogram", "local"], help="instead of REFRAME_PROVIDER (plan and local run)"
    )
    backfill.add_argument(
        "--retry-fallbacks",
        action="store_true",
        help="count variants made by the fallback provider (FALLBACK_PROVIDER) as missing: ask the provider again",
    )
    _verbose(backfill, also="the handler's logs on stderr (local run) and ")
    report = commands.add_parser("report", help="the review gallery of a bucket's outputs as one static HTML file")
    report.add_argument(
        "url",
        help="s3://BUCKET/PREFIX: an uploads folder (s3://B/uploads/shoot/, read where its outputs are), an output"
        " folder, or s3://BUCKET (the whole OUTPUT_PREFIX)",
    )
    report.add_argument("-o", "--output", default="report.html", help="the file to write (default: report.html)")
    report.add_argument(
        "--expires",
        type=_expiry,
        default=24 * 3600,
        help="seconds the images' presigned URLs stay valid (default: 86400; at most 604800)",
    )
    _verbose(report)
    attach = commands.add_parser(
        "attach",
        help="turn on an existing bucket's EventBridge notifications, keeping its other notifications"
        " (docs/existing-bucket.md)",
    )
    attach.add_argument("url", help="s3://BUCKET, the stack's SourceBucketName")
    attach.add_argument("--dry-run", action="store_true", help="print the configuration it would write; no change")
    _verbose(attach)
    check = commands.add_parser(
        "check-provider",
        help="one real, cheapest paid call (TURBO, smallest resolution) with the configured key; prints the answer",
    )
    check.add_argument(
        "--provider", choices=["segmind", "ideogram"], help="instead of REFRAME_PROVIDER (its URL and key settings)"
    )
    check.add_argument("--image-url", help="Segmind: a public https URL of a JPEG, PNG or WebP it can fetch (required)")
    check.add_argument("--dry-run", action="store_true", help="print the request it would send (key masked); no call")
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
        "presets": lambda: _presets(args),
        "schema": lambda: _schema(args),
        "validate": lambda: _validate(args),
        "backfill": lambda: _backfill(args),
        "report": lambda: _report(args),
        "attach": lambda: _attach(args),
        "check-provider": lambda: _check_provider(args),
        "emulator": lambda: _emulator(args, rest),
    }
    if rest and args.command != "emulator":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return int(handlers[args.command]())
    except BrokenPipeError:
        # The reader stopped early (`reframe validate F | head`): not a failure. Nothing more can reach it,
        # and Python's final flush of stdout must not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        message = _one_line(exc)
        if message is None:
            raise
        if getattr(args, "verbose", False):
            traceback.print_exc()
        print(f"reframe {args.command}: {message}", file=sys.stderr)
        return CANNOT_RUN


if __name__ == "__main__":
    sys.exit(main())
