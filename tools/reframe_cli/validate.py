"""``reframe validate FILE``: what the pipeline would make of a sidecar, offline.

The same parsing, limits and planning as the deployed handler (settings from the environment), so an
error here is the message the image's manifest would carry.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TextIO

from reframe_pipeline.domain.cropping import crop_for
from reframe_pipeline.domain.events import FOLDER_SIDECAR, SIDECAR_SUFFIX
from reframe_pipeline.domain.imaging import FORMATS
from reframe_pipeline.domain.key_template import KeyFacts
from reframe_pipeline.domain.planning import PlannedVariant, generation_payers, plan
from reframe_pipeline.domain.pricing import estimate
from reframe_pipeline.domain.sidecar import TARGET_KINDS, InvalidSidecarError, Target, parse_sidecar
from reframe_pipeline.settings import Settings

from .estimates import cost_table, usd
from .tables import text_table


def requested(target: Target) -> tuple[str, str]:
    """The target's kind and what it asks for, as written."""
    kind = next(kind for kind in TARGET_KINDS if getattr(target, kind) is not None)
    return kind, str(getattr(target, kind))


def run(path: Path, out: TextIO, err: TextIO) -> int:
    settings = Settings.from_env()
    # The pipeline hashes and prices variants under the provider it runs.
    provider = settings.reframe_provider
    try:
        sidecar = parse_sidecar(
            path.read_bytes(), max_bytes=settings.max_sidecar_bytes, max_targets=settings.max_targets_per_object
        )
        variants = plan(
            sidecar,
            provider=provider,
            default_speed=settings.default_rendering_speed,
            style_prefix=settings.style_prefix,
            widths_allowed=settings.delivery.template.has_width,
        )
    except InvalidSidecarError as exc:
        err.write(f"{path}: invalid sidecar: {exc.message}\n")
        return 1
    except OSError as exc:
        err.write(f"{path}: cannot read: {exc.strerror or exc}\n")
        return 1
    out.write(f"{path}: {len(variants)} target(s), provider {provider}\n\n")
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
        f"{len(paid)} paid generation(s), {len(variants) - len(paid)} target(s) rendered from another's for free;"
        " a later change of only size (same shape), format or quality re-renders for free\n\n"
    )
    out.write("estimated cost per upload (USD):\n")
    speeds = Counter(v.rendering_speed for v in paid)
    out.write(cost_table(settings.price_table, speeds, configured=provider) + "\n")
    return 0


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
