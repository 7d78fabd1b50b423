"""What a source's output folder already holds for a plan: the variants current for this source version and
these parameters (nothing to pay), their deliverables, and the generations of the outdated ones."""

from __future__ import annotations

from reframe_pipeline.application.deliverables import bucket_of, published, single_file
from reframe_pipeline.application.generations import META_GENERATION
from reframe_pipeline.application.object_metadata import OUTPUT_EXTENSIONS, is_current
from reframe_pipeline.application.outputs import OutputFolder
from reframe_pipeline.application.values import ObjectInfo
from reframe_pipeline.domain.manifest import Rendition
from reframe_pipeline.domain.planning import PlannedVariant

# The current deliverables of each target name, by their first rendition's head, and the outdated ones' generations.
Found = tuple[dict[str, ObjectInfo], dict[str, str], dict[str, list[Rendition]]]


def contents(
    folder: OutputFolder,
    info: ObjectInfo,
    variants: list[PlannedVariant],
    present: set[str] | None = None,
    *,
    fallback_ok: bool = False,
) -> Found:
    """The variants whose deliverables (as the last manifest lists them, in today's output bucket) are all
    there for this source version with these parameters (nothing to pay), with those deliverables; and,
    for the others, the generation their outdated rendition came from. A variant the manifest does not
    know is looked for in the folder (``present``: its keys, when the caller has listed them already). A
    fallback variant counts as written only with ``fallback_ok`` (the backfill's survey)."""
    listed = published(folder.previous)
    moved = folder.previous is not None and bucket_of(folder.previous) != folder.out.bucket
    where = folder.storage_for(bucket_of(folder.previous)) if folder.previous else folder.out
    candidates = {v.name: [r.key for r in listed[v.name]] for v in variants if v.name in listed}
    # Every deliverable of every variant at once: a variant is current only when all of them are there.
    flat = [key for keys in candidates.values() for key in keys]
    found_heads = dict(zip(flat, folder.io.map(where.head, flat), strict=True))
    heads = {name: [found_heads[key] for key in keys] for name, keys in candidates.items()}
    current: dict[str, ObjectInfo] = {}
    replaced: dict[str, str] = {}
    for v in variants:
        found = heads.get(v.name) or _in_folder(folder, v, present)
        first = found[0] if found else None
        if first is None:
            continue
        if not moved and all(
            h is not None and is_current(h, info, v.param_hash, fallback_ok=fallback_ok) for h in found
        ):
            current[v.name] = first
        elif generation := first.metadata.get(META_GENERATION):
            replaced[v.name] = generation
    by_name = {v.name: v for v in variants}
    return (
        current,
        replaced,
        {name: listed.get(name) or _single(head, by_name[name]) for name, head in current.items()},
    )


def _in_folder(folder: OutputFolder, v: PlannedVariant, present: set[str] | None) -> list[ObjectInfo | None]:
    """A variant written in the folder (the layout of before) that no manifest lists: its file, if any."""
    if folder.out.bucket != folder.storage.bucket:
        return []
    if present is None:
        present = {item.key for item in folder.storage.list_objects(folder.out_dir)}
    keys = [
        f"{folder.out_dir}{v.name}.{ext}" for ext in OUTPUT_EXTENSIONS if f"{folder.out_dir}{v.name}.{ext}" in present
    ]
    return [folder.storage.head(keys[0])] if keys else []


def existing(
    folder: OutputFolder,
    info: ObjectInfo,
    variants: list[PlannedVariant],
    present: set[str] | None = None,
    *,
    fallback_ok: bool = False,
) -> dict[str, ObjectInfo]:
    return contents(folder, info, variants, present, fallback_ok=fallback_ok)[0]


def _single(head: ObjectInfo, v: PlannedVariant) -> list[Rendition]:
    """A variant found in the folder, written before renditions: its one file."""
    return [single_file(head.key, v.final_size.width, v.final_size.height, head.size)]
