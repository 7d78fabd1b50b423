"""Orchestration for one object event: classify, find the config, plan, fan out, write the manifest."""

from __future__ import annotations

import contextvars
import hashlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from reframe_pipeline.application.discovery import FoundConfig, find_config
from reframe_pipeline.application.ports import (
    Budget,
    Deadline,
    Journal,
    ObjectInfo,
    ReframeProvider,
    SourceImage,
    Storage,
    VariantGuard,
    VariantWork,
)
from reframe_pipeline.application.variants import (
    META_SOURCE_ETAG,
    META_SOURCE_KEY,
    OUTPUT_EXTENSIONS,
    VariantJob,
    VariantProducer,
    check_output_limits,
    is_current,
    source_key_tag,
)
from reframe_pipeline.domain.errors import OutputLimitError, PermanentError, SourceChangedError, TransientError
from reframe_pipeline.domain.events import SIDECAR_SUFFIX, KeyKind, ObjectEvent, classify
from reframe_pipeline.domain.manifest import ConfigInfo, ErrorInfo, Manifest, SourceInfo, VariantRecord
from reframe_pipeline.domain.planning import PlannedVariant, plan
from reframe_pipeline.domain.preparation import (
    HeaderIncompleteError,
    check_input_size,
    prepare,
    probe,
    reasons_to_prepare,
    recipe,
)
from reframe_pipeline.domain.sidecar import TARGET_KINDS, InvalidSidecarError, load_json, parse_sidecar
from reframe_pipeline.observability import count, logger
from reframe_pipeline.settings import Settings

# Enough for the header of nearly every image; a huge EXIF/ICC block makes us read up to the next step.
# A header that does not parse within the last step is refused: nothing reads a whole object to find one.
HEADER_READS = (64 * 1024, 1024 * 1024)
PREPARED_NAME = "_prepared.png"
META_PREPARED_FOR = "prepared-for"
MANIFEST_NAME = "manifest.json"


class RetryLaterError(TransientError):
    """Some variants could not be produced for a reason that may pass: the record goes back to SQS."""

    code = "retry_later"


@dataclass
class Outcome:
    event: ObjectEvent
    action: Literal["processed", "ignored", "removed", "missing", "superseded", "unconfigured", "invalid"]
    manifest: Manifest | None = None
    detail: str = ""
    records: list[VariantRecord] = field(default_factory=list)


def output_dir(key: str, settings: Settings) -> str:
    return f"{settings.output_prefix}{key[len(settings.input_prefix) :]}/"


