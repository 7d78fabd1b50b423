"""Orchestration for one object event: classify, find the config, plan, fan out, write the manifest."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal

from reframe_pipeline.application import folder_contents
from reframe_pipeline.application.broadcast import Broadcast
from reframe_pipeline.application.configuration import Configuration
from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.application.deliverables import Optimizer
from reframe_pipeline.application.discovery import FoundConfig, own_sidecar
from reframe_pipeline.application.fanout import FanOut, FolderContents
from reframe_pipeline.application.generations import Generations
from reframe_pipeline.application.object_metadata import check_output_limits
from reframe_pipeline.application.options import PipelineOptions
from reframe_pipeline.application.outputs import OutputFolder, output_dir
from reframe_pipeline.application.overtaken import overtaken
from reframe_pipeline.application.ports import (
    Budget,
    ContentSigner,
    Journal,
    Notifier,
    ReframeProvider,
    Storage,
    VariantGuard,
)
from reframe_pipeline.application.source_image import SourceImage
from reframe_pipeline.application.sources import HEADER_READS, source_to_send
from reframe_pipeline.application.threads import ContextPool
from reframe_pipeline.application.values import ObjectInfo
from reframe_pipeline.application.variants import producer_for
from reframe_pipeline.domain.errors import (
    OutputLimitError,
    PermanentError,
    SidecarAwaitedError,
    TransientError,
    WriteConflictError,
)
from reframe_pipeline.domain.events import SIDECAR_SUFFIX, KeyKind, ObjectEvent, classify
from reframe_pipeline.domain.manifest import ConfigInfo, ErrorInfo, Manifest, SourceInfo, VariantRecord
from reframe_pipeline.domain.planning import PlannedVariant
from reframe_pipeline.domain.provenance import source_credits
from reframe_pipeline.domain.sidecar import TARGET_KINDS, InvalidSidecarError, load_json
from reframe_pipeline.domain.sidecar_wait import wait_left_s
from reframe_pipeline.observability import count, logger

# Tries at writing the manifest while other runs of the same source write theirs (duplicate events).
MANIFEST_WRITES = 3
# S3 lookups of the sources being handled at once (up to 10 records of a batch, several lookups each).
LOOKUP_THREADS = 16


class RetryLaterError(TransientError):
    """Some variants could not be produced for a reason that may pass: the record goes back to SQS."""

    code = "retry_later"


@dataclass
class Outcome:
    event: ObjectEvent
    action: Literal["processed", "ignored", "removed", "missing", "superseded", "unconfigured", "invalid", "waiting"]
    manifest: Manifest | None = None
    detail: str = ""
    records: list[VariantRecord] = field(default_factory=list)


def _correlation_id(event: ObjectEvent) -> str:
    """Short and stable per object, so every line about one upload can be found with one filter."""
    return hashlib.sha1(f"{event.bucket}/{event.key}".encode(), usedforsecurity=False).hexdigest()[:16]


def _unsafe_key(key: str) -> str | None:
    segments = key.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        return "the key has empty, '.' or '..' path segments"
    return None


class Pipeline:
    def __init__(
        self,
        options: PipelineOptions,
        provider: ReframeProvider,
        storage_for: Callable[[str], Storage],
        *,
        guard: VariantGuard,
        journal: Journal,
        budget: Budget,
        notifier: Notifier | None = None,
        signer: ContentSigner | None = None,
        fallback: ReframeProvider | None = None,
        optimizer: Optimizer,
    ) -> None:
        self.options = options
        self.provider = provider
        self.storage_for = storage_for
        self.notifier = notifier or Broadcast()
        self.config = Configuration(options, provider.name)
        producer = producer_for(
            options, provider, budget=budget, journal=journal, signer=signer, fallback=fallback, optimizer=optimizer
        )
        # S3 lookups of the sources being handled (up to 10 records of a batch at once).
        self._io = ContextPool(LOOKUP_THREADS, thread_name_prefix="reframe-io")
        self.fanout = FanOut(producer, guard, options.max_parallel_calls, self._io)

    def close(self) -> None:
        """Let the thread pools go (a tool or test that builds another pipeline in this process)."""
        self._io.shutdown()
        self.fanout.close()

    # -- entry point ---------------------------------------------------------------------------
    def handle(self, event: ObjectEvent, deadline: Deadline) -> Outcome:
        s = self.options
        logger.thread_safe_append_keys(
            bucket=event.bucket,
            key=event.key,
            correlation_id=_correlation_id(event),
        )
        kind = classify(event.key, s.input_prefix, s.output_prefix)
        if kind in (KeyKind.OUTPUT, KeyKind.OUTSIDE_INPUT):
            logger.info("ignored: not an input of this pipeline", extra={"kind": kind.value})
            return Outcome(event, "ignored", detail=kind.value)
        if (problem := _unsafe_key(event.key)) is not None:
            logger.warning("ignored: unsafe key", extra={"reason": problem})
            count("SourcesRejected")
            return Outcome(event, "invalid", detail=problem)
        if kind is KeyKind.FOLDER_SIDECAR:
            logger.info("folder default changed: it applies to new uploads; run a backfill to re-plan")
            return Outcome(event, "ignored", detail="folder sidecar")
        storage = self.storage_for(event.bucket)
        image_key = event.key.removesuffix(SIDECAR_SUFFIX) if kind is KeyKind.OBJECT_SIDECAR else event.key
        if event.action == "removed":
            if kind is not KeyKind.IMAGE:
                return Outcome(event, "ignored", detail="sidecar removed; variants kept")
            return self.remove_outputs(storage, event, deadline)
        return self.process(storage, event, image_key, deadline)

    # -- removal -------------------------------------------------------------------------------
    def remove_outputs(self, storage: Storage, event: ObjectEvent, deadline: Deadline) -> Outcome:
        if storage.head(event.key) is not None:  # re-uploaded since the delete: keep the outputs
            return Outcome(event, "ignored", detail="source exists again")
        deleted = self.folder(storage, event.key, _correlation_id(event), deadline).delete_all()
        logger.info("source removed: deleted its outputs", extra={"deleted": deleted})
        return Outcome(event, "removed", detail=f"{deleted} objects deleted")

    def folder(
        self, storage: Storage, key: str, correlation_id: str = "", deadline: Deadline | None = None
    ) -> OutputFolder:
        out_dir = output_dir(key, self.options)
        return OutputFolder(
            storage,
            key,
            out_dir,
            self._io,
            self.notifier,
            correlation_id,
            deadline,
            storage_for=self.storage_for,
            output_bucket=self.options.output_bucket or storage.bucket,
        )

    def generations(self, storage: Storage, out_dir: str, present: set[str]) -> Generations:
        """A source's kept generations, as its folder's listing (``present``) shows them."""
        s = self.options
        return Generations(storage, out_dir, present, s.keep_generations, s.source_limits.recipe, self._io)

    # -- processing ----------------------------------------------------------------------------
    def process(self, storage: Storage, event: ObjectEvent, key: str, deadline: Deadline) -> Outcome:
        s = self.options
        folder = self.folder(storage, key, _correlation_id(event), deadline)
        out_dir = folder.out_dir
        if (refused := _unstorable(event, folder, s.delivery.loop)) is not None:
            return refused
        info_lookup, config_lookup, header_lookup, outputs_lookup = self._look_up(storage, key, folder)
        info = info_lookup.result()
        # A source that is gone is skipped before its config is looked at (that lookup may have failed with it).
        found = config_lookup.result() if info is not None else None
        if info is None or found is None:
            return _skipped(event, key, info)
        _wait_for_sidecar(found, info, s.sidecar_wait_s)
        source_info = SourceInfo(bucket=storage.bucket, key=key, etag=info.etag, version=info.version or None)
        try:
            variants, prune = self.config.plan(found)
            header = header_lookup.result()
            send_key, reasons = source_to_send(storage, info, out_dir, header, s.source_limits)
        except PermanentError as exc:
            return _reject(folder, event, found, source_info, exc)
        source_info.prepared = {"reasons": reasons} if reasons else None
        source = SourceImage(
            url=storage.presign_get(send_key, s.presign_expiry_s),
            loader=lambda: storage.read(send_key),
            credits=source_credits(header),
        )
        present = {item.key for item in outputs_lookup.result()}  # one listing serves every output check
        contents = self.contents(folder, info, variants, present)
        records = self.fanout.run(storage, info, source, out_dir, variants, contents, deadline)
        manifest = _publish(self.config, folder, event, info, found, source_info, records, prune)
        if isinstance(manifest, Outcome):
            return manifest
        # A delete that landed during the write above found nothing to remove: remove it here.
        if (ended := _moved_on(self.config, folder, event, info, found, records)) is not None:
            return ended
        folder.unpublish(manifest, prune)
        folder.remove_stale(present, manifest, prepared=bool(reasons), prune=prune)
        return _done(event, info, manifest)

    def contents(
        self, folder: OutputFolder, info: ObjectInfo, variants: list[PlannedVariant], present: set[str]
    ) -> FolderContents:
        """What this run finds made already, its kept generations, and where its deliverables go."""
        existing, replaced, renditions = folder_contents.contents(folder, info, variants, present)
        generations = self.generations(folder.storage, folder.out_dir, present)
        path = info.key[len(self.options.input_prefix) :]
        return FolderContents(existing, replaced, generations, folder.out, path, renditions)

    def _look_up(self, storage: Storage, key: str, folder: OutputFolder) -> tuple[Future[Any], ...]:
        """Five round trips that do not depend on each other (the last, the folder's last manifest): started
        together, they cost one."""
        folder.read_previous()
        return (
            self._io.submit(storage.head, key),
            self._io.submit(self.config.find, storage, key),
            self._io.submit(storage.read, key, HEADER_READS[0]),
            self._io.submit(storage.list_objects, folder.out_dir),
        )


def _wait_for_sidecar(found: FoundConfig, info: ObjectInfo, wait_s: int) -> None:
    """A new image about to be made from a folder default or DEFAULT_SIDECAR goes back to the queue for the rest
    of SIDECAR_WAIT_S (``wait_s``): its own sidecar, uploaded a moment after it, decides what is paid for."""
    if found.origin == "object":  # its own sidecar decides
        return
    left = wait_left_s(info.last_modified, time.time(), wait_s)
    if left:
        logger.info("waiting for its own sidecar", extra={"retry_after_s": left, "config_from": found.origin})
        count("SourcesAwaitingSidecar")
        raise SidecarAwaitedError(left)


def _skipped(event: ObjectEvent, key: str, info: ObjectInfo | None) -> Outcome:
    """Nothing to do: the source is gone (or not there yet: a sidecar uploaded before its image waits for the
    image's own event), or no config applies to it."""
    if info is None and event.key != key:
        logger.info("waiting for the image", extra={"source_key": key})
        return Outcome(event, "waiting", detail="waiting for the image")
    if info is None:
        logger.info("skipped: the source no longer exists", extra={"source_key": key})
        count("SourcesMissing")
        return Outcome(event, "missing", detail=f"{key}: the source no longer exists")
    logger.info("skipped: no sidecar, no folder default, no DEFAULT_SIDECAR")
    count("SourcesUnconfigured")
    return Outcome(event, "unconfigured")


def _config_info(found: FoundConfig) -> ConfigInfo:
    return ConfigInfo(from_=found.origin, key=found.key)


def _raw_target_names(raw: bytes) -> list[str]:
    """Best-effort target names from an invalid sidecar, so its manifest lists each target as failed."""
    try:
        document = load_json(raw)
    except InvalidSidecarError:
        return []
    targets = document.get("targets") if isinstance(document, dict) else None
    if not isinstance(targets, list):
        return []
    names = []
    for index, target in enumerate(targets):
        label = None
        if isinstance(target, dict):
            label = target.get("name") or next(
                (target[k] for k in TARGET_KINDS if isinstance(target.get(k), str)),
                None,
            )
        names.append(str(label) if label else f"target-{index}")
    return names


def _source_moved_on(
    folder: OutputFolder, event: ObjectEvent, info: ObjectInfo, records: list[VariantRecord]
) -> Outcome | None:
    """The source, looked at again after the slow part: deleted meanwhile, this run cleans up after
    itself (the delete's own event may have run before our writes); overwritten, the newer event
    owns the folder and this run writes nothing more. None: still the version we worked on."""
    current = folder.storage.head(info.key)
    if current is not None and current.etag == info.etag:
        return None
    if current is None:
        deleted = folder.delete_all()
        logger.info("source deleted while in work: removed its outputs", extra={"deleted": deleted})
        count("SourcesGoneMidway")
        return Outcome(event, "missing", detail=f"{info.key}: deleted meanwhile", records=records)
    logger.info("source overwritten while in work: the newer upload's event takes over")
    count("SourcesSuperseded")
    return Outcome(event, "superseded", detail=f"{info.key}: overwritten meanwhile", records=records)


def _reject(
    folder: OutputFolder,
    event: ObjectEvent,
    found: FoundConfig,
    source_info: SourceInfo,
    exc: PermanentError,
) -> Outcome:
    """A permanent problem with the config or the source: a failed manifest, no call, no retry."""
    error = ErrorInfo(code=exc.code, message=exc.message)
    names = _raw_target_names(found.raw) if isinstance(exc, InvalidSidecarError) else []
    failed = [VariantRecord(name=name, status="failed", error=error) for name in names or ["*"]]
    manifest = folder.manifest(source_info, _config_info(found), failed, error=error)
    records = manifest.variants
    folder.finish(manifest)
    logger.warning("source rejected", extra={"error_code": exc.code, "error": exc.message})
    count("InvalidSidecars" if isinstance(exc, InvalidSidecarError) else "SourcesRejected")
    count("VariantsFailed", len(records))
    return Outcome(event, "invalid", manifest=manifest, detail=exc.message, records=records)


def _unstorable(event: ObjectEvent, folder: OutputFolder, loop: str | None) -> Outcome | None:
    """Nowhere to write even a manifest (S3's key limit), or deliverables that could be read as uploads (``loop``:
    OUTPUT_BUCKET names the source's own bucket): say it loudly, pay nothing."""
    problem: str | None
    try:
        check_output_limits(folder.manifest_key, {})
    except OutputLimitError as exc:
        problem = exc.message
    else:
        problem = loop if loop is not None and folder.out.bucket == folder.storage.bucket else None
    if problem is None:
        return None
    logger.error("source refused: its outputs cannot be stored", extra={"error": problem})
    count("SourcesRejected")
    return Outcome(event, "invalid", detail=problem)


def _done(event: ObjectEvent, info: ObjectInfo, manifest: Manifest) -> Outcome:
    records = manifest.variants
    counts = {f"variants_{k}": sum(r.status == k for r in records) for k in ("created", "existing", "failed")}
    logger.info("source done", extra={"source_etag": info.etag, **counts})
    if manifest.needs_retry:
        failed = [r.name for r in records if r.retryable]
        raise RetryLaterError(f"{len(failed)} variant(s) to retry: {', '.join(failed)}")
    return Outcome(event, "processed", manifest=manifest, records=records)


def _publish(
    config: Configuration,
    folder: OutputFolder,
    event: ObjectEvent,
    info: ObjectInfo,
    found: FoundConfig,
    source_info: SourceInfo,
    records: list[VariantRecord],
    prune: bool,
) -> Manifest | Outcome:
    """The manifest written, unless a newer upload or sidecar owns the folder now. It is written only over the
    manifest this run read: when another run wrote one meanwhile (a duplicate event's, a newer sidecar's), the
    folder is looked at again and this run's manifest built over that one."""
    for _ in range(MANIFEST_WRITES):
        if (ended := _moved_on(config, folder, event, info, found, records)) is not None:
            return ended
        manifest = folder.manifest(source_info, _config_info(found), records, prune)
        try:
            folder.finish(manifest)
        except WriteConflictError:
            folder.read_again()
            continue
        return manifest
    raise WriteConflictError(f"{folder.manifest_key} was written by {MANIFEST_WRITES} other runs while this one ran")


def _moved_on(
    config: Configuration,
    folder: OutputFolder,
    event: ObjectEvent,
    info: ObjectInfo,
    found: FoundConfig,
    records: list[VariantRecord],
) -> Outcome | None:
    """The source looked at again after the slow part, then its sidecar: a newer upload or a newer sidecar of its
    own owns the folder (this run's manifest and pruning would undo what that one made). Both are read at once:
    the sidecar is of no use when the source moved on, but a second round trip after the first costs every run."""
    sidecar = folder.io.submit(own_sidecar, folder.storage, info.key, config.options.max_sidecar_bytes)
    if (ended := _source_moved_on(folder, event, info, records)) is not None:
        return ended
    now = sidecar.result()
    if not overtaken(folder, found, now, lambda found_now: {v.name for v in config.plan(found_now)[0]}, records):
        return None
    return Outcome(event, "superseded", detail=f"{info.key}: its sidecar changed meanwhile", records=records)
