"""What outputs say of themselves in S3 metadata (source version, parameters, generation, seed, signing,
fallback, warnings), what makes one current, and S3's limits on keys and metadata, checked before anything is paid."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from reframe_pipeline.application.generations import META_GENERATION, META_SEED
from reframe_pipeline.application.values import ObjectInfo
from reframe_pipeline.domain.errors import OutputLimitError
from reframe_pipeline.domain.imaging import FORMATS
from reframe_pipeline.domain.manifest import SOURCE_ALTERED, SOURCE_CROPPED
from reframe_pipeline.domain.planning import PlannedVariant

META_SOURCE_KEY = "source-key"
META_SOURCE_ETAG = "source-etag"
META_PARAMS = "params-hash"
# Present on a variant signed with C2PA Content Credentials: an `existing` variant's manifest entry says so too.
META_CREDENTIALS = "content-credentials"
# Present on a variant made by the fallback provider (its name): never current, so a later run tries the provider.
META_FALLBACK = "fallback"
# On a kept generation: its source check, so a later run's renditions of it need not look again.
META_SOURCE_MATCH = "source-match"
META_SOURCE_BOX = "source-box"
# On a flagged variant: its warnings (comma-separated), so a later run that finds it existing lists them too.
META_WARNINGS = "warnings"
ALL_WARNINGS = (SOURCE_ALTERED, SOURCE_CROPPED)  # the longest metadata the warnings can take
LONGEST_CHECK = {META_SOURCE_MATCH: "0.0000", META_SOURCE_BOX: "99999,99999,99999,99999"}
OUTPUT_EXTENSIONS = tuple(sorted({spec.ext for spec in FORMATS.values()} | {"jpeg"}))
# S3's own limits: a write over them fails after the provider was paid, so they are checked before.
MAX_KEY_BYTES = 1024
MAX_METADATA_BYTES = 2048
LARGEST_SEED = 2**31 - 1  # the providers' seeds are 32-bit: the longest metadata a seed can take


def source_key_tag(key: str) -> str:
    """The source key as S3 metadata (ASCII only, 2 KB for all of it): percent-encoded when short, else
    its SHA-256 (a 240-character CJK key percent-encodes to over 2 KB)."""
    quoted = quote(key)
    return quoted if len(quoted) <= 512 else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def check_output_limits(key: str, metadata: dict[str, str]) -> None:
    """Refuse an output that S3 would refuse, before anything is paid for it."""
    key_bytes = len(key.encode())
    if key_bytes > MAX_KEY_BYTES:
        raise OutputLimitError(
            f"the output key would be {key_bytes} bytes, over S3's limit of {MAX_KEY_BYTES}: "
            "shorten the source key or the target name"
        )
    meta_bytes = sum(len(name.encode()) + len(value.encode()) for name, value in metadata.items())
    if meta_bytes > MAX_METADATA_BYTES:
        raise OutputLimitError(f"the output's metadata would be {meta_bytes} bytes, over S3's limit of 2 KB")


def variant_metadata(
    origin: ObjectInfo,
    param_hash: str,
    gen_id: str,
    seed: int | None,
    signed: bool = False,
    warnings: tuple[str, ...] = (),
) -> dict[str, str]:
    """What a variant says of itself: its source version, parameters, generation, the seed used (so a
    variant people liked can be generated again), whether it carries Content Credentials and its warnings."""
    return {
        META_SOURCE_KEY: source_key_tag(origin.key),
        META_SOURCE_ETAG: origin.etag,
        META_PARAMS: param_hash,
        META_GENERATION: gen_id,
        **({META_SEED: str(seed)} if seed is not None else {}),
        **({META_CREDENTIALS: "c2pa"} if signed else {}),
        **({META_WARNINGS: ",".join(warnings)} if warnings else {}),
    }


def warnings_of(head: ObjectInfo) -> list[str]:
    """The warnings a variant was written with (its metadata)."""
    return [warning for warning in head.metadata.get(META_WARNINGS, "").split(",") if warning]


def is_signed(head: ObjectInfo) -> bool:
    return head.metadata.get(META_CREDENTIALS) == "c2pa"


def generation_metadata(origin: ObjectInfo, variant: PlannedVariant, provider: str) -> dict[str, str]:
    """What a kept generation says of itself: its source version and what the provider was asked."""
    return {
        META_SOURCE_KEY: source_key_tag(origin.key),
        META_SOURCE_ETAG: origin.etag,
        META_PARAMS: variant.generation_hash,
        "provider": provider,
        "resolution": str(variant.resolution),
        "rendering-speed": variant.rendering_speed,
    }


def is_current(head: ObjectInfo | None, origin: ObjectInfo, param_hash: str, *, fallback_ok: bool = False) -> bool:
    """An output made from this version of the source with these parameters (nothing to pay). A fallback
    variant is not, unless ``fallback_ok``: the provider is owed another try (a run, ``--retry-fallbacks``)."""
    return (
        head is not None
        and head.metadata.get(META_SOURCE_ETAG) == origin.etag
        and head.metadata.get(META_PARAMS) == param_hash
        and (fallback_ok or META_FALLBACK not in head.metadata)
    )


def is_fallback(head: ObjectInfo) -> bool:
    return META_FALLBACK in head.metadata
