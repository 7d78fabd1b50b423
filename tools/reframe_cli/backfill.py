"""``reframe backfill s3://BUCKET/PREFIX``: produce the variants missing for images already in the bucket
(uploaded before the pipeline, or before their sidecar or folder default changed).

The survey uses the pipeline's own discovery, planning and existing-variant check, so "missing" means
exactly what the handler would pay for. The work is done either by the deployed pipeline (one S3-shaped
message per image on its queue) or by the real handler in this process. Either way an interrupted
backfill can simply be run again: finished variants are found and skipped.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import quote_plus, urlsplit

import boto3
from botocore.exceptions import ClientError

from reframe_local.lambda_context import LocalContext
from reframe_pipeline.application.discovery import find_config
from reframe_pipeline.application.generations import Generations
from reframe_pipeline.application.pipeline import Pipeline
from reframe_pipeline.application.ports import ObjectInfo
from reframe_pipeline.application.variants import is_fallback
from reframe_pipeline.domain.events import KeyKind, classify
from reframe_pipeline.domain.planning import PlannedVariant
from reframe_pipeline.domain.sidecar import InvalidSidecarError

from .errors import UserError
from .estimates import cost_table
from .logs import handler_output_to
from .progress import Progress

SQS_BATCH = 10  # send_message_batch takes at most 10 entries
# Lambda's own maximum; the pipeline starts no provider call it could not finish before this deadline.
CONTEXT_TIMEOUT_S = 900.0
_SHOWN = 10  # invalid configs and failures listed by key; the rest are counted


@dataclass(frozen=True)
class ImageWork:
    info: ObjectInfo
    planned: list[PlannedVariant]
    missing: list[PlannedVariant]
    paid: list[PlannedVariant]  # the missing variants whose generation is neither kept nor shared: paid for
    fallbacks: int = 0  # variants made by the fallback provider (missing with --retry-fallbacks, else present)


@dataclass
class Survey:
    bucket: str
    prefix: str
    images: int = 0
    unconfigured: int = 0
    invalid: dict[str, str] = field(default_factory=dict)  # image key -> the sidecar's problem
    retry_fallbacks: bool = False  # variants made by the fallback provider count as missing
    configured: list[ImageWork] = field(default_factory=list)

    @property
    def todo(self) -> list[ImageWork]:
        return [work for work in self.configured if work.missing]

    def report(self, pipeline: Pipeline) -> str:
        planned = sum(len(work.planned) for work in self.configured)
        missing = [v for work in self.configured for v in work.missing]
        paid = [v for work in self.configured for v in work.paid]
        fallbacks = sum(work.fallbacks for work in self.configured)
        counts = [
            ("images found", self.images),
            ("  unconfigured", self.unconfigured),
            ("  invalid config", len(self.invalid)),
            ("  configured", len(self.configured)),
            ("variants planned", planned),
            ("  already present", planned - len(missing)),
            ("  fallbacks" + (" to retry" if self.retry_fallbacks else " kept"), fallbacks),
            ("  missing", len(missing)),
            ("    paid generations", len(paid)),
            ("    free re-renders", len(missing) - len(paid)),
            ("images needing work", len(self.todo)),
        ]
        lines = [f"s3://{self.bucket}/{self.prefix} (provider {pipeline.provider.name})"]
        lines += [f"{label:<22}{value:>8}" for label, value in counts]
        lines += [f"invalid: {key}: {message}" for key, message in list(self.invalid.items())[:_SHOWN]]
        if len(self.invalid) > _SHOWN:
            lines.append(f"invalid: ... and {len(self.invalid) - _SHOWN} more")
        speeds = Counter(v.rendering_speed for v in paid)
        table = cost_table(pipeline.settings.price_table, speeds, configured=pipeline.provider.name)
        lines += ["", "estimated cost of the generations to pay for (USD):", table]
        return "\n".join(lines) + "\n"


def parse_s3_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise UserError(f"{url!r} is not an S3 location: give s3://BUCKET or s3://BUCKET/PREFIX")
    return parts.netloc, parts.path.lstrip("/")


def _aws_refusal(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{(error.get('Message') or 'refused').rstrip('.')} ({error.get('Code')})"


def survey(pipeline: Pipeline, bucket: str, prefix: str, retry_fallbacks: bool = False) -> Survey:
    """Every image under ``prefix``, its planned variants and the ones not yet produced. Reads only.
    A variant made by the fallback provider is present, or with ``retry_fallbacks`` missing: the handler
    then asks the provider for it (it never takes a fallback for the provider's variant)."""
    s = pipeline.settings
    storage = pipeline.storage_for(bucket)
    result = Survey(bucket, prefix, retry_fallbacks=retry_fallbacks)
    for info in storage.list_objects(prefix):
        if classify(info.key, s.input_prefix, s.output_prefix) is not KeyKind.IMAGE:
            continue
        result.images += 1
        found = find_config(storage, info.key, s.input_prefix, s.default_sidecar, s.max_sidecar_bytes)
        if found is None:
            result.unconfigured += 1
            continue
        try:
            planned, _prune = pipeline.plan_config(found)
        except InvalidSidecarError as exc:
            result.invalid[info.key] = exc.message
            continue
        folder = pipeline.folder(storage, info.key)
        present = {item.key for item in storage.list_objects(folder.out_dir)}
        existing = folder.existing(info, planned, present, fallback_ok=True)
        fallbacks = {name for name, head in existing.items() if is_fallback(head)}
        missing = [v for v in planned if v.name not in existing or (retry_fallbacks and v.name in fallbacks)]
        paid = _to_pay(pipeline.generations(storage, folder.out_dir, present), info, missing)
        result.configured.append(ImageWork(info, planned, missing, paid, len(fallbacks)))
    return result


def _to_pay(generations: Generations, info: ObjectInfo, missing: list[PlannedVariant]) -> list[PlannedVariant]:
    """The missing variants that will pay: one per generation that is not kept in the folder."""
    paid: dict[str, PlannedVariant] = {}
    for v in missing:
        gen_id = generations.id_for(v, info)
        if not generations.listed(gen_id):
            paid.setdefault(gen_id, v)
    return list(paid.values())


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
    input_prefix = active.settings.input_prefix
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
    out.write(found.report(active))
    todo = found.todo
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
