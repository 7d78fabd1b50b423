"""A source's output folder: where its variants, prepared copy and manifest live, which variants are
current, what is obsolete, and ``finish``, the one place where a source's work ends."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.application.generations import META_GENERATION, id_of, is_generation
from reframe_pipeline.application.object_metadata import OUTPUT_EXTENSIONS, is_current
from reframe_pipeline.application.ports import Notifier, Storage
from reframe_pipeline.application.values import ObjectInfo
from reframe_pipeline.domain.events import MANIFEST_NAME
from reframe_pipeline.domain.manifest import Manifest, VariantRecord
from reframe_pipeline.domain.notices import files_gone, ready, removed
from reframe_pipeline.domain.planning import PlannedVariant
from reframe_pipeline.observability import count, logger

PREPARED_NAME = "_prepared.png"


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
    ) -> None:
        self.storage = storage
        self.source_key = source_key
        self.out_dir = out_dir
        self._io = io
        self._notifier = notifier
        self._correlation_id = correlation_id
        self._deadline = deadline or Deadline()

    @property
    def manifest_key(self) -> str:
        return self.out_dir + MANIFEST_NAME

    def finish(self, manifest: Manifest) -> None:
        """The source's work is done (whatever its outcome): its manifest is written, then announced."""
        self.storage.write(self.manifest_key, manifest.to_json(), "application/json", {})
        self._notifier.publish(ready(manifest, self.manifest_key, self._correlation_id), self._deadline)

    def delete_all(self) -> int:
        """Delete the folder's outputs; announced when there were any (a repeated delete says nothing)."""
        keys = [item.key for item in self.storage.list_objects(self.out_dir) if in_folder(item.key, self.out_dir)]
        self.storage.delete(keys)
        count("OutputsDeleted", len(keys))
        if keys:
            variants = [k for k in keys if is_variant(k[len(self.out_dir) :])]
            self._notifier.publish(
                removed(
                    self.storage.bucket, self.source_key, self.manifest_key, files_gone(variants), self._correlation_id
                ),
                self._deadline,
            )
        return len(keys)

    def contents(
        self,
        info: ObjectInfo,
        variants: list[PlannedVariant],
        present: set[str] | None = None,
        *,
        fallback_ok: bool = False,
    ) -> tuple[dict[str, ObjectInfo], dict[str, str]]:
        """The variants already written for this source version with these parameters (nothing to pay),
        and, for the others, the generation their outdated rendition came from (``present``: the keys
        in the folder, when the caller has listed them already). A fallback variant counts as written only
        with ``fallback_ok`` (the backfill's survey); a run tries the provider for it again."""
        if present is None:
            present = {item.key for item in self.storage.list_objects(self.out_dir)}
        keys = [(v, f"{self.out_dir}{v.name}.{ext}") for v in variants for ext in OUTPUT_EXTENSIONS]
        candidates = [(v, key) for v, key in keys if key in present]
        heads = self._io.map(self.storage.head, [key for _, key in candidates])  # independent: all at once
        current: dict[str, ObjectInfo] = {}
        replaced: dict[str, str] = {}
        for (v, _), head in zip(candidates, heads, strict=True):
            if head is not None and is_current(head, info, v.param_hash, fallback_ok=fallback_ok):
                current[v.name] = head
            elif head is not None and (generation := head.metadata.get(META_GENERATION)):
                replaced[v.name] = generation
        return current, replaced

    def existing(
        self,
        info: ObjectInfo,
        variants: list[PlannedVariant],
        present: set[str] | None = None,
        *,
        fallback_ok: bool = False,
    ) -> dict[str, ObjectInfo]:
        return self.contents(info, variants, present, fallback_ok=fallback_ok)[0]

    def remove_stale(
        self,
        present: set[str],
        records: list[VariantRecord],
        prepared: bool,
        prune: bool,
    ) -> None:
        """Remove what this run made obsolete: a variant it rewrote under another extension, a prepared
        copy no longer needed, and (with ``prune``) variants of targets gone from the config and kept
        generations no target uses. A variant that failed here is never touched: another invocation may
        have just written it (and a generation is pruned only when nothing failed, for the same reason)."""
        written = {r.name: r.key for r in records if r.key}
        planned = {r.name for r in records}
        used = {r.generation for r in records if r.generation}

        def obsolete(key: str) -> bool:
            name = key[len(self.out_dir) :]
            if not in_folder(key, self.out_dir) or name == MANIFEST_NAME:
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
