"""``reframe serve``: the local stack kept running; uploads are processed as they come, one progress
line per source and one per notice the pipeline announced, until SIGINT or SIGTERM."""

from __future__ import annotations

import json
import signal
import tempfile
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import ClientError

from reframe_local.moto_stack import NOTICE_BUS, MotoStack
from reframe_local.poller import BatchReport
from reframe_local.servers import REGION
from reframe_pipeline.adapters.inbound.s3_events import parse_sqs_body
from reframe_pipeline.application.outputs import output_dir
from reframe_pipeline.domain.errors import PermanentError
from reframe_pipeline.domain.events import MANIFEST_NAME, SIDECAR_SUFFIX, KeyKind, ObjectEvent, classify
from reframe_pipeline.domain.sidecar_wait import wait_left_s
from reframe_pipeline.settings import Settings

from . import gallery_server
from .logs import handler_output_to
from .samples import sidecar_seed
from .words import counted

# How a manifest's statuses are said, where the word alone would not tell.
_STATUS_WORDS = {"unconfigured": "no longer configured (kept)"}
# A manifest older than its batch (minus the manifest's one-second resolution) is from an earlier run.
_CLOCK_SLACK_S = 1.0


def notice_line(event: dict[str, Any]) -> str:
    """One EventBridge notice as a line: what it says, of which source, and the id a consumer de-duplicates on."""
    detail = event["detail"]
    counts = ", ".join(f"{n} {status}" for status, n in detail["counts"].items())
    return (
        f"notice: {event['detail-type']}: {detail['source']['key']} {detail['status']} ({counts}) {detail['event_id']}"
    )


class Progress:
    """Turns each handled batch into one line per source, then one per notice it announced."""

    def __init__(self, stack: MotoStack, settings: Settings, out: TextIO) -> None:
        self._stack = stack
        self._settings = settings
        self._out = out
        self._lock = threading.Lock()  # pollers report from their own threads

    def __call__(self, report: BatchReport) -> None:
        lines = [f"poller: {report.error!r}"] if report.error and not report.messages else []
        for message in report.messages:
            try:
                events = parse_sqs_body(message["Body"])
            except PermanentError:
                continue  # the handler logged it and dropped the message
            for event in events:
                line = self._describe(event, message, report)
                if line:
                    lines.append(line)
        # moto delivered this batch's notices while the handler ran (another poller may have taken some first).
        lines.extend(notice_line(event) for event in self._stack.notices())
        with self._lock:
            for line in lines:
                print(line, file=self._out, flush=True)

    def _describe(self, event: ObjectEvent, message: dict[str, Any], report: BatchReport) -> str | None:
        s = self._settings
        kind = classify(event.key, s.input_prefix, s.output_prefix)
        if kind in (KeyKind.OUTPUT, KeyKind.OUTSIDE_INPUT):
            return None
        took = f"({report.elapsed_s:.1f} s)"
        if message["MessageId"] in report.failed and kind is KeyKind.IMAGE and self._awaits_sidecar(event.key, report):
            return (
                f"{event.key} → waiting for its own sidecar (SIDECAR_WAIT_S {s.sidecar_wait_s} s):"
                f" back in the queue in {self._stack.wiring.retry_delay_s} s {took}"
            )
        if message["MessageId"] in report.failed:
            receives = message.get("Attributes", {}).get("ApproximateReceiveCount", "?")
            return (
                f"{event.key} → not done, back in the queue in {self._stack.wiring.retry_delay_s} s"
                f" (receive {receives}; see the logs) {took}"
            )
        if kind is KeyKind.FOLDER_SIDECAR:
            return f"{event.key} → folder default {event.action}: it applies to the next uploads"
        if event.action == "removed":
            return f"{event.key} → removed{', its outputs deleted' if kind is KeyKind.IMAGE else ''} {took}"
        image = event.key.removesuffix(SIDECAR_SUFFIX)
        source = f"{image} (sidecar {event.action})" if kind is KeyKind.OBJECT_SIDECAR else image
        manifest = self._manifest(image)
        if manifest is None or _older_than(manifest, report.started - _CLOCK_SLACK_S):
            if kind is KeyKind.OBJECT_SIDECAR and self._uploaded_at(image) is None:
                return f"{source} → waiting for the image {took}"
            return f"{source} → left alone: no sidecar or folder default, or no image (see the logs) {took}"
        if manifest.get("error"):
            return f"{source} → rejected: {manifest['error']['message']} {took}"
        counts = {status: 0 for status in ("created", "existing", "failed")}
        for variant in manifest["variants"]:
            counts[variant["status"]] = counts.get(variant["status"], 0) + 1
        said = [f"{n} {_STATUS_WORDS.get(status, status)}" for status, n in counts.items()]
        return f"{source} → " + ", ".join(said) + f" {took}"

    def _uploaded_at(self, key: str) -> float | None:
        try:
            head = self._stack.s3.head_object(Bucket=self._stack.wiring.bucket, Key=key)
        except ClientError:
            return None
        return float(head["LastModified"].timestamp())

    def _awaits_sidecar(self, image: str, report: BatchReport) -> bool:
        """The image had no sidecar of its own and was young enough to wait for one when its batch ran."""
        waited = wait_left_s(self._uploaded_at(image), report.started, self._settings.sidecar_wait_s) > 0
        return waited and self._uploaded_at(image + SIDECAR_SUFFIX) is None

    def _manifest(self, image_key: str) -> dict[str, Any] | None:
        key = output_dir(image_key, self._settings) + MANIFEST_NAME
        try:
            body = self._stack.s3.get_object(Bucket=self._stack.wiring.bucket, Key=key)["Body"].read()
        except ClientError:
            return None
        document: dict[str, Any] = json.loads(body)
        return document


