"""``reframe validate FILE``: what the pipeline would make of a sidecar, offline.

The same parsing, limits and planning as the deployed handler (settings from the environment), so an
error here is the message the image's manifest would carry.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from reframe_pipeline.domain.cropping import crop_for
from reframe_pipeline.domain.events import FOLDER_SIDECAR, SIDECAR_SUFFIX
from reframe_pipeline.domain.imaging import FORMATS
from reframe_pipeline.domain.key_template import KeyFacts
from reframe_pipeline.domain.planning import PlannedVariant, generation_payers, plan
from reframe_pipeline.domain.presets import PRESETS
from reframe_pipeline.domain.pricing import estimate
from reframe_pipeline.domain.resolutions import RESOLUTION_NAMES
from reframe_pipeline.domain.sidecar import (
    TARGET_KINDS,
    ColorPalette,
    FocusPoint,
    InvalidSidecarError,
    OutputOptions,
    PaletteMember,
    Sidecar,
    Target,
    describe,
    field_path,
    load_json,
    parse_sidecar,
    problem,
)
from reframe_pipeline.settings import Settings

from .errors import CANNOT_RUN
from .estimates import cost_table, usd
from .tables import text_table
from .words import counted

# Every field a sidecar may have, at any level: a near miss of one is named in "did you mean".
_FIELDS = sorted(
    {"$schema"}.union(
        *(model.model_fields for model in (Sidecar, Target, OutputOptions, ColorPalette, PaletteMember, FocusPoint))
    )
)
_CHOICES_SHOWN = 5


def requested(target: Target) -> tuple[str, str]:
    """The target's kind and what it asks for, as written."""
    kind = next(kind for kind in TARGET_KINDS if getattr(target, kind) is not None)
    return kind, str(getattr(target, kind))


def run(path: Path, out: TextIO, err: TextIO) -> int:
    settings = Settings.from_env()
    # The pipeline hashes and prices variants under the provider it runs.
    provider = settings.reframe_provider
    try:
        raw = path.read_bytes()
    except OSError as exc:
        err.write(f"{path}: cannot read: {exc.strerror or exc}\n")
        return CANNOT_RUN
    try:
        sidecar = parse_sidecar(raw, max_bytes=settings.max_sidecar_bytes, max_targets=settings.max_targets_per_object)
        variants = plan(
            sidecar,
            provider=provider,
            default_speed=settings.default_rendering_speed,
            style_prefix=settings.style_prefix,
            widths_allowed=settings.delivery.template.has_width,
        )
    except InvalidSidecarError as exc:
        found = mistakes(raw, exc)
        if len(found) == 1:
            err.write(f"{path}: invalid sidecar: {found[0]}\n")
        else:
            err.write(f"{path}: invalid sidecar, {len(found)} mistakes:\n" + "".join(f"  {line}\n" for line in found))
        return 1
    out.write(f"{path}: {counted(len(variants), 'target')}, provider {provider}\n\n")
    out.write(_targets_table(sidecar.targets, variants, settings, provider) + "\n\n")
    out.write(_crops(variants))
    options = sidecar.output
    quality = f", quality {options.quality}" if {"jpeg", "webp", "avif"} & set(options.all_formats) else ""
    written = ", ".join(options.all_formats)
    out.write(f"output: {written}{quality}{', prune' if sidecar.prune else ''}\n\n")
    out.write(_deliverables(path, variants, settings, provider) + "\n\n")
    payers = generation_payers(variants)
    paid = [v for v in variants if payers[v.name] == v.name]
    out.write(
        f"{counted(len(paid), 'paid generation')}, {counted(len(variants) - len(paid), 'target')} rendered from"
        " another's for free; a later change of only size (same shape), format or quality re-renders for free\n\n"
    )
    out.write("estimated cost per upload (USD):\n")
    speeds = Counter(v.rendering_speed for v in paid)
    out.write(cost_table(settings.price_table, speeds, configured=provider) + "\n")
    return 0


def mistakes(raw: bytes, exc: InvalidSidecarError) -> list[str]:
    """Each mistake of a refused sidecar on a line of its own, a near miss with its "did you mean". When the
    model's validation refused the file (its errors read as the message), each of its errors is a line; any
    other refusal (size, JSON, limits, planning) is its message."""
    try:
        Sidecar.model_validate(load_json(raw))
    except ValidationError as found:
        if describe(found) == exc.message:
            return [_explained(error) for error in found.errors()]
    except InvalidSidecarError:
        pass
    return [exc.message]


