"""The gallery's "regenerate" action: a new seed for one target, written into the object's sidecar.

Nothing is produced here. The sidecar is written to the bucket like any upload, and the bucket
notification, the queue and the handler do the rest: a sidecar upload re-plans its image, and a
changed seed pays for one new generation of that target only.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from reframe_pipeline.application.outputs import output_dir
from reframe_pipeline.domain.events import MANIFEST_NAME, SIDECAR_SUFFIX
from reframe_pipeline.domain.planning import plan
from reframe_pipeline.domain.sidecar import parse_sidecar
from reframe_pipeline.settings import Settings

from .errors import UserError

_SEED_MIN, _SEED_MAX = 100, 999999  # the sidecar's seed range


@dataclass(frozen=True)
class Regeneration:
    source: str
    variant: str
    sidecar_key: str
    seed: int
    created_sidecar: bool  # the source used a folder default or DEFAULT_SIDECAR: its own sidecar now


def new_seed(old: int | None) -> int:
    while True:
        seed = _SEED_MIN + secrets.randbelow(_SEED_MAX - _SEED_MIN + 1)
        if seed != old:
            return seed


def reseeded(raw: bytes, variant: str, seed: int, settings: Settings) -> dict[str, Any]:
    """The sidecar document ``raw`` with ``seed`` on the target that produces ``variant``; every other field as
    it was. The target is found by planning the sidecar, as the handler does (a variant's name is the
    target's ``name``, its preset or its final size)."""
    planned = plan(
        parse_sidecar(raw, max_bytes=settings.max_sidecar_bytes, max_targets=settings.max_targets_per_object),
        provider=settings.reframe_provider,
        default_speed=settings.default_rendering_speed,
        style_prefix=settings.style_prefix,
    )
    names = [v.name for v in planned]
    if variant not in names:
        raise UserError(f"no target of the sidecar makes {variant!r} (it makes {', '.join(names)})")
    document: dict[str, Any] = json.loads(raw)
    document["targets"][names.index(variant)]["seed"] = seed
    return document


def _read(s3: Any, bucket: str, key: str) -> bytes | None:
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    return body


def regenerate(s3: Any, bucket: str, settings: Settings, source: str, variant: str) -> Regeneration:
    """Write ``source``'s sidecar with a new seed for ``variant``'s target. The configuration is the one its
    manifest says was applied (``config.from``): the object's own sidecar, or else a copy of the folder
    default or of DEFAULT_SIDECAR, which becomes the object's sidecar."""
    if not source.startswith(settings.input_prefix) or source.endswith(SIDECAR_SUFFIX):
        raise UserError(f"{source!r} is not an image under the input prefix {settings.input_prefix!r}")
    raw_manifest = _read(s3, bucket, output_dir(source, settings) + MANIFEST_NAME)
    if raw_manifest is None:
        raise UserError(f"{source}: no manifest: nothing to regenerate yet")
    manifest = json.loads(raw_manifest)
    config = manifest.get("config") or {}
    if config.get("from") == "default":
        raw = settings.default_sidecar.encode() if settings.default_sidecar else None
    else:
        raw = _read(s3, bucket, config.get("key") or source + SIDECAR_SUFFIX)
    if raw is None:
        raise UserError(f"{source}: the configuration its manifest names ({config}) is gone")
    old = next((v.get("seed") for v in manifest.get("variants", []) if v.get("name") == variant), None)
    seed = new_seed(old)
    document = reseeded(raw, variant, seed, settings)
    key = source + SIDECAR_SUFFIX
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(document, indent=2).encode(), ContentType="application/json")
    return Regeneration(source, variant, key, seed, created_sidecar=config.get("from") != "object")