def _older_than(manifest: dict[str, Any], timestamp: float) -> bool:
    return datetime.fromisoformat(manifest["generated_at"]).timestamp() < timestamp


def instructions(stack: MotoStack, settings: Settings, logs: Path, pollers: int, gallery_url: str = "") -> str:
    url, bucket, inp, out = stack.url, stack.wiring.bucket, settings.input_prefix, settings.output_prefix
    sidecar = json.dumps({"version": 1, "targets": [{"preset": "linkedin-banner"}, {"size": "1200x628"}]})
    return f"""\
Reframe local stack running (Ctrl-C to stop)
  review gallery: {gallery_url} (every source and its variants; regenerate one with a new seed)
  moto (S3 + SQS): {url} (pid {stack.moto.pid}); bucket {bucket}; provider {settings.reframe_provider}
  events: s3://{bucket}/{inp}* -> queue {stack.wiring.queue_url.rsplit("/", 1)[-1]} -> {counted(pollers, "poller")}
  notices: EventBridge bus {NOTICE_BUS} -> queue {stack.notice_queue_url.rsplit("/", 1)[-1]}, one "notice:" line each
  handler logs and metrics: {logs}

In another shell (moto takes any credentials):
  export AWS_ENDPOINT_URL={url} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION={REGION}

Upload an image ({inp}_reframe.json, a folder default, already asks for 16:9 and an Instagram story):
  aws s3 cp photo.jpg s3://{bucket}/{inp}photo.jpg
  python -c "import boto3; boto3.client('s3').upload_file('photo.jpg', '{bucket}', '{inp}photo.jpg')"

Give one image its own targets with a sidecar (uploaded after the image, it re-plans it):
  echo '{sidecar}' > photo.jpg.reframe.json
  aws s3 cp photo.jpg.reframe.json s3://{bucket}/{inp}photo.jpg.reframe.json

Results (variants and manifest.json):
  aws s3 ls --recursive s3://{bucket}/{out}
"""


def run(out: TextIO, *, pollers: int, bucket: str, gallery_port: int = 0) -> int:
    """Serve until SIGINT/SIGTERM; the handler's own output goes to a logs.jsonl file."""
    settings = Settings.from_env()
    state = Path(tempfile.mkdtemp(prefix="reframe-serve-"))  # kept after exit, for its logs
    logs = state / "logs.jsonl"
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with (
            logs.open("w") as log,
            handler_output_to(log),
            MotoStack.start(state, bucket=bucket, seed=sidecar_seed(settings.input_prefix)) as stack,
        ):
            settings = Settings.from_env()  # with the stack's default provider
            stack.start_pollers(pollers, on_batch=Progress(stack, settings, out))
            server = gallery_server.start(gallery_server.Gallery(stack.s3, bucket, settings), gallery_port)
            gallery_url = f"http://127.0.0.1:{server.port}/"
            try:
                print(instructions(stack, settings, logs, pollers, gallery_url), file=out, flush=True)
                stop.wait()
                print("stopping: finishing the batches in progress...", file=out, flush=True)
            finally:
                server.stop()
        print(f"stopped: pollers joined, moto (pid {stack.moto.pid}) ended; logs kept in {state}", file=out, flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
