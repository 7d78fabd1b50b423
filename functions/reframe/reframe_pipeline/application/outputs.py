"""A source's output folder: where its manifest, kept generations and prepared copy live (its state), which
deliverables of its last manifest are current, what is obsolete in either bucket, and ``finish``, the one
place where a source's work ends."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property
from typing import NamedTuple, Protocol

from pydantic import ValidationError

from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.application.deliverables import bucket_of, carry_over, published, unwanted
from reframe_pipeline.application.generations import id_of, is_generation
from reframe_pipeline.application.ports import Notifier, Storage
from reframe_pipeline.domain.errors import WriteConflictError
from reframe_pipeline.domain.events import MANIFEST_NAME
from reframe_pipeline.domain.manifest import ConfigInfo, ErrorInfo, Manifest, SourceInfo, VariantRecord
from reframe_pipeline.domain.notices import NoticeDetail, files_gone, ready, removed
from reframe_pipeline.observability import count, logger

PREPARED_NAME = "_prepared.png"


class _Read(NamedTuple):
    """The manifest as this run read it, and its ETag (None: there was none), which its write must still find."""

    manifest: Manifest | None
    etag: str | None


class Prefixes(Protocol):
    """Where sources are read and outputs written: the pipeline's options, or the settings of a tool."""

    @property
    def input_prefix(self) -> str: ...

    @property
    def output_prefix(self) -> str: ...


def output_dir(key: str, prefixes: Prefixes) -> str:
    return f"{prefixes.output_prefix}{key[len(prefixes.input_prefix) :]}/"


def in_folder(key: str, out_dir: str) -> bool:
    """Directly in a source's output folder: a nested folder holds the outputs of another source
    (``uploads/shoot`` and ``uploads/shoot/cover.png`` are both legal keys)."""
    return key.startswith(out_dir) and "/" not in key[len(out_dir) :]


