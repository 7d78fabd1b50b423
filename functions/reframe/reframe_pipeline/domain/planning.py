"""From a validated sidecar to the list of variants to produce, each with two identities: what the
provider generates (the generation hash: paid for) and how it is rendered (the parameter hash: free to
change once the generation is kept)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from reframe_pipeline.domain.cropping import Focus
from reframe_pipeline.domain.presets import PRESETS
from reframe_pipeline.domain.renditions import RenditionSpec, all_widths, specs
from reframe_pipeline.domain.resolutions import Size, nearest_resolution, parse_aspect, parse_size
from reframe_pipeline.domain.sidecar import FocusPoint, InvalidSidecarError, OutputOptions, Sidecar, Target

_OVERRIDABLE = ("rendering_speed", "seed", "style_codes", "style_reference_images", "color_palette")


@dataclass(frozen=True)
class PlannedVariant:
    name: str
    resolution: Size  # what the provider is asked for
    final_size: Size  # what is written (differs for exact sizes: resized and centre-cropped)
    rendering_speed: str
    seed: int | None
    style_codes: tuple[str, ...]
    style_references: tuple[str, ...]  # object keys or https URLs, as written in the sidecar
    color_palette: dict[str, Any] | None
    output: OutputOptions
    param_hash: str  # the rendition: the generation plus exact size, focus and output options
    generation_hash: str  # what the provider sees: changing any of it pays for new pixels
    focus: Focus = "center"  # where the exact-size crop goes
    widths: tuple[int, ...] = ()  # the deliverables' widths, widest (the final size's) first

    @property
    def needs_crop(self) -> bool:
        return self.final_size != self.resolution

    @property
    def renditions(self) -> list[RenditionSpec]:
        """The deliverables: every output format at every width."""
        return specs(self.final_size, self.output.all_formats, self.widths or (self.final_size.width,))


def _geometry(target: Target) -> tuple[Size, Size]:
    if target.resolution is not None:
        size = parse_size(target.resolution)
        return size, size
    if target.aspect_ratio is not None:
        size = nearest_resolution(parse_aspect(target.aspect_ratio))
        return size, size
    exact = PRESETS[target.preset].size if target.preset is not None else parse_size(target.size or "")
    return nearest_resolution(exact.aspect), exact


def _hash(provider: str, fields: dict[str, Any]) -> str:
    # The provider is part of the identity: switching provider is a deliberate request for new pixels.
    canonical = json.dumps({"provider": provider, **fields}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _check_style_keys(refs: list[str] | None, field: str, style_prefix: str) -> None:
    """Every style-reference key is presigned for the provider: only those under STYLE_PREFIX may be."""
    for index, ref in enumerate(refs or ()):
        if not ref.startswith("https://") and not ref.startswith(style_prefix):
            raise InvalidSidecarError(
                f"{field}[{index}]: {ref!r} is not under the style prefix {style_prefix!r} (setting STYLE_PREFIX)"
            )


def _check_widths(target: Target, index: int, final: Size, widths_allowed: bool) -> None:
    for position, width in enumerate(target.widths or ()):
        if width > final.width:
            raise InvalidSidecarError(
                f"targets[{index}].widths[{position}]: {width} is wider than the target ({final.width} pixels);"
                " widths make smaller copies"
            )
    if target.widths and not widths_allowed:
        raise InvalidSidecarError(
            f"targets[{index}].widths: the deliverables' key template (setting OUTPUT_KEY_TEMPLATE) has neither"
            " {width} nor {hash}: every width would get the same key"
        )


def plan(
    sidecar: Sidecar, *, provider: str, default_speed: str, style_prefix: str, widths_allowed: bool = True
) -> list[PlannedVariant]:
    """``default_speed`` (DEFAULT_RENDERING_SPEED) applies where the sidecar names no speed; ``widths_allowed``:
    the key template tells a target's widths apart."""
    _check_style_keys(sidecar.style_reference_images, "style_reference_images", style_prefix)
    variants: list[PlannedVariant] = []
    seen: set[str] = set()
    for index, target in enumerate(sidecar.targets):
        _check_style_keys(target.style_reference_images, f"targets[{index}].style_reference_images", style_prefix)
        variant = _plan_target(sidecar, index, target, provider, default_speed)
        _check_widths(target, index, variant.final_size, widths_allowed)
        if variant.name in seen:
            raise InvalidSidecarError(
                f"targets[{index}].name: {variant.name!r} is produced twice; give one of them a 'name'"
            )
        seen.add(variant.name)
        variants.append(variant)
    return variants


def _focus(target: Target) -> Focus:
    if isinstance(target.focus, FocusPoint):
        return (target.focus.x, target.focus.y)
    return "center" if target.focus is None else target.focus


def _rendition_fields(sidecar: Sidecar, target: Target, generation: dict[str, Any], final: Size) -> dict[str, Any]:
    """What identifies the rendition: the generation, the exact size, the output options, widths and focus; the
    last two absent when unset, so the parameter hashes of earlier variants stay as they were."""
    fields = {**generation, "final_size": str(final), "output": sidecar.output.hashed()}
    if target.widths:
        fields["widths"] = sorted(target.widths)
    focus = _focus(target)
    if focus != "center":
        fields["focus"] = list(focus) if isinstance(focus, tuple) else focus
    return fields


def _plan_target(sidecar: Sidecar, index: int, target: Target, provider: str, default_speed: str) -> PlannedVariant:
    resolution, final = _geometry(target)

    def pick(field: str) -> Any:
        value = getattr(target, field)
        return getattr(sidecar, field) if value is None else value

    if pick("style_codes") and pick("style_reference_images"):
        # Each level is checked by the model; a top-level value and a target's override can still meet.
        raise InvalidSidecarError(
            f"targets[{index}]: style_codes cannot be combined with style_reference_images"
            " (one of them comes from the top level)"
        )
    palette = pick("color_palette")
    generation = {
        "resolution": str(resolution),
        "rendering_speed": pick("rendering_speed") or default_speed,
        "seed": pick("seed"),
        "style_codes": list(pick("style_codes") or ()),
        "style_references": list(pick("style_reference_images") or ()),
        "color_palette": palette.as_api() if palette else None,
    }
    fields = _rendition_fields(sidecar, target, generation, final)
    focus = _focus(target)
    return PlannedVariant(
        name=target.name or target.preset or str(final),
        resolution=resolution,
        final_size=final,
        rendering_speed=fields["rendering_speed"],
        seed=fields["seed"],
        style_codes=tuple(fields["style_codes"]),
        style_references=tuple(fields["style_references"]),
        color_palette=fields["color_palette"],
        output=sidecar.output,
        param_hash=_hash(provider, fields),
        generation_hash=_hash(provider, generation),
        focus=focus,
        widths=all_widths(final, target.widths),
    )


def generation_payers(variants: list[PlannedVariant]) -> dict[str, str]:
    """Each variant's name -> the name of the first variant with the same generation: the one that pays
    for it (itself), while the others are rendered from it for free."""
    first: dict[str, str] = {}
    return {v.name: first.setdefault(v.generation_hash, v.name) for v in variants}
