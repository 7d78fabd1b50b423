"""``reframe backfill s3://BUCKET/PREFIX``: produce the variants missing for images already in the bucket
(uploaded before the pipeline, or before their sidecar or folder default changed).

The survey (the application's backfill use case) uses the pipeline's own discovery, planning and
existing-variant check, so "missing" means exactly what the handler would pay for. The work is done either
by the deployed pipeline (one S3-shaped message per image on its queue) or by the real handler in this
process. Either way an interrupted
backfill can simply be run again: finished variants are found and skipped.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import quote_plus, urlsplit

import boto3
from botocore.exceptions import ClientError

from reframe_local.lambda_context import LocalContext
from reframe_pipeline.application.backfill import ImageWork, Survey, survey
from reframe_pipeline.application.pipeline import Pipeline
from reframe_pipeline.application.values import ObjectInfo

from .errors import UserError
from .estimates import cost_table
from .logs import handler_output_to
from .progress import Progress

SQS_BATCH = 10  # send_message_batch takes at most 10 entries
# Lambda's own maximum; the pipeline starts no provider call it could not finish before this deadline.
CONTEXT_TIMEOUT_S = 900.0
_SHOWN = 10  # invalid configs and failures listed by key; the rest are counted


def report(found: Survey, pipeline: Pipeline) -> str:
    """The survey as printed: counts by label, the invalid configs, and the cost of what is to be paid."""
    configured = found.configured
    planned = sum(len(work.planned) for work in configured)
    missing = [v for work in configured for v in work.missing]
    paid = [v for work in configured for v in work.paid]
    fallbacks = sum(work.fallbacks for work in configured)
    counts = [
        ("images found", found.images),
        ("  unconfigured", found.unconfigured),
        ("  invalid config", len(found.invalid)),
        ("  rejected, not images", len(found.rejected)),
        ("  configured", len(configured)),
        ("variants planned", planned),
        ("  already present", planned - len(missing)),
        ("  fallbacks" + (" to retry" if found.retry_fallbacks else " kept"), fallbacks),
        ("  missing", len(missing)),
        ("    paid generations", len(paid)),
        ("    free re-renders", len(missing) - len(paid)),
        ("images needing work", len(found.todo)),
    ]
    lines = [f"s3://{found.bucket}/{found.prefix} (provider {pipeline.provider.name})"]
    lines += [f"{label:<22}{value:>8}" for label, value in counts]
    lines += _listed("invalid", found.invalid)
    lines += _listed("rejected, skipped", found.rejected)
    lines += _provider_warnings(found, pipeline.provider.name)
    speeds = Counter(v.rendering_speed for v in paid)
    table = cost_table(pipeline.options.price_table, speeds, configured=pipeline.provider.name)
    lines += ["", "estimated cost of the generations to pay for (USD):", table]
    return "\n".join(lines) + "\n"


def _listed(label: str, problems: dict[str, str]) -> list[str]:
    lines = [f"{label}: {key}: {message}" for key, message in list(problems.items())[:_SHOWN]]
    if len(problems) > _SHOWN:
        lines.append(f"{label}: ... and {len(problems) - _SHOWN} more")
    return lines


def _provider_warnings(found: Survey, configured: str) -> list[str]:
    """Variants counted missing because another provider made them: the estimate would pay for them again."""
    return [
        f"warning: {n} missing variant(s) were made by {other}, not by {configured} (the configured provider):"
        f" they count as missing and would be made and paid for again; --provider {other} surveys against {other}"
        for other, n in sorted(found.other_providers.items())
    ]


def needing_work(found: Survey) -> str:
    """Each image with variants to make, and which (a dry run's list)."""
    lines = [f"needs work: {work.info.key}: {', '.join(v.name for v in work.missing)}" for work in found.todo]
    return "\n" + "\n".join(lines) + "\n" if lines else ""


def parse_s3_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise UserError(f"{url!r} is not an S3 location: give s3://BUCKET or s3://BUCKET/PREFIX")
    return parts.netloc, parts.path.lstrip("/")


def _aws_refusal(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{(error.get('Message') or 'refused').rstrip('.')} ({error.get('Code')})"


def notification(bucket: str, info: ObjectInfo) -> dict[str, Any]:
    """An S3 ObjectCreated notification for one object, key URL-encoded as S3 sends it."""
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventTime": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "reframe-backfill",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": quote_plus(info.key, safe="/"), "size": info.size, "eTag": info.etag},
        },
    }
    return {"Records": [record]}