def in_folder(key: str, out_dir: str) -> bool:
    """Directly in a source's output folder: a nested folder holds the outputs of another source
    (``uploads/shoot`` and ``uploads/shoot/cover.png`` are both legal keys)."""
    return key.startswith(out_dir) and "/" not in key[len(out_dir) :]


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
        settings: Settings,
        provider: ReframeProvider,
        storage_for: Callable[[str], Storage],
        *,
        guard: VariantGuard,
        journal: Journal,
        budget: Budget,
    ) -> None:
        self.settings = settings
        self.provider = provider
        self.storage_for = storage_for
        self.guard = guard
        self.producer = VariantProducer(
            provider,
            settings.price_table,
            settings.presign_expiry_s,
            min_remaining_ms=settings.call_budget_ms + settings.upload_reserve_ms,
            budget=budget,
            journal=journal,
        )
        # One pool per process: MAX_PARALLEL_CALLS is the number of provider calls in flight.
        self._calls = ThreadPoolExecutor(settings.max_parallel_calls, thread_name_prefix="reframe-call")
        # S3 lookups of the sources being handled (up to 10 records of a batch at once).
        self._io = ThreadPoolExecutor(16, thread_name_prefix="reframe-io")

    # -- entry point ---------------------------------------------------------------------------
    def handle(self, event: ObjectEvent, deadline: Deadline) -> Outcome:
        s = self.settings
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
            return self.remove_outputs(storage, event)
        return self.process(storage, event, image_key, deadline)

    # -- removal -------------------------------------------------------------------------------
    def remove_outputs(self, storage: Storage, event: ObjectEvent) -> Outcome:
        if storage.head(event.key) is not None:  # re-uploaded since the delete: keep the outputs
            return Outcome(event, "ignored", detail="source exists again")
        deleted = self._delete_outputs(storage, event.key)
        logger.info("source removed: deleted its outputs", extra={"deleted": deleted})
        return Outcome(event, "removed", detail=f"{deleted} objects deleted")

    def _delete_outputs(self, storage: Storage, key: str) -> int:
        out_dir = output_dir(key, self.settings)
        keys = [item.key for item in storage.list_objects(out_dir) if in_folder(item.key, out_dir)]
        storage.delete(keys)
        count("OutputsDeleted", len(keys))
        return len(keys)

    # -- processing ----------------------------------------------------------------------------
    def process(self, storage: Storage, event: ObjectEvent, key: str, deadline: Deadline) -> Outcome:
        s = self.settings
        out_dir = output_dir(key, s)
        try:
            check_output_limits(out_dir + MANIFEST_NAME, {})
        except OutputLimitError as exc:  # nowhere to write even a manifest: say it loudly, pay nothing
            logger.error("source refused: its outputs cannot be stored", extra={"error": exc.message})
            count("SourcesRejected")
            return Outcome(event, "invalid", detail=exc.message)
        # Four round trips that do not depend on each other: started together, they cost one.
        info_lookup = self._io.submit(storage.head, key)
        config_lookup = self._io.submit(
            find_config, storage, key, s.input_prefix, s.default_sidecar, s.max_sidecar_bytes
        )
        header_lookup = self._io.submit(storage.read, key, HEADER_READS[0])
        outputs_lookup = self._io.submit(storage.list_objects, out_dir)
        info = info_lookup.result()
        if info is None:
            logger.info("skipped: the source no longer exists", extra={"source_key": key})
            count("SourcesMissing")
            return Outcome(event, "missing", detail=f"{key}: the source no longer exists")
        found = config_lookup.result()
        if found is None:
            logger.info("skipped: no sidecar, no folder default, no DEFAULT_SIDECAR")
            count("SourcesUnconfigured")
            return Outcome(event, "unconfigured")
        source_info = SourceInfo(bucket=storage.bucket, key=key, etag=info.etag)
        try:
            variants, prune = self.plan_config(found)
            send_key, reasons = self._source_to_send(storage, info, out_dir, header_lookup.result())
        except PermanentError as exc:
            return self._reject(storage, event, out_dir, found, source_info, exc)
        if reasons:
            source_info.prepared = {"reasons": reasons}
        source = SourceImage(
            url=storage.presign_get(send_key, s.presign_expiry_s), loader=lambda: storage.read(send_key)
        )
        present = {item.key for item in outputs_lookup.result()}  # one listing serves both output checks
        existing = self.existing_variants(storage, out_dir, info, variants, present)
        records = self._produce_all(storage, info, source, out_dir, variants, existing, deadline)
        if (ended := self._source_moved_on(storage, event, info, records)) is not None:
            return ended
        manifest = Manifest(source=source_info, config=_config_info(found), variants=records)
        storage.write(out_dir + MANIFEST_NAME, manifest.to_json(), "application/json", {})
        # A delete that landed during the write above found nothing to remove: remove it here.
        if (ended := self._source_moved_on(storage, event, info, records)) is not None:
            return ended
        self._remove_stale(storage, out_dir, present, records, prepared=bool(reasons), prune=prune)
        counts = {f"variants_{k}": sum(r.status == k for r in records) for k in ("created", "existing", "failed")}
        logger.info("source done", extra={"source_etag": info.etag, **counts})
        outcome = Outcome(event, "processed", manifest=manifest, records=records)
        if manifest.needs_retry:
            failed = [r.name for r in records if r.retryable]
            raise RetryLaterError(f"{len(failed)} variant(s) to retry: {', '.join(failed)}")
        return outcome

    def _source_moved_on(
        self, storage: Storage, event: ObjectEvent, info: ObjectInfo, records: list[VariantRecord]
    ) -> Outcome | None:
        """The source, looked at again after the slow part: deleted meanwhile, this run cleans up after
        itself (the delete's own event may have run before our writes); overwritten, the newer event
        owns the folder and this run writes nothing more. None: still the version we worked on."""
        current = storage.head(info.key)
        if current is not None and current.etag == info.etag:
            return None
        if current is None:
            deleted = self._delete_outputs(storage, info.key)
            logger.info("source deleted while in work: removed its outputs", extra={"deleted": deleted})
            count("SourcesGoneMidway")
            return Outcome(event, "missing", detail=f"{info.key}: deleted meanwhile", records=records)
        logger.info("source overwritten while in work: the newer upload's event takes over")
        count("SourcesSuperseded")
        return Outcome(event, "superseded", detail=f"{info.key}: overwritten meanwhile", records=records)

    def plan_config(self, found: FoundConfig) -> tuple[list[PlannedVariant], bool]:
        s = self.settings
        sidecar = parse_sidecar(found.raw, max_bytes=s.max_sidecar_bytes, max_targets=s.max_targets_per_object)
        variants = plan(
            sidecar,
            provider=self.provider.name,
            default_speed=s.default_rendering_speed,
            style_prefix=s.style_prefix,
        )
        return variants, sidecar.prune

    def _source_to_send(self, storage: Storage, info: ObjectInfo, out_dir: str, head: bytes) -> tuple[str, list[str]]:
        """The key to hand to the provider: the original (fast path: only ``head``, its first bytes,
        is read), or a prepared copy, made once per source version."""
        limits = self.settings.source_limits
        check_input_size(info.size, limits)
        for further in HEADER_READS[1:]:
            try:
                facts = probe(head, complete=len(head) >= info.size)
                break
            except HeaderIncompleteError:  # a large EXIF or ICC block: read further
                head = storage.read(info.key, first_bytes=further)
        else:  # never past the last header read: what does not parse by then is refused
            facts = probe(head, complete=len(head) >= info.size, final=True)
        reasons = reasons_to_prepare(facts, info.size, limits)
        if not reasons:
            return info.key, []
        prepared_key = out_dir + PREPARED_NAME
        wanted = {
            META_SOURCE_KEY: source_key_tag(info.key),
            META_SOURCE_ETAG: info.etag,
            META_PREPARED_FOR: recipe(reasons, limits),
        }
        made = storage.head(prepared_key)
        if made is None or any(made.metadata.get(name) != value for name, value in wanted.items()):
            body = prepare(storage.read(info.key, first_bytes=info.size), limits)  # never more than HEAD said
            current = storage.head(info.key)  # an older invocation must not replace a newer version's copy
            if current is None or current.etag != info.etag:
                raise SourceChangedError("the source was overwritten or deleted while it was prepared")
            storage.write(prepared_key, body, "image/png", wanted)
            logger.info("source prepared", extra={"reasons": reasons, "prepared_bytes": len(body)})
            count("SourcesPrepared")
        return prepared_key, reasons

    def _reject(
        self,
        storage: Storage,
        event: ObjectEvent,
        out_dir: str,
        found: FoundConfig,
        source_info: SourceInfo,
        exc: PermanentError,
    ) -> Outcome:
        """A permanent problem with the config or the source: a failed manifest, no call, no retry."""
        error = ErrorInfo(code=exc.code, message=exc.message)
        names = _raw_target_names(found.raw) if isinstance(exc, InvalidSidecarError) else []
        records = [VariantRecord(name=name, status="failed", error=error) for name in names or ["*"]]
        manifest = Manifest(source=source_info, config=_config_info(found), variants=records, error=error)
        storage.write(out_dir + MANIFEST_NAME, manifest.to_json(), "application/json", {})
        logger.warning("source rejected", extra={"error_code": exc.code, "error": exc.message})
        count("InvalidSidecars" if isinstance(exc, InvalidSidecarError) else "SourcesRejected")
        count("VariantsFailed", len(records))
        return Outcome(event, "invalid", manifest=manifest, detail=exc.message, records=records)

    def existing_variants(
        self,
        storage: Storage,
        out_dir: str,
        info: ObjectInfo,
        variants: list[PlannedVariant],
        present: set[str] | None = None,
    ) -> dict[str, ObjectInfo]:
        """Variants already written for this source version with these parameters (nothing to pay).
        ``present``: the keys under ``out_dir``, when the caller has listed them already."""
        if present is None:
            present = {item.key for item in storage.list_objects(out_dir)}
        candidates = [
            (v, key) for v in variants for ext in OUTPUT_EXTENSIONS if (key := f"{out_dir}{v.name}.{ext}") in present
        ]
        heads = self._io.map(storage.head, [key for _, key in candidates])  # independent: all at once
        return {
            v.name: head
            for (v, _), head in zip(candidates, heads, strict=True)
            if head is not None and is_current(head, info, v.param_hash)
        }

    def _produce_all(
        self,
        storage: Storage,
        info: ObjectInfo,
        source: SourceImage,
        out_dir: str,
        variants: list[PlannedVariant],
        existing: dict[str, ObjectInfo],
        deadline: Deadline,
    ) -> list[VariantRecord]:
        records: dict[str, VariantRecord] = {}
        futures = {}
        for v in variants:
            if v.name in existing:
                count("VariantsExisting")
                records[v.name] = VariantRecord(
                    name=v.name,
                    key=existing[v.name].key,
                    status="existing",
                    width=v.final_size.width,
                    height=v.final_size.height,
                    resolution=str(v.resolution),
                    provider=self.provider.name,
                    seed=v.seed,
                    rendering_speed=v.rendering_speed,
                )
                continue
            job = VariantJob(storage, info, source, out_dir, v, deadline, work_id=_work_id(storage, info, v))
            context = contextvars.copy_context()  # carries the source's log keys into the thread
            futures[v.name] = self._calls.submit(context.run, self._produce_in_context, job)
        for name, future in futures.items():
            records[name] = future.result()
        return [records[v.name] for v in variants]

    def _produce_in_context(self, job: VariantJob) -> VariantRecord:
        logger.thread_safe_append_keys(target=job.variant.name, param_hash=job.variant.param_hash)
        # A record of a variant made earlier is trusted only while the bucket still holds that variant for
        # this source version and these parameters (it may have been deleted, or overwritten by a run for
        # other parameters: seed 100 -> 200 -> 100 must not serve the seed-200 image).
        return self.guard.run(
            VariantWork(
                _identity(job.storage, job.origin, job.variant),
                job.deadline,
                produce=lambda: self.producer.produce(job),
                still_valid=lambda record: (
                    record.key is not None
                    and is_current(job.storage.head(record.key), job.origin, job.variant.param_hash)
                ),
            )
        )

    def _remove_stale(
        self,
        storage: Storage,
        out_dir: str,
        present: set[str],
        records: list[VariantRecord],
        prepared: bool,
        prune: bool,
    ) -> None:
        """Remove what this run made obsolete: a variant it rewrote under another extension, a prepared
        copy no longer needed, and (with ``prune``) variants of targets gone from the config. A variant
        that failed here is never touched: another invocation may have just written it."""
        written = {r.name: r.key for r in records if r.key}
        planned = {r.name for r in records}

        def obsolete(key: str) -> bool:
            name = key[len(out_dir) :]
            if not in_folder(key, out_dir) or name == MANIFEST_NAME:
                return False
            if name == PREPARED_NAME:
                return not prepared
            stem = name.rsplit(".", 1)[0]
            if stem in written:
                return key != written[stem]
            return prune and stem not in planned

        stale = sorted(key for key in present if obsolete(key))
        if stale:
            storage.delete(stale)
            logger.info("removed obsolete outputs", extra={"removed": stale})


def _identity(storage: Storage, origin: ObjectInfo, variant: PlannedVariant) -> dict[str, str]:
    """Who a variant is: never the message, always the object version and the parameters."""
    return {
        "bucket": storage.bucket,
        "key": origin.key,
        "version": origin.version,
        "etag": origin.etag,
        "variant": variant.name,
        "params": variant.param_hash,
    }


def _work_id(storage: Storage, origin: ObjectInfo, variant: PlannedVariant) -> str:
    return hashlib.sha256(json.dumps(_identity(storage, origin, variant), sort_keys=True).encode()).hexdigest()


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