def _explained(error: ErrorDetails) -> str:
    given = error.get("input")
    field = str(error["loc"][-1]) if error["loc"] else ""
    if error["type"] == "extra_forbidden":
        return problem(error) + did_you_mean(field, _FIELDS)
    if not isinstance(given, str):
        return problem(error)
    if field == "preset" and "unknown preset" in error["msg"]:  # its message lists every preset: shortened
        names = sorted(PRESETS)
        return f"{field_path(error['loc'])}: unknown preset {given!r}{did_you_mean(given, names)}; known: " + some_of(
            names, "see `reframe presets`"
        )
    if field == "resolution":
        return problem(error) + did_you_mean(given, RESOLUTION_NAMES)
    if error["type"] == "literal_error":
        return problem(error) + did_you_mean(given, re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected"))))
    return problem(error)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def some_of(names: list[str], more: str) -> str:
    """The first few of ``names``, and how many more there are and where to see them."""
    shown = ", ".join(names[:_CHOICES_SHOWN])
    rest = len(names) - _CHOICES_SHOWN
    return f"{shown} … {rest} more ({more})" if rest > 0 else shown


def _crops(variants: list[PlannedVariant]) -> str:
    """Where each exact-size crop falls on the reframed canvas; the source, wherever the provider put it,
    is kept whole when a crop allows (the manifest says `source_cropped` when none does)."""
    lines = []
    for v in variants:
        if not v.needs_crop:
            continue
        window = crop_for(v.resolution, v.final_size, v.focus).window
        focus = v.focus if isinstance(v.focus, str) else f"x {v.focus[0]:g}, y {v.focus[1]:g} of the source"
        lines.append(
            f"  {v.name}: keeps x {window.x:.0f}-{window.x + window.width:.0f}, "
            f"y {window.y:.0f}-{window.y + window.height:.0f} of the {v.resolution} canvas (focus {focus})\n"
        )
    return "crops (size and preset targets):\n" + "".join(lines) + "\n" if lines else ""


def _targets_table(targets: list[Target], variants: list[PlannedVariant], settings: Settings, provider: str) -> str:
    headers = ["name", "kind", "requested", "API resolution", "final size", "speed", "seed", f"{provider} USD"]
    rows = []
    total = 0.0
    payers = generation_payers(variants)
    # plan() keeps the targets' order, one variant per target.
    for target, variant in zip(targets, variants, strict=True):
        shared = payers[variant.name] != variant.name
        cost = 0.0 if shared else estimate(settings.price_table, provider, variant.rendering_speed)
        total += cost
        kind, asked = requested(target)
        rows.append(
            [
                variant.name,
                kind,
                asked,
                str(variant.resolution),
                str(variant.final_size),
                variant.rendering_speed,
                "-" if variant.seed is None else str(variant.seed),
                f"{usd(cost)} (from {payers[variant.name]})" if shared else usd(cost),
            ]
        )
    rows.append(["total", "", "", "", "", "", "", usd(total)])
    return text_table(headers, rows, right=frozenset({7}))


def _deliverables(path: Path, variants: list[PlannedVariant], settings: Settings, provider: str) -> str:
    """Every file written for one upload, at its key (OUTPUT_KEY_TEMPLATE, for the image this sidecar is
    beside), and its cost: a target's generation is paid once, its renditions cost nothing."""
    source = path.name.removesuffix(SIDECAR_SUFFIX) if path.name != FOLDER_SIDECAR else "<image>"
    template = settings.delivery.template
    payers = generation_payers(variants)
    rows = []
    for v in variants:
        paid = payers[v.name] == v.name
        for index, spec in enumerate(v.renditions):
            ext = FORMATS[spec.format].ext if spec.format in FORMATS else "<ext>"
            facts = KeyFacts(source, v.name, spec.width, spec.height, ext, digest="<hash>")
            cost = estimate(settings.price_table, provider, v.rendering_speed) if paid and index == 0 else 0.0
            rows.append([v.name, spec.format, str(spec.size), template.render(facts), usd(cost)])
    bucket = settings.output_bucket or "the source bucket"
    headers = ["target", "format", "size", f"key (in {bucket}, for {source})", "USD"]
    return f"{len(rows)} deliverable(s):\n" + text_table(headers, rows, right=frozenset({4}))