def send_to_queue(sqs: Any, queue_url: str, bucket: str, todo: list[ImageWork]) -> list[str]:
    """One message per image; returns the keys whose message SQS refused."""
    refused: list[str] = []
    for start in range(0, len(todo), SQS_BATCH):
        chunk = todo[start : start + SQS_BATCH]
        entries = [
            {"Id": str(index), "MessageBody": json.dumps(notification(bucket, work.info))}
            for index, work in enumerate(chunk)
        ]
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        refused += [chunk[int(failed["Id"])].info.key for failed in response.get("Failed", [])]
    return refused


def process_locally(bucket: str, todo: list[ImageWork], err: TextIO, verbose: bool) -> tuple[Counter[str], list[str]]:
    """The real handler, in this process, one image at a time (its variants in parallel). Returns the
    variants by status and a line per failure."""
    from reframe_pipeline.handler import lambda_handler

    statuses: Counter[str] = Counter()
    failures: list[str] = []
    with (
        open(os.devnull, "w") as devnull,
        handler_output_to(err if verbose else devnull),
        Progress(err, len(todo), "image") as bar,
    ):
        for work in todo:
            bar.label(work.info.key)
            try:
                result = lambda_handler(notification(bucket, work.info), LocalContext(timeout_s=CONTEXT_TIMEOUT_S))
            # One image's failure (the handler raises for variants worth retrying) must not stop the rest.
            except Exception as exc:
                failures.append(f"{work.info.key}: {exc}")
                continue
            finally:
                bar.step()
            for summary in result["results"]:
                for variant in summary["variants"]:
                    statuses[variant["status"]] += 1
                    if variant["status"] == "failed":
                        failures.append(f"{summary['key']}: {variant['name']}: {variant['error']['message']}")
    return statuses, failures


def _use_provider(name: str) -> None:
    """The handler reads its settings from the environment once per process: set, then rebuild."""
    from reframe_pipeline import handler

    os.environ["REFRAME_PROVIDER"] = name
    handler.reset()


# Long for a reason: the backfill's steps in order (scan, estimate, confirm, enqueue or run, report).
def run(
    url: str,
    out: TextIO,
    err: TextIO,
    *,
    dry_run: bool = False,
    queue_url: str | None = None,
    provider: str | None = None,
    verbose: bool = False,
    retry_fallbacks: bool = False,
) -> int:
    bucket, prefix = parse_s3_url(url)
    if provider:
        _use_provider(provider)
    from reframe_pipeline.handler import pipeline

    active = pipeline()
    input_prefix = active.options.input_prefix
    prefix = prefix or input_prefix
    # Listing a prefix that neither contains nor lies inside INPUT_PREFIX finds nothing the pipeline reframes.
    if not (prefix.startswith(input_prefix) or input_prefix.startswith(prefix)):
        raise UserError(
            f"s3://{bucket}/{prefix} is outside the input prefix {input_prefix!r}: the pipeline reframes only"
            " images under it (give a prefix under it, or set INPUT_PREFIX as deployed)"
        )
    try:
        found = survey(active, bucket, prefix, retry_fallbacks)
    except ClientError as exc:
        raise UserError(f"s3://{bucket}/{prefix}: {_aws_refusal(exc)}") from exc
    out.write(report(found, active))
    todo = found.todo
    if dry_run:
        out.write(needing_work(found))
    if dry_run or not todo:
        return 0
    if queue_url:
        try:
            refused = send_to_queue(boto3.client("sqs"), queue_url, bucket, todo)
        except ClientError as exc:
            raise UserError(
                f"--queue {queue_url}: {_aws_refusal(exc)}: give the pipeline queue's URL (the stack's QueueUrl output)"
            ) from exc
        out.write(f"\nqueued {len(todo) - len(refused)} image(s) on {queue_url}\n")
        for key in refused:
            err.write(f"refused by SQS: {key}\n")
        return 1 if refused else 0
    statuses, failures = process_locally(bucket, todo, err, verbose)
    out.write(f"\nprocessed {len(todo)} image(s): " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) + "\n")
    for line in failures[:_SHOWN]:
        err.write(f"failed: {line}\n")
    if len(failures) > _SHOWN:
        err.write(f"failed: ... and {len(failures) - _SHOWN} more\n")
    return 1 if failures else 0
