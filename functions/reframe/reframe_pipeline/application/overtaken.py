"""A run overtaken by a newer sidecar: the source's own sidecar changed while this run made its variants. The
newer sidecar's event owns the folder, as a newer upload's does: this run writes no manifest and prunes nothing
(it would undo the newer run's, deleting what that run keeps), and takes back the variants it made that the newer
sidecar does not ask for, so no orphan is left."""

from __future__ import annotations

from collections.abc import Callable

from reframe_pipeline.application.discovery import FoundConfig
from reframe_pipeline.application.outputs import OutputFolder
from reframe_pipeline.domain.errors import PermanentError
from reframe_pipeline.domain.manifest import VariantRecord
from reframe_pipeline.observability import count, logger


def overtaken(
    folder: OutputFolder,
    worked_with: FoundConfig,
    now: FoundConfig | None,
    names: Callable[[FoundConfig], set[str]],
    records: list[VariantRecord],
) -> bool:
    """Whether the source's own sidecar as it is ``now`` is newer than the config this run worked with (it has an
    event of its own, that will run, or ran, with it); if so, this run's variants it does not plan (``names``) are
    removed. A folder default changed meanwhile is not: it applies to later uploads, and no event comes for this
    one; nor is a sidecar deleted meanwhile (its variants are kept)."""
    if now is None or (now.key, now.raw) == (worked_with.key, worked_with.raw):
        return False
    try:
        planned = names(now)
    except PermanentError:  # the newer sidecar is invalid: its run says so, and keeps what the folder holds
        planned = None
    unasked = [r for r in records if r.status == "created" and planned is not None and r.name not in planned]
    made = sorted({rendition.key for r in unasked for rendition in r.renditions} | {r.key for r in unasked if r.key})
    if made:
        folder.out.delete(made)  # the deliverables, in OUTPUT_BUCKET
    logger.info("sidecar changed while in work: the newer sidecar's event takes over", extra={"removed": made})
    count("SourcesSuperseded")
    return True