class OutputFolder:
    def __init__(
        self,
        storage: Storage,
        source_key: str,
        out_dir: str,
        io: ThreadPoolExecutor,
        notifier: Notifier,
        correlation_id: str = "",
        deadline: Deadline | None = None,
        *,
        storage_for: Callable[[str], Storage],
        output_bucket: str,
    ) -> None:
        self.storage = storage  # the source's bucket: the folder's state
        self.source_key = source_key
        self.out_dir = out_dir
        self.io = io  # the run's lookups, in parallel
        self._notifier = notifier
        self._correlation_id = correlation_id
        self._deadline = deadline or Deadline()
        self.storage_for = storage_for
        self.out = storage_for(output_bucket)  # where deliverables go now (OUTPUT_BUCKET)
        self._previous: Future[_Read] | None = None

    @property
    def manifest_key(self) -> str:
        return self.out_dir + MANIFEST_NAME

    def read_previous(self) -> None:
        """Start reading the last manifest now, beside the run's other lookups."""
        self._previous = self.io.submit(self._manifest)

    @cached_property
    def _read(self) -> _Read:
        return self._previous.result() if self._previous is not None else self._manifest()

    @property
    def previous(self) -> Manifest | None:
        """The manifest of the source's last run, as it was before this one: where its deliverables are."""
        return self._read.manifest

    def _manifest(self) -> _Read:
        try:
            body, etag = self.storage.read_with_etag(self.manifest_key)
        except FileNotFoundError:
            return _Read(None, None)
        try:
            return _Read(Manifest.model_validate_json(body), etag)
        except (ValidationError, ValueError):  # unreadable: replaced all the same
            return _Read(None, etag)

    def manifest(
        self,
        source: SourceInfo,
        config: ConfigInfo,
        records: list[VariantRecord],
        prune: bool = False,
        error: ErrorInfo | None = None,
    ) -> Manifest:
        """This run's manifest, with what stays published from the last one (deliverables.carry_over)."""
        variants = carry_over(self.previous, records, self.out.bucket, prune)
        return Manifest(source=source, config=config, variants=variants, error=error, output_bucket=self.out.bucket)

    def finish(self, manifest: Manifest) -> None:
        """The source's work is done (whatever its outcome): its manifest is written, then announced. Written only
        over the manifest this run read: when another run wrote one meanwhile (a newer sidecar's, a duplicate
        event's), nothing is written and WriteConflictError is raised (``read_again``, then build over that one)."""
        try:
            self.storage.replace(self.manifest_key, manifest.to_json(), "application/json", self._read.etag)
        except WriteConflictError:
            logger.info("manifest written by another run meanwhile: not overwritten")
            count("ManifestConflicts")
            raise
        self._notifier.publish(ready(manifest, self.manifest_key, self._correlation_id), self._deadline)

    def read_again(self) -> None:
        """The manifest as it is now: another run wrote it after this one read it."""
        self._read = self._manifest()

    def unpublish(self, manifest: Manifest, prune: bool) -> None:
        """Delete the deliverables the last manifest listed and ``manifest``, written now, does not."""
        if self.previous is None or not (gone := unwanted(self.previous, manifest, prune)):
            return
        self.storage_for(bucket_of(self.previous)).delete(gone)
        count("DeliverablesDeleted", len(gone))
        logger.info("removed deliverables no longer wanted", extra={"removed": gone})

    def delete_all(self) -> int:
        """Delete the source's deliverables (wherever its manifests say) and its folder; announced when there were
        any (a repeated delete says nothing)."""
        # The manifest as it is now (this run may have just written one), and as it was before this run.
        before = vars(self).get("_read")
        manifests = [m for m in (self._manifest().manifest, before and before.manifest) if m is not None]
        deliverables: set[str] = set()
        for manifest in manifests:
            keys = {r.key for items in published(manifest).values() for r in items}
            self.storage_for(bucket_of(manifest)).delete(sorted(keys))
            deliverables |= keys
        state = [item.key for item in self.storage.list_objects(self.out_dir) if in_folder(item.key, self.out_dir)]
        self.storage.delete(state)
        count("OutputsDeleted", len(set(state) | deliverables))
        if state or deliverables:
            self._notifier.publish(self._removed(manifests, state), self._deadline)
        return len(set(state) | deliverables)

    def _removed(self, manifests: list[Manifest], state: list[str]) -> NoticeDetail:
        """The notice of a removal: the variants of the last manifest, or, without one, the folder's files."""
        if not manifests:
            gone = files_gone([k for k in state if is_variant(k[len(self.out_dir) :])])
            return removed(self.storage.bucket, self.source_key, self.manifest_key, gone, self._correlation_id)
        last = manifests[0]
        gone = [v for v in last.variants if v.key or v.renditions]
        bucket = bucket_of(last)
        return removed(self.storage.bucket, self.source_key, self.manifest_key, gone, self._correlation_id, bucket)

    def remove_stale(
        self,
        present: set[str],
        manifest: Manifest,
        prepared: bool,
        prune: bool,
    ) -> None:
        """Remove what this run made obsolete: a variant it rewrote under another extension, a prepared
        copy no longer needed, and (with ``prune``) variants of targets gone from the config and kept
        generations no target uses. A variant that failed here is never touched: another invocation may
        have just written it (and a generation is pruned only when nothing failed, for the same reason)."""
        records = manifest.variants
        written = {r.name: r.key for r in records if r.key}
        planned = {r.name for r in records}
        used = {r.generation for r in records if r.generation}
        listed = manifest.deliverable_keys() if self.out.bucket == self.storage.bucket else set()

        def obsolete(key: str) -> bool:
            name = key[len(self.out_dir) :]
            if not in_folder(key, self.out_dir) or name == MANIFEST_NAME or key in listed:
                return False
            if name == PREPARED_NAME:
                return not prepared
            if is_generation(name):  # kept for a revert until the lifecycle rule expires it, unless pruned
                return prune and id_of(name) not in used and all(r.status != "failed" for r in records)
            stem = name.rsplit(".", 1)[0]
            if stem in written:
                return key != written[stem]
            return prune and stem not in planned

        stale = sorted(key for key in present if obsolete(key))
        if stale:
            self.storage.delete(stale)
            logger.info("removed obsolete outputs", extra={"removed": stale})


def is_variant(name: str) -> bool:
    """A file of an output folder that is a variant: not the manifest, the prepared source or a kept generation."""
    return name not in (MANIFEST_NAME, PREPARED_NAME) and not is_generation(name)
